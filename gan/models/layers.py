"""Building blocks shared by StyleGAN2 and PGGAN, in pure PyTorch (no custom CUDA ops).

The arithmetic follows the official StyleGAN2-ADA code so that its weights, once imported,
give the same images: weights are stored unscaled (N(0, 1) / lr_multiplier) and scaled at run
time ("equalised learning rate"), FIR resampling uses the [1, 3, 3, 1] filter, and leaky ReLU
outputs are multiplied by sqrt(2) and optionally clamped.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .conv_grad import conv2d
from .fused_act import LRELU_SLOPE, fused_bias_act

LRELU_GAIN = math.sqrt(2.0)


# ---- FIR resampling ------------------------------------------------------------------------------

def make_fir_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    """Separable 1D taps -> normalised 2D filter [fh, fw] that sums to 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter, downsample. x [N, C, H, W], f [fh, fw].

    pad = (x0, x1, y0, y1); negative values crop. The filter is symmetric here, so convolution
    and correlation agree. The depthwise conv is conv_grad's: autograd's own second-order pass through a
    depthwise conv computes the constant filter's gradient too, one convolution per channel (R1 and path
    length regularisation, ~7% of a StyleGAN2 step at 32 px).
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    weight = fir_weight(f, c, gain, x.dtype)
    px0, px1, py0, py1 = pad
    if px0 == px1 == py0 == py1 >= 0:
        # The same sums as padding, filtering and taking every down-th pixel, without the padded copy (and its
        # backward) and computing only the pixels kept (the D's skips and down-convs, in training)
        return conv2d(x, weight, padding=px0, stride=down, groups=c)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    return conv2d(x, weight, stride=down, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    fw = f.shape[-1]
    p0 = (fw + factor - 1) // 2
    p1 = (fw - factor) // 2
    return upfirdn2d(x, f, up=factor, pad=(p0, p1, p0, p1), gain=factor ** 2)


def downsample2d(x: torch.Tensor, f: torch.Tensor, factor: int = 2) -> torch.Tensor:
    fw = f.shape[-1]
    p0 = (fw - factor + 1) // 2
    p1 = (fw - factor) // 2
    return upfirdn2d(x, f, down=factor, pad=(p0, p1, p0, p1))


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1, bias: torch.Tensor | None = None,
                    lrelu: bool = False, clamp: float | None = None) -> torch.Tensor:
    """Conv with optional 2x FIR up- or down-sampling, as the official conv2d_resample.

    x [N, C_in, H, W], w [C_out, C_in / groups, k, k]. Up: strided transposed conv, then FIR.
    Down: FIR, then strided conv (1x1 kernels: FIR-downsample first, then conv). The convs are
    conv_grad.conv2d's (penalties differentiate them twice). Without up-sampling the conv is the last op,
    and can add a bias [C_out] and end in a leaky ReLU 0.2 and a clamp (conv_grad's epilogue).
    """
    epilogue = dict(bias=bias, lrelu=lrelu, clamp=clamp)
    if up > 1 and (bias is not None or lrelu or clamp is not None):
        raise ValueError("conv2d_resample: an up-sampling conv ends in the FIR, which has no epilogue")
    kw = w.shape[-1]
    px0 = px1 = padding
    if f is not None:
        fw = f.shape[-1]
        if up > 1:
            px0 += (fw + up - 1) // 2
            px1 += (fw - up) // 2
        if down > 1:
            px0 += (fw - down + 1) // 2
            px1 += (fw - down) // 2
    if kw == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, pad=(px0, px1, px0, px1))
        return conv2d(x, w, groups=groups, **epilogue)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, pad=(px0, px1, px0, px1))
        return conv2d(x, w, stride=down, groups=groups, **epilogue)
    if up > 1:
        # Transposed conv wants [C_in, C_out / groups, k, k].
        if groups == 1:
            wt = w.transpose(0, 1)
        else:
            o, i, kh, kww = w.shape
            wt = w.reshape(groups, o // groups, i, kh, kww).transpose(1, 2).reshape(groups * i, o // groups, kh, kww)
        px0 -= kw - 1
        px1 -= kw - up
        pt = max(min(-px0, -px1), 0)
        x = F.conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
        return upfirdn2d(x, f, pad=(px0 + pt, px1 + pt, px0 + pt, px1 + pt), gain=up ** 2)
    return conv2d(x, w, padding=px0, groups=groups, **epilogue)


# ---- activation ----------------------------------------------------------------------------------

def bias_act(x: torch.Tensor, b: torch.Tensor | None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None) -> torch.Tensor:
    """clamp(act(x + b) * gain, -clamp, clamp): b [C] broadcast over dim 1 of x [N, C, ...]; act 'lrelu'
    (leaky ReLU 0.2, default gain sqrt(2)) or 'linear'; clamp None or negative: none. One autograd node
    whose backward reads only the output (fused_act.py), or x itself when there is nothing to do."""
    if act not in ("lrelu", "linear"):
        raise ValueError(f"unknown activation {act!r}")
    lrelu = act == "lrelu"
    gain = (LRELU_GAIN if lrelu else 1.0) if gain is None else gain
    if not lrelu and b is None and gain == 1 and (clamp is None or clamp < 0):
        return x  # nothing to do (a node here would copy x)
    return fused_bias_act(x, b, lrelu, gain, clamp if clamp is not None and clamp >= 0 else None)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square (StyleGAN z normalisation, PGGAN pixel norm)."""
    # sum / n, not mean: mean's backward materialises its expanded gradient in NCHW, and for a channels-last
    # x the ops after it mix layouts (PGGAN's 64 px pixel norms took ~3x as long backward)
    return x * (x.square().sum(dim=dim, keepdim=True) / x.shape[dim] + eps).rsqrt()


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_2nd_moment(x, dim=1)


# ---- equalised learning-rate layers --------------------------------------------------------------

class FullyConnectedLayer(nn.Module):
    """Dense layer whose weight is N(0, 1) / lr_multiplier and scaled by lr_multiplier / sqrt(in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0, gain: float = 1.0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = gain * lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        if self.activation == "lrelu" and b is not None and not torch.is_grad_enabled():
            # Inference: fold the lrelu gain into weight and bias (lrelu(g x) == g lrelu(x) for g > 0), then
            # one addmm and an in-place lrelu instead of four passes over [N, out]: faster on CPU
            # for the large batches of direction sampling (measured 0.27 vs 0.31 s for 10k z through 8 x 512
            # layers on a loaded 2-core CPU).
            return F.leaky_relu_(torch.addmm(b * LRELU_GAIN, x, (w * LRELU_GAIN).t()), LRELU_SLOPE)
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        """forward() of a linear layer with bias, for inference: the gains on the (small) output, not the weight."""
        if self.activation != "linear" or self.bias is None:
            return self.forward(x)
        return torch.addmm(self.bias * self.bias_gain, x, self.weight.t(), alpha=self.weight_gain)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalised-LR conv with optional FIR up/down-sampling, bias, activation and clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, conv_clamp: float | None = None,
                 resample_filter: bool = True):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", make_fir_filter(), persistent=False)
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = LRELU_GAIN if activation == "lrelu" else 1.0
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        # The output gain (activation gain x `gain`, positive) rides on the weight and bias: g lrelu(v) =
        # lrelu(g v) and g conv(x, w) = conv(x, g w), so the activation does one pass fewer forward and
        # backward over the output (the same values up to rounding)
        g = self.act_gain * gain
        w = self.weight.to(x.dtype) * (self.weight_gain * g)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None and self.conv_clamp >= 0 else None
        b = self.bias.to(x.dtype) * g if self.bias is not None else None
        if self.up == 1:  # the conv is the last op: bias, activation and clamp are its epilogue (conv_grad)
            return conv2d_resample(x, w, self.resample_filter, down=self.down, padding=self.padding, bias=b,
                                   lrelu=self.activation == "lrelu", clamp=clamp)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, padding=self.padding)
        return bias_act(x, b, act=self.activation, gain=1.0, clamp=clamp)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     fused: bool = True, gain: float = 1.0) -> torch.Tensor:
    """StyleGAN2 weight modulation/demodulation.

    x [N, I, H, W], weight [O, I, k, k], styles [N, I], noise broadcastable to [N, O, H', W'], added after the
    conv output is multiplied by `gain` (with demodulation it rides on the coefficients, at no cost).
    Fused: one grouped conv with per-sample weights (the official inference path on CUDA). Unfused:
    scale the activations instead (same result up to rounding; the training form, and faster on CPU).
    """
    n = x.shape[0]
    o, i, kh, kw = weight.shape
    dcoefs = None
    if demodulate:
        # sum over I, k, k of (weight * style)^2 = styles^2 @ (weight^2 summed over k, k): [N, I] @ [I, O]
        # -> [N, O], without the per-sample weights [N, O, I, k, k] (144 MiB a layer at batch 16, 512 channels)
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        if gain != 1:
            dcoefs = dcoefs * gain
    elif gain != 1:
        styles = styles * gain
    if not fused:
        x = x * styles.reshape(n, i, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if not demodulate:
            return x if noise is None else x + noise.to(x.dtype)
        dcoefs = dcoefs.to(x.dtype).reshape(n, o, 1, 1)
        # noise + x * dcoefs as one pass (the same backward as a multiply and an add)
        return x * dcoefs if noise is None else torch.addcmul(noise.to(x.dtype), x, dcoefs)
    w = weight.unsqueeze(0) * styles.reshape(n, 1, i, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * dcoefs.reshape(n, o, 1, 1, 1)
    x = x.reshape(1, n * i, *x.shape[2:])
    w = w.reshape(n * o, i, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, o, *x.shape[2:])
    return x if noise is None else x + noise.to(x.dtype)


# ---- inference fast paths -----------------------------------------------------------------------
# The functions above are the definition (and what training differentiates). Those below compute the
# same numbers for inference on a CPU with fewer passes over memory: style, demodulation and gains
# folded into a per-sample weight, bias in the conv's own bias argument, FIR padding in the conv's
# padding argument, noise / activation / clamp in place, channels-last activations (oneDNN's fast
# layout). They allocate no autograd state and modify their conv outputs in place, so they are only
# for tensors nobody differentiates; tests/test_fast_paths.py holds them to the definition.

# Inference: convs whose input has at least this many pixels fold the style into a per-sample weight and
# run channels-last; smaller ones (512-channel weights on a few pixels) leave the weight as stored and scale
# the activations, which costs less than rewriting the weight.
FOLD_MIN_PIXELS = 64 * 64
# Inference: 2x upsampling convs with at least this many input channels, on at most this many input
# pixels in the whole batch, use a matmul and col2im rather than oneDNN's transposed conv (see
# conv_up2_fir). Measured with 2 threads: the matmul wins at 512 channels up to batch 1 x 16x16,
# 4 x 8x8, 16 x 4x4 (by 10-30%), and loses at 256 channels and below even at batch 1, and on larger
# batches (2-3x slower at batch 32, which training's D phase runs without autograd).
CONV_UP_MATMUL_MAX_PIXELS = 16 * 16
CONV_UP_MATMUL_MIN_CHANNELS = 512


def fast_path_applies(*tensors: torch.Tensor) -> bool:
    """Whether the inference fast paths may run on these tensors: no autograd, fp32 on a CPU, no autocast."""
    return (not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
            and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors))


def fir_weight(f: torch.Tensor, channels: int, gain: float, dtype: torch.dtype) -> torch.Tensor:
    """The depthwise conv weight [C, 1, fh, fw] that upfirdn2d builds (a broadcast view, not a copy)."""
    return (f * gain).to(dtype).flip([0, 1])[None, None].expand(channels, 1, -1, -1)


def upsample2d_fast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """upsample2d(x, f) for a 4-tap filter, without the zero-inserted copy."""
    if f.shape[-1] != 4:
        return upsample2d(x, f)
    if torch.equal(f, make_fir_filter().to(f)):
        # [1, 3, 3, 1] upsampling is bilinear interpolation (weights 1/4, 3/4) except on the border rows and
        # columns, where the FIR sees a zero beyond the edge and bilinear the edge value itself: those are
        # 3/4 of bilinear's. Six times faster than the transposed conv below for a 3-channel image.
        y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        for edge in (y[..., 0, :], y[..., -1, :], y[..., :, 0], y[..., :, -1]):
            edge.mul_(0.75)
        return y
    c = x.shape[1]
    # Zero insertion, pad (2, 1) and correlation with the flipped filter == a stride-2 transposed conv with
    # the filter itself, cropped by 1 on each side.
    weight = (f * 4.0).to(x.dtype)[None, None].expand(c, 1, -1, -1)
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=c)


def tap_square_sums(weight: torch.Tensor) -> torch.Tensor:
    """The sum over the k x k taps of weight^2, [O, I], for weight [O, I, k, k] (a matrix-vector product
    is faster than a reduction over 9 taps)."""
    o, i, kh, kw = weight.shape
    return torch.mv(weight.reshape(-1, kh * kw).square(), weight.new_ones(kh * kw)).reshape(o, i)


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, w2: torch.Tensor | None = None) -> torch.Tensor:
    """modulated_conv2d's dcoefs [N, O] for weight [O, I, k, k] and styles [N, I]: 1 / |weight * styles|
    over (I, k, k), as sum_i styles_i^2 w2[o, i] with w2 = tap_square_sums(weight) (given, or computed)."""
    w2 = tap_square_sums(weight) if w2 is None else w2
    return (styles.square() @ w2.t() + 1e-8).rsqrt()


def laid_out_weight(weight: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """weight [O, I, k, k] as modulated_weight writes its result: channels-last, and [I, O, k, k] with
    transpose (a copy; rewriting a weight into this layout costs several times the multiply itself)."""
    weight = weight.detach().transpose(0, 1) if transpose else weight.detach()
    return weight.contiguous(memory_format=torch.channels_last)


def modulated_weight(weight: torch.Tensor, styles: torch.Tensor | None, demodulate: bool, gain: float,
                     transpose: bool = False, w2: torch.Tensor | None = None,
                     laid_out: torch.Tensor | None = None) -> torch.Tensor:
    """The weight of modulated_conv2d for one sample (styles [I]; None: the weight as stored), times gain:
    [O, I, k, k], or [I, O, k, k] for conv_transpose2d with transpose, channels-last (the layout oneDNN
    reads from). With w2 (tap_square_sums(weight)) and laid_out (laid_out_weight(weight, transpose)),
    which do not depend on the styles and a caller may keep, the demodulation comes first, from w2, and
    the weight is one streaming multiply (styles_i * d_o * gain per [o, i]); without, one transposing
    write, then the demodulation norms read contiguous rows of it."""
    o, i, kh, kw = weight.shape
    if w2 is not None and laid_out is not None and styles is not None and demodulate:
        d = demodulation_coefficients(weight, styles[None], w2)[0] * gain        # [O]
        scale = d[:, None] * styles[None, :]                                      # [O, I]
        return laid_out * (scale.t() if transpose else scale)[:, :, None, None]   # keeps laid_out's layout
    scale = gain if styles is None else styles.reshape(1, i, 1, 1)
    if transpose:
        weight = weight.transpose(0, 1)
        scale = scale if styles is None else scale.transpose(0, 1)
    out = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device, memory_format=torch.channels_last)
    torch.mul(weight, scale, out=out)
    if styles is None:
        return out
    rows = out.permute(0, 2, 3, 1)  # [O, k, k, I] or [I, k, k, O]: the memory, contiguous
    if demodulate:  # the sum over (I, k, k) of the modulated weight squared, for each output channel
        if transpose:  # column sums, in blocks that stay in cache (vector_norm over dim 0 is 20x slower)
            d = sum(block.square().sum(dim=0) for block in rows.reshape(-1, o).split(256))
        else:
            d = torch.linalg.vector_norm(rows.reshape(o, -1), dim=1).square_()
        d = d.add_(1e-8).rsqrt_().mul_(gain)
        rows.mul_(d if transpose else d.reshape(o, 1, 1, 1))
    elif gain != 1:
        out.mul_(gain)
    return out


def scale_channels(x: torch.Tensor, scale: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """x [N, C, H, W] * scale [N, C], written in the given memory format (the layout change in the same pass)."""
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=memory_format)
    return torch.mul(x, scale.reshape(*scale.shape, 1, 1), out=out)


def conv_up2_fir(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, bias: torch.Tensor | None,
                 transposed: bool) -> torch.Tensor:
    """conv2d_resample(x, w, f, up=2, padding=1) plus bias, for a 3x3 w and a 4-tap f (make_fir_filter's):
    the official order (stride-2 transposed conv, then the FIR), the FIR's padding (1 on each side for 4
    taps) in its conv's padding argument. x [N, I, H, W] -> [N, O, 2H, 2W].

    weight: [I, O, 3, 3] channels-last (transposed, for oneDNN's transposed conv), or [O, I, 3, 3]
    channels-last for small inputs, where one matmul [O * 9, I] @ [I, H * W] and a col2im (F.fold)
    compute the transposed conv two to three times faster than oneDNN does (measured up to 16x16)."""
    if weight.shape[-1] != 3 or f.shape[-1] != 4:
        raise ValueError(f"conv_up2_fir takes 3x3 weights and 4-tap filters, got {list(weight.shape)}, {list(f.shape)}")
    if transposed:
        o = weight.shape[1]
        x = F.conv_transpose2d(x, weight, stride=2)                                  # [N, O, 2H + 1, 2W + 1]
    else:
        (o, i), (n, _, h, w) = weight.shape[:2], x.shape
        cols = weight.permute(0, 2, 3, 1).reshape(o * 9, i) @ x.reshape(n, i, h * w)  # [N, O * 9, H * W]
        x = F.fold(cols, (2 * h + 1, 2 * w + 1), kernel_size=3, stride=2)            # [N, O, 2H + 1, 2W + 1]
    return F.conv2d(x, fir_weight(f, o, 4.0, x.dtype), bias, padding=1, groups=o)  # [N, O, 2H, 2W]


def noise_act_clamp_(x: torch.Tensor, noise: torch.Tensor | None, clamp: float | None) -> torch.Tensor:
    """In place: x + noise, leaky ReLU 0.2, clamp (gains are already folded into x and noise)."""
    if noise is not None:
        x.add_(noise)
    F.leaky_relu_(x, LRELU_SLOPE)
    if clamp is not None and clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


def normalize_2nd_moment_(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """normalize_2nd_moment(x, dim=1) in place, one read for the norms and one read-write."""
    scale = torch.linalg.vector_norm(x, dim=1, keepdim=True).square_().div_(x.shape[1]).add_(eps).rsqrt_()
    return x.mul_(scale)


def stddev_group_pair(a: torch.Tensor, b: torch.Tensor, group_size: int) -> torch.Tensor | None:
    """a and b [n, C, H, W] as one batch [2n, C, H, W] whose minibatch-stddev groups (MinibatchStdLayer:
    sample i with i + M, i + 2M, ... for M = N / g) hold the samples they hold in a and b alone, so that a
    discriminator's one pass over it scores each sample as two passes would; None where no such layout
    exists (g = gcd(group_size, N) differs for n and 2n). Split the scores with split_group_pair. The batch
    keeps a's memory format (a channels-last D is several times slower on NCHW input)."""
    n = a.shape[0]
    g = math.gcd(group_size, n)
    if b.shape != a.shape or math.gcd(group_size, 2 * n) != g:
        return None
    m = n // g
    channels_last = a.ndim == 4 and a.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    both = torch.empty([2 * n, *a.shape[1:]], dtype=a.dtype, device=a.device, memory_format=fmt)
    groups = both.view(g, 2, m, *a.shape[1:])     # splitting the batch dim is a view in either format
    groups[:, 0].copy_(a.view(g, m, *a.shape[1:]))
    groups[:, 1].copy_(b.view(g, m, *b.shape[1:]))
    return both


def split_group_pair(scores: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores [2n, ...] of a stddev_group_pair batch -> (a's [n, ...], b's [n, ...])."""
    n = scores.shape[0] // 2
    g = math.gcd(group_size, n)
    pairs = scores.reshape(g, 2, n // g, *scores.shape[1:])
    return pairs[:, 0].reshape(n, *scores.shape[1:]), pairs[:, 1].reshape(n, *scores.shape[1:])


class MinibatchStdLayer(nn.Module):
    """Appends the per-group standard deviation of features as extra channels (PGGAN/StyleGAN)."""

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C + F, H, W]
        n, c, h, w = x.shape
        g = math.gcd(self.group_size, n)  # a group size that divides the batch (official asserts)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)          # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()      # [n, F, c, H, W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(g, 1, h, w)                        # [N, F, H, W]
        return torch.cat([x, y], dim=1)

