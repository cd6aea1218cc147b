"""F.conv2d for the training path, with a backward that is itself made of convolutions autograd differentiates
well.

Gradient penalties (R1, WGAN-GP, path length) differentiate a conv's backward. Autograd's own conv backward
is one node whose derivative (_convolution_double_backward) computes the weight's part as a convolution of
batch- and channel-transposed activations: on a CPU two layout copies of [C, N, H, W] and a slow conv (for
PGGAN's 64-channel 32 px convs 45 ms a call and 12 ms a copy, ~10% of a training step). Here the backward is
written as the ops it computes: the input gradient a conv_transpose2d of the output gradient with the same
weight (whose own backward is a conv and oneDNN's weight-gradient kernel), the weight and bias gradients
convolution_backward's. Same values as F.conv2d's backward up to float rounding, first and second order.

A custom Function's `needs_input_grad` says only whether an input requires grad, not whether this backward
pass wants its gradient; autograd's own conv backward asks the engine. So does this one: a penalty's
first-order pass (`torch.autograd.grad(scores.sum(), images, create_graph=True)`) then computes no weight
or bias gradients it would throw away (one weight-gradient conv per layer, ~5% of a PGGAN step).

The conv can end in a leaky ReLU and a clamp (`lrelu`, `clamp`: the epilogue of both architectures'
plain conv layers, bias included). On a CPU in fp32 the activation is then oneDNN's post-op on the
conv's own output (`mkldnn::_convolution_pointwise`; bitwise the separate op where measured), one pass
fewer over the output than a separate leaky ReLU; the backward reads the output, as fused_act's node
does, and is differentiable the same way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import conv_flop_count, register_flop_formula

from .fused_act import LRELU_SLOPE, activation_grad, clamp_


# Private, but what torch.autograd.graph.register_multi_grad_hook asks too; without it (another torch),
# every gradient an input requires is computed, as before.
_will_engine_execute_node = getattr(torch._C, "_will_engine_execute_node", lambda node: True)


def _wanted(needs_grad: bool, t: torch.Tensor | None) -> bool:
    """Whether the running backward pass uses the gradient of `t` (an input that requires grad when
    `needs_grad`): False when the engine will not run the node `t`'s gradient flows into, e.g. a weight's
    under `torch.autograd.grad(..., inputs=images)`."""
    return needs_grad and _will_engine_execute_node(t.grad_fn)


def _non_leaf(t: torch.Tensor | None) -> torch.Tensor | None:
    """`t`, or a view of it when it is a leaf that requires grad: the engine says whether it will run a
    view's backward node, but refuses to say under autograd.grad whether a leaf's gradient is wanted."""
    return t.view_as(t) if t is not None and t.requires_grad and t.grad_fn is None else t


# oneDNN's convolution with a fused post-op (what inductor calls on a CPU); absent in builds without oneDNN.
_conv_pointwise = getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
if _conv_pointwise is not None:
    # so that torch's FlopCounterMode (bench/generator.py, the incremental-render tests) counts it as the conv it is
    @register_flop_formula(_conv_pointwise)
    def _conv_pointwise_flop(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def _conv_act(x, weight, bias, stride: int, padding: int, groups: int, lrelu: bool,
              clamp: float | None) -> tuple[torch.Tensor, float | None]:
    """clamp(leaky_relu(F.conv2d(...)) if lrelu, -clamp, clamp) without autograd, and the clamp its backward
    must apply (None if nothing reached it, see fused_act.clamp_)."""
    if lrelu and _conv_pointwise is not None and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32:
        y = _conv_pointwise(x, weight, bias, [padding] * 2, [stride] * 2, [1, 1], groups, "leaky_relu",
                            [LRELU_SLOPE], "")
    else:
        y = F.conv2d(x, weight, bias, stride, padding, 1, groups)
        if lrelu:
            F.leaky_relu_(y, LRELU_SLOPE)
    return y, (clamp_(y, clamp) if clamp is not None else None)


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride: int, padding: int, groups: int, lrelu: bool, clamp: float | None):
        ctx.conf = (stride, padding, groups)
        y, clamp = _conv_act(x, weight, bias, stride, padding, groups, lrelu, clamp)
        ctx.act = (lrelu, clamp)
        # the activation's backward reads the output (its slope is known from where y lies, as in fused_act)
        ctx.save_for_backward(x, weight, bias, y if lrelu or clamp is not None else None)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, y = ctx.saved_tensors
        stride, padding, groups = ctx.conf
        if y is not None:
            # y detached: the mask's derivative is 0 (see fused_act's _BiasAct.backward)
            grad = activation_grad(grad, y.detach(), ctx.act[0], 1.0, ctx.act[1])
        has_bias = bias is not None
        gx = gw = gb = None
        if _wanted(ctx.needs_input_grad[0], x):
            # the transposed conv's size is ambiguous for stride > 1: output_padding restores x's
            out_pad = [x.shape[d] - ((grad.shape[d] - 1) * stride - 2 * padding + weight.shape[d]) for d in (2, 3)]
            gx = F.conv_transpose2d(grad, weight, None, stride, padding, out_pad, groups)
        want_w, want_b = _wanted(ctx.needs_input_grad[1], weight), _wanted(ctx.needs_input_grad[2], bias)
        if want_w or want_b:
            _, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if has_bias else None, [stride] * 2, [padding] * 2, [1, 1],
                False, [0, 0], groups, [False, want_w, want_b])
        return gx, gw, gb, None, None, None, None, None


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1,
           padding: int = 0, groups: int = 1, lrelu: bool = False, clamp: float | None = None) -> torch.Tensor:
    """F.conv2d(x, weight, bias, stride, padding, groups=groups) (x [N, I, H, W], weight [O, I / groups, k, k],
    square stride and padding), then a leaky ReLU 0.2 if `lrelu` and a clamp to [-clamp, clamp] if `clamp`
    is not None; differentiable twice through convolutions (see the module doc). Without autograd, the conv
    with its epilogue as written; under autocast (which casts F.conv2d's inputs in the forward only) and
    under torch.compile (the trainers compile only passes that are differentiated once; inductor failed to
    lower this backward's depthwise transposed conv), F.conv2d and autograd's own ops."""
    if not torch.is_grad_enabled():
        return _conv_act(x, weight, bias, stride, padding, groups, lrelu, clamp)[0]
    if torch.is_autocast_enabled(x.device.type) or torch.compiler.is_compiling():
        y = F.conv2d(x, weight, bias, stride, padding, 1, groups)
        y = F.leaky_relu(y, LRELU_SLOPE) if lrelu else y
        return y.clamp(-clamp, clamp) if clamp is not None else y
    return _Conv2d.apply(_non_leaf(x), _non_leaf(weight), _non_leaf(bias), stride, padding, groups, lrelu, clamp)
