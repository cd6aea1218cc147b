"""The GAN losses and regularisers, checked against values worked out by hand."""
import math

import pytest
import torch
import torch.nn.functional as F

from gan.training import losses


def test_nonsaturating_g_loss_is_softplus_of_minus_logits():
    logits = torch.tensor([[0.0], [2.0], [-1.0]])
    expected = (math.log(2) + math.log1p(math.exp(-2)) + math.log1p(math.exp(1))) / 3
    assert losses.g_nonsaturating_loss(logits).item() == pytest.approx(expected)


def test_logistic_d_loss_is_low_when_d_separates_reals_from_fakes():
    good = losses.d_logistic_loss(torch.full([4, 1], 10.0), torch.full([4, 1], -10.0))
    bad = losses.d_logistic_loss(torch.full([4, 1], -10.0), torch.full([4, 1], 10.0))
    assert good.item() < 1e-3 and bad.item() == pytest.approx(20.0, abs=1e-3)
    assert losses.d_logistic_loss(torch.zeros(2, 1), torch.zeros(2, 1)).item() == pytest.approx(2 * math.log(2))


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.randn(1, 3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).sum(dim=[1, 2, 3])
    penalty = losses.r1_penalty(logits, x)
    assert penalty.shape == (5,)
    assert torch.allclose(penalty, w.square().sum().expand(5), rtol=1e-5)


def test_r1_penalty_can_be_minimised():
    w = torch.randn(1, 2, 3, 3, requires_grad=True)
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    losses.r1_penalty((x * w).sum(dim=[1, 2, 3]), x).mean().backward()
    assert torch.allclose(w.grad, 2 * w.detach(), rtol=1e-5)  # d/dw ||w||^2


def test_path_length_of_a_linear_generator_matches_the_closed_form():
    # img = ws[:, 0] @ A reshaped: J^T y = A y, so with a fixed y the length is ||A y|| exactly.
    n, w_dim, c, h, wd = 3, 5, 2, 4, 4
    A = torch.randn(w_dim, c * h * wd)
    ws = torch.randn(n, 1, w_dim, requires_grad=True)
    img = (ws[:, 0] @ A).reshape(n, c, h, wd)
    noise = torch.randn(n, c, h, wd)
    lengths = losses.path_lengths(img, ws, noise)
    y = noise.reshape(n, -1) / math.sqrt(h * wd)
    assert torch.allclose(lengths, (y @ A.t()).norm(dim=1), rtol=1e-5)


def test_path_length_averages_over_the_ws_layers():
    ws = torch.randn(2, 3, 4, requires_grad=True)
    img = ws.sum(dim=1).reshape(2, 1, 2, 2)  # every layer contributes equally
    noise = torch.ones(2, 1, 2, 2)
    # grad wrt each layer = noise / sqrt(4) = 0.5 per element: squared sum over w_dim = 1, mean over layers = 1
    assert torch.allclose(losses.path_lengths(img, ws, noise), torch.ones(2))


def test_pl_mean_tracks_lengths_and_the_penalty_is_the_squared_deviation():
    mean = losses.updated_pl_mean(torch.tensor(1.0), torch.tensor(3.0), decay=0.01)
    assert mean.item() == pytest.approx(1.02)
    lengths = torch.tensor([1.0, 2.0, 4.0])
    assert torch.equal(losses.path_length_penalty(lengths, torch.tensor(2.0)), torch.tensor([1.0, 0.0, 4.0]))


def test_the_updated_pl_mean_stays_in_the_graph_unless_detached():
    # a = 0 + 0.5 * (mean(L) - 0) = 7/6; sum_i (L_i - a)^2 has d/dL_j = 2 (L_j - a) - 2 sum_i (L_i - a) * 0.5 / 3,
    # and sum_i (L_i - a) = 7 - 3.5: [-1.5, 0.5, 4.5]. With a constant: 2 (L_j - a) = [-1/3, 5/3, 17/3].
    for detach, expected in ((False, [-1.5, 0.5, 4.5]), (True, [-1 / 3, 5 / 3, 17 / 3])):
        lengths = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
        a = losses.updated_pl_mean(torch.tensor(0.0), lengths.mean(), decay=0.5)
        losses.path_length_penalty(lengths, a.detach() if detach else a).sum().backward()
        assert torch.allclose(lengths.grad, torch.tensor(expected)), detach


def test_wgan_losses_are_score_differences():
    real, fake = torch.tensor([[1.0], [3.0]]), torch.tensor([[-1.0], [0.0]])
    assert losses.wgan_d_loss(real, fake).item() == pytest.approx(-0.5 - 2.0)
    assert losses.wgan_g_loss(fake).item() == pytest.approx(0.5)


def test_gradient_penalty_of_a_linear_critic_depends_on_its_weight_norm():
    w = torch.randn(1, 1, 4, 4)
    w = w / w.norm() * 3.0  # ||grad|| = 3 everywhere
    real, fake = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    mixed = losses.interpolate_images(real, fake, torch.rand(6, 1, 1, 1))
    gp = losses.gradient_penalty((mixed * w).sum(dim=[1, 2, 3]), mixed)
    assert torch.allclose(gp, torch.full([6], 4.0), rtol=1e-5)  # (3 - 1)^2
    assert torch.allclose(losses.gradient_penalty((mixed * w).sum(dim=[1, 2, 3]), mixed, target=3.0),
                          torch.zeros(6), atol=1e-5)


def test_interpolated_images_lie_between_reals_and_fakes():
    real, fake = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    mixed = losses.interpolate_images(real, fake, torch.tensor([0.25, 1.0]).reshape(2, 1, 1, 1))
    assert mixed.requires_grad
    assert torch.allclose(mixed[0], torch.full([1, 2, 2], 0.25)) and torch.allclose(mixed[1], torch.ones(1, 2, 2))


def test_drift_penalty_is_the_squared_score():
    assert torch.equal(losses.drift_penalty(torch.tensor([[2.0], [-3.0]])), torch.tensor([4.0, 9.0]))


def test_losses_match_torch_reference_for_random_logits():
    logits = torch.randn(16, 1)
    assert torch.allclose(losses.g_nonsaturating_loss(logits),
                          F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)))
