"""Explorer engine benchmark on this CPU: PCA directions, render latency per edit, export time.

    python bench/explorer.py [--threads 2] [--samples 100000] [--repeats 3]

Model (random weights; the shipped model replaces it later): a 32x32 RGB StyleGAN2 with
z_dim = w_dim = 512, an 8-layer 512-wide mapping network, channel_base 4096, channel_max 256
(256 channels at 4-16 px, 128 at 32 px; 6.8 M parameters, num_ws 8): the size of a small model
trained for the explorer on CPU-friendly data. Times are wall-clock, best and median of
--repeats. The machine may be shared: the load average is printed with the table.
Targets: PCA of 100k samples at w_dim 512 <= 6 s; 120-frame export at 256 px <= 10 s.
The render rows are repeated on the shipped default model (assets/models/DEFAULT, or --model),
which is what the app opens on.

--events 256,1024: explorer events on real-size random-weight StyleGAN2s (256 px: channel_base 16384,
channel_max 512, conv_clamp 256; 1024 px: config-F), one uncached render each, as the UI makes them:
a seed change, a coarse edit (layers 0-3), a fine edit (the second half of the layers: the incremental
render re-runs only the blocks from there), and a mixing-tab event (fine layers from seed B: the main
image and the A / B / mixed thumbnails). The fine edit's ratio to a full render is printed (target
<= 40%).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.directions import compute_directions, store, weights_hash  # noqa: E402
from explorer.engine import Engine  # noqa: E402
from explorer.session import DirectionSettings, Edit  # noqa: E402
from gan.allocator import keep_freed_memory  # noqa: E402
from gan.io.checkpoint import CONFIG_NAME, save_model  # noqa: E402
from gan.models.config import ModelConfig  # noqa: E402
from gan.models.networks import build_generator, count_params  # noqa: E402

MODEL = ModelConfig(arch="stylegan2", img_resolution=32, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                    channel_base=4096, channel_max=256)


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(best, median) wall seconds of `repeats` calls, and the CPU share: process CPU time over
    wall time x threads (about 1.0 on an idle machine; much less means other processes took the CPU)."""
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append((time.process_time() - c) / max(1e-9, times[-1] * torch.get_num_threads()))
    return min(times), statistics.median(times), statistics.median(cpu)


def default_model() -> Path | None:
    models = Path(__file__).resolve().parents[1] / "assets" / "models"
    name = (models / "DEFAULT").read_text().strip() if (models / "DEFAULT").is_file() else ""
    return models / name if name and (models / name / CONFIG_NAME).is_file() else None


def render_with(engine: Engine, base, n_edits: int):
    """A function rendering a new state each call (never a cache hit) with `n_edits` edits."""
    counter = iter(range(10 ** 9))

    def render():
        step = next(counter)
        edits = [Edit(c, 0.5 + 0.001 * step, 0, engine.num_ws) for c in range(n_edits)]
        engine.render(base.replace(seed=1000 + step, edits=edits), size=256)
    return render


EVENT_MODELS = {
    256: ModelConfig(arch="stylegan2", img_resolution=256, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                     channel_base=16384, channel_max=512, conv_clamp=256),
    1024: ModelConfig(arch="stylegan2", img_resolution=1024, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                      channel_base=32768, channel_max=512, conv_clamp=256),
}


def event_rows(res: int, tmp: Path, repeats: int) -> list:
    """Render time of the UI's events on a res px model (see the module docstring)."""
    cfg = EVENT_MODELS[res]
    torch.manual_seed(0)
    G = build_generator(cfg).eval().requires_grad_(False)
    folder = save_model(tmp / f"events{res}", G, cfg)
    del G
    engine = Engine(folder, show_bars=False)
    settings = DirectionSettings(samples=5000, components=16)
    engine.directions(settings)
    n = engine.num_ws
    base = engine.default_state(seed=1, truncation_psi=0.7, directions=settings)
    engine.render(base)
    counter = iter(range(1, 10 ** 9))
    fine = list(range(n // 2, n))

    def seed_change():
        engine.render(base.replace(seed=1000 + next(counter)))

    def coarse_edit():
        engine.render(base.with_edit(0, 0.5 + 0.01 * next(counter), 0, 4))

    def fine_edit():
        engine.render(base.with_edit(1, 0.5 + 0.01 * next(counter), n // 2, None))

    def mixing_event():   # fine layers from a new seed B: the main image and the A / B / mixed thumbnails
        state = base.replace(mix_seed=2000 + next(counter), mix_layers=fine)
        engine.render(state, size=512)
        engine.render(base, size=160)
        engine.render(base.replace(seed=state.mix_seed), size=160)
        engine.render(state, size=160)

    rows = [(f"{res} px: seed change (full render)", timed(seed_change, repeats), "ms", None),
            (f"{res} px: coarse edit, layers 0-3", timed(coarse_edit, repeats), "ms", None),
            (f"{res} px: fine edit, layers {n // 2}-{n - 1}", timed(fine_edit, repeats), "ms", None),
            (f"{res} px: mixing tab event (fine layers from B)", timed(mixing_event, repeats), "ms", None)]
    ratio = rows[2][1][1] / rows[0][1][1]
    print(f"# {res} px: fine edit / full render = {100 * ratio:.0f}% (median; target <= 40%)", file=sys.stderr)
    return rows


def main() -> int:
    keep_freed_memory()    # as the programs do (gan/allocator.py; bench/allocation.py compares)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the target machine)")
    ap.add_argument("--samples", type=int, default=100_000, help="PCA samples (default 100000)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default 3)")
    ap.add_argument("--model", default=None, help="trained model folder for the render rows (default: the shipped "
                    "default model, if any)")
    ap.add_argument("--events", default=None, metavar="SIZES", help="only the event rows at these sizes, e.g. 256,1024")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []   # (what, (best, median, cpu share), unit, target)

    if args.events:
        with tempfile.TemporaryDirectory() as tmp:
            for res in (int(r) for r in args.events.split(",")):
                rows += event_rows(res, Path(tmp), args.repeats)
        print_table(rows, args.threads, "real-size random-weight StyleGAN2s (--events)")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        G = build_generator(MODEL).eval().requires_grad_(False)
        folder = save_model(Path(tmp) / "model", G, MODEL)
        settings = DirectionSettings(samples=args.samples, components=80)
        whash = weights_hash(folder)

        # 1. PCA directions: mapping of `samples` z in batches + covariance + eigh.
        box = {}
        t = timed(lambda: box.update(d=compute_directions(G, settings, show_bar=False, weights_hash=whash)),
                  max(1, args.repeats - 1))
        rows.append((f"PCA directions, {args.samples} samples, w_dim 512, 8-layer mapping", t, "s", 6.0))
        store(box["d"], folder)                                             # the engine will load it

        engine = Engine(folder, show_bars=False)
        base = engine.default_state(seed=1, truncation_psi=0.7, directions=settings)
        engine.directions(settings)
        engine.render(base)                                                 # warm-up

        # 2. Render latency: one UI action = one uncached render of a new state.
        reps = max(5, 3 * args.repeats)
        for n in (0, 1, 4, 16):
            rows.append((f"render 32->256 px, {n} edit(s) (uncached)",
                         timed(render_with(engine, base, n), reps), "ms", None))
        shipped = Path(args.model) if args.model else default_model()
        if shipped is not None:
            ship_engine = Engine(shipped, show_bars=False)
            ship_base = ship_engine.default_state(seed=1, truncation_psi=0.7)
            ship_engine.render(ship_base)
            for n in (0, 1, 4):
                rows.append((f"{shipped.name}: render -> 256 px, {n} edit(s)",
                             timed(render_with(ship_engine, ship_base, n), reps), "ms", None))
        engine.render(base, size=256)
        rows.append(("render, cache hit", timed(lambda: engine.render(base, size=256), reps), "ms", None))
        state = base.with_edit(0, 2.0, 0, 4)
        rows.append(("stage previews strip (4 stages, 128 px)", timed(lambda: engine.stage_strip(state, size=128), reps),
                     "ms", None))
        rows.append(("mixing grid 4 x 4 (+ sources)",
                     timed(lambda: engine.mixing_grid(state, [1, 2, 3, 4], [5, 6, 7, 8], preset="coarse"), reps),
                     "ms", None))

        # 3. Export: 4 keyframes x 30 frames, looping = 120 frames, one edit, 256 px.
        for suffix in ("gif", "mp4"):
            out = Path(tmp) / f"walk.{suffix}"
            t = timed(lambda: engine.export(state, [1, 2, 3, 4], out, frames_per_segment=30, loop=True,
                                            fps=30, size=256, progress=lambda f, t: None), args.repeats)
            rows.append((f"export 120 frames, 256 px, {suffix.upper()}", t, "s", 10.0))

    print_table(rows, args.threads, f"32x32 StyleGAN2, z/w 512, 8-layer mapping, channel_base 4096, channel_max 256, "
                                    f"{count_params(G) / 1e6:.1f} M params")
    return 0


def print_table(rows, threads: int, model: str) -> None:
    load = os.getloadavg()
    print(f"# explorer bench: torch {torch.__version__}, {threads} thread(s), {os.cpu_count()} CPU(s), "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"# model: {model}")
    print(f"| {'measurement':<58} | {'best':>9} | {'median':>9} | {'target':>8} | ok  | cpu share |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 11}|{'-' * 10}|-----|-----------|")
    for what, (best, med, share), unit, target in rows:
        scale = 1e3 if unit == "ms" else 1.0
        tgt = f"<= {target:g} {unit}" if target else ""
        ok = "   " if target is None else ("yes" if best <= target else "NO ")
        print(f"| {what:<58} | {best * scale:>6.2f} {unit:<2} | {med * scale:>6.2f} {unit:<2} | {tgt:>8} | {ok} | "
              f"{share:>9.2f} |")


if __name__ == "__main__":
    sys.exit(main())
