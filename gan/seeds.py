"""Seeds -> latents, exactly as NVIDIA's tools do, so a seed means the same image here and there."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MAX_SEEDS = 100_000


def z_from_seeds(seeds, z_dim: int) -> torch.Tensor:
    """Official rule: z = np.random.RandomState(seed).randn(1, z_dim). Returns float32 [N, z_dim]."""
    # Imported here, not at the top: the command lines' parsers use this module's parsing (seeds, layer ranges),
    # and --help or a usage error should not wait 2-3 s for torch.
    import numpy as np
    import torch
    z = np.concatenate([np.random.RandomState(int(s) % (2 ** 32)).randn(1, z_dim) for s in seeds], axis=0) \
        if len(seeds) else np.zeros([0, z_dim])
    return torch.from_numpy(z).float()


def parse_int_ranges(text: str, what: str = "seed", max_count: int = MAX_SEEDS) -> list[int]:
    """'0-7,42' -> [0, 1, ..., 7, 42]: numbers and inclusive ranges, as the official --seeds and
    --styles options. Raises ValueError with a one-line message naming `what`."""
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"bad {what} {part!r} in {text!r}: use numbers and inclusive ranges like 0-7,42")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad {what} range {part!r}: the end is before the start (write {hi}-{lo})")
        if len(out) + hi - lo + 1 > max_count:
            raise ValueError(f"too many {what}s in {text!r}: at most {max_count}")
        out.extend(range(lo, hi + 1))
    if not out:
        raise ValueError(f"no {what}s in {text!r}: use numbers and inclusive ranges like 0-7,42")
    return out


def parse_seeds(text: str) -> list[int]:
    """'0-7,42' -> [0, 1, ..., 7, 42]. Ranges are inclusive, as in the official --seeds option."""
    return parse_int_ranges(text, "seed", MAX_SEEDS)
