"""The inference fast paths (no autograd, fp32, CPU) give the numbers of the reference paths.

`G.synthesis(ws)` under torch.inference_mode() / no_grad takes the fast path; `reference=True` runs the
plain definition that training differentiates. Every branch of the fast path is forced in turn through
its thresholds (fold the style into the weight or scale the activations; a batch together or one sample
at a time; polyphase or upsample-then-conv), on tiny real networks whose biases and noise strengths are
moved away from 0 so that those terms count. StyleGAN2 here is the 'skip' generator (an image summed
over every block's toRGB), the official default and the only one this project builds.
"""
import pytest
import torch

import gan.models.pggan as pggan
import gan.models.stylegan2 as stylegan2
from conftest import tiny_config
from gan.models.layers import make_fir_filter, upsample2d, upsample2d_fast
from gan.models.networks import build_generator

ATOL = 1e-4
BIG = 1 << 30

# The thresholds that choose each branch, set so that every branch runs (module constants, patched).
SG2_PATHS = {
    "defaults": {},
    "fold everywhere, one sample at a time, transposed convs": dict(
        FOLD_MIN_PIXELS=0, PER_SAMPLE_MIN_RES=4, CONV_UP_MATMUL_MAX_PIXELS=0),
    "scale activations everywhere, batched, matmul up-convs": dict(
        FOLD_MIN_PIXELS=BIG, PER_SAMPLE_MIN_RES=BIG, CONV_UP_MATMUL_MAX_PIXELS=BIG, CONV_UP_MATMUL_MIN_CHANNELS=0),
    "mixed": dict(FOLD_MIN_PIXELS=8 * 8, PER_SAMPLE_MIN_RES=16, CONV_UP_MATMUL_MAX_PIXELS=4 * 4,
                  CONV_UP_MATMUL_MIN_CHANNELS=0),
}
PG_PATHS = {
    "defaults": {},
    "channels-last and polyphase everywhere": dict(FOLD_MIN_PIXELS=0, POLYPHASE_MIN_PIXELS=0,
                                                   POLYPHASE_MIN_IMAGE_PIXELS=0),
    "stored weights, upsample then conv": dict(FOLD_MIN_PIXELS=BIG, POLYPHASE_MIN_PIXELS=BIG),
    "mixed": dict(FOLD_MIN_PIXELS=16 * 16, POLYPHASE_MIN_PIXELS=8 * 8, POLYPHASE_MIN_IMAGE_PIXELS=4 * 4),
}
_models = {}


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are tiny: on a loaded 2-core machine two threads wait on each other for every small
    op (30x slower, measured). The numbers compared do not depend on it; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturbed_generator(arch: str, res: int, conv_clamp=None):
    """A tiny generator with random weights and biases / noise strengths drawn away from 0 (cached)."""
    key = (arch, res, conv_clamp)
    if key not in _models:
        torch.manual_seed(res)
        overrides = dict(img_resolution=res) if arch == "pggan" else dict(img_resolution=res, conv_clamp=conv_clamp)
        G = build_generator(tiny_config(arch, **overrides)).eval()
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("bias") or name.endswith("noise_strength"):
                    p.add_(torch.randn_like(p) * 0.5)
        _models[key] = G
    return _models[key]


def count_calls(monkeypatch, cls, name: str) -> list:
    calls = []
    original = getattr(cls, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    monkeypatch.setattr(cls, name, spy)
    return calls


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("path", SG2_PATHS)
@pytest.mark.parametrize("conv_clamp", [None, 0.5])
@pytest.mark.parametrize("res", [16, 32])
def test_stylegan2_fast_synthesis_equals_the_reference(monkeypatch, path, conv_clamp, res):
    for name, value in SG2_PATHS[path].items():
        monkeypatch.setattr(stylegan2, name, value)
    calls = count_calls(monkeypatch, stylegan2.SynthesisNetwork, "forward_fast")
    G = perturbed_generator("stylegan2", res, conv_clamp)
    with torch.inference_mode():
        for batch in (1, 4):
            ws = G.mapping(torch.randn(batch, G.z_dim), truncation_psi=0.8)
            for noise_mode in ("const", "random", "none"):
                torch.manual_seed(7)
                want, want_stages = G.synthesis(ws, noise_mode=noise_mode, return_stages=True, reference=True)
                after_want = torch.rand(3)
                torch.manual_seed(7)
                got, got_stages = G.synthesis(ws, noise_mode=noise_mode, return_stages=True)
                after_got = torch.rand(3)
                case = (batch, noise_mode)
                assert got.shape == want.shape == (batch, 3, res, res) and got.is_contiguous(), case
                assert max_diff(got, want) < ATOL, case
                assert len(got_stages) == len(want_stages), case
                assert all(max_diff(g, w) < ATOL for g, w in zip(got_stages, want_stages)), case
                assert torch.equal(after_got, after_want), case  # the same random numbers were drawn
                if conv_clamp is not None:  # the clamp is reached, so it is tested
                    assert want.abs().max() > conv_clamp
    assert len(calls) == 2 * 3


@pytest.mark.parametrize("path", PG_PATHS)
@pytest.mark.parametrize("res", [32, 64])
def test_pggan_fast_synthesis_equals_the_reference_at_every_stage(monkeypatch, path, res):
    for name, value in PG_PATHS[path].items():
        monkeypatch.setattr(pggan, name, value)
    calls = count_calls(monkeypatch, pggan.GeneratorBlock, "forward_fast")
    G = perturbed_generator("pggan", res)
    try:
        with torch.inference_mode():
            for depth, alpha in ((G.max_depth, 1.0), (G.max_depth, 0.4), (1, 0.7)):
                G.set_stage(depth, alpha)
                for batch in (1, 4):
                    ws = G.mapping(torch.randn(batch, G.z_dim))
                    want, want_stages = G.synthesis(ws, return_stages=True, reference=True)
                    got, got_stages = G.synthesis(ws, return_stages=True)
                    case = (depth, alpha, batch)
                    assert got.shape == want.shape and got.is_contiguous(), case
                    assert max_diff(got, want) < ATOL, case
                    assert all(max_diff(g, w) < ATOL for g, w in zip(got_stages, want_stages)), case
    finally:
        G.set_stage(G.max_depth, 1.0)
    assert calls


@pytest.mark.parametrize("arch", ["stylegan2", "pggan"])
def test_no_grad_takes_the_fast_path_and_the_whole_generator_agrees(monkeypatch, arch):
    G = perturbed_generator(arch, 16)
    calls = count_calls(monkeypatch, stylegan2.SynthesisNetwork if arch == "stylegan2" else pggan.GeneratorBlock,
                        "forward_fast")
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        got = G(z)
    with torch.inference_mode():
        want = G.synthesis(G.mapping(z), reference=True)
    assert calls and max_diff(got, want) < ATOL


@pytest.mark.parametrize("arch", ["stylegan2", "pggan"])
def test_training_uses_the_reference_path_and_gets_gradients(monkeypatch, arch):
    G = perturbed_generator(arch, 16)
    calls = count_calls(monkeypatch, stylegan2.SynthesisNetwork if arch == "stylegan2" else pggan.GeneratorBlock,
                        "forward_fast")
    ws = G.mapping(torch.randn(2, G.z_dim)).detach().requires_grad_(True)
    img = G.synthesis(ws, noise_mode="const")
    (grad_ws,) = torch.autograd.grad(img.square().sum(), ws, create_graph=True)
    grad_ws.square().sum().backward()  # double backward, as the path-length and R1 penalties need
    assert not calls
    assert grad_ws.abs().sum() > 0
    convs = [p for name, p in G.named_parameters() if "conv" in name and name.endswith("weight")]
    assert convs and all(p.grad is not None and p.grad.abs().sum() > 0 for p in convs)
    G.zero_grad(set_to_none=True)


def test_autocast_keeps_the_reference_path(monkeypatch):
    G = perturbed_generator("stylegan2", 16)
    calls = count_calls(monkeypatch, stylegan2.SynthesisNetwork, "forward_fast")
    ws = G.mapping(torch.randn(1, G.z_dim)).detach()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        G.synthesis(ws)
    assert not calls


def test_fast_fir_upsampling_equals_upfirdn2d_for_an_asymmetric_filter():
    torch.manual_seed(0)
    f = torch.outer(torch.tensor([1.0, 2.0, 5.0, 3.0]), torch.tensor([2.0, 1.0, 4.0, 3.0]))
    f = f / f.sum()
    x = torch.randn(2, 3, 5, 7)
    assert max_diff(upsample2d_fast(x, f), upsample2d(x, f)) < 1e-6
    assert max_diff(upsample2d_fast(x, make_fir_filter()), upsample2d(x, make_fir_filter())) < 1e-6
