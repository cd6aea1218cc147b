"""FIR filtering with a symmetric padding (the D's down-convs and skips) runs as one strided depthwise conv
with the padding in it; it gives the plain pad -> filter -> subsample's values and first- and second-order
gradients (R1 differentiates D twice), without autograd's per-channel filter gradients in the second-order pass."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from gan.models.layers import conv2d_resample, make_fir_filter, upfirdn2d

ATOL = 1e-4


def plain_fir(x, f, down, pad):
    """Zero-pad, correlate each channel with the flipped filter by hand (a sum of shifted slices), subsample."""
    x = F.pad(x, [pad] * 4)
    fh, fw = f.shape
    h, w = x.shape[2] - fh + 1, x.shape[3] - fw + 1
    k = f.flip([0, 1])
    out = sum(x[:, :, i: i + h, j: j + w] * k[i, j] for i in range(fh) for j in range(fw))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("down, pad", [(2, 1), (1, 2), (2, 2), (1, 0)])
def test_symmetric_padding_fir_equals_pad_filter_subsample(down, pad):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8, requires_grad=True)
    f = make_fir_filter()
    y, want = upfirdn2d(x, f, down=down, pad=(pad,) * 4), plain_fir(x, f, down, pad)
    assert y.shape == want.shape and (y - want).abs().max() < ATOL
    v = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * v).sum(), x)
    (g_want,) = torch.autograd.grad((want * v).sum(), x)
    assert (g - g_want).abs().max() < ATOL


def test_down_conv_second_order_gradients_equal_the_plain_formula():
    """conv2d_resample(down=2) as the D's conv1 and skip use it, through an R1-like objective."""
    torch.manual_seed(0)
    f = make_fir_filter()
    for k, pad in ((3, 1), (1, 0)):
        x = torch.randn(2, 3, 8, 8, requires_grad=True)
        w = torch.randn(4, 3, k, k, requires_grad=True)
        results = []
        for fast in (True, False):
            if fast:
                y = conv2d_resample(x, w, f, down=2, padding=pad)
            elif k == 1:
                y = F.conv2d(plain_fir(x, f, 2, 1), w)
            else:
                y = F.conv2d(plain_fir(x, f, 1, 2), w, stride=2)
            (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            (gw,) = torch.autograd.grad(gx.square().sum(), w)
            results.append((y, gx, gw))
        for got, want in zip(*results):
            assert (got - want).abs().max() < ATOL * max(1.0, want.abs().max())


def test_gradgradcheck_in_float64():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    f = make_fir_filter().double()
    assert torch.autograd.gradgradcheck(lambda x: upfirdn2d(x, f, down=2, pad=(1, 1, 1, 1)), (x,))


class ConvCalls(TorchDispatchMode):
    """Counts the convolutions (forward and backward) that run."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default):
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_second_order_pass_through_a_fir_filter_runs_no_per_channel_weight_gradient():
    """Autograd's own double backward of a depthwise conv computes the (constant) filter's gradient as one
    convolution per channel; the FIR's conv is conv_grad's, whose second-order pass is one conv per op."""
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    p = torch.randn(1, 16, 1, 1, requires_grad=True)
    for pad in ((2,) * 4, (1, 2, 1, 2)):  # the symmetric padding path and the padded copy's
        y = upfirdn2d(x * p, make_fir_filter(), pad=pad)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        with ConvCalls() as calls:
            gx.square().sum().backward()
        assert 1 <= calls.count <= 3, calls.count
