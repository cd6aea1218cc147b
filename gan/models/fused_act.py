"""Bias + activation + gain + clamp as one autograd node, for the training (autograd) path.

layers.bias_act's plain form, y = clamp(act(x + b) * gain, -c, c), is four ops, and autograd keeps
what each one's backward reads (x + b for the leaky ReLU, the product for the clamp's two masks) and
runs five to six passes backward (the clamp's ge / le / and / where, the gain, the leaky ReLU). Every
piece is linear in x with a slope that depends only on where y lies, so the backward can be computed
from the output y alone:

    dL/dx = dL/dy * gain * (1 if y > 0 else 0.2 for lrelu) * (0 if y sits at -c or c)

(y > 0 exactly where x + b > 0, as gain > 0; the clamp passes no gradient where it clamped). That is
one saved tensor and three passes over the gradient. The slope is piecewise constant, so the backward
is again a multiply of its input by the same mask: the second-order gradient (R1 differentiates D's
gradient, path-length regularisation G's) is that multiply once more, and zero through y.

The forward computes the same operations in the same order as the plain form (in place, on one
buffer), so its values are bitwise the plain form's; the backward equals autograd's of the plain form
except for a y exactly at a clamp bound, where this one passes no gradient (as the official bias_act).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2


def _masked(grad: torch.Tensor, y: torch.Tensor, lrelu: bool, gain: float, clamp: float | None) -> torch.Tensor:
    """grad * dy/dx, read from the output y (same shape as grad)."""
    if clamp is not None:
        grad = torch.ops.aten.hardtanh_backward(grad, y, -clamp, clamp)  # 0 where y is at (or beyond) a bound
    if gain != 1:
        grad = grad * gain
    if lrelu:
        grad = torch.ops.aten.leaky_relu_backward(grad, y, LRELU_SLOPE, True)  # y is the result: its sign is x's
    return grad


class _ActGrad(torch.autograd.Function):
    """grad -> grad * dy/dx(y), differentiable in grad (the same multiply); y is a constant of it."""

    @staticmethod
    def forward(ctx, grad, y, lrelu: bool, gain: float, clamp: float | None):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y)
        ctx.params = (lrelu, gain, clamp)
        return _masked(grad, y, lrelu, gain, clamp)

    @staticmethod
    def backward(ctx, grad_grad):
        if grad_grad is None:
            return None, None, None, None, None
        (y,) = ctx.saved_tensors
        return _ActGrad.apply(grad_grad, y, *ctx.params), None, None, None, None


def activation_grad(grad: torch.Tensor, y: torch.Tensor, lrelu: bool, gain: float, clamp: float | None) -> torch.Tensor:
    """grad * dy/dx for y = clamp(act(x) * gain, -clamp, clamp), read from the output y (detached): itself
    differentiable in grad, by the same multiply (for second-order passes). Also conv_grad's epilogue."""
    return _ActGrad.apply(grad, y, lrelu, gain, clamp)


def clamp_(y: torch.Tensor, clamp: float) -> float | None:
    """Clamps y in place to [-clamp, clamp] and returns the clamp its backward must apply: None when no
    element reached a bound. The conv clamp (256 in StyleGAN2) is a safety net real activations seldom
    reach, so on a CPU a read-only min/max pass over y's memory decides first; when nothing reaches it the
    clamp's pass forward and its mask's pass backward are skipped (the same values: hardtanh's gradient
    is the identity strictly inside the bounds). On other devices the check would wait for the device: the
    clamp is always applied there."""
    if y.device.type == "cpu":
        # the min and max over memory as laid out: over a channels-last 4D view they are several times slower
        flat = y.permute(0, 2, 3, 1) if y.ndim == 4 and y.is_contiguous(memory_format=torch.channels_last) else y
        lo, hi = torch.aminmax(flat.reshape(-1))
        if bool((-clamp < lo) & (hi < clamp)):  # (a NaN compares False: clamped, as the plain op would)
            return None
    y.clamp_(-clamp, clamp)
    return clamp


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, lrelu: bool, gain: float, clamp: float | None):
        if b is not None:
            y = x + b
            if lrelu:
                F.leaky_relu_(y, LRELU_SLOPE)
        else:   # the first op writes the new buffer (a clone and an in-place leaky ReLU were two passes)
            y = F.leaky_relu(x, LRELU_SLOPE) if lrelu else x.clone()
        if gain != 1:
            y.mul_(gain)
        if clamp is not None:
            clamp = clamp_(y, clamp)
        # An undefined incoming gradient (a second-order pass reaching y with nothing to add) stays None, as
        # autograd's own ops leave it, rather than a zero tensor sent on to b and beyond.
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y)
        ctx.params = (lrelu, gain, clamp)
        ctx.bias_dims = [d for d in range(x.ndim) if d != 1]
        return y

    @staticmethod
    def backward(ctx, grad):
        if grad is None:
            return None, None, None, None, None
        (y,) = ctx.saved_tensors
        # y detached: dx's derivative through y is 0, and an edge to y would make a second-order backward
        # carry zeros back through the whole network that made y
        dx = activation_grad(grad, y.detach(), *ctx.params)
        db = dx.sum(dim=ctx.bias_dims, keepdim=True) if ctx.needs_input_grad[1] else None  # b's shape [1, C, 1...]
        return dx, db, None, None, None


def fused_bias_act(x: torch.Tensor, b: torch.Tensor | None, lrelu: bool, gain: float,
                   clamp: float | None) -> torch.Tensor:
    """clamp(act(x + b) * gain, -clamp, clamp) for x [N, C, ...] and b [C] (or None); act is leaky ReLU 0.2
    when lrelu, else the identity; clamp None: no clamp. gain must be positive."""
    if lrelu and not gain > 0:
        raise ValueError(f"fused_bias_act: a leaky ReLU's gain must be positive (the backward reads the sign of y), got {gain}")
    if b is not None:
        b = b.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    return _BiasAct.apply(x, b, lrelu, float(gain), clamp)
