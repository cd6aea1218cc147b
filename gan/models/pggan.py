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
from .conv_grad import conv2d
from .fused_act import LRELU_SLOPE, fused_bias_act
from .layers import FOLD_MIN_PIXELS, MinibatchStdLayer, fast_path_applies, normalize_2nd_moment, normalize_2nd_moment_
from .stylegan2 import check_noise_mode

SQRT2 = math.sqrt(2.0)
# Upsampling convs on fewer input pixels than this in the whole batch, or than POLYPHASE_MIN_IMAGE_PIXELS an
# image, upsample and convolve as written: the polyphase weights (built per call, ~C^2 work) and the four
# phase copies then cost more than the multiply-adds they save. Measured on a 2-core CPU (plain / polyphase
# time): 512 channels, batch 1, 8x8 0.57x, 16x16 1.03-1.27x; batch 2 x 8x8 0.85x, batch 4 x 8x8 1.1x, batch
# 16 x 8x8 1.5x; 64 channels, batch 32 x 4x4 0.85x, batch 16 x 8x8 1.07x, batch 32 x 16x16 1.43x.
POLYPHASE_MIN_PIXELS = 16 * 16
POLYPHASE_MIN_IMAGE_PIXELS = 8 * 8


# The taps of a 3-tap kernel that act on input rows (y - 1, y) for output row 2y (phase 0) and on (y, y + 1)
# for output row 2y + 1 (phase 1) after nearest 2x upsampling: phase 0 (w0, w1 + w2), phase 1 (w0 + w1, w2).
NEAREST_UP2_TAPS = (((0,), (1, 2)), ((0, 1), (2,)))


def nearest_up2_weight(weight: torch.Tensor) -> torch.Tensor:
    """weight [O, kh=3, kw=3, I] (contiguous) -> the 2x2 kernels of the four output phases,
    [py, px, O, 2, 2, I] contiguous (see EqualizedConv2d.forward_up2_nearest)."""
    o, _, _, i = weight.shape

    def combine(src: torch.Tensor, taps: tuple, dst: torch.Tensor) -> None:  # dst = sum of src[:, taps]
        if len(taps) > 1:
            torch.add(src[:, taps[0]], src[:, taps[1]], out=dst)
        else:
            dst.copy_(src[:, taps[0]])

    rows = weight.new_empty([2, o, 2, 3, i])     # [py, O, a, kw, I]
    for py in range(2):
        for a, taps in enumerate(NEAREST_UP2_TAPS[py]):
            combine(weight, taps, rows[py, :, a])
    out = weight.new_empty([2, 2, o, 2, 2, i])   # [py, px, O, a, b, I]
    for py in range(2):
        for px in range(2):
            for b, taps in enumerate(NEAREST_UP2_TAPS[px]):
                combine(rows[py].transpose(1, 2), taps, out[py, px, :, :, b])
    return out


class EqualizedConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor, lrelu: bool = False) -> torch.Tensor:
        """The conv, then a leaky ReLU 0.2 if `lrelu` (fused into the conv's output on a CPU, see conv_grad)."""
        return conv2d(x, self.weight * self.scale, self.bias, padding=self.padding, lrelu=lrelu)  # WGAN-GP: twice

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """forward() for inference. Large inputs: channels-last, the scaled weight written once in that
        layout. Small ones (large weights): the weight as stored, the scale applied to the output. Large
        counts the whole batch's pixels: a training batch of 32 at 32x32 stays channels-last (changing its
        layout for the conv was a copy of every activation, ~15% of PGGAN's fake generation)."""
        if x.shape[0] * x.shape[2] * x.shape[3] < FOLD_MIN_PIXELS:
            return F.conv2d(x.contiguous(), self.weight, self.bias / self.scale, padding=self.padding).mul_(self.scale)
        weight = torch.empty_like(self.weight, memory_format=torch.channels_last)
        weight = torch.mul(self.weight, self.scale, out=weight)
        return F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, self.bias, padding=self.padding)

    def forward_up2_nearest(self, x: torch.Tensor) -> torch.Tensor:
        """forward(F.interpolate(x, scale_factor=2, mode="nearest")) for a 3x3 conv, inference only:
        x [N, I, H, W] -> [N, O, 2H, 2W] (channels-last where the polyphase form runs).

        Polyphase: output row 2y reads upsampled rows 2y-1, 2y, 2y+1 = input rows y-1, y, y, so its
        taps (w[0], w[1] + w[2]) act on input rows (y-1, y); row 2y+1 has (w[0] + w[1], w[2]) on
        (y, y+1). One 2x2 conv with 4 O outputs on the small input (16 instead of 36 multiply-adds per
        output pixel and input channel), then each phase is written to its place."""
        n, _, h, w = x.shape
        o, i = self.weight.shape[:2]
        if n * h * w < POLYPHASE_MIN_PIXELS or h * w < POLYPHASE_MIN_IMAGE_PIXELS:  # costs more than it saves
            return self.forward_fast(F.interpolate(x, scale_factor=2, mode="nearest"))
        x = x.contiguous(memory_format=torch.channels_last)
        weight = torch.empty_like(self.weight, memory_format=torch.channels_last)
        weight = torch.mul(self.weight, self.scale, out=weight).permute(0, 2, 3, 1)  # [O, kh, kw, I], contiguous
        w4 = nearest_up2_weight(weight)                            # [py, px, O, 2, 2, I], contiguous
        w4 = w4.reshape(4 * o, 2, 2, i).permute(0, 3, 1, 2)       # [4 O, I, 2, 2], channels-last
        y = F.conv2d(x, w4, self.bias.repeat(4), padding=1)
        y = y.permute(0, 2, 3, 1)                               # [N, H + 1, W + 1, 4 O], a view
        out = torch.empty([n, h, 2, w, 2, o], dtype=x.dtype, device=x.device)  # NHWC memory of [N, O, 2H, 2W]
        for py in range(2):
            for px in range(2):
                phase = 2 * py + px
                out[:, :, py, :, px].copy_(y[:, py: py + h, px: px + w, phase * o: (phase + 1) * o])
        return out.reshape(n, 2 * h, 2 * w, o).permute(0, 3, 1, 2)


class EqualizedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """forward() for inference: the scale on the (small) output rather than the (large) weight."""
        if self.bias is None:
            return F.linear(x, self.weight).mul_(self.scale)
        return torch.addmm(self.bias, x, self.weight.t(), alpha=self.scale)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU 0.2; under autograd fused_act's node, whose second-order pass (WGAN-GP) is one multiply
    (autograd's own also allocates a zero gradient for the input)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return fused_bias_act(x, None, lrelu=True, gain=1.0, clamp=None)
    return F.leaky_relu(x, LRELU_SLOPE)


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
            return normalize_2nd_moment(self.conv(x, lrelu=True))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = normalize_2nd_moment(self.conv0(x, lrelu=True))
        return normalize_2nd_moment(self.conv1(x, lrelu=True))

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """forward() for inference (layers.fast_path_applies): activations in place, the upsampling conv
        polyphase, channels-last from FOLD_MIN_PIXELS on."""
        if self.res == 4:
            x = self.dense.forward_fast(x).reshape(x.shape[0], -1, 4, 4).add_(self.dense_bias.reshape(1, -1, 1, 1))
            x = normalize_2nd_moment_(F.leaky_relu_(x, LRELU_SLOPE))
            return normalize_2nd_moment_(F.leaky_relu_(self.conv.forward_fast(x), LRELU_SLOPE))
        x = normalize_2nd_moment_(F.leaky_relu_(self.conv0.forward_up2_nearest(x), LRELU_SLOPE))
        return normalize_2nd_moment_(F.leaky_relu_(self.conv1.forward_fast(x), LRELU_SLOPE))


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

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", return_stages: bool = False,
                  reference: bool = False):
        """ws [N, 1, z_dim] -> img [N, C, r, r] at the current stage (and every stage's image with
        return_stages). Without autograd on a CPU this runs the inference fast path (channels-last,
        activations in place, a polyphase upsampling conv), which gives the numbers of the reference
        path to fp32 rounding; reference=True runs the plain definition that training differentiates."""
        check_noise_mode(noise_mode)  # PGGAN has no noise inputs; accepted for a uniform interface
        if ws.ndim != 3 or ws.shape[1:] != (1, self.z_dim):
            raise ValueError(f"ws must be [N, 1, {self.z_dim}], got {list(ws.shape)}")
        depth, alpha = self.depth, self.alpha
        x = ws[:, 0].to(torch.float32)
        if not reference and fast_path_applies(x, self.torgb4.weight):
            img, stages = self.stages_fast(x, depth, alpha, return_stages)
            return (img, stages) if return_stages else img
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

    def stages_fast(self, x: torch.Tensor, depth: int, alpha: float, return_stages: bool):
        """The inference fast path of synthesis(): x the latent [N, z_dim] -> (img, the stage images or [img]).
        (Running a batch one sample at a time from 64 px on, as StyleGAN2's does, measured no faster here.)"""
        stages = []
        for d in range(depth + 1):
            res = self.resolutions[d]
            prev = x
            x = getattr(self, f"b{res}").forward_fast(x)
            if return_stages or d == depth:
                stages.append(getattr(self, f"torgb{res}").forward_fast(x).contiguous())
        img = stages[-1]
        if depth > 0 and alpha < 1:  # fade-in: blend with the upsampled previous stage's image
            old = getattr(self, f"torgb{self.resolutions[depth - 1]}").forward_fast(prev).contiguous()
            img = stages[-1] = torch.lerp(F.interpolate(old, scale_factor=2, mode="nearest"), img, alpha)
        return img, stages

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode=noise_mode)


class _AvgPool2(torch.autograd.Function):
    """F.avg_pool2d(x, 2) whose backward is written as differentiable ops on the gradient alone. Autograd's
    own avg_pool2d backward is one node whose derivative (for WGAN-GP's second-order pass) also returns a
    zero gradient for x, allocated in NCHW: adding it to the channels-last gradient there is a layout-mixing
    add that took 130 ms a call for a 128-channel 64 px batch of 32 (~3% of a PGGAN step), for nothing."""

    @staticmethod
    def forward(ctx, x):
        return F.avg_pool2d(x, 2)

    @staticmethod
    def backward(ctx, grad):
        return F.interpolate(grad * 0.25, scale_factor=2, mode="nearest")  # the scale on the smaller tensor


def avg_pool2(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling [N, C, H, W] -> [N, C, H / 2, W / 2] (H and W even), cheap to differentiate twice."""
    return _AvgPool2.apply(x) if torch.is_grad_enabled() and x.requires_grad else F.avg_pool2d(x, 2)


class DiscriminatorBlock(nn.Module):
    """conv -> conv -> 2x2 average-pool."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return avg_pool2(self.conv1(self.conv0(x, lrelu=True), lrelu=True))


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch stddev -> conv -> dense -> dense(1)."""

    def __init__(self, in_channels: int, hidden: int, mbstd_group_size: int, mbstd_num_channels: int):
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        self.conv = EqualizedConv2d(in_channels + mbstd_num_channels, in_channels, 3)
        self.fc = EqualizedLinear(in_channels * 16, hidden)
        self.out = EqualizedLinear(hidden, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.mbstd(x), lrelu=True)
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
        x = getattr(self, f"fromrgb{res}")(img, lrelu=True)
        for d in range(depth, 0, -1):
            r = self.resolutions[d]
            x = getattr(self, f"b{r}")(x)
            if d == depth and alpha < 1:  # fade-in: blend with the downsampled image's fromRGB
                y = getattr(self, f"fromrgb{r // 2}")(avg_pool2(img), lrelu=True)
                x = torch.lerp(y, x, alpha)
        return self.b4(x)
