"""StyleGAN2 generator and residual discriminator (Karras et al. 2020), pure PyTorch.

Parameter names and arithmetic match the official StyleGAN2-ADA code (`mapping.fc0`,
`synthesis.b4.conv1.affine`, `b1024.fromrgb`, ...), so official weights can be imported and
reproduce the same images. Shapes: z [N, z_dim], ws [N, num_ws, w_dim], img [N, C, H, W].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import NOISE_MODES, ModelConfig
from .layers import (CONV_UP_MATMUL_MAX_PIXELS, CONV_UP_MATMUL_MIN_CHANNELS, FOLD_MIN_PIXELS, LRELU_GAIN, Conv2dLayer,
                     FullyConnectedLayer, MinibatchStdLayer, bias_act, conv_up2_fir, demodulation_coefficients,
                     fast_path_applies, make_fir_filter, modulated_conv2d, modulated_weight, noise_act_clamp_,
                     normalize_2nd_moment, laid_out_weight, scale_channels, tap_square_sums, upsample2d,
                     upsample2d_fast)

# Inference on a CPU: blocks from this resolution on run one sample at a time, each sample's style folded
# into its own weight (see SynthesisNetwork.forward_fast).
PER_SAMPLE_MIN_RES = 64


def check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"unknown noise_mode {noise_mode!r}: use one of {', '.join(NOISE_MODES)}")


class MappingNetwork(nn.Module):
    """z -> normalised z -> `num_layers` lrelu FC layers (lr x0.01) -> w, broadcast to num_ws.

    Conditional (c_dim > 0), as the official code: the label c [N, c_dim] is embedded (`embed`, to
    w_dim features), both z and the embedding are normalised and concatenated before fc0.
    """

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.995, c_dim: int = 0):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, w_dim, num_ws, num_layers
        self.c_dim = c_dim
        self.w_avg_beta = w_avg_beta
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, w_dim)
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def check_c(self, c: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The label a forward pass uses: None for an unconditional model (an empty [N, 0] tensor, as the
        official tools pass, is accepted), a [N, c_dim] tensor for a conditional one."""
        if c is not None and not isinstance(c, torch.Tensor):
            raise TypeError(f"c must be a [N, c_dim] tensor or None, got {type(c).__name__} "
                            "(pass truncation_psi by keyword)")
        if self.c_dim == 0:
            if c is not None and c.numel() != 0:
                raise ValueError(f"this model is unconditional: c must be None, got {list(c.shape)}")
            return None
        if c is None:
            raise ValueError(f"this model is conditional (c_dim={self.c_dim}): pass c, a one-hot [N, {self.c_dim}] label")
        if c.ndim != 2 or c.shape != (n, self.c_dim):
            raise ValueError(f"c must be [{n}, {self.c_dim}], got {list(c.shape)}")
        return c

    def to_w(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim] (and c [N, c_dim] when conditional) -> w [N, w_dim]: untruncated, not broadcast
        to num_ws (what PCA samples)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {list(z.shape)}")
        c = self.check_c(c, z.shape[0])
        x = normalize_2nd_moment(z.to(torch.float32))
        if c is not None:
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(torch.float32)))], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        return x

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        x = self.to_w(z, c)
        if update_emas:  # track the mean w for truncation (training only)
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.register_buffer("resample_filter", make_fir_filter(), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                fused: bool = True, gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)  # [N, in_channels]
        # The output gain rides on the demodulation coefficients, the noise strength and the bias (as in
        # Conv2dLayer.forward: lrelu(g v) = g lrelu(v)), not on a pass over the activations
        g = LRELU_GAIN * gain
        noise = None
        if noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                dtype=x.dtype) * (self.noise_strength * g)
        elif noise_mode == "const":
            noise = self.noise_const * (self.noise_strength * g)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=1,
                             resample_filter=self.resample_filter, fused=fused, gain=g)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias * g, act="lrelu", gain=1.0, clamp=clamp)

    def _kept(self, name: str, make, *args):
        """make(weight, *args), kept between inference calls until the weight changes: keyed by its storage
        and version counter, which every in-place write bumps (optimizer steps, EMA, load_state_dict, copy_
        under no_grad), though not a write through `weight.data`, which this project never makes."""
        key = (self.weight.data_ptr(), self.weight._version, tuple(self.weight.shape), args)
        kept = self.__dict__.get(name)
        if kept is None or kept[0] != key:
            kept = (key, make(self.weight.detach(), *args))
            self.__dict__[name] = kept
        return kept[1]

    def prepared(self, transpose: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(layers.tap_square_sums(weight) [O, I], layers.laid_out_weight(weight, transpose)): what the
        inference path's modulated weight needs that does not depend on the styles (the second costs one
        more copy of the weight, so only layers that fold their weight keep it)."""
        return self._kept("_w2", tap_square_sums), self._kept("_laid_out", laid_out_weight, transpose)

    def forward_fast(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None,
                     gain: float = 1.0) -> torch.Tensor:
        """forward() for inference (layers.fast_path_applies): x [N, I, H, W], w [N, w_dim], noise the
        unscaled noise input ([H', W'], [N, 1, H', W'] or None) -> [N, O, H', W']. lrelu(v) * g ==
        lrelu(v * g) for g > 0, so the gain goes into the weight, bias and noise."""
        g = LRELU_GAIN * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        styles = self.affine.forward_fast(w)  # [N, I]
        bias = self.bias * g
        if noise is not None:
            noise = noise * (self.noise_strength * g)
        n, _, h, wd = x.shape
        cl = torch.channels_last
        if self.up > 1:
            # oneDNN's transposed conv wants channels-last (NCHW is several times slower); on small, wide
            # inputs a matmul with the weight as [O * 9, I] is faster still (conv_up2_fir)
            transposed = n * h * wd > CONV_UP_MATMUL_MAX_PIXELS or x.shape[1] < CONV_UP_MATMUL_MIN_CHANNELS
            if transposed:
                x = x.contiguous(memory_format=cl)
            if n == 1:
                w2, laid_out = self.prepared(transposed)
                weight = modulated_weight(self.weight, styles[0], demodulate=True, gain=g, transpose=transposed,
                                          w2=w2, laid_out=laid_out)
                return noise_act_clamp_(conv_up2_fir(x, weight, self.resample_filter, bias, transposed), noise, clamp)
            weight = modulated_weight(self.weight, None, demodulate=False, gain=1.0, transpose=transposed)
            x = scale_channels(x, styles, cl if transposed else torch.contiguous_format)
            x = conv_up2_fir(x, weight, self.resample_filter, None, transposed)
        elif n == 1 and h * wd >= FOLD_MIN_PIXELS:
            w2, laid_out = self.prepared()
            weight = modulated_weight(self.weight, styles[0], demodulate=True, gain=g, w2=w2, laid_out=laid_out)
            x = F.conv2d(x.contiguous(memory_format=cl), weight, bias, padding=1)
            return noise_act_clamp_(x, noise, clamp)
        else:  # scale the activations, the weight as stored, demodulate the outputs
            x = F.conv2d(scale_channels(x, styles, torch.contiguous_format), self.weight, padding=1)
        dcoefs = demodulation_coefficients(self.weight, styles, self._kept("_w2", tap_square_sums)) * g  # [N, O]
        x.mul_(dcoefs.reshape(n, -1, 1, 1)).add_(bias.reshape(1, -1, 1, 1))
        return noise_act_clamp_(x, noise, clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation: features -> image channels."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / in_channels ** 0.5

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias, clamp=self.conv_clamp)

    def forward_fast(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """forward() for inference: x [N, I, H, W] (contiguous or channels-last) -> [N, C, H, W] contiguous,
        the 1x1 conv with per-sample weights as one batched matmul over the pixels."""
        n, i, h, wd = x.shape
        styles = self.affine.forward_fast(w) * self.weight_gain          # [N, I]
        weight = self.weight.reshape(1, -1, i) * styles.unsqueeze(1)     # [N, C, I]
        pixels = x.reshape(n, i, h * wd)                                 # a view in either memory format
        y = torch.baddbmm(self.bias.reshape(1, -1, 1), weight, pixels)   # [N, C, H * W]
        if self.conv_clamp is not None and self.conv_clamp >= 0:
            y.clamp_(-self.conv_clamp, self.conv_clamp)
        return y.reshape(n, -1, h, wd)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' generator: (const | up-conv) -> conv -> toRGB added to the image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", make_fir_filter(), persistent=False)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str, fused: bool) -> tuple[torch.Tensor, torch.Tensor]:
        # ws [N, num_conv + num_torgb, w_dim]; the toRGB w is shared with the next block's conv0.
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(ws.dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused=fused)
        x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused=fused)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter), fused=fused)
        img = y if img is None else img + y
        return x, img

    def forward_fast(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                     noises: list) -> tuple[torch.Tensor, torch.Tensor]:
        """forward() for inference; noises: the unscaled noise input of each conv (see SynthesisLayer)."""
        x = self.features_fast(x, ws[:, :self.num_conv], noises)
        return x, self.skip_fast(x, img, ws[:, self.num_conv])

    def features_fast(self, x: torch.Tensor | None, ws: torch.Tensor, noises: list) -> torch.Tensor:
        """The convs of forward_fast: ws [N, num_conv, w_dim] -> this block's features."""
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=torch.channels_last)
            return self.conv1.forward_fast(x, ws[:, 0], noises[0])
        x = self.conv0.forward_fast(x, ws[:, 0], noises[0])
        return self.conv1.forward_fast(x, ws[:, 1], noises[1])

    def skip_fast(self, x: torch.Tensor, img: torch.Tensor | None, w: torch.Tensor) -> torch.Tensor:
        """The toRGB of forward_fast: features x and w [N, w_dim] added to the upsampled skip image."""
        y = self.torgb.forward_fast(x, w)
        return y if img is None else upsample2d_fast(img, self.resample_filter).add_(y)

    def layers(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = cfg.w_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = cfg.resolutions
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = cfg.channels_at(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_ch, cfg.channels_at(res), cfg.w_dim, res, cfg.img_channels,
                                   conv_clamp=cfg.conv_clamp)
            self.num_ws += block.num_conv
            if res == self.img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", return_stages: bool = False,
                fused: bool | None = None, reference: bool = False):
        """ws [N, num_ws, w_dim] -> img [N, C, R, R] (and the image after each block with return_stages).

        Without autograd on a CPU this runs the inference fast path (forward_fast), which gives the
        numbers of the reference path to fp32 rounding; reference=True, or an explicit `fused`,
        runs the reference path, the plain definition that training differentiates."""
        check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32)
        if not reference and fused is None and fast_path_applies(ws, self.b4.const):
            return self.forward_fast(ws, noise_mode, return_stages)
        if fused is None:
            # Inference on CUDA: one grouped conv with per-sample weights (the official choice). On CPU
            # the unfused form (scale activations, shared weight) measured faster at every size and batch
            # (1.05-2.3x), and training always uses it.
            fused = not self.training and ws.device.type == "cuda"
        x = img = None
        stages = []
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), noise_mode, fused)
            w_idx += block.num_conv
            if return_stages:
                stages.append(img)
        return (img, stages) if return_stages else img

    def noise_inputs(self, noise_mode: str, n: int, device: torch.device) -> list:
        """The unscaled noise input of every conv in order: what the reference path draws or reads."""
        layers = [layer for res in self.block_resolutions for layer in getattr(self, f"b{res}").layers()]
        if noise_mode == "random":  # drawn in the reference's order, so a seed gives the same noise
            return [torch.randn([n, 1, layer.resolution, layer.resolution], device=device) for layer in layers]
        return [layer.noise_const if noise_mode == "const" else None for layer in layers]

    def forward_fast(self, ws: torch.Tensor, noise_mode: str, return_stages: bool):
        """forward() for inference; see layers.fast_path_applies.

        A batch runs together through the blocks below PER_SAMPLE_MIN_RES, where one weight serves every
        sample, and then one sample at a time, where folding each sample's style into its own weight costs
        less than the passes over the activations that a shared weight needs (SynthesisLayer.forward_fast)."""
        n = ws.shape[0]
        noises = iter(self.noise_inputs(noise_mode, n, ws.device))  # drawn up front, in the reference's order
        plan, w_idx = [], 0  # per block: (block, its ws [N, k, w_dim], its convs' noise inputs)
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            plan.append((block, ws[:, w_idx: w_idx + block.num_conv + block.num_torgb],
                         [next(noises) for _ in range(block.num_conv)]))
            w_idx += block.num_conv
        split = len(plan) if n == 1 else next(
            (k for k, res in enumerate(self.block_resolutions) if res >= PER_SAMPLE_MIN_RES), len(plan))
        x, img, stages = run_blocks_fast(plan[:split], None, None, return_stages)
        if split < len(plan):
            def sample(t: torch.Tensor | None, k: int) -> torch.Tensor | None:  # const noise is shared
                return t if t is None or t.ndim == 2 else t[k: k + 1]
            outs = [run_blocks_fast([(block, w[k: k + 1], [sample(z, k) for z in zs]) for block, w, zs in plan[split:]],
                                    sample(x, k), sample(img, k), return_stages) for k in range(n)]
            img = torch.cat([out[1] for out in outs])
            stages += [torch.cat(per_block) for per_block in zip(*[out[2] for out in outs])]
        return (img, stages) if return_stages else img


def run_blocks_fast(plan: list, x: torch.Tensor | None, img: torch.Tensor | None, return_stages: bool):
    """SynthesisBlock.forward_fast through (block, ws, noise inputs) in order -> x, img, [img after each]."""
    stages = []
    for block, w, noises in plan:
        x, img = block.forward_fast(x, img, w, noises)
        if return_stages:
            stages.append(img)
    return x, img, stages


class Generator(nn.Module):
    arch = "stylegan2"
    supports_style_mixing = True

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.c_dim = cfg.z_dim, cfg.w_dim, cfg.c_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.stage_resolutions = cfg.resolutions
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers,
                                      lr_multiplier=cfg.mapping_lr_multiplier, w_avg_beta=cfg.w_avg_beta,
                                      c_dim=cfg.c_dim)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const",
                update_emas: bool = False) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode)

    def block_ws_layers(self) -> list[tuple[int, list[int]]]:
        """ws indices grouped by the resolution of the conv that reads them (for mixing UIs).

        ws[0] -> 4x4 conv; ws[1], ws[2] -> 8x8 conv0/conv1; ...; the last index is the final toRGB.
        """
        groups, idx = [], 0
        for res in self.stage_resolutions:
            block = getattr(self.synthesis, f"b{res}")
            n = block.num_conv + (block.num_torgb if res == self.img_resolution else 0)
            groups.append((res, list(range(idx, idx + n))))
            idx += n
        return groups


class DiscriminatorBlock(nn.Module):
    """Residual D block: (fromRGB) -> conv -> down-conv, plus a 1x1 down-sampled skip, x sqrt(0.5)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=0.5 ** 0.5)
        x = self.conv1(self.conv0(x), gain=0.5 ** 0.5)
        return y + x


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch stddev -> conv -> FC -> FC(1)."""

    def __init__(self, in_channels: int, mbstd_group_size: int, mbstd_num_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * 16, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, 4, 4] -> [N, 1]
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    arch = "stylegan2"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.block_resolutions = cfg.resolutions[::-1][:-1]  # [R, R/2, ..., 8]
        for res in self.block_resolutions:
            in_ch = cfg.channels_at(res) if res < self.img_resolution else 0
            setattr(self, f"b{res}", DiscriminatorBlock(in_ch, cfg.channels_at(res), cfg.channels_at(res // 2),
                                                        cfg.img_channels, conv_clamp=cfg.conv_clamp))
        self.b4 = DiscriminatorEpilogue(cfg.channels_at(4), cfg.mbstd_group_size, cfg.mbstd_num_channels,
                                        conv_clamp=cfg.conv_clamp)

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # [N, C, R, R] -> logits [N, 1]
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)
