"""Multi-scale structural similarity (MS-SSIM; Wang, Simoncelli and Bovik 2003), and the diversity
score built on it (mean MS-SSIM of random pairs of generated images: lower = more diverse, as
used in the PGGAN and AC-GAN papers).

The standard definition: 5 scales (each half the previous, by 2x2 averaging), an 11x11 Gaussian
window with sigma 1.5 applied without padding ('valid'), K1 = 0.01, K2 = 0.03, the
contrast-structure term at every scale, the luminance term only at the coarsest, combined as
prod_j cs_j^w_j * l_M^w_M with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).

Small images. Five scales of an 11-pixel window need images of at least 176 pixels. For smaller
images this module (documented choice):
- uses as many scales as keep the coarsest scale at least 4 pixels, up to 5:
  8 px -> 2 scales, 16 -> 3, 32 -> 4, 64 and more -> 5;
- shrinks the window at a scale smaller than 11 pixels to the scale's size, with sigma scaled in
  proportion (1.5 * size / 11), as the TensorFlow / PGGAN implementation does;
- renormalises the first M standard weights to sum to 1.
Images of 176 pixels or more get exactly the standard definition.

Negative cs / ssim values (anti-correlated patches) are clamped to 0 before the fractional powers,
as in TensorFlow's `ssim_multiscale`. Colour images: MS-SSIM of each channel separately, then
the mean over channels (as TensorFlow does). Inputs are float [-1, 1] (data range 2) or uint8 0..255
(mapped to [-1, 1]), NCHW.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .swd import as_float_images

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_SCALE_SIZE = 4


def num_scales(size: int, max_scales: int = len(WEIGHTS), min_size: int = MIN_SCALE_SIZE) -> int:
    """Scales used for images whose smaller side is `size` (the coarsest stays >= min_size pixels)."""
    if size < min_size:
        raise ValueError(f"MS-SSIM needs images of at least {min_size}x{min_size}, got {size}")
    n = 1
    while n < max_scales and size // 2 ** n >= min_size:
        n += 1
    return n


def scale_weights(n: int) -> torch.Tensor:
    """The first n standard weights, renormalised to sum to 1 (all five unchanged for n = 5)."""
    w = torch.tensor(WEIGHTS[:n], dtype=torch.float64)
    return w / w.sum()


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of [B, 1, H, W] (channels folded into the batch)."""
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    return F.conv2d(x, g.view(1, 1, 1, -1))


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure over each [B, 1, H, W] image: two [B] tensors."""
    size = min(WINDOW_SIZE, x.shape[2], x.shape[3])
    g = _gaussian_1d(size, WINDOW_SIGMA * size / WINDOW_SIZE).to(x.device)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    # One filter call for all five moments: [5B, 1, H, W].
    mu_x, mu_y, xx, yy, xy = _filter(torch.cat([x, y, x * x, y * y, x * y]), g).chunk(5)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1) * cs_map
    return ssim_map.mean(dim=(1, 2, 3)), cs_map.mean(dim=(1, 2, 3))


def ms_ssim(images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of corresponding images: [N, C, H, W] x2 -> float64 [N] in [0, 1] (1 = identical)."""
    a, b = as_float_images(images_a), as_float_images(images_b)
    if a.shape != b.shape:
        raise ValueError(f"MS-SSIM compares images of one shape, got {list(a.shape)} and {list(b.shape)}")
    n, c, h, w = a.shape
    a, b = a.reshape(n * c, 1, h, w), b.reshape(n * c, 1, h, w)
    scales = num_scales(min(h, w))
    values = []
    for j in range(scales):
        ssim, cs = _ssim_cs(a, b, data_range=2.0)
        values.append((ssim if j == scales - 1 else cs).clamp_min(0))
        if j < scales - 1:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    stacked = torch.stack(values).to(torch.float64)                # [scales, N * C]
    per_channel = torch.prod(stacked ** scale_weights(scales)[:, None], dim=0)
    return per_channel.view(n, c).mean(dim=1)


def random_pairs(n: int, num_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """num_pairs index pairs (i, j), i != j, uniform over ordered pairs of n items (seeded)."""
    if n < 2:
        raise ValueError(f"need at least 2 images to form pairs, got {n}")
    rs = np.random.RandomState(seed)
    i = rs.randint(n, size=num_pairs)
    j = (i + rs.randint(1, n, size=num_pairs)) % n
    return i, j


@torch.inference_mode()
def msssim_diversity(images: torch.Tensor, num_pairs: int = 1000, seed: int = 0, batch: int = 500) -> float:
    """Mean MS-SSIM over random pairs of distinct images [N, C, H, W] (lower = more diverse)."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {list(images.shape)}")
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be positive, got {num_pairs}")
    i, j = random_pairs(len(images), num_pairs, seed)
    total = 0.0
    for k in range(0, num_pairs, batch):
        ii, jj = torch.from_numpy(i[k:k + batch]), torch.from_numpy(j[k:k + batch])
        total += ms_ssim(images[ii], images[jj]).sum().item()
    return total / num_pairs
