"""The D phase scores reals and fakes in one discriminator pass (Trainer.scores_of_two): laid out so that the
minibatch-stddev groups hold what they hold in two separate passes, it gives the separate passes' scores
and gradients, in either memory format, for both architectures."""
import pytest
import torch

from conftest import tiny_config
from gan.models.layers import split_group_pair, stddev_group_pair
from gan.models.networks import build_discriminator

ATOL = 1e-5


def grads(D, scores_a, scores_b):
    D.zero_grad(set_to_none=True)
    (scores_a.square().sum() - 3 * scores_b.sum()).backward()
    return {name: p.grad.clone() for name, p in D.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["stylegan2", "pggan"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels-last"])
@pytest.mark.parametrize("n, group", [(8, 4), (6, 3), (10, 2)])
def test_one_pass_scores_and_gradients_equal_two_passes(arch, channels_last, n, group):
    torch.manual_seed(0)
    D = build_discriminator(tiny_config(arch, img_resolution=16, mbstd_group_size=group))
    a, b = torch.randn(n, 3, 16, 16), torch.randn(n, 3, 16, 16) * 0.5 + 0.3
    if channels_last:
        D.to(memory_format=torch.channels_last)
        a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
    want = D(a), D(b)
    want_grads = grads(D, *want)
    both = stddev_group_pair(a, b, group)
    assert both is not None and both.shape == (2 * n, 3, 16, 16)
    assert both.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    got = split_group_pair(D(both), group)
    for g, w in zip(got, want):
        assert g.shape == w.shape and (g - w).abs().max() < ATOL
    got_grads = grads(D, *got)
    assert got_grads.keys() == want_grads.keys()
    for name, w in want_grads.items():
        assert (got_grads[name] - w).abs().max() < ATOL * max(1.0, w.abs().max()), name


def test_a_plain_concatenation_would_mix_the_groups():
    # why the layout matters: [a; b] puts a's and b's samples in the same stddev groups, and the scores change
    torch.manual_seed(0)
    D = build_discriminator(tiny_config(img_resolution=16, mbstd_group_size=4))
    a, b = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16) * 0.5 + 0.3
    assert (D(torch.cat([a, b]))[:8] - D(a)).abs().max() > 100 * ATOL


def test_where_the_groups_cannot_be_kept_there_is_no_pair():
    a = torch.randn(2, 3, 8, 8)
    assert stddev_group_pair(a, a, 4) is None            # gcd(4, 2) = 2 but gcd(4, 4) = 4
    assert stddev_group_pair(torch.randn(6, 3, 8, 8), torch.randn(6, 3, 8, 8), 4) is None  # 2 against 4
    assert stddev_group_pair(a, torch.randn(3, 3, 8, 8), 4) is None
