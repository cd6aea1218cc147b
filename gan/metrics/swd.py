"""Sliced Wasserstein distance (SWD) between Laplacian-pyramid patch statistics, as in PGGAN.

Karras et al. 2018, "Progressive Growing of GANs", appendix D:
1. Build a Laplacian pyramid of each image from its resolution down to 16x16; every level is a
   band-pass image except the coarsest, which is the 16x16 low-pass image.
2. From each level take 128 random 7x7 neighbourhoods per image (descriptors, [C, 7, 7] each).
3. Normalise each level's descriptor set per colour channel (subtract the set's mean, divide by
   its standard deviation), then flatten to vectors of C*49.
4. Sliced Wasserstein distance between the real and generated sets of each level: 4 repeats of
   128 random unit directions; project both sets, sort each projection, average |difference|.
5. Report each level's distance x 10^3 (`swd_<res>`) and their average (`swd`).

Inputs are images NCHW, either float in [-1, 1] (this project's convention) or uint8 in
0..255; uint8 is mapped to [-1, 1] first. The scale does not change the result, because every
descriptor set is normalised, but both sets must be the same kind of image. Randomness (patch
positions, directions) comes from a seeded `torch.Generator`: same seed, same numbers.

Memory: a level holds N * 128 descriptors of C*49 float32 (2,000 RGB images: 150 MB per level
per set).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

NHOOD_SIZE = 7            # descriptor side (pixels)
NHOODS_PER_IMAGE = 128    # descriptors per image per level
DIR_REPEATS = 4           # random projection repeats ...
DIRS_PER_REPEAT = 128     # ... of this many directions each
MIN_RES = 16              # coarsest pyramid level (the low-pass image)


def as_float_images(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] uint8 0..255 or float [-1, 1] -> float32 [-1, 1] (a copy only when needed)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = list(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a tensor [N, C, H, W], got {shape}")
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 127.5 - 1.0
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 (0..255) or float ([-1, 1]), got {images.dtype}")
    return images.to(torch.float32)


def pyramid_resolutions(img_resolution: int, min_res: int = MIN_RES) -> list[int]:
    """[R, R/2, ..., min_res]: the levels SWD reports (just [R] for images smaller than min_res)."""
    res = [int(img_resolution)]
    while res[-1] // 2 >= min_res:
        res.append(res[-1] // 2)
    return res


def _binomial_kernel(channels: int) -> torch.Tensor:
    """The 5x5 binomial ([1, 4, 6, 4, 1] / 16, outer product) low-pass filter, one per channel."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    return (k[:, None] * k[None, :]).expand(channels, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    # Mirror padding (d c b | a b c d | c b a), as scipy's 'mirror' mode in the PGGAN code.
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """[N, C, R, R] float -> num_levels tensors [N, C, R / 2^i, R / 2^i]: band-passes, then the low-pass."""
    kernel = _binomial_kernel(images.shape[1]).to(images.device)
    levels = [images]
    for _ in range(num_levels - 1):
        fine = levels[-1]
        coarse = _blur(fine, kernel)[:, :, ::2, ::2]
        up = torch.zeros_like(fine)
        up[:, :, ::2, ::2] = coarse
        levels[-1] = fine - _blur(up, kernel) * 4.0  # x4: zero insertion keeps a quarter of the energy
        levels.append(coarse)
    return levels


def extract_descriptors(level: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor,
                        nhood_size: int = NHOOD_SIZE) -> torch.Tensor:
    """Neighbourhoods centred at (ys, xs) [N, K]: level [N, C, H, W] -> [N * K, C, nhood_size, nhood_size]."""
    n, c, h, w = level.shape
    k = ys.shape[1]
    offsets = torch.arange(-(nhood_size // 2), nhood_size // 2 + 1)
    rows = ys[:, :, None, None] + offsets[None, None, :, None]    # [n, k, s, 1]
    cols = xs[:, :, None, None] + offsets[None, None, None, :]    # [n, k, 1, s]
    img = torch.arange(n)[:, None, None, None]                    # [n, 1, 1, 1]
    patches = level.permute(0, 2, 3, 1)[img, rows.to(level.device), cols.to(level.device)]  # [n, k, s, s, C]
    return patches.permute(0, 1, 4, 2, 3).reshape(n * k, c, nhood_size, nhood_size)


def image_descriptors(images: torch.Tensor, generator: torch.Generator, min_res: int = MIN_RES,
                      nhood_size: int = NHOOD_SIZE, nhoods_per_image: int = NHOODS_PER_IMAGE) -> list[torch.Tensor]:
    """One batch of images -> per pyramid level, raw descriptors [N * nhoods, C, s, s] (feed batches, then concat).

    Patch centres are drawn image by image, so a sequence of images gets the same descriptors
    however it is split into batches.
    """
    x = as_float_images(images)
    n, _, h, w = x.shape
    if h != w:
        raise ValueError(f"SWD needs square images, got {h}x{w}")
    levels = laplacian_pyramid(x, len(pyramid_resolutions(h, min_res)))
    half = nhood_size // 2
    for level in levels:
        if level.shape[2] < nhood_size:
            raise ValueError(f"pyramid level {level.shape[2]}x{level.shape[3]} is smaller than the "
                             f"{nhood_size}x{nhood_size} descriptor")
    centres = [[torch.randint(half, lv.shape[2] - half, (2, nhoods_per_image), generator=generator) for lv in levels]
               for _ in range(n)]
    out = []
    for j, level in enumerate(levels):
        yx = torch.stack([centres[i][j] for i in range(n)])      # [n, 2, k]
        out.append(extract_descriptors(level, yx[:, 0], yx[:, 1], nhood_size).cpu())
    return out


def normalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """[M, C, s, s] -> [M, C*s*s]: zero mean, unit standard deviation per channel over the whole set."""
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False).clamp_min(1e-8)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def _sort_rows_(x: torch.Tensor) -> torch.Tensor:
    """Sort each row of a contiguous CPU float32 [K, M] tensor in place. Sorting dominates SWD's cost,
    and numpy's sort of contiguous rows on a few threads (it releases the GIL) is 2-3x faster than
    torch.sort on CPU."""
    a = x.numpy()
    chunks = np.array_split(a, max(1, torch.get_num_threads()) * 2)
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        list(pool.map(lambda chunk: chunk.sort(axis=1), chunks))
    return x


def sliced_wasserstein(desc_a: torch.Tensor, desc_b: torch.Tensor, generator: torch.Generator,
                       dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
    """SWD between normalised descriptor sets [M, D] and [M', D] (the larger is randomly cut to the smaller)."""
    if desc_a.ndim != 2 or desc_b.ndim != 2 or desc_a.shape[1] != desc_b.shape[1]:
        raise ValueError(f"descriptor sets must be [M, D] with equal D, got {list(desc_a.shape)} and {list(desc_b.shape)}")
    m = min(len(desc_a), len(desc_b))
    if len(desc_a) > m:
        desc_a = desc_a[torch.randperm(len(desc_a), generator=generator)[:m]]
    if len(desc_b) > m:
        desc_b = desc_b[torch.randperm(len(desc_b), generator=generator)[:m]]
    dists = []
    for _ in range(dir_repeats):
        dirs = torch.randn(desc_a.shape[1], dirs_per_repeat, generator=generator)
        dirs /= dirs.norm(dim=0, keepdim=True)
        # dirs^T desc^T is [dirs, M] and contiguous, so each projection is a row to sort.
        proj_a = _sort_rows_(torch.mm(dirs.T, desc_a.T))
        proj_b = _sort_rows_(torch.mm(dirs.T, desc_b.T))
        dists.append((proj_a - proj_b).abs().mean().item())
    return sum(dists) / len(dists)


def swd_from_descriptors(levels_a: list[torch.Tensor], levels_b: list[torch.Tensor], resolutions: list[int],
                         seed: int = 0) -> dict[str, float]:
    """Raw per-level descriptor sets (from image_descriptors, concatenated) -> {"swd", "swd_<res>", ...}, x 10^3."""
    if not (len(levels_a) == len(levels_b) == len(resolutions)):
        raise ValueError(f"need one descriptor set per level: {len(levels_a)}, {len(levels_b)}, {len(resolutions)}")
    generator = torch.Generator().manual_seed(int(seed))
    out = {}
    for res, a, b in zip(resolutions, levels_a, levels_b):
        out[f"swd_{res}"] = 1e3 * sliced_wasserstein(normalize_descriptors(a), normalize_descriptors(b), generator)
    return {"swd": sum(out.values()) / len(out), **out}


def swd(images_a: torch.Tensor, images_b: torch.Tensor, seed: int = 0, batch: int = 256,
        min_res: int = MIN_RES) -> dict[str, float]:
    """SWD between two image sets [N, C, R, R] (float [-1, 1] or uint8): {"swd": mean, "swd_<res>": per level}.

    Lower is closer. Deterministic given `seed`.
    """
    a, b = images_a, images_b
    if a.ndim != 4 or b.ndim != 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image sets must be [N, C, R, R] of one shape, got {list(a.shape)} and {list(b.shape)}")
    if len(a) < 1 or len(b) < 1:
        raise ValueError("SWD needs at least one image in each set")
    resolutions = pyramid_resolutions(a.shape[2], min_res)
    levels = []
    for k, images in enumerate((a, b)):
        generator = torch.Generator().manual_seed(int(seed) * 2 + k + 1)
        parts = [image_descriptors(images[i:i + batch], generator, min_res) for i in range(0, len(images), batch)]
        levels.append([torch.cat(per_level) for per_level in zip(*parts)])
    return swd_from_descriptors(levels[0], levels[1], resolutions, seed)
