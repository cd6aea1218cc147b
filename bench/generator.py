"""Generator inference speed: ms per image at batch 1 and batch 16, printed as a table.

    python bench/generator.py                 # the reference configs below
    python bench/generator.py --reps 3        # quicker

Configs: StyleGAN2 at 32, 128 and 256 px (channel_base 16384, channel_max 512, 8 mapping layers)
and PGGAN at 128 px (paper channels), random weights (speed does not depend on the values),
noise_mode const, under torch.inference_mode(). For StyleGAN2 the baseline is the unfused
modulated convolution (scale activations, shared weight, scale again: the training form) and the
variant the fused grouped convolution (the inference default on CUDA; on CPU the unfused form is
the default because it measured faster here); the ratio is baseline / variant, measured
in the same run. The median of --reps timed calls after one warm-up call is reported.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan.models.config import ModelConfig  # noqa: E402
from gan.models.networks import build_generator, count_params  # noqa: E402
from gan.seeds import z_from_seeds  # noqa: E402

CONFIGS = [
    ("stylegan2", 32), ("stylegan2", 128), ("stylegan2", 256), ("pggan", 128),
]


def model_config(arch: str, res: int) -> ModelConfig:
    if arch == "stylegan2":
        return ModelConfig(arch=arch, img_resolution=res, img_channels=3, z_dim=512, w_dim=512, mapping_layers=8,
                           channel_base=16384, channel_max=512)
    return ModelConfig(arch=arch, img_resolution=res, img_channels=3, z_dim=512, w_dim=512, channel_base=8192,
                       channel_max=512)


@torch.inference_mode()
def ms_per_image(G, batch: int, reps: int, fused: bool | None) -> float:
    z = z_from_seeds(list(range(batch)), G.z_dim)
    ws = G.mapping(z)

    def once():
        if fused is None:
            G.synthesis(ws, noise_mode="const")
        else:
            G.synthesis(ws, noise_mode="const", fused=fused)
    once()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / batch


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5, help="timed calls per cell (median reported)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; median of {args.reps} calls")
    header = f"{'config':<16} {'G params':>10} {'batch':>5} {'unfused ms/img':>15} {'fused ms/img':>13} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for arch, res in CONFIGS:
        torch.manual_seed(0)
        G = build_generator(model_config(arch, res)).eval()
        params = count_params(G)
        for batch in (1, 16):
            if arch == "stylegan2":
                base = ms_per_image(G, batch, args.reps, fused=False)
                fast = ms_per_image(G, batch, args.reps, fused=True)
                print(f"{arch + '-' + str(res):<16} {params / 1e6:>9.2f}M {batch:>5} {base:>15.1f} {fast:>13.1f} "
                      f"{base / fast:>5.2f}x")
            else:
                ms = ms_per_image(G, batch, args.reps, fused=None)
                print(f"{arch + '-' + str(res):<16} {params / 1e6:>9.2f}M {batch:>5} {'-':>15} {ms:>13.1f} {'-':>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
