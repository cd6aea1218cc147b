"""PGGAN's training-path ops written for cheap backward passes (WGAN-GP differentiates D's backward): 2x2
average pooling and the leaky ReLU give autograd's values and first- and second-order gradients, and they
and the pixel norm keep channels-last gradients channels-last (a channels-last tensor meeting a contiguous one
is a layout-mixing op, 10-30x slower than either alone)."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from gan.models.layers import normalize_2nd_moment
from gan.models.pggan import avg_pool2, lrelu

ATOL = 1e-5


def penalty_grads(op, x, p):
    """A WGAN-GP-like chain: y = op(p * x) summed with fixed weights; the input gradient's squared norm,
    differentiated for p and x. Returns (y, the input gradient, d penalty / dp, d penalty / dx)."""
    y = op(x * p)
    v = torch.empty_like(y).copy_(torch.linspace(-1, 1, y.numel(), dtype=x.dtype).reshape(y.shape))  # y's layout
    (gx,) = torch.autograd.grad((y * v).sum() + y.square().sum(), x, create_graph=True)
    dp, dx = torch.autograd.grad(gx.square().sum(), [p, x])
    return y, gx, dp, dx


@pytest.mark.parametrize("name, op, native", [
    ("avg_pool2", avg_pool2, lambda x: F.avg_pool2d(x, 2)),
    ("lrelu", lrelu, lambda x: F.leaky_relu(x, 0.2)),
])
def test_values_and_gradients_equal_autograd_of_the_plain_op(name, op, native):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 8, 6, generator=g).requires_grad_(True)
    p = torch.randn(1, 5, 1, 1, generator=g).requires_grad_(True)
    for got, want in zip(penalty_grads(op, x, p), penalty_grads(native, x, p)):
        assert got.shape == want.shape and (got - want).abs().max() < ATOL * max(1.0, want.abs().max())


def test_avg_pool2_gradcheck_and_gradgradcheck_in_float64():
    x = torch.randn(2, 3, 6, 4, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(avg_pool2, (x,))
    assert torch.autograd.gradgradcheck(avg_pool2, (x,))


class ContiguousFormatTensors(TorchDispatchMode):
    """Records new op results (not views) that are 4D, several channels and pixels, and contiguous but not
    channels-last."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):  # a view: nothing materialised
            return out
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if (isinstance(t, torch.Tensor) and t.ndim == 4 and t.shape[1] > 1 and t.shape[2] * t.shape[3] > 1
                    and t.is_contiguous() and not t.is_contiguous(memory_format=torch.channels_last)):
                self.found.append(str(func))
        return out


@pytest.mark.parametrize("op", [avg_pool2, lrelu, normalize_2nd_moment], ids=["avg_pool2", "lrelu", "pixel norm"])
def test_channels_last_stays_channels_last_through_both_backward_passes(op):
    """(autograd's own avg_pool2d double backward made a zero NCHW gradient for its input; the mean in the pixel
    norm's backward an NCHW expanded gradient)"""
    x = torch.randn(4, 16, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    p = torch.randn(1, 16, 1, 1).requires_grad_(True)
    with ContiguousFormatTensors() as seen:
        _, gx, _, dx = penalty_grads(op, x, p)
    assert not seen.found
    for t in (gx, dx):
        assert t.is_contiguous(memory_format=torch.channels_last)


def test_without_autograd_they_are_the_plain_ops():
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(avg_pool2(x), F.avg_pool2d(x, 2)) and torch.equal(lrelu(x), F.leaky_relu(x, 0.2))
