"""Generator inference speed on this CPU: the synthesis fast path against the reference path, with the
achieved GFLOP/s next to this machine's fp32 matmul peak and 3x3 conv peak measured in the same run.

    python bench/generator.py                 # 32, 128 and 256 px StyleGAN2, 128 px PGGAN; batch 1 and 16
    python bench/generator.py --with-1024     # and StyleGAN2 config-F at 1024 px, batch 1 (a minute or two)
    python bench/generator.py --reps 5        # more timed calls per cell (median reported)

Configs: StyleGAN2 with 8 mapping layers, channel_max 512, channel_base 16384 (32768 for config-F at
1024 px), conv_clamp 256; PGGAN with the paper's channels (channel_base 8192). Random weights (speed does
not depend on the values), noise_mode const, under torch.inference_mode(), mapping excluded. "reference"
is `synthesis(ws, reference=True)`, the plain definition that training differentiates (on a CPU it was
also the inference path before the fast path existed); "fast" is `synthesis(ws)`, the inference fast
path. GFLOP per image is counted by torch.utils.flop_counter.FlopCounterMode on the reference path
(convolutions, transposed convolutions, FIR filters and matmuls); GFLOP/s = that count / fast time, so
for PGGAN, whose fast path does fewer multiply-adds (polyphase upsampling conv), it is an effective rate
that can exceed what the hardware does. The matmul peak is the median of timed 2048 x 2048 fp32 torch.mm
calls with the same thread count. The conv peak is the median rate of one channels-last 3x3 conv, 512 to 512
channels at 32x32, batch 1 (synthesis's widest layer): torch.mm is MKL's sgemm, which on AMD CPUs runs well
below what oneDNN's convolutions reach (an EPYC Zen 3 VM: mm ~85-110 GFLOP/s, that conv ~115-160), so there
the share of the mm peak overstates how close to the hardware the generator runs, and fast/conv says it.
Each cell is the median of --reps timed calls after one warm-up, the reference and fast calls taken in
turn; on a shared machine the numbers are noisy, so run it a few times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan.allocator import keep_freed_memory  # noqa: E402
from gan.models.config import ModelConfig  # noqa: E402
from gan.models.networks import build_generator  # noqa: E402
from gan.seeds import z_from_seeds  # noqa: E402

# (name, arch, resolution, channel_base, batches)
CONFIGS = [
    ("stylegan2-32", "stylegan2", 32, 16384, (1, 16)),
    ("stylegan2-128", "stylegan2", 128, 16384, (1, 16)),
    ("stylegan2-256", "stylegan2", 256, 16384, (1, 16)),
    ("pggan-128", "pggan", 128, 8192, (1, 16)),
]
CONFIG_F = ("stylegan2-1024-F", "stylegan2", 1024, 32768, (1,))


def model_config(arch: str, res: int, channel_base: int) -> ModelConfig:
    return ModelConfig(arch=arch, img_resolution=res, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                       channel_base=channel_base, channel_max=512, conv_clamp=256.0)


def median_seconds(fns: list, reps: int) -> list[float]:
    """The median time of each function over reps timed calls after one warm-up call, the functions
    called in turn so that a change in the machine's load falls on all of them alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def matmul_peak_gflops(reps: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / median_seconds([lambda: torch.mm(a, b)], max(reps, 5))[0] / 1e9


@torch.inference_mode()
def conv_peak_gflops(reps: int, channels: int = 512, size: int = 32) -> float:
    x = torch.randn(1, channels, size, size).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3).contiguous(memory_format=torch.channels_last)
    flop = 2 * channels * channels * 9 * size * size
    return flop / median_seconds([lambda: torch.nn.functional.conv2d(x, w, padding=1)], max(reps, 5))[0] / 1e9


@torch.inference_mode()
def reference_gflop_per_image(G) -> float:
    """FLOPs of one image through the reference path (this call also warms it up)."""
    ws = G.mapping(z_from_seeds([0], G.z_dim))
    with FlopCounterMode(display=False) as counter:
        G.synthesis(ws, noise_mode="const", reference=True)
    return counter.get_total_flops() / 1e9


@torch.inference_mode()
def ms_per_image(G, batch: int, reps: int) -> tuple[float, float]:
    """(reference, fast) ms per image."""
    ws = G.mapping(z_from_seeds(list(range(batch)), G.z_dim))
    seconds = median_seconds([lambda: G.synthesis(ws, noise_mode="const", reference=True),
                              lambda: G.synthesis(ws, noise_mode="const")], reps)
    return tuple(1000 * s / batch for s in seconds)


def main(argv=None) -> int:
    keep_freed_memory()    # as the programs do (gan/allocator.py; bench/allocation.py compares)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="timed calls per cell (median reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for this run (0 = torch default)")
    p.add_argument("--with-1024", action="store_true", help="also StyleGAN2 config-F at 1024 px, batch 1")
    p.add_argument("--only", default="", help="comma-separated config names to run (default: all)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = CONFIGS + ([CONFIG_F] if args.with_1024 else [])
    if args.only:
        configs = [c for c in configs if c[0] in args.only.split(",")]
    peak, conv_peak = matmul_peak_gflops(args.reps), conv_peak_gflops(args.reps)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; median of {args.reps} calls; "
          f"fp32 mm peak (2048^2) {peak:.0f} GFLOP/s; 3x3 conv peak (512 ch, 32x32) {conv_peak:.0f} GFLOP/s")
    header = (f"{'config':<17} {'batch':>5} {'GFLOP/img':>9} {'ref ms/img':>10} {'fast ms/img':>11} {'speedup':>7} "
              f"{'ref GFLOP/s':>11} {'fast GFLOP/s':>12} {'fast/peak':>9} {'fast/conv':>9}")
    print(header)
    print("-" * len(header))
    for name, arch, res, channel_base, batches in configs:
        torch.manual_seed(0)
        G = build_generator(model_config(arch, res, channel_base)).eval()
        gflop = reference_gflop_per_image(G)
        for batch in batches:
            ref, fast = ms_per_image(G, batch, args.reps)
            print(f"{name:<17} {batch:>5} {gflop:>9.2f} {ref:>10.1f} {fast:>11.1f} {ref / fast:>6.2f}x "
                  f"{gflop / ref * 1000:>11.0f} {gflop / fast * 1000:>12.0f} {gflop / fast * 1000 / peak:>8.0%} "
                  f"{gflop / fast * 1000 / conv_peak:>8.0%}",
                  flush=True)
    peak_after, conv_after = matmul_peak_gflops(args.reps), conv_peak_gflops(args.reps)
    print(f"measured again at the end: mm peak {peak_after:.0f}, conv peak {conv_after:.0f} GFLOP/s (a large change "
          f"means the machine was busy)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
