"""Projection and SeFa benchmark on this CPU: how well and how fast images are projected, how fast SeFa is.

    python bench/project.py [--model DIR] [--images 20] [--steps 500] [--samples 10000] [--threads 1]
                            [--parts generated,fashion,sefa] [--vgg16 FILE]

generated: the model's own images (seeds 700000.., untruncated, noise const), projected in W and W+,
  with and without the model's discriminator features (only when the model folder has D.safetensors:
  shipped models keep G only, so give a training run's final/ folder for those rows). PSNR is of the
  projected image (latent + projected noise maps); "own noise" renders the projected latent with the
  model's own noise maps instead, i.e. how much of the match the latent alone carries.
  --vgg16 FILE (VGG16 weights for explorer.lpips, e.g. from explorer.lpips.convert_weights) adds a "W+ with
  LPIPS" row to both image sections (lpips_weight 1, the default); none is measured here: no real VGG16
  weights can be downloaded, so CI never runs it (here it ran only with random weights, as a smoke test).
fashion: Fashion-MNIST test-split images (the first --images of t10k, padded 28 -> 32 as the built-in
  loader does), W+ projection against the best of --samples random samples (z ~ N(0, I) from a seeded
  torch generator, noise const) by L2. The shipped fashion models were trained on all 70k images,
  test split included, so these targets are not held out from their training data.
sefa: SeFa on a 1024 px config-F-sized StyleGAN2 (random weights): the factorisation alone and with
  sigma measured from 2048 mapping samples (the default).
Targets: <= 30 s per image for 500 steps at 32 px; W+ mean PSNR >= 30 dB; W+ beats the best of 10k
random samples by >= 3 dB; SeFa (factorisation) well under 1 s at 1024 px. The machine may be shared:
the load average is printed. One torch thread by default: batch-1 steps on a 32 px model gain nothing
from two, and a second spinning OpenMP thread on a loaded 2-core machine made each step 25x slower.

Measured on the shared 2-core CPU (load average 3.5-5), the shipped fashion-stylegan2, 20 images, 500 steps:
W 30.14 dB (own noise 31.68), W+ 34.38 dB (34.82), 18.8 / 23.9 s per image; Fashion-MNIST W+ 27.57 dB
against 17.12 dB for the best of 10,000 random samples (+10.45 dB); SeFa at 1024 px 0.14-0.28 s, 0.30 s
with sigma. D features, on a 16-kimg run of the same recipe (the only G with its D at hand): -0.2 dB on its
own images, +0.04 dB on Fashion-MNIST, about 1.5x the time per step.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explorer.lpips import load_lpips  # noqa: E402
from explorer.project import load_discriminator, project, psnr, synthesize  # noqa: E402
from explorer.sefa import compute_sefa  # noqa: E402
from gan.allocator import keep_freed_memory  # noqa: E402
from gan.io.checkpoint import CONFIG_NAME, load_model  # noqa: E402
from gan.models.config import ModelConfig  # noqa: E402
from gan.models.networks import build_generator  # noqa: E402
from gan.seeds import z_from_seeds  # noqa: E402

FIRST_SEED = 700_000          # seeds no other test, card or bench uses
CONFIG_F = ModelConfig(arch="stylegan2", img_resolution=1024, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                       channel_base=32768, channel_max=512)


def default_model() -> Path:
    models = Path(__file__).resolve().parents[1] / "assets" / "models"
    name = (models / "DEFAULT").read_text().strip()
    if not (models / name / CONFIG_NAME).is_file():
        sys.exit(f"no default model: {models / name} has no {CONFIG_NAME}; pass --model")
    return models / name


def mean(xs) -> float:
    return float(statistics.fmean(xs))


def run_projections(G, targets, steps: int, **kwargs) -> dict:
    """Project each target [C, H, W]; mean PSNR (projected noise / the model's own noise) and s/image."""
    ps, own, secs = [], [], []
    for i, target in enumerate(targets):
        r = project(G, target, steps=steps, seed=0, **kwargs)
        ps.append(r.psnr)
        own.append(psnr(synthesize(G, r.ws), target))
        secs.append(r.seconds)
        extra = (' +D' if kwargs.get('D') is not None else '') + (' +LPIPS' if kwargs.get('vgg16') is not None else '')
        print(f"  {kwargs.get('space')}{extra} image {i + 1}/{len(targets)}: "
              f"{r.psnr:.2f} dB, {r.seconds:.1f} s", file=sys.stderr, flush=True)
    return {"psnr": mean(ps), "min": min(ps), "own": mean(own), "s": mean(secs)}


def row(what: str, r: dict) -> str:
    return f"{what:<34} {r['psnr']:>8.2f} {r['min']:>8.2f} {r['own']:>10.2f} {r['s']:>8.1f}"


def bench_generated(G, D, n: int, steps: int, lpips=None) -> list[str]:
    with torch.no_grad():
        targets = list(G(z_from_seeds(range(FIRST_SEED, FIRST_SEED + n), G.z_dim), noise_mode="const"))
    lines = [f"own images: seeds {FIRST_SEED}-{FIRST_SEED + n - 1}, {steps} steps",
             f"{'projection':<34} {'PSNR dB':>8} {'min':>8} {'own noise':>10} {'s/image':>8}"]
    results = {}
    for space in (("w", "w+") if G.num_ws > 1 else ("w",)):
        for d in ((None, D) if D is not None else (None,)):
            key = f"{space.upper()}{' + D features' if d is not None else ''}"
            results[key] = run_projections(G, targets, steps, space=space, D=d)
            lines.append(row(key, results[key]))
    if lpips is not None:
        space = "w+" if G.num_ws > 1 else "w"
        lines.append(row(f"{space.upper()} with LPIPS", run_projections(G, targets, steps, space=space, vgg16=lpips)))
    if D is None:
        lines.append("(D features: n/a, the model folder has no D.safetensors)")
    best = results.get("W+", results["W"])
    lines.append(f"target W+ mean PSNR >= 30 dB: {'PASS' if best['psnr'] >= 30 else 'FAIL'} ({best['psnr']:.2f}); "
                 f"<= 30 s/image at {steps} steps: {'PASS' if best['s'] <= 30 else 'FAIL'} ({best['s']:.1f} s)")
    return lines


@torch.no_grad()
def best_of_random(G, targets: torch.Tensor, samples: int, batch: int = 500) -> np.ndarray:
    """Per target, the PSNR of the closest of `samples` random images by L2."""
    gen = torch.Generator().manual_seed(0)
    best = torch.full((len(targets),), float("inf"))
    flat = targets.flatten(1).clamp(-1, 1)
    for i in range(0, samples, batch):
        z = torch.randn(min(batch, samples - i), G.z_dim, generator=gen)
        imgs = G(z, noise_mode="const").clamp(-1, 1).flatten(1)
        best = torch.minimum(best, torch.cdist(flat, imgs).square().min(dim=1).values / flat.shape[1])
    return (10 * torch.log10(4.0 / best)).numpy()


def bench_fashion(G, D, n: int, steps: int, samples: int, lpips=None) -> list[str]:
    from gan.data.builtin import FASHION_MNIST_DIR, _read_idx_images
    from gan.data.sources import _resize_array
    test = _read_idx_images(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz", n)[:, None]
    test = _resize_array(np.pad(test, ((0, 0), (0, 0), (2, 2), (2, 2))), G.img_resolution)
    targets = torch.from_numpy(np.repeat(test, G.img_channels, axis=1)).float() / 127.5 - 1
    t0 = time.perf_counter()
    random_psnr = best_of_random(G, targets, samples)
    t_random = time.perf_counter() - t0
    space = "w+" if G.num_ws > 1 else "w"
    proj = run_projections(G, list(targets), steps, space=space)
    gain = proj["psnr"] - mean(random_psnr)
    with_d = [row(f"{space.upper()} projection + D features", run_projections(G, list(targets), steps, space=space,
                                                                             D=D))] if D is not None else []
    if lpips is not None:
        with_d.append(row(f"{space.upper()} with LPIPS", run_projections(G, list(targets), steps, space=space,
                                                                         vgg16=lpips)))
    return [f"Fashion-MNIST t10k images 0-{n - 1} (in the shipped models' training data), {steps} steps",
            f"{'method':<34} {'PSNR dB':>8} {'min':>8} {'own noise':>10} {'s/image':>8}",
            row(f"{space.upper()} projection", proj), *with_d,
            f"{f'best of {samples} random samples':<34} {mean(random_psnr):>8.2f} {random_psnr.min():>8.2f} "
            f"{'':>10} {t_random / n:>8.1f}",
            f"target projection beats best-of-random by >= 3 dB: {'PASS' if gain >= 3 else 'FAIL'} ({gain:+.2f} dB)"]


def bench_sefa(repeats: int = 3) -> list[str]:
    t0 = time.perf_counter()
    with torch.no_grad():
        G = build_generator(CONFIG_F).eval().requires_grad_(False)
    built = time.perf_counter() - t0
    lines = [f"SeFa on a 1024 px config-F-sized StyleGAN2 (random weights, built in {built:.1f} s; "
             f"w_dim 512, num_ws {G.num_ws})", f"{'what':<34} {'best s':>8} {'median s':>8}"]
    for what, kw in (("factorisation, all layers", dict(samples=0)), ("factorisation, ws 0-3", dict(end=4, samples=0)),
                     ("factorisation + sigma (2048 w)", dict())):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            compute_sefa(G, **kw)
            times.append(time.perf_counter() - t)
        lines.append(f"{what:<34} {min(times):>8.3f} {statistics.median(times):>8.3f}")
    return lines


def main(argv=None) -> None:
    keep_freed_memory()    # as the programs do (gan/allocator.py; bench/allocation.py compares)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model folder (default: assets/models/DEFAULT)")
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--samples", type=int, default=10_000, help="random samples for the best-of baseline")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--parts", default="generated,fashion,sefa")
    p.add_argument("--vgg16", default=None, metavar="FILE",
                   help="VGG16 weights (safetensors, explorer.lpips): adds a 'W+ with LPIPS' row")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = set(args.parts.split(","))
    folder = Path(args.model) if args.model else default_model()
    G, _ = load_model(folder)
    D = load_discriminator(folder)
    lpips = load_lpips(args.vgg16) if args.vgg16 else None
    if lpips is not None:
        print(f"LPIPS: {lpips.description}")
    print(f"model {folder} ({G.arch}, {G.img_channels}x{G.img_resolution}px, num_ws {G.num_ws}); torch threads "
          f"{torch.get_num_threads()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    sections = []
    if "generated" in parts:
        sections.append(bench_generated(G, D, args.images, args.steps, lpips))
    if "fashion" in parts:
        sections.append(bench_fashion(G, D, args.images, args.steps, args.samples, lpips))
    if "sefa" in parts:
        sections.append(bench_sefa())
    for lines in sections:
        print()
        print("\n".join(lines))
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{time.perf_counter() - t0:.0f} s in all; load average now {load}")


if __name__ == "__main__":
    main()
