"""Image conversion at the edges: float [-1, 1] NCHW tensors <-> uint8 arrays, PIL images, grids."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import atomic_write


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [-1, 1] -> np.uint8 [N, H, W, C] (C = 1 stays 1)."""
    if img.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got {list(img.shape)}")
    x = (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def uint8_to_pil(arr: np.ndarray) -> Image.Image:
    """[H, W, C] uint8 -> PIL ('L' for one channel, 'RGB' for three)."""
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[-1] == 1 else Image.fromarray(arr, "RGB")


def to_pil(img: torch.Tensor) -> list[Image.Image]:
    return [uint8_to_pil(a) for a in to_uint8(img)]


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for n images: near-square unless cols is given."""
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def make_grid(img: torch.Tensor, cols: int | None = None, border: int = 1, fill: float = 1.0) -> torch.Tensor:
    """[N, C, H, W] -> one [C, H', W'] image, tiles separated by a `border`-pixel line of `fill`."""
    n, c, h, w = img.shape
    rows, cols = grid_shape(n, cols)
    out = torch.full((c, rows * (h + border) + border, cols * (w + border) + border), fill, dtype=img.dtype)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = border + r * (h + border), border + k * (w + border)
        out[:, y:y + h, x:x + w] = img[i]
    return out


def save_image(img: torch.Tensor, path: str | Path) -> Path:
    """Save one [C, H, W] or [1, C, H, W] image as PNG, atomically."""
    if img.ndim == 3:
        img = img.unsqueeze(0)
    pil = to_pil(img)[0]
    return atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def save_image_grid(img: torch.Tensor, path: str | Path, cols: int | None = None) -> Path:
    return save_image(make_grid(img, cols), path)
