"""UI latency in a real browser: python bench/ui.py [--model NAME|DIR] [--n 30]

Starts `python app.py` (the default shipped model, or --model), drives it in Debian's chromium and
prints p50/p95 of: slider release -> new image shown, seed typed -> new image shown, and export
(GIF, the panel's defaults) click -> download link; plus the engine's own render time, to tell
model time from UI overhead, and the shown image's PNG encoding at gradio's default zlib level against
the fast one the app sends (explorer/ui/widgets.py). Target: slider p50 <= 100 ms on a 2-core CPU with
the default model (issue #14).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ui_helpers import (WATCH_IMAGE_LOADS, App, img_src, launch_browser, open_page, open_tab,  # noqa: E402
                        set_number, wait_src_change)

TARGET_MS = 100   # issue #14: slider release -> new image, p50


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


# The page's own clock: performance.now() at each slider release (pointerup on a range input) and at
# each load of the main image, so the in-page latency leaves out playwright's round trips.
PAGE_CLOCK = """() => {
  window.__gle = {release: null, shown: []};
  document.addEventListener('pointerup', e => {
    if (e.target.type === 'range') window.__gle.release = performance.now(); }, true);
""" + WATCH_IMAGE_LOADS + "}"


def slider_releases(page, n: int, rng: random.Random, in_page: list | None = None) -> list[float]:
    """Click the track of direction sliders 0-3 at random points (pointerdown + pointerup = release).
    in_page, when given, gets each release's latency by the page's clock (PAGE_CLOCK installed)."""
    out, misses = [], 0
    while len(out) < n:
        sel = f"#dir{len(out) % 4}"
        number, track = page.locator(f"{sel} input[type=number]"), page.locator(f"{sel} input[type=range]")
        track.scroll_into_view_if_needed()
        box = track.bounding_box()
        before, src = number.input_value(), img_src(page)
        x = box["x"] + box["width"] * rng.uniform(0.05, 0.95)
        if in_page is not None:
            page.evaluate("() => { window.__gle.shown = []; }")
        t0 = time.perf_counter()
        page.mouse.click(x, box["y"] + box["height"] / 2)
        if number.input_value() == before:        # landed on the same step: nothing to render
            misses += 1
            if misses > 20:
                raise RuntimeError(f"clicks on {sel} do not move it")
            continue
        wait_src_change(page, src)
        out.append(time.perf_counter() - t0)
        if in_page is not None:
            page.wait_for_function("() => window.__gle.shown.length > 0")
            in_page.append(page.evaluate("() => (window.__gle.shown.at(-1) - window.__gle.release) / 1000"))
    return out


def seed_changes(page, n: int, rng: random.Random) -> list[float]:
    out = []
    for _ in range(n):
        src = img_src(page)
        t0 = time.perf_counter()
        set_number(page, "#seed", rng.randrange(100_000, 999_999))
        wait_src_change(page, src)
        out.append(time.perf_counter() - t0)
    return out


def exports(page, n: int) -> list[float]:
    open_tab(page, "Export")
    out = []
    for i in range(n):
        link = page.locator("#export_file a[href]")
        old = link.first.get_attribute("href") if link.count() else None
        if i:   # a new seed each time, so nothing is served from a cache
            set_number(page, "#seed", 1000 + i)
            page.wait_for_timeout(300)
        t0 = time.perf_counter()
        page.locator("#export_button").click()
        page.wait_for_function(
            "old => { const a = document.querySelector('#export_file a[href]'); return a && a.href !== old; }",
            arg=old, timeout=300_000)
        out.append(time.perf_counter() - t0)
    open_tab(page, "Directions")
    return out


def engine_render_ms(model: str | None, models_dir: Path, n: int = 20) -> tuple[str, float, object]:
    from explorer import ui
    from explorer.engine import open_engine
    path = ui.resolve_model(model, models_dir) if model else ui.default_model(models_dir)
    if path is None:
        raise SystemExit(f"error: no model in {models_dir}: give --model DIR")
    engine = open_engine(path)
    state = engine.default_state(truncation_psi=ui.DEFAULT_PSI)
    engine.directions()
    times = []
    for i in range(n):
        s = state.with_edit(0, 0.1 * (i + 1))
        t0 = time.perf_counter()
        image = engine.render(s, size=ui.DISPLAY_SIZE)
        times.append(time.perf_counter() - t0)
    return str(path), 1000 * statistics.median(times), image


def png_encoding(image, n: int = 10) -> str:
    """The shown image's PNG encoding at gradio's default zlib level and at the app's (widgets.py): median ms
    and KB of each."""
    from explorer.ui.widgets import PNG_COMPRESS_LEVEL, encode_png
    cells = []
    for level, who in ((6, "gradio's default"), (PNG_COMPRESS_LEVEL, "what the app sends")):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            data = encode_png(image, level)
            times.append(time.perf_counter() - t0)
        cells.append(f"level {level} ({who}) {1000 * statistics.median(times):.1f} ms, {len(data) / 1024:.0f} KB")
    return f"PNG of the shown {image.width} px image: " + "; ".join(cells)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python bench/ui.py", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model name in assets/models or a folder (default: the default)")
    p.add_argument("--models-dir", default=str(ROOT / "assets" / "models"))
    p.add_argument("--n", type=int, default=30, help="slider releases and seed changes to time")
    p.add_argument("--exports", type=int, default=3, help="exports to time")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the app (default: app.py's)")
    args = p.parse_args(argv)

    import torch
    import app as app_module
    threads = app_module.torch_threads(args)
    torch.set_num_threads(threads)
    model, render_ms, image = engine_render_ms(args.model, Path(args.models_dir))
    png = png_encoding(image)
    app_args = ["--models-dir", args.models_dir, "--model", model, "--threads", str(threads)]
    log = Path(tempfile.mkdtemp(prefix="bench-ui-")) / "app.log"
    app = App(app_args, log)
    rng = random.Random(0)
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            page = open_page(browser, app.url)
            page.evaluate(PAGE_CLOCK)
            slider_releases(page, 3, rng)                              # warm up
            in_page = []
            driven = slider_releases(page, args.n, rng, in_page)
            rows = [("slider release -> image loaded, page clock", in_page),
                    ("slider click -> image, as playwright sees it", driven),
                    ("seed -> image", seed_changes(page, args.n, rng)),
                    ("export GIF (4 seeds x 12 frames, 256 px)", exports(page, args.exports))]
            browser.close()
    finally:
        app.stop()
    print(f"model: {model} ({threads} torch thread{'s' * (threads > 1)})\napp start: {app.startup_s:.1f} s; "
          f"engine render + resize to 512 px, in this process: {render_ms:.1f} ms (median)\n{png}")
    print(f"{'measure':<46} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for name, xs in rows:
        if not xs:      # e.g. --exports 0
            continue
        ms = [1000 * x for x in xs]
        print(f"{name:<46} {len(ms):>3} {percentile(ms, 0.5):>8.0f} {percentile(ms, 0.95):>8.0f} "
              f"{statistics.fmean(ms):>8.0f}")
    p50 = percentile([1000 * x for x in rows[0][1]], 0.5)
    print(f"slider p50 {p50:.0f} ms vs target {TARGET_MS} ms: {'OK' if p50 <= TARGET_MS else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
