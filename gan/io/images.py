"""Image conversion at the edges: float [-1, 1] NCHW tensors -> uint8 arrays, PIL images, grids.

`to_uint8` is the one quantisation of the project (metrics, exports, the UI and sample grids all
use it), rounding as NVIDIA's tools do; `image_grid` is the one grid builder (training samples,
mixing grids, model-card grids, labelled stage and direction strips).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .fileio import atomic_write


def quantise(img: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] (any shape) -> torch.uint8 0..255: x * 127.5 + 128, clamped, truncated,
    which is how the official StyleGAN tools turn generator output into pixels."""
    return (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [-1, 1] -> np.uint8 [N, H, W, C] (C = 1 stays 1)."""
    if not isinstance(img, torch.Tensor) or img.ndim != 4:
        shape = list(img.shape) if hasattr(img, "shape") else type(img).__name__
        raise ValueError(f"expected images [N, C, H, W], got {shape}")
    return quantise(img).permute(0, 2, 3, 1).cpu().numpy()


def uint8_to_pil(arr: np.ndarray) -> Image.Image:
    """[H, W, C] uint8 -> PIL ('L' for one channel, 'RGB' for three)."""
    return Image.fromarray(arr[:, :, 0], "L") if arr.shape[-1] == 1 else Image.fromarray(arr, "RGB")


def to_pil(img: torch.Tensor) -> list[Image.Image]:
    return [uint8_to_pil(a) for a in to_uint8(img)]


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for n images: near-square unless cols is given."""
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def image_grid(tiles: Sequence[Image.Image | None], cols: int | None = None, gap: int = 1,
               labels: Sequence[str] | None = None, background: str = "white") -> Image.Image:
    """Tiles row-major in a grid on `background`, `gap` px between and around them.

    tiles: PIL images of one size; None leaves that cell blank (the mixing grid's corner).
    cols: tiles per row (default: near-square). labels: one text per tile (may be ""), drawn
    centred under it; each row then grows by the text height. The result is 'L' when every tile
    is greyscale and there are no labels, else 'RGB'.
    """
    images = [t for t in tiles if t is not None]
    if not images:
        raise ValueError("nothing to draw: no images")
    w, h = images[0].size
    if any(t.size != (w, h) for t in images):
        raise ValueError(f"grid tiles must all be {w}x{h}, got {sorted({t.size for t in images})}")
    if labels is not None and len(labels) != len(tiles):
        raise ValueError(f"{len(labels)} labels for {len(tiles)} tiles")
    mode = "L" if labels is None and all(t.mode == "L" for t in images) else "RGB"
    rows, cols = grid_shape(len(tiles), cols)
    font = ImageFont.load_default() if labels is not None else None
    boxes, text_h, cell_w = [], 0, w
    if labels is not None:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        boxes = [probe.textbbox((0, 0), text, font=font) for text in labels]
        text_h = max(b[3] - b[1] for b in boxes) + gap  # text, then a gap before the next row
        cell_w = max([w] + [b[2] - b[0] for b in boxes])  # a label never overlaps its neighbour
    cell_h = h + text_h
    out = Image.new(mode, (cols * (cell_w + gap) + gap, rows * (cell_h + gap) + gap), background)
    draw = ImageDraw.Draw(out) if labels is not None else None
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        x, y = gap + c * (cell_w + gap), gap + r * (cell_h + gap)
        if tile is not None:
            out.paste(tile.convert(mode), (x + (cell_w - w) // 2, y))
        if labels is not None and labels[i]:
            box = boxes[i]
            draw.text((x + (cell_w - (box[2] - box[0])) // 2 - box[0], y + h + gap - box[1]), labels[i],
                      fill="black", font=font)
    return out


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a PIL image as PNG, atomically (the folder must exist)."""
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def save_image(img: torch.Tensor, path: str | Path) -> Path:
    """Save one [C, H, W] or [1, C, H, W] float image as PNG, atomically."""
    if img.ndim == 3:
        img = img.unsqueeze(0)
    return save_png(to_pil(img)[0], path)


def save_image_grid(img: torch.Tensor, path: str | Path, cols: int | None = None) -> Path:
    """[N, C, H, W] float images as one grid PNG (1 px white lines between tiles), atomically."""
    return save_png(image_grid(to_pil(img), cols), path)
