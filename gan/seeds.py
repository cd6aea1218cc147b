"""Seeds -> latents, exactly as NVIDIA's tools do, so a seed means the same image here and there."""
from __future__ import annotations

import re

import numpy as np
import torch

MAX_SEEDS = 100_000


def z_from_seeds(seeds, z_dim: int) -> torch.Tensor:
    """Official rule: z = np.random.RandomState(seed).randn(1, z_dim). Returns float32 [N, z_dim]."""
    z = np.concatenate([np.random.RandomState(int(s) % (2 ** 32)).randn(1, z_dim) for s in seeds], axis=0) \
        if len(seeds) else np.zeros([0, z_dim])
    return torch.from_numpy(z).float()


def parse_seeds(text: str) -> list[int]:
    """'0-7,42' -> [0, 1, ..., 7, 42]. Ranges are inclusive, as in the official --seeds option."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad seed {part!r} in {text!r}: use numbers and ranges like 0-7,42")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad seed range {part!r}: the end is before the start (write {hi}-{lo})")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise ValueError(f"too many seeds in {text!r}: at most {MAX_SEEDS}")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}: use numbers and ranges like 0-7,42")
    return seeds
