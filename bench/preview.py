"""Early previews in a real browser: python bench/preview.py [--sizes 256,1024] [--n 10]

For each size, a random-weight StyleGAN2 of that size (bench/explorer.py's event models) is served by
`python app.py` twice, with early previews on (--preview-after-ms 0) and off, one app after the other,
and chromium types n new seeds into each. Printed per run, p50 by the page's own clock from the seed
typed: the first new image shown (the preview when on) and the final image. What a preview buys is
the first column against the second with previews off; what it costs, the final image's delay.
The browser runs on the same CPU as the server here (on a Space it would not).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ui_helpers import WATCH_IMAGE_LOADS, App, launch_browser, open_explorer  # noqa: E402

# performance.now() of the seed typed (its box's input event) and of each main-image load.
PAGE_CLOCK = """() => {
  window.__gle = {typed: null, shown: []};
  document.querySelector('#seed input').addEventListener('input', () => {
    window.__gle.typed = performance.now(); window.__gle.shown = []; }, true);
""" + WATCH_IMAGE_LOADS + "}"
IDLE = "() => !document.querySelector('#image').classList.contains('gle-busy') && window.__gle.shown.length > 0"


def seed_latencies(url: str, n: int) -> tuple[list[float], list[float]]:
    """(first image, final image) ms after each of n seeds typed."""
    from playwright.sync_api import sync_playwright
    first, final = [], []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = open_explorer(browser, url)
        page.evaluate(PAGE_CLOCK)
        for i in range(n + 2):      # 2 to warm up
            box = page.locator("#seed input").first
            box.fill(str(5000 + i))
            box.press("Tab")
            page.wait_for_function(IDLE, timeout=120_000)
            page.wait_for_timeout(200)
            typed, shown = page.evaluate("() => [window.__gle.typed, window.__gle.shown]")
            if i >= 2:
                first.append(shown[0] - typed)
                final.append(shown[-1] - typed)
        browser.close()
    return first, final


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python bench/preview.py", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,1024", help="model sizes (of bench/explorer.py's event models)")
    p.add_argument("--n", type=int, default=10, help="seeds typed per run")
    args = p.parse_args(argv)
    import torch
    from bench.explorer import EVENT_MODELS
    from gan.io.checkpoint import save_model
    from gan.models.networks import build_generator
    tmp = Path(tempfile.mkdtemp(prefix="bench-preview-"))
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        torch.manual_seed(0)
        cfg = EVENT_MODELS[size]
        save_model(tmp / "models" / f"random{size}", build_generator(cfg).eval(), cfg)
        for label, after_ms in (("previews on", "0"), ("previews off", "1e9")):
            app = App(["--models-dir", str(tmp / "models"), "--model", f"random{size}",
                       "--preview-after-ms", after_ms], tmp / f"app{size}.log")
            try:
                first, final = seed_latencies(app.url, args.n)
            finally:
                app.stop()
            rows.append((f"{size} px, {label}", statistics.median(first), statistics.median(final), len(first)))
    print(f"{'run':<24} {'n':>3} {'first image p50 ms':>19} {'final image p50 ms':>19}")
    for name, first, final, n in rows:
        print(f"{name:<24} {n:>3} {first:>19.0f} {final:>19.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
