"""The fused bias + activation + gain + clamp node (gan/models/fused_act.py) gives the plain formula's
values and first- and second-order gradients.

The plain formula is written here with other ops than the node uses (where / minimum / maximum),
and autograd differentiates it. Clamp bounds are chosen so that a good share of the values clamp.
Second order matters: R1 differentiates D's gradient and path-length regularisation G's.
"""
import pytest
import torch

from conftest import OpNames, tiny_config
from gan.models import layers
from gan.models.conv_grad import conv2d
from gan.models.fused_act import fused_bias_act
from gan.models.networks import build_discriminator, build_generator
from gan.training import losses

ATOL = 1e-4
CASES = {  # (lrelu, gain, clamp)
    "lrelu, sqrt 2, clamp": (True, 2 ** 0.5, 1.0),
    "lrelu, residual gain, clamp": (True, 1.0, 0.5 ** 0.5),
    "lrelu, no clamp": (True, 2 ** 0.5, None),
    "linear, clamp (toRGB)": (False, 1.0, 1.5),
    "linear, gain, no clamp": (False, 0.7, None),
    "bias only (toRGB without a clamp)": (False, 1.0, None),
}


def plain(x, b, lrelu, gain, clamp):
    v = x + b.reshape(1, -1, *[1] * (x.ndim - 2)) if b is not None else x
    if lrelu:
        v = torch.where(v > 0, v, v * 0.2)
    v = v * gain
    if clamp is not None:
        v = torch.minimum(torch.maximum(v, torch.tensor(-clamp, dtype=v.dtype)), torch.tensor(clamp, dtype=v.dtype))
    return v


def inputs(dtype=torch.float32, shape=(3, 4, 5, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype).requires_grad_(True)
    b = torch.randn(shape[1], generator=g, dtype=dtype).mul_(0.5).requires_grad_(True)
    return x, b


@pytest.mark.parametrize("case", CASES)
def test_forward_equals_the_plain_formula(case):
    x, b = inputs()
    for bias in (b, None):
        assert (fused_bias_act(x, bias, *CASES[case]) - plain(x, bias, *CASES[case])).abs().max() < ATOL


@pytest.mark.parametrize("case", CASES)
def test_first_and_second_order_gradients_equal_the_plain_formulas(case):
    x, b = inputs()
    s = torch.rand(x.shape[1], 1, 1).add_(0.5).requires_grad_(True)  # a weight before the node, as a conv's
    v = torch.randn_like(x)  # the direction the output is contracted with, as R1 / path length do
    results = []
    for f in (fused_bias_act, plain):
        y = f(x * s, b, *CASES[case])
        gx, gs, gb = torch.autograd.grad((y * v).sum(), [x, s, b], create_graph=True)
        # a second-order objective of the form R1 uses: the input gradient's squared norm
        second = torch.autograd.grad(gx.square().sum(), [x, s, b], allow_unused=True)
        results.append([gx, gs, gb, *second])
    for got, want in zip(*results):
        if want is None:  # no path in the plain formula: its derivative is 0
            assert got is None or got.abs().max() == 0
        else:
            assert (got - want).abs().max() < ATOL


@pytest.mark.parametrize("case", CASES)
def test_gradcheck_and_gradgradcheck_in_float64(case):
    x, b = inputs(torch.float64, shape=(2, 3, 3, 3), seed=1)
    lrelu, gain, clamp = CASES[case]
    # keep finite differences off the kinks: no value within 1e-3 of 0 (lrelu) or of a clamp bound
    pre = (x + b.reshape(1, -1, 1, 1)).detach()
    away = (pre.abs() > 1e-3) & ((pre.abs() * gain - (clamp or 1e9)).abs() > 1e-3)
    assert away.float().mean() > 0.8
    x = torch.where(away, x.detach(), x.detach() + 0.01).requires_grad_(True)
    fn = lambda x, b: fused_bias_act(x, b, lrelu, gain, clamp)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_a_leaky_relu_with_a_negative_gain_is_refused():
    x, b = inputs()
    with pytest.raises(ValueError, match="gain must be positive"):
        fused_bias_act(x, b, True, -1.0, None)


@pytest.fixture
def plain_bias_act(monkeypatch):
    """layers.bias_act running the plain formula, to compare whole networks against."""
    def use():
        monkeypatch.setattr(layers, "fused_bias_act", plain)
    return use


def r1_grads(D, img):
    img = img.detach().requires_grad_(True)
    D.zero_grad(set_to_none=True)
    losses.r1_penalty(D(img), img).sum().backward()
    return {name: p.grad.clone() for name, p in D.named_parameters() if p.grad is not None}


def pl_grads(G, ws, noise):
    ws = ws.detach().requires_grad_(True)
    G.zero_grad(set_to_none=True)
    img = G.synthesis(ws, noise_mode="const")
    losses.path_lengths(img, ws, noise).sum().backward()
    return {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}


def moved_off_zero(net):
    """Biases away from 0 and a small clamp, so that both the activation's kinks and the clamp count."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.copy_(torch.randn_like(p) * 0.3)
    return net


def test_r1_gradients_of_D_equal_those_of_the_plain_formula(plain_bias_act):
    torch.manual_seed(0)
    D = moved_off_zero(build_discriminator(tiny_config(img_resolution=16, conv_clamp=2.0)))
    img = torch.randn(4, 3, 16, 16)
    fused = r1_grads(D, img)
    plain_bias_act()
    want = r1_grads(D, img)
    assert fused.keys() == want.keys()
    for name in want:
        assert (fused[name] - want[name]).abs().max() < ATOL * max(1.0, want[name].abs().max()), name


def test_path_length_gradients_of_G_equal_those_of_the_plain_formula(plain_bias_act):
    torch.manual_seed(0)
    G = moved_off_zero(build_generator(tiny_config(img_resolution=16, conv_clamp=2.0)))
    ws = torch.randn(4, G.num_ws, G.w_dim)
    noise = torch.randn(4, 3, 16, 16)
    fused = pl_grads(G, ws, noise)
    plain_bias_act()
    want = pl_grads(G, ws, noise)
    assert fused.keys() == want.keys()
    for name in want:
        assert (fused[name] - want[name]).abs().max() < ATOL * max(1.0, want[name].abs().max()), name


@pytest.mark.parametrize("node", ["fused_bias_act", "conv epilogue"])
def test_a_clamp_nothing_reaches_costs_no_pass_and_changes_nothing(node):
    """A clamp (StyleGAN2's 256) that no value reaches is skipped forward and backward, with the same values
    and gradients; one that some value reaches still masks their gradient."""
    x, b = inputs()
    w = torch.randn(4, 4, 3, 3).div_(6).requires_grad_(True)
    run, unfused = {
        "fused_bias_act": (lambda c: fused_bias_act(x, b, True, 2 ** 0.5, c),
                           lambda: torch.nn.functional.leaky_relu(x + b.reshape(1, -1, 1, 1), 0.2) * 2 ** 0.5),
        "conv epilogue": (lambda c: conv2d(x, w, b, padding=1, lrelu=True, clamp=c),
                          lambda: torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(x, w, b, padding=1), 0.2)),
    }[node]
    for clamp, reached in ((100.0, False), (0.5, True)):
        y = run(clamp)
        v = torch.randn_like(y)
        with OpNames() as ops:
            got = torch.autograd.grad((y * v).sum(), [x, b])
        assert ("aten::hardtanh_backward" in ops.names) == reached
        want_y = unfused().clamp(-clamp, clamp)  # autograd's clamp: no gradient where its input was beyond
        assert (y - want_y).abs().max() < ATOL and (want_y.abs() == clamp).any() == reached
        want = torch.autograd.grad((want_y * v).sum(), [x, b])
        for g, h in zip(got, want):
            assert (g - h).abs().max() < ATOL
