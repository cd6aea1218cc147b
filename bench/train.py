"""Training throughput (img/s) of StyleGAN2 and PGGAN steps, printed as a table.

    python bench/train.py                      # 32x32 and 64x64, both architectures
    python bench/train.py --res 32 --steps 6   # quicker
    git worktree add /tmp/base caba167^ && python bench/train.py --res 32 --steps 16 --against /tmp/base

Each row times full training steps (every phase, lazy regularisation included) of the trainer
classes the training loop uses, on random data, after warm-up steps. CPU runs at 64x64 take
minutes per row (the default 64 px model has 128 channels): use --res 32 for a quick look.
On CPU the baseline is 1 thread and the variant all threads (torch default, at most --threads), both
in the trainer's default memory format (channels-last);
on a GPU the baseline is fp32 and the variants channels-last, bf16 autocast + channels-last,
and (with --compile) torch.compile on top. Ratios are against the baseline measured in the
same run. Model sizes are the training command's defaults for the resolution (see
`python -m gan train --dry-run`); PGGAN is timed at its final, stable stage.

--against DIR compares this checkout with another one (an older commit, say) instead: two worker
processes, one per checkout, each with that checkout's own code and defaults, take turns one training
step at a time, so that both see the same machine (a shared VM's speed drifts by 2x within minutes,
which separate runs cannot tell from a change in the code). The ratio is this checkout's img/s over
the other's, from the summed step times; the median and quartiles of the step-by-step ratios show the
spread. Both checkouts must provide the trainer API used here (the project's own since commit caba167).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve()
# A worker for --against imports the other checkout's code: it puts that first on the path, before any import
sys.path.insert(0, os.environ.get("BENCH_TRAIN_ROOT", str(HERE.parents[1])))

try:
    from gan.allocator import keep_freed_memory  # noqa: E402
except ImportError:  # --against a checkout from before gan/allocator.py, whose programs did not do it
    def keep_freed_memory() -> None:
        pass
from gan.training.augment import AdaptiveAugment  # noqa: E402
from gan.training.distributed import Dist, autocast_context  # noqa: E402
from gan.models.networks import build_discriminator, build_generator, count_params  # noqa: E402
from gan.training.config import TrainConfig  # noqa: E402
from gan.training.pggan import PGGANTrainer  # noqa: E402
from gan.training.stylegan2 import StyleGAN2Trainer  # noqa: E402


def build_trainer(arch: str, res: int, batch: int, device: str, precision: str = "fp32",
                  channels_last: bool | None = None, compile_: bool = False):
    """(trainer, reals [batch, 3, res, res] in its memory format, sync, G parameter count) on random data,
    PGGAN at its final stage. channels_last None: the trainer's default."""
    cfg = TrainConfig(arch=arch, data="bench", resolution=res, channels=3, batch=batch, kimg=1, out="-",
                      precision=precision, channels_last=channels_last, compile=compile_, augment="none",
                      pggan_batch=f"{res}:{batch}").resolve()
    channels_last = getattr(cfg, "uses_channels_last", cfg.channels_last)  # (older checkouts: the flag itself)
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
    trainer.begin_step(10 ** 9)  # PGGAN: long past the last fade-in
    real = trainer.real_images(real_u8)
    if channels_last:
        real = real.contiguous(memory_format=torch.channels_last)

    def sync():
        if dist.device.type == "cuda":
            torch.cuda.synchronize()

    return trainer, real, sync, count_params(G)


def time_steps(arch: str, res: int, batch: int, steps: int, warmup: int, device: str, precision: str = "fp32",
               channels_last: bool | None = None, compile_: bool = False) -> tuple[float, int]:
    """img/s over `steps` training steps (after `warmup`), and the G parameter count."""
    trainer, real, sync, params = build_trainer(arch, res, batch, device, precision, channels_last, compile_)
    for i in range(warmup):
        trainer.step(real, 1 + i)  # no regularisation passes while warming up
    sync()
    t0 = time.perf_counter()
    for i in range(steps):
        trainer.step(real, i)  # from step 0: R1 and path length come at their lazy intervals
    sync()
    return batch * steps / (time.perf_counter() - t0), params


def worker(arch: str, res: int, batch: int) -> int:
    """--against's worker: builds the CPU trainer, then runs step i for each line i read; prints its seconds."""
    trainer, real, _, params = build_trainer(arch, res, batch, "cpu")
    print(params, flush=True)
    for line in sys.stdin:
        t0 = time.perf_counter()
        trainer.step(real, int(line))
        print(time.perf_counter() - t0, flush=True)
    return 0


def steps_in_turns(roots: list[str], arch: str, res: int, batch: int, steps: int, warmup: int) -> tuple[list, int]:
    """Per root, the seconds of steps 0..steps-1 (after `warmup` steps each), the roots' workers taking turns one
    step at a time (who goes first alternates); and the G parameter count."""
    procs = [subprocess.Popen([sys.executable, str(HERE), "--worker", arch, str(res), str(batch)],
                              env=dict(os.environ, BENCH_TRAIN_ROOT=root), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for root in roots]

    def answer(k: int) -> str:
        line = procs[k].stdout.readline()
        if not line:
            raise SystemExit(f"bench/train.py: the worker for {roots[k]} stopped (its error is above)")
        return line

    def step(k: int, i: int) -> float:
        procs[k].stdin.write(f"{i}\n")
        procs[k].stdin.flush()
        return float(answer(k))

    try:
        params = [int(answer(k)) for k in range(len(procs))][0]
        for i in range(warmup):
            for k in range(len(procs)):
                step(k, 1 + i)
        seconds = [[] for _ in procs]
        for i in range(steps):
            order = range(len(procs)) if i % 2 == 0 else reversed(range(len(procs)))
            for k in order:
                seconds[k].append(step(k, i))
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
    return seconds, params


def compare(args, other: str) -> int:
    """--against: this checkout against `other`, step by step in turns."""
    print(f"# training throughput on CPU, torch {torch.__version__}, {torch.get_num_threads()} threads: this "
          f"checkout against {other}, one step each in turn; batch {args.batch}, {args.steps} timed steps after "
          f"{args.warmup}")
    print(f"{'arch':<10} {'res':>4} {'G params':>9}  {'other img/s':>11} {'this img/s':>10} {'ratio':>6}  "
          f"{'per-step ratios: median (quartiles)':<36}")
    for arch in args.arch:
        for res in args.res:
            (this, base), params = steps_in_turns([str(HERE.parents[1]), other], arch, res, args.batch,
                                                  args.steps, args.warmup)
            ratios = sorted(b / t for t, b in zip(this, base))
            q = lambda f: ratios[min(len(ratios) - 1, int(f * len(ratios)))]  # noqa: E731
            print(f"{arch:<10} {res:>4} {params / 1e6:>8.2f}M  {args.batch * args.steps / sum(base):>11.1f} "
                  f"{args.batch * args.steps / sum(this):>10.1f} {sum(base) / sum(this):>5.2f}x  "
                  f"{q(0.5):.2f}x ({q(0.25):.2f}-{q(0.75):.2f})", flush=True)
    return 0


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
    p.add_argument("--against", metavar="DIR", help="a checkout of other code to compare with, step by step in turns "
                   "(CPU; see above)")
    p.add_argument("--worker", nargs=3, metavar=("ARCH", "RES", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
    if args.against:
        if not (Path(args.against) / "gan" / "training").is_dir():
            p.error(f"--against {args.against}: not a checkout of this project (no gan/training in it)")
        return compare(args, str(Path(args.against).resolve()))
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
