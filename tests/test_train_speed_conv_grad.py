"""conv_grad.conv2d (the training path's conv, whose backward is written as convolutions) gives F.conv2d's
values and first- and second-order gradients (the gradient penalties differentiate a conv's backward), and
computes only the gradients the running backward pass wants."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import OpNames
from gan.models.conv_grad import conv2d

ATOL = 1e-4
SHAPES = {  # (stride, padding, kernel, input size, groups)
    "3x3 same": (1, 1, 3, 8, 1),
    "3x3 stride 2, odd input": (2, 0, 3, 9, 1),
    "3x3 stride 2, even input": (2, 1, 3, 8, 1),
    "1x1": (1, 0, 1, 5, 1),
    "grouped": (1, 1, 3, 6, 2),
}


def make(case, dtype=torch.float32, seed=0):
    stride, padding, k, size, groups = SHAPES[case]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, size, size, generator=g, dtype=dtype).requires_grad_(True)
    w = torch.randn(6, 4 // groups, k, k, generator=g, dtype=dtype).requires_grad_(True)
    b = torch.randn(6, generator=g, dtype=dtype).requires_grad_(True)
    return x, w, b, dict(stride=stride, padding=padding, groups=groups)


@pytest.mark.parametrize("case", SHAPES)
def test_values_and_first_and_second_order_gradients_equal_f_conv2d(case):
    x, w, b, kw = make(case)
    results = []
    for f in (conv2d, F.conv2d):
        y = f(x, w, b, **kw)
        v = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
        gx, gw, gb = torch.autograd.grad((y * v).sum(), [x, w, b], create_graph=True)
        # R1-like: the input gradient's squared norm (depends on the weight), plus the weight gradient's
        # (depends on the input)
        second = torch.autograd.grad(gx.square().sum() + gw.square().sum(), [x, w])
        results.append([y, gx, gw, gb, *second])
    for got, want in zip(*results):
        assert got.shape == want.shape and (got - want).abs().max() < ATOL * max(1.0, want.abs().max())


@pytest.mark.parametrize("case", SHAPES)
def test_gradcheck_and_gradgradcheck_in_float64(case):
    x, w, b, kw = make(case, torch.float64, seed=1)
    fn = lambda x, w, b: conv2d(x, w, b, **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def test_channels_last_inputs_give_the_same_gradients():
    x, w, b, kw = make("3x3 same")
    xc = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    grads = [torch.autograd.grad(conv2d(t, w, b, **kw).square().sum(), [t, w, b]) for t in (x, xc)]
    for got, want in zip(*grads):
        assert (got - want).abs().max() < ATOL * max(1.0, want.abs().max())


class ConvBackwardCalls(TorchDispatchMode):
    """Records the output mask (input, weight, bias) of every convolution_backward that runs."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(tuple(args[-1]))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("leaf_weight", [True, False], ids=["leaf weight", "scaled weight"])
def test_a_penalty_first_order_pass_computes_no_weight_gradient(leaf_weight):
    """autograd.grad(..., inputs=x) wants only x's gradient: the weight and bias gradients are neither computed
    nor lost for a later backward that wants them."""
    x, w0, b, kw = make("3x3 same")
    w = w0 if leaf_weight else w0 * 2.0
    y = conv2d(x, w, b, **kw)
    with ConvBackwardCalls() as calls:
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    assert not any(mask[1] or mask[2] for mask in calls.masks)  # the input gradient is a transposed conv
    with ConvBackwardCalls() as calls:
        (gw, gb) = torch.autograd.grad(y.square().sum(), [w0, b], retain_graph=True)
    assert any(mask[1] and mask[2] for mask in calls.masks)
    want = torch.autograd.grad(F.conv2d(x, w, b, **kw).square().sum(), [w0, b], retain_graph=True)
    for got, ref in zip((gw, gb), want):
        assert (got - ref).abs().max() < ATOL * ref.abs().max()
    # and the penalty's own backward still reaches the weight (through the input gradient)
    gx.square().sum().backward()
    assert w0.grad is not None and w0.grad.abs().sum() > 0


# ---- the epilogue: leaky ReLU and clamp on the conv's output --------------------------------------------

EPILOGUES = {"lrelu": (True, None), "lrelu + clamp": (True, 0.7), "clamp": (False, 0.7)}


def plain_epilogue(y, lrelu, clamp):
    """Written with other ops than conv_grad uses (where, minimum / maximum), autograd differentiating it."""
    if lrelu:
        y = torch.where(y > 0, y, 0.2 * y)
    if clamp is not None:
        y = torch.minimum(torch.maximum(y, torch.tensor(-clamp, dtype=y.dtype)), torch.tensor(clamp, dtype=y.dtype))
    return y


@pytest.mark.parametrize("case", ["3x3 same", "3x3 stride 2, even input", "grouped"])
@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_the_epilogue_values_and_gradients_equal_the_plain_ops(case, epilogue):
    x, w, b, kw = make(case)
    lrelu, clamp = EPILOGUES[epilogue]
    results = []
    for f in (lambda: conv2d(x, w, b, **kw, lrelu=lrelu, clamp=clamp),
              lambda: plain_epilogue(F.conv2d(x, w, b, **kw), lrelu, clamp)):
        y = f()
        v = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
        gx, gw, gb = torch.autograd.grad((y * v).sum(), [x, w, b], create_graph=True)
        second = torch.autograd.grad(gx.square().sum() + gw.square().sum(), [x, w])
        results.append([y, gx, gw, gb, *second])
    if clamp is not None:
        assert (results[1][0].abs() == clamp).any()  # the clamp is reached
    for got, want in zip(*results):
        assert got.shape == want.shape and (got - want).abs().max() < ATOL * max(1.0, want.abs().max())
    with torch.no_grad():  # and without autograd
        assert (conv2d(x, w, b, **kw, lrelu=lrelu, clamp=clamp) - results[1][0]).abs().max() < ATOL


@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_the_epilogue_passes_gradcheck_and_gradgradcheck_in_float64(epilogue):
    x, w, b, kw = make("3x3 same", torch.float64, seed=1)
    lrelu, clamp = EPILOGUES[epilogue]
    fn = lambda x, w, b: conv2d(x, w, b, **kw, lrelu=lrelu, clamp=clamp * 3 if clamp else None)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


@pytest.mark.skipif(not hasattr(torch.ops.mkldnn, "_convolution_pointwise"), reason="a torch without oneDNN")
@pytest.mark.parametrize("grad", [True, False], ids=["training", "inference"])
def test_on_a_cpu_the_leaky_relu_is_the_convs_own_post_op(grad):
    x, w, b, kw = make("3x3 same")
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.set_grad_enabled(grad), OpNames() as ops:
        y = conv2d(x, w, b, **kw, lrelu=True)
    assert "mkldnn::_convolution_pointwise" in ops.names and not any("leaky_relu" in n for n in ops.names)
    assert torch.equal(y, F.leaky_relu(F.conv2d(x, w, b, **kw), 0.2))  # the same numbers as the separate op


@pytest.mark.parametrize("grad", [True, False], ids=["training", "inference"])
def test_flop_counting_sees_the_fused_conv(grad):
    # bench/generator.py's GFLOP per image comes from torch's FlopCounterMode: the fused conv counts as a conv
    from torch.utils.flop_counter import FlopCounterMode
    x, w, b, kw = make("3x3 same")
    with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
        y = conv2d(x, w, b, **kw, lrelu=True)
    assert counter.get_total_flops() == 2 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
