"""Multi-scale structural similarity (MS-SSIM; Wang, Simoncelli and Bovik 2003), and the diversity
score built on it (mean MS-SSIM of random pairs of generated images: lower = more diverse, as
used in the PGGAN and AC-GAN papers).

The arithmetic follows the implementation PGGAN's metrics use (tkarras/progressive_growing_of_gans
`metrics/ms_ssim.py`, itself the TensorFlow research one), so the numbers are comparable with it:
- pixels on an unsigned scale, [0, 1] here with data range 1 (the reference uses 0..255 with
  range 255: the same numbers, since c1 and c2 scale with the range). The luminance term
  (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1) is not shift invariant: on signed [-1, 1] pixels a
  dark and a bright patch give a negative value, which the clamp below turns into an MS-SSIM of 0;
- always 5 scales, each a 2x2 average of the previous one; weights (0.0448, 0.2856, 0.3001,
  0.2363, 0.1333), as published (they sum to 1.0001, not renormalised);
- at each scale a Gaussian window of min(11, height, width) pixels with sigma 1.5 * size / 11,
  applied without padding ('valid'); K1 = 0.01, K2 = 0.03. So a 32 px image is compared at 32, 16,
  8, 4 and 2 px, with a 4x4 window at 4 px and a 2x2 one at 2 px, exactly as the reference does;
- per scale, the SSIM and contrast-structure maps are averaged over pixels and colour channels
  together (the reference's mean over H, W and C), then clamped at 0 (anti-correlated images
  would otherwise give NaN in the fractional powers);
- MS-SSIM = prod_{j<5} cs_j^w_j * ssim_5^w_5: contrast-structure at the four finer scales, the
  full SSIM (with luminance) at the coarsest only.
Sizes: the 5th scale needs images of at least 16x16 (it is then 1x1). Odd sizes, which the
reference refuses, drop their last row or column when halved (an extension, never hit by GAN
resolutions). Computed in float64 (the reference uses float32 FFT convolutions; they agree to
about 1e-5).

Inputs: NCHW, uint8 0..255 or float [-1, 1] (this project's convention), both mapped to [0, 1].
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
MIN_SIZE = 2 ** (len(WEIGHTS) - 1)  # the coarsest of 5 scales is then 1 pixel


def unit_range(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] uint8 0..255 or float [-1, 1] -> float64 [0, 1] (the scale MS-SSIM is defined on)."""
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4:
        return images.to(torch.float64) / 255.0
    return (as_float_images(images).to(torch.float64) + 1.0) / 2.0  # as_float_images checks shape and dtype


def gaussian_window(size: int) -> torch.Tensor:
    """The 1-D factor of the reference's 2-D window (MATLAB fspecial), sigma shrunk with the size: [size]."""
    sigma = WINDOW_SIGMA * size / WINDOW_SIZE
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2  # centred, also for even sizes
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()  # the 2-D window is the outer product; it sums to 1 as fspecial's does


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of [B, 1, H, W] (channels folded into the batch)."""
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    return F.conv2d(x, g.view(1, 1, 1, -1))


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure of [N * C, 1, H, W] pairs in [0, 1]: two [N] tensors,
    each the mean over the pixels and the C channels of one image."""
    g = gaussian_window(min(WINDOW_SIZE, x.shape[2], x.shape[3])).to(x.device)
    c1, c2 = K1 ** 2, K2 ** 2  # (K * data range)^2 with range 1
    # One filter call for all five moments: [5 * N * C, 1, H', W'].
    mu_x, mu_y, xx, yy, xy = _filter(torch.cat([x, y, x * x, y * y, x * y]), g).chunk(5)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1) * cs_map
    n = x.shape[0] // channels
    return ssim_map.reshape(n, -1).mean(dim=1), cs_map.reshape(n, -1).mean(dim=1)


def ms_ssim(images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of corresponding images: [N, C, H, W] x2 -> float64 [N] in [0, 1] (1 = identical)."""
    a, b = unit_range(images_a), unit_range(images_b)
    if a.shape != b.shape:
        raise ValueError(f"MS-SSIM compares images of one shape, got {list(a.shape)} and {list(b.shape)}")
    n, c, h, w = a.shape
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"MS-SSIM needs images of at least {MIN_SIZE}x{MIN_SIZE} (5 scales), got {h}x{w}")
    a, b = a.reshape(n * c, 1, h, w), b.reshape(n * c, 1, h, w)
    result = torch.ones(n, dtype=torch.float64, device=a.device)
    for j, weight in enumerate(WEIGHTS):
        ssim, cs = _ssim_cs(a, b, c)
        coarsest = j == len(WEIGHTS) - 1
        result = result * (ssim if coarsest else cs).clamp_min(0) ** weight
        if not coarsest:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return result


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
