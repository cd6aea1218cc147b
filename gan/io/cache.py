"""The user cache folder: where work that can be redone is kept (direction caches of read-only models,
real-image Inception features, imported pickles).

$GAN_CACHE_DIR if set, else $XDG_CACHE_HOME/gan-latent-explorer (default ~/.cache/gan-latent-explorer);
each kind of cache has its subfolder (`directions/`, `metrics/`). $GAN_EXPLORER_CACHE, the explorer's
old name for the same root, is still read, with a deprecation warning, when GAN_CACHE_DIR is unset.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

ENV = "GAN_CACHE_DIR"
DEPRECATED_ENV = "GAN_EXPLORER_CACHE"


def user_cache_dir(kind: str | None = None) -> Path:
    """The cache root, or its `kind` subfolder (not created here)."""
    root = os.environ.get(ENV)
    if not root and os.environ.get(DEPRECATED_ENV):
        warnings.warn(f"${DEPRECATED_ENV} is deprecated: set ${ENV} instead", FutureWarning, stacklevel=2)
        root = os.environ[DEPRECATED_ENV]
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "gan-latent-explorer")
    path = Path(root).expanduser()
    return path / kind if kind else path
