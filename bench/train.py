"""Training throughput (img/s) of StyleGAN2 and PGGAN steps, printed as a table.

    python bench/train.py                      # 32x32 and 64x64, both architectures
    python bench/train.py --res 32 --steps 6   # quicker

Each row times full training steps (every phase, lazy regularisation included) of the trainer
classes the training loop uses, on random data, after warm-up steps. CPU runs at 64x64 take
minutes per row (the default 64 px model has 128 channels): use --res 32 for a quick look.
On CPU the baseline is 1 thread and the variant all threads (torch default, at most --threads), both
in the trainer's default memory format (channels-last);
on a GPU the baseline is fp32 and the variants channels-last, bf16 autocast + channels-last,
and (with --compile) torch.compile on top. Ratios are against the baseline measured in the
same run. Model sizes are the training command's defaults for the resolution (see
`python -m gan train --dry-run`); PGGAN is timed at its final, stable stage.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan.allocator import keep_freed_memory  # noqa: E402
from gan.training.augment import AdaptiveAugment  # noqa: E402
from gan.training.distributed import Dist, autocast_context  # noqa: E402
from gan.models.networks import build_discriminator, build_generator, count_params  # noqa: E402
from gan.training.config import TrainConfig  # noqa: E402
from gan.training.pggan import PGGANTrainer  # noqa: E402
from gan.training.stylegan2 import StyleGAN2Trainer  # noqa: E402


def time_steps(arch: str, res: int, batch: int, steps: int, warmup: int, device: str, precision: str = "fp32",
               channels_last: bool | None = None, compile_: bool = False) -> tuple[float, int]:
    """img/s over `steps` training steps (after `warmup`), and the G parameter count."""
    cfg = TrainConfig(arch=arch, data="bench", resolution=res, channels=3, batch=batch, kimg=1, out="-",
                      precision=precision, channels_last=channels_last, compile=compile_, augment="none",
                      pggan_batch=f"{res}:{batch}").resolve()
    channels_last = cfg.uses_channels_last  # None: the trainer's default
    dist = Dist(device)
    torch.manual_seed(0)
    model_cfg = cfg.model_config()
    G = build_generator(model_cfg).to(dist.device).train().requires_grad_(False)
    D = build_discriminator(model_cfg).to(dist.device).train().requires_grad_(False)
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    trainer_cls = PGGANTrainer if arch == "pggan" else StyleGAN2Trainer
    trainer = trainer_cls(cfg, G, D, AdaptiveAugment("none"), dist, lambda: autocast_context(dist.device, precision))
    real_u8 = torch.randint(0, 256, [batch, 3, res, res], dtype=torch.uint8)
    final_nimg = 10 ** 9  # PGGAN: long past the last fade-in
    trainer.begin_step(final_nimg)
    real = trainer.real_images(real_u8)
    if channels_last:
        real = real.contiguous(memory_format=torch.channels_last)

    def sync():
        if dist.device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(warmup):
        trainer.step(real, 1 + i)  # no regularisation passes while warming up
    sync()
    t0 = time.perf_counter()
    for i in range(steps):
        trainer.step(real, i)  # from step 0: R1 and path length come at their lazy intervals
    sync()
    return batch * steps / (time.perf_counter() - t0), count_params(G)


def main(argv=None) -> int:
    keep_freed_memory()    # as the programs do (gan/allocator.py; bench/allocation.py compares)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--res", type=int, nargs="+", default=[32, 64])
    p.add_argument("--arch", nargs="+", default=["stylegan2", "pggan"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="timed steps, from step 0 (one lazy R1 and two path-length "
                   "passes in 8 steps: regularisation weighs a little more than in a long run)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU variant's thread count")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--compile", action="store_true", help="GPU: also time torch.compile (slow to warm up)")
    args = p.parse_args(argv)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = "cuda" if cuda else "cpu"

    if cuda:
        variants = [("fp32", dict(channels_last=False)), ("fp32 + channels-last", dict(channels_last=True)),
                    ("bf16 + channels-last", dict(precision="bf16", channels_last=True))]
        if args.compile:
            variants.append(("bf16 + channels-last + compile", dict(precision="bf16", channels_last=True,
                                                                    compile_=True)))
        where = torch.cuda.get_device_name()
    else:
        variants = [("1 thread", dict(threads=1)), (f"{args.threads} threads", dict(threads=args.threads))]
        where = f"CPU, torch {torch.__version__}"
    print(f"# training throughput on {where}; batch {args.batch}, {args.steps} timed steps after {args.warmup}")
    print(f"{'arch':<10} {'res':>4} {'G params':>9}  {'variant':<32} {'img/s':>8} {'ratio':>6}")
    for arch in args.arch:
        for res in args.res:
            base = None
            for name, kw in variants:
                kw = dict(kw)
                threads = kw.pop("threads", None)
                if threads:
                    torch.set_num_threads(threads)
                rate, params = time_steps(arch, res, args.batch, args.steps, args.warmup, device, **kw)
                base = base or rate
                print(f"{arch:<10} {res:>4} {params / 1e6:>8.2f}M  {name:<32} {rate:>8.1f} {rate / base:>5.2f}x",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
