"""The explorer's PIL outputs: scaling for display, labelled strips, PNG files."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from gan.io.images import image_grid
from gan.io.images import save_png as gan_save_png

from .checks import check_out_path
from .session import ExplorerError


def resize(image: Image.Image, size: int | None, resample: str | None = None) -> Image.Image:
    """Scale a square-ish image so its longer side is `size` px. resample None: nearest for an
    exact integer upscale (crisp pixels), else Lanczos; or 'nearest' / 'bilinear'."""
    if size is None or max(image.size) == size:
        return image
    from .export import RESAMPLE, pick_resample
    w, h = image.size
    scale = size / max(w, h)
    dst = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = resample or pick_resample((h, w), (dst[1], dst[0]))
    if method not in RESAMPLE:
        raise ExplorerError(f"unknown resample {method!r}: use one of {', '.join(RESAMPLE)}")
    return image.resize(dst, RESAMPLE[method])


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a PIL image as PNG atomically (the folder must exist; the suffix must be .png)."""
    return gan_save_png(image, check_out_path(path, (".png",)))


def labelled_strip(tiles: list[tuple[Image.Image, str]]) -> Image.Image:
    """Tiles side by side (all the same size), each with its label centred underneath, on white."""
    if not tiles:
        raise ExplorerError("nothing to draw: no images")
    return image_grid([t for t, _ in tiles], cols=len(tiles), gap=4, labels=[label for _, label in tiles])
