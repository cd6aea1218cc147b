"""Render latency under load: python bench/load.py [--model NAME] [--clients 16] [--renders 50]

Starts `python app.py --public` on a copy of the models folder with an empty user cache, then:
1. `clients` gradio_client clients x `renders` /render calls each (distinct seeds), alone;
2. the same while one more client asks /directions of a model with no cached directions (a copy of
   the model without its directions/ folder: the PCA is computed in the load lane meanwhile).
Prints p50/p95 render latency and errors: alone, of the renders that finished while the model
loaded, and of all of run 2; passes (exit 0) when there are no errors and the p95 while the model
loads is within 2x of the p95 without it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ui_helpers import App, percentile, render_load  # noqa: E402

MAX_RATIO = 2.0


def copy_model(src: Path, dst: Path) -> None:
    """The model's config and weights only: no directions cache, no card."""
    from gan.io.checkpoint import CONFIG_NAME, G_NAME
    dst.mkdir(parents=True)
    for name in (CONFIG_NAME, G_NAME):
        shutil.copy2(src / name, dst / name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a model name in assets/models (default: the DEFAULT one)")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--renders", type=int, default=50)
    args = p.parse_args(argv)
    from explorer.ui import MODELS_DIR, default_model
    src = MODELS_DIR / args.model if args.model else default_model(MODELS_DIR)
    work = Path(tempfile.mkdtemp(prefix="gle-load-"))
    models = work / "models"
    shutil.copytree(src, models / src.name)            # with its directions cache: renders are warm
    copy_model(src, models / "fresh")                  # without: loading it computes the PCA
    (models / "DEFAULT").write_text(src.name)
    app = App(["--public", "--models-dir", str(models)], work / "app.log", env={"GAN_CACHE_DIR": str(work / "cache")})
    try:
        print(f"{args.clients} clients x {args.renders} renders of {src.name}")
        results = {}
        alone, errors = render_load(app.url, src.name, args.clients, args.renders, work / "dl")
        results["alone"] = (alone, errors)
        window = {}

        def load_fresh():
            from gradio_client import Client
            client = Client(app.url, verbose=False, download_files=str(work / "dl"))
            window["start"] = time.monotonic()
            client.predict(model="fresh", api_name="/directions")
            window["end"] = time.monotonic()

        loader = threading.Thread(target=load_fresh)

        def start_loading():
            loader.start()
            time.sleep(0.2)
        busy, errors = render_load(app.url, src.name, args.clients, args.renders, work / "dl", seed0=100_000,
                                   on_ready=start_loading)
        loader.join()
        # The renders that finished while the fresh model's directions were computed.
        during = [(t, x) for t, x in busy if window["start"] < t < window["end"]]
        results["while a model loads"] = (during, errors)
        results["all of run 2"] = (busy, [])
        for name, (lat, errs) in results.items():
            s = [x for _, x in lat]
            print(f"  {name:20s} p50 {1000 * percentile(s, .5):7.0f} ms  p95 {1000 * percentile(s, .95):7.0f} ms  "
                  f"renders {len(s)}  errors {len(errs)}")
            for e in errs[:3]:
                print(f"    {e}")
        print(f"  the fresh model's directions took {window['end'] - window['start']:.1f} s")
        ratio = percentile([x for _, x in during], .95) / percentile([x for _, x in alone], .95)
        ok = not results["alone"][1] and not errors and len(during) > 0 and ratio <= MAX_RATIO
        print(f"  p95 ratio {ratio:.2f} (limit {MAX_RATIO}): {'ok' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        app.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
