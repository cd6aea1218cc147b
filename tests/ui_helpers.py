"""Driving the real app in Debian's chromium through Playwright's Python package (no pytest plugin):
start `python app.py` on a free loopback port, read images back as pixels, set slider boxes.
Used by tests/test_ui_browser.py and bench/ui.py."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
IMAGE = "#image"
# JS statements (for a function body that has made window.__gle = {shown: [], ...}): push performance.now()
# to window.__gle.shown at each load of the main image's <img>, old or new. bench/ui.py and
# bench/preview.py time the page by it.
WATCH_IMAGE_LOADS = """
  const watch = img => img.addEventListener('load', () => window.__gle.shown.push(performance.now()));
  const root = document.querySelector('#image');
  root.querySelectorAll('img').forEach(watch);
  new MutationObserver(ms => { for (const m of ms) for (const node of m.addedNodes) {
    if (node.tagName === 'IMG') watch(node); else node.querySelectorAll?.('img').forEach(watch); } })
    .observe(root, {subtree: true, childList: true});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python app.py ARGS` in a subprocess on a free port; `url` once it answers. As a context manager
    (a fixture's `with App(...) as a: yield a`): stopped at the end, and then, unless the block raised,
    its server log checked for tracebacks (assert_no_server_errors)."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None, timeout: float = 150):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = Path(log_path)
        self.log = open(self.log_path, "w+")
        full_env = {k: v for k, v in os.environ.items() if k not in ("GLE_MODEL", "GLE_MODELS_DIR", "SPACE_ID")}
        full_env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
                        **(env or {}))
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port), *args],
                                     cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - t0 > timeout:
                    self.stop()
                    raise RuntimeError(f"app did not start (rc={self.proc.returncode}):\n{self.output()}")
                time.sleep(0.25)
        self.startup_s = time.monotonic() - t0

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def assert_no_server_errors(self) -> None:
        """A failure inside gradio (e.g. two panels rendering at once) shows only as "Error" on a page
        that no test may be looking at; the server's log keeps its traceback."""
        log = self.output()
        assert "Traceback" not in log, log[-4000:]

    def __enter__(self) -> "App":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is None:
            self.assert_no_server_errors()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS, headless=True)


def open_page(browser, url: str, timeout_ms: int = 60_000):
    """A fresh page with the first image rendered (the app's load event has finished)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(f"{IMAGE} img", state="visible", timeout=timeout_ms)
    return page


def open_explorer(browser, url: str):
    """open_page, and also wait for the direction sliders: that panel is a @gr.render that comes after
    the load event's image (on a loaded CI machine, up to tens of seconds after it)."""
    page = open_page(browser, url)
    page.locator("#dir0").wait_for(state="visible", timeout=120_000)
    return page


def img_src(page, sel: str = IMAGE) -> str | None:
    loc = page.locator(f"{sel} img")
    return loc.first.get_attribute("src") if loc.count() else None


def wait_src_change(page, old: str | None, sel: str = IMAGE, timeout_ms: int = 30_000) -> str:
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel + ' img');"
        " return i && i.src && i.src !== old && i.complete; }", arg=[sel, old], timeout=timeout_ms)
    return img_src(page, sel)


def fetch_pixels(page, src: str) -> np.ndarray:
    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def pixels(page, sel: str = IMAGE, timeout_s: float = 10.0) -> np.ndarray:
    """The pixels the browser shows in `sel`'s <img> (fetched from its src, decoded). Right after an
    update the <img> may still point at a file Gradio is replacing: read src again until it decodes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fetch_pixels(page, img_src(page, sel))
        except (OSError, ValueError, TypeError):  # PIL.UnidentifiedImageError is an OSError
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def set_number(page, sel: str, value) -> None:
    """Type into a number box and leave it: a slider's number box fires input, then release (blur)."""
    box = page.locator(f"{sel} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


# ---- many API clients at once (tests/test_load.py, bench/load.py) ------------------------------

def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))] if xs else float("nan")


def render_load(url: str, model: str, clients: int, renders: int, download_to: Path, seed0: int = 0,
                on_ready=None):
    """`clients` gradio_client clients in threads, each asking /render `renders` times (distinct
    seeds: no render cache hits). The clients connect first; then on_ready() (e.g. start a model
    load), then the renders. Returns (latencies [(end time, seconds)], errors [str])."""
    import threading
    from gradio_client import Client
    lat, errors, lock = [], [], threading.Lock()
    connected = [Client(url, verbose=False, download_files=str(download_to)) for _ in range(clients)]

    def one(k: int, client) -> None:
        for i in range(renders):
            t0 = time.monotonic()
            try:
                path = client.predict(model=model, seed=seed0 + 1000 * k + i, psi=0.7, noise="const", edits=[],
                                      mixing={}, size=0, api_name="/render")
                Image.open(path).load()
            except Exception as e:  # noqa: BLE001  (counted, not hidden: the caller asserts none)
                with lock:
                    errors.append(f"client {k} render {i}: {type(e).__name__}: {e}")
                continue
            t1 = time.monotonic()
            with lock:
                lat.append((t1, t1 - t0))

    if on_ready is not None:
        on_ready()
    threads = [threading.Thread(target=one, args=(k, c)) for k, c in enumerate(connected)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, errors


def choose(page, sel: str, prefix: str) -> None:
    """Pick the option of dropdown `sel` whose label starts with prefix (e.g. "7 · ")."""
    page.locator(f"{sel} input").first.click()
    page.locator(f'{sel} [role=option][aria-label^="{prefix}"]').first.click()
