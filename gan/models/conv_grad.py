"""F.conv2d for the training path, with a backward that is itself made of convolutions autograd differentiates
well.

Gradient penalties (R1, WGAN-GP, path length) differentiate a conv's backward. Autograd's own conv backward
is one node whose derivative (_convolution_double_backward) computes the weight's part as a convolution of
batch- and channel-transposed activations: on a CPU two layout copies of [C, N, H, W] and a slow conv (for
PGGAN's 64-channel 32 px convs 45 ms a call and 12 ms a copy, ~10% of a training step). Here the backward is
written as the ops it computes: the input gradient a conv_transpose2d of the output gradient with the same
weight (whose own backward is a conv and oneDNN's weight-gradient kernel), the weight and bias gradients
convolution_backward's. Same values as F.conv2d's backward up to float rounding, first and second order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride: int, padding: int, groups: int):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, groups, bias is not None)
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, groups, has_bias = ctx.conf
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            # the transposed conv's size is ambiguous for stride > 1: output_padding restores x's
            out_pad = [x.shape[d] - ((grad.shape[d] - 1) * stride - 2 * padding + weight.shape[d]) for d in (2, 3)]
            gx = F.conv_transpose2d(grad, weight, None, stride, padding, out_pad, groups)
        want_w, want_b = ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]
        if want_w or want_b:
            _, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if has_bias else None, [stride] * 2, [padding] * 2, [1, 1],
                False, [0, 0], groups, [False, want_w, want_b])
        return gx, gw, gb, None, None, None


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
           padding: int = 0, groups: int = 1) -> torch.Tensor:
    """F.conv2d(x, weight, bias, stride, padding, groups=groups) (x [N, I, H, W], weight [O, I / groups, k, k],
    square stride and padding), differentiable twice through convolutions (see the module doc). Under
    autocast (which casts F.conv2d's inputs in the forward only), and without autograd, F.conv2d itself."""
    if not torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type):
        return F.conv2d(x, weight, bias, stride, padding, 1, groups)
    return _Conv2d.apply(x, weight, bias, stride, padding, groups)
