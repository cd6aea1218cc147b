"""Differentiable augmentation for training GANs on small datasets, in pure PyTorch.

The discriminator sees every image, real or fake, through the same random augmentations, so
it cannot memorise the few thousand training images (the emoji set has about 3.9k), while the
generator still learns the un-augmented distribution: every operation is differentiable with
respect to the image, so G's gradients pass through (DiffAugment, Zhao et al. 2020; ADA,
Karras et al. 2020a).

Operations (each applied to each image independently with probability p):
- translation: integer shifts of up to 1/8 of the image size, zero (mid-grey) padding
- color: brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel mean),
  contrast (x U(0.5, 1.5) around the image mean)
- cutout: a mid-grey square of half the image size at a random position

Modes: "none"; "fixed" (constant p, 1 by default); "ada": p starts at 0 and follows ADA's
overfitting heuristic r_t = E[sign(D(real))], raised when r_t is above the target (0.6) and
lowered below it, at a speed where p can go from 0 to 1 in `speed_kimg` thousand images.
Images are float [N, C, H, W] in about [-1, 1]; random numbers come from the global torch RNG
(or a given generator), so a run that saves and restores RNG states augments identically.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import AUGMENT_MODES

OPS = ("translation", "color", "cutout")


def _rand(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=x.device, dtype=torch.float32, generator=generator)


def _chosen(n: int, p: float, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Which images get an operation: bool [N], each True with probability p."""
    return _rand(n, x, generator) < p


def translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, zero-filling what moves in. shift: int64 [N, 2] (dy, dx)."""
    n, c, h, w = x.shape
    pad = int(shift.abs().max().item()) if shift.numel() else 0
    if pad == 0:
        return x
    xp = F.pad(x, [pad, pad, pad, pad])
    gy = (torch.arange(h, device=x.device).reshape(1, h, 1) - shift[:, 0].reshape(n, 1, 1) + pad).expand(n, h, w)
    gx = (torch.arange(w, device=x.device).reshape(1, 1, w) - shift[:, 1].reshape(n, 1, 1) + pad).expand(n, h, w)
    idx = torch.arange(n, device=x.device).reshape(n, 1, 1).expand(n, h, w)
    return xp[idx, :, gy, gx].permute(0, 3, 1, 2)  # advanced indexing puts C last: [N, H, W, C]


def adjust_color(x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor,
                 contrast: torch.Tensor) -> torch.Tensor:
    """Per-image brightness offset, saturation and contrast factors, each [N]."""
    n = x.shape[0]
    x = x + brightness.reshape(n, 1, 1, 1).to(x.dtype)
    if x.shape[1] > 1:  # saturation is meaningless for greyscale
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * saturation.reshape(n, 1, 1, 1).to(x.dtype) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * contrast.reshape(n, 1, 1, 1).to(x.dtype) + mean


def cut_out(x: torch.Tensor, center: torch.Tensor, size: tuple[int, int], chosen: torch.Tensor) -> torch.Tensor:
    """Set a size[0] x size[1] square around center (int64 [N, 2], y/x) to 0 in the chosen images."""
    n, _, h, w = x.shape
    ys = torch.arange(h, device=x.device).reshape(1, h, 1)
    xs = torch.arange(w, device=x.device).reshape(1, 1, w)
    cy, cx = center[:, 0].reshape(n, 1, 1), center[:, 1].reshape(n, 1, 1)
    inside = ((ys - cy).abs() * 2 < size[0]) & ((xs - cx).abs() * 2 < size[1]) & chosen.reshape(n, 1, 1)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def augment(x: torch.Tensor, p: float = 1.0, ops=OPS, translation_ratio: float = 0.125,
            cutout_ratio: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply each operation in `ops` to each image with probability p. x [N, C, H, W] -> same shape.

    Differentiable with respect to x. p = 0 returns x itself and draws no random numbers.
    """
    if x.ndim != 4:
        raise ValueError(f"augment expects images [N, C, H, W], got {list(x.shape)}")
    unknown = sorted(set(ops) - set(OPS))
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}: use {', '.join(OPS)}")
    if p <= 0:
        return x
    n, _, h, w = x.shape
    if "translation" in ops:
        chosen = _chosen(n, p, x, generator)
        limit = torch.tensor([h, w], device=x.device, dtype=torch.float32) * translation_ratio
        shift = ((_rand(2 * n, x, generator).reshape(n, 2) * 2 - 1) * limit).round().to(torch.int64)
        x = translate(x, shift * chosen.reshape(n, 1))
    if "color" in ops:
        chosen = _chosen(n, p, x, generator).to(torch.float32)
        brightness = (_rand(n, x, generator) - 0.5) * chosen
        saturation = 1 + (_rand(n, x, generator) * 2 - 1) * chosen      # U(0, 2) when chosen, else 1
        contrast = 1 + (_rand(n, x, generator) - 0.5) * chosen          # U(0.5, 1.5) when chosen, else 1
        x = adjust_color(x, brightness, saturation, contrast)
    if "cutout" in ops:
        chosen = _chosen(n, p, x, generator)
        size = (max(1, int(h * cutout_ratio + 0.5)), max(1, int(w * cutout_ratio + 0.5)))
        center = (_rand(2 * n, x, generator).reshape(n, 2)
                  * torch.tensor([h, w], device=x.device, dtype=torch.float32)).to(torch.int64)
        x = cut_out(x, center, size, chosen)
    return x


class AdaptiveAugment:
    """The augmentation probability p, and for mode "ada" the overfitting heuristic that drives it.

    Call `accumulate(real_logits)` after each D pass on reals and `update(num_images, reduce)`
    every `interval` steps (`num_images` = the global images seen since the last update;
    `reduce` sums a tensor across processes, identity when single-process).
    """

    def __init__(self, mode: str = "none", p: float = 0.0, target: float = 0.6, speed_kimg: float = 100.0,
                 interval: int = 4, ops=OPS):
        if mode not in AUGMENT_MODES:
            raise ValueError(f"unknown augment mode {mode!r}: use one of {', '.join(AUGMENT_MODES)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augment probability {p} is outside [0, 1]")
        self.mode, self.target, self.speed_kimg, self.interval, self.ops = mode, target, speed_kimg, interval, ops
        self.p = 0.0 if mode == "none" else float(p)
        self.stats = torch.zeros(2, dtype=torch.float64)  # [sum of sign(D(real)), count] since the last update
        self.rt = float("nan")                            # the last heuristic value, for the log

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return augment(x, self.p, self.ops) if self.mode != "none" else x

    def accumulate(self, real_logits: torch.Tensor) -> None:
        if self.mode == "ada":
            s = real_logits.detach().to(torch.float64).sign()
            self.stats += torch.stack([s.sum().cpu(), torch.tensor(float(s.numel()), dtype=torch.float64)])

    def update(self, num_images: int, reduce=lambda t: t) -> None:
        if self.mode != "ada":
            return
        stats = reduce(self.stats.clone())
        self.stats.zero_()
        if stats[1] <= 0:
            return
        self.rt = float(stats[0] / stats[1])
        step = num_images / (self.speed_kimg * 1000.0)
        self.p = min(1.0, max(0.0, self.p + (step if self.rt > self.target else -step)))

    def state(self) -> dict:
        return {"mode": self.mode, "p": self.p, "rt": self.rt, "stats": self.stats.tolist()}

    def load_state(self, state: dict) -> None:
        self.p = float(state["p"])
        self.rt = float(state.get("rt", float("nan")))
        self.stats = torch.tensor(state.get("stats", [0.0, 0.0]), dtype=torch.float64)
