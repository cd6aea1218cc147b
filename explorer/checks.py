"""The input checks every entry point of the explorer shares (the engine, the CLI, the UI): each
refuses a bad value with an ExplorerError that names it and the fix."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .session import MAX_SEED, ExplorerError

MAX_DISPLAY_SIZE = 4096          # px: larger output sizes are typos


def check_size(size: int | None, what: str = "size") -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_DISPLAY_SIZE:
        raise ExplorerError(f"{what} must be an integer from 1 to {MAX_DISPLAY_SIZE} px, got {size!r}")
    return size


def check_seeds(seeds, what: str = "seeds", limit: int | None = None) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ExplorerError(f"no {what}: give at least one seed")
    if limit is not None and len(seeds) > limit:
        raise ExplorerError(f"too many {what} ({len(seeds)}): at most {limit}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= MAX_SEED:
            raise ExplorerError(f"bad seed {s!r} in {what}: seeds are integers from 0 to {MAX_SEED}")
    return [int(s) for s in seeds]


def check_out_path(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """An output file path whose folder exists and whose suffix is one of `suffixes`."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ExplorerError(f"output {path} must end in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ExplorerError(f"output folder {path.parent} does not exist: create it first")
    return path
