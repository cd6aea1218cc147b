"""Progressive Growing GAN (Karras et al. 2018): generator and discriminator that grow 4x4 -> R.

`depth` selects the current stage (0 = 4x4, 1 = 8x8, ...) and `alpha` in [0, 1] its fade-in:
the new block's toRGB output blended with the 2x upsampled toRGB of the previous stage. Both
are stored in a buffer (`progress`), so a stage snapshot loads at the stage it was saved at.
Equalised learning rate (N(0, 1) weights scaled by gain / sqrt(fan_in) at run time), pixelwise
feature normalisation in G, minibatch stddev in D, leaky ReLU 0.2; channels
min(2 * channel_base / r, channel_max) at resolution r, i.e. the paper's 512 up to 32x32 then
256, 128, 64, 32, 16 at 1024 for channel_base 8192.

Shapes: z [N, z_dim]; ws [N, 1, z_dim] (the pixel-normalised z); img [N, C, r, r] where
r = 4 * 2 ** depth is the current resolution.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .layers import MinibatchStdLayer, normalize_2nd_moment
from .stylegan2 import check_noise_mode

SQRT2 = math.sqrt(2.0)


class EqualizedConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class GeneratorBlock(nn.Module):
    """4x4: dense -> conv. Larger: nearest 2x upsample -> conv -> conv. Each conv: lrelu + pixel norm."""

    def __init__(self, in_channels: int, out_channels: int, res: int):
        super().__init__()
        self.res = res
        if res == 4:
            # The paper's first layer is a 4x4 'conv' on a 1x1 input, i.e. a dense layer (gain sqrt(2)/4).
            self.dense = EqualizedLinear(in_channels, out_channels * 16, gain=SQRT2 / 4, bias=False)
            self.dense_bias = nn.Parameter(torch.zeros(out_channels))
            self.conv = EqualizedConv2d(out_channels, out_channels, 3)
        else:
            self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
            self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.res == 4:
            x = self.dense(x).reshape(x.shape[0], -1, 4, 4) + self.dense_bias.reshape(1, -1, 1, 1)
            x = normalize_2nd_moment(lrelu(x))
            return normalize_2nd_moment(lrelu(self.conv(x)))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = normalize_2nd_moment(lrelu(self.conv0(x)))
        return normalize_2nd_moment(lrelu(self.conv1(x)))


class StageProgress(nn.Module):
    """Holds (depth, alpha) as a persistent buffer so snapshots remember their stage."""

    def __init__(self, max_depth: int):
        super().__init__()
        self.max_depth = max_depth
        self.register_buffer("progress", torch.tensor([float(max_depth), 1.0]))

    @property
    def depth(self) -> int:
        return int(self.progress[0].item())

    @property
    def alpha(self) -> float:
        return float(self.progress[1].item())

    def set_stage(self, depth: int, alpha: float = 1.0) -> None:
        if not 0 <= depth <= self.max_depth:
            raise ValueError(f"depth {depth} is outside 0..{self.max_depth}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha {alpha} is outside [0, 1]")
        self.progress.copy_(torch.tensor([float(depth), float(alpha)]))


class PGGANMapping(nn.Module):
    """z -> ws [N, 1, z_dim]: pixel-normalised z, truncated towards the mean latent (w_avg)."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.z_dim, self.num_ws = z_dim, 1
        # Mean latent for truncation. Normalised Gaussian z has mean 0, so this stays 0 unless a
        # user sets it (e.g. to the mean of a cluster of seeds they like).
        self.register_buffer("w_avg", torch.zeros([z_dim]))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_emas: bool = False) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {list(z.shape)}")
        ws = normalize_2nd_moment(z.to(torch.float32)).unsqueeze(1)
        if truncation_psi != 1:
            ws = self.w_avg.lerp(ws, truncation_psi)
        return ws


class Generator(StageProgress):
    arch = "pggan"
    supports_style_mixing = False

    def __init__(self, cfg: ModelConfig):
        resolutions = cfg.resolutions
        super().__init__(max_depth=len(resolutions) - 1)
        self.cfg = cfg
        self.z_dim = self.w_dim = cfg.z_dim
        self.num_ws = 1
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.resolutions = resolutions
        self.mapping = PGGANMapping(cfg.z_dim)
        in_ch = cfg.z_dim
        for res in resolutions:
            out_ch = cfg.channels_at(res)
            setattr(self, f"b{res}", GeneratorBlock(in_ch, out_ch, res))
            setattr(self, f"torgb{res}", EqualizedConv2d(out_ch, cfg.img_channels, 1, gain=1.0))
            in_ch = out_ch

    @property
    def stage_resolutions(self) -> list[int]:
        """Resolutions grown so far (all of them for a finished model)."""
        return self.resolutions[: self.depth + 1]

    @property
    def current_resolution(self) -> int:
        return self.resolutions[self.depth]

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", return_stages: bool = False):
        check_noise_mode(noise_mode)  # PGGAN has no noise inputs; accepted for a uniform interface
        if ws.ndim != 3 or ws.shape[1:] != (1, self.z_dim):
            raise ValueError(f"ws must be [N, 1, {self.z_dim}], got {list(ws.shape)}")
        depth, alpha = self.depth, self.alpha
        x = ws[:, 0].to(torch.float32)
        stages, prev = [], None
        for d, res in enumerate(self.resolutions[: depth + 1]):
            if d == depth and alpha < 1 and d > 0:
                prev = x
            x = getattr(self, f"b{res}")(x)
            if return_stages or d == depth:
                stages.append(getattr(self, f"torgb{res}")(x))
        img = stages[-1]
        if prev is not None:  # fade-in: blend with the upsampled previous stage's image
            old = getattr(self, f"torgb{self.resolutions[depth - 1]}")(prev)
            img = torch.lerp(F.interpolate(old, scale_factor=2, mode="nearest"), img, alpha)
            stages[-1] = img
        return (img, stages) if return_stages else img

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode=noise_mode)


class DiscriminatorBlock(nn.Module):
    """conv -> conv -> 2x2 average-pool."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch stddev -> conv -> dense -> dense(1)."""

    def __init__(self, in_channels: int, hidden: int, mbstd_group_size: int, mbstd_num_channels: int):
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        self.conv = EqualizedConv2d(in_channels + mbstd_num_channels, in_channels, 3)
        self.fc = EqualizedLinear(in_channels * 16, hidden)
        self.out = EqualizedLinear(hidden, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv(self.mbstd(x)))
        return self.out(lrelu(self.fc(x.flatten(1))))


class Discriminator(StageProgress):
    arch = "pggan"

    def __init__(self, cfg: ModelConfig):
        resolutions = cfg.resolutions
        super().__init__(max_depth=len(resolutions) - 1)
        self.cfg = cfg
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.resolutions = resolutions
        for res in resolutions:
            setattr(self, f"fromrgb{res}", EqualizedConv2d(cfg.img_channels, cfg.channels_at(res), 1))
            if res > 4:
                setattr(self, f"b{res}", DiscriminatorBlock(cfg.channels_at(res), cfg.channels_at(res // 2)))
        self.b4 = DiscriminatorEpilogue(cfg.channels_at(4), min(cfg.resolved_channel_base, cfg.channel_max),
                                        cfg.mbstd_group_size, cfg.mbstd_num_channels)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # [N, C, r, r] at the current stage -> [N, 1]
        depth, alpha = self.depth, self.alpha
        res = self.resolutions[depth]
        if img.shape[-1] != res:
            raise ValueError(f"D at depth {depth} expects {res}x{res} images, got {list(img.shape)}")
        x = lrelu(getattr(self, f"fromrgb{res}")(img))
        for d in range(depth, 0, -1):
            r = self.resolutions[d]
            x = getattr(self, f"b{r}")(x)
            if d == depth and alpha < 1:  # fade-in: blend with the downsampled image's fromRGB
                y = lrelu(getattr(self, f"fromrgb{r // 2}")(F.avg_pool2d(img, 2)))
                x = torch.lerp(y, x, alpha)
        return self.b4(x)
