"""--compile on a CPU: torch.compile of StyleGAN2's main training pass (the trainers compile the passes that
are differentiated once) gives eager autograd's gradients. Inductor once failed to lower conv_grad's
depthwise transposed conv in the FIR filter's backward, so the compiled passes use F.conv2d itself."""
import torch

from gan.models.networks import build_generator
from conftest import tiny_config


def test_compiled_synthesis_backward_equals_eager():
    torch.manual_seed(0)
    G = build_generator(tiny_config("stylegan2", img_resolution=8)).train()
    ws = G.mapping(torch.randn(2, G.z_dim)).detach()
    grads = []
    for synthesis in (G.synthesis, torch.compile(G.synthesis)):
        G.zero_grad(set_to_none=True)
        synthesis(ws, noise_mode="const").square().mean().backward()
        grads.append([p.grad.clone() for p in G.synthesis.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for got, want in zip(grads[1], grads[0]):
        assert (got - want).abs().max() <= 1e-4 * max(1.0, want.abs().max())
