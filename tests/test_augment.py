"""Differentiable augmentation: what each operation does, and that gradients pass through."""
import pytest
import torch

from gan.training.augment import AdaptiveAugment, adjust_color, augment, cut_out, translate


def images(n=4, c=3, r=8, seed=0):
    return torch.rand(n, c, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_translation_moves_pixels_and_fills_with_zero():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4) + 1
    y = translate(x, torch.tensor([[1, -1]]))  # one down, one left
    assert torch.equal(y[0, 0, 1:, :3], x[0, 0, :3, 1:])
    assert (y[0, 0, 0] == 0).all() and (y[0, 0, :, 3] == 0).all()
    assert torch.equal(translate(x, torch.tensor([[0, 0]])), x)


def test_colour_adjustments_with_neutral_values_change_nothing():
    x = images()
    same = adjust_color(x, torch.zeros(4), torch.ones(4), torch.ones(4))
    assert torch.allclose(same, x, atol=1e-6)
    brighter = adjust_color(x, torch.full([4], 0.25), torch.ones(4), torch.ones(4))
    assert torch.allclose(brighter, x + 0.25, atol=1e-6)


def test_zero_saturation_makes_pixels_grey():
    y = adjust_color(images(), torch.zeros(4), torch.zeros(4), torch.ones(4))
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-6) and torch.allclose(y[:, 1], y[:, 2], atol=1e-6)


def test_cutout_blanks_a_square_only_in_chosen_images():
    x = torch.ones(2, 1, 8, 8)
    y = cut_out(x, torch.tensor([[4, 4], [4, 4]]), (4, 4), torch.tensor([True, False]))
    assert (y[0, 0, 3:6, 3:6] == 0).all() and y[0].sum() < 64
    assert torch.equal(y[1], x[1])


def test_augment_keeps_shape_and_passes_gradients_to_every_pixel():
    x = images().requires_grad_(True)
    torch.manual_seed(0)
    y = augment(x, p=1.0)
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_augment_with_p_zero_returns_the_input_and_draws_no_random_numbers():
    x = images()
    state = torch.get_rng_state()
    assert augment(x, p=0.0) is x
    assert torch.equal(torch.get_rng_state(), state)


def test_augment_is_reproducible_from_the_rng_state():
    x = images(r=16)
    torch.manual_seed(3)
    a = augment(x, 1.0)
    torch.manual_seed(3)
    b = augment(x, 1.0)
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_augment_applies_each_op_to_about_p_of_the_images():
    x = images(n=400, r=8)
    torch.manual_seed(0)
    y = augment(x, p=0.3, ops=("color",))
    changed = (y - x).abs().flatten(1).amax(dim=1) > 1e-6
    assert 0.2 < changed.float().mean().item() < 0.4


def shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """img [C, H, W] moved dy down and dx right, zeros where nothing moved in (slicing, not indexing)."""
    out = torch.zeros_like(img)
    h, w = img.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_greyscale_images_are_translated_by_whole_pixels_within_an_eighth():
    x = images(n=8, c=1, r=16) + 2  # all pixels > 0, so that moved-in zeros are visible
    torch.manual_seed(0)
    y = augment(x, 1.0, ops=("translation",))
    assert y.shape == (8, 1, 16, 16)
    moved = 0
    for img, out in zip(x, y):
        # Exactly one shift of at most 16 / 8 = 2 pixels per axis explains the output.
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(out, shifted(img, dy, dx))]
        assert len(matches) == 1, matches
        moved += matches[0] != (0, 0)
    assert moved >= 6  # p = 1: each image draws a shift; (0, 0) comes 1 time in 16


def test_greyscale_colour_is_brightness_and_contrast_only():
    """One channel: saturation has nothing to act on, so each image becomes a * x + b with the contrast
    factor a in [0.5, 1.5] around its mean, moved by a brightness offset in [-0.5, 0.5]."""
    x = images(n=8, c=1, r=16)
    torch.manual_seed(2)
    y = augment(x, 1.0, ops=("color",))
    xc = x - x.mean(dim=[1, 2, 3], keepdim=True)
    yc = y - y.mean(dim=[1, 2, 3], keepdim=True)
    a = (xc * yc).sum(dim=[1, 2, 3]) / xc.square().sum(dim=[1, 2, 3])  # least-squares slope per image
    assert torch.allclose(yc, a.reshape(8, 1, 1, 1) * xc, atol=1e-5)   # affine: nothing else happened
    assert ((a >= 0.5) & (a <= 1.5)).all() and (a - 1).abs().max() > 0.1
    offset = (y - x).mean(dim=[1, 2, 3])
    assert (offset.abs() <= 0.5 + 1e-6).all() and offset.abs().max() > 0.1


def test_greyscale_images_go_through_the_whole_pipeline():
    x = images(n=8, c=1, r=16).requires_grad_(True)
    torch.manual_seed(3)
    y = augment(x, 1.0)
    assert y.shape == x.shape and ((y - x).abs().flatten(1).amax(dim=1) > 0.1).all()  # every image changed
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_unknown_op_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment(images(), 1.0, ops=("rotate",))


def test_ada_raises_p_when_d_is_overconfident_on_reals_and_lowers_it_otherwise():
    ada = AdaptiveAugment("ada", p=0.5, target=0.6, speed_kimg=1.0, interval=4)
    ada.accumulate(torch.ones(32, 1))     # r_t = 1 > 0.6: overfitting
    ada.update(num_images=100)
    assert ada.p == pytest.approx(0.6) and ada.rt == 1.0
    ada.accumulate(-torch.ones(32, 1))    # r_t = -1 < 0.6
    ada.update(num_images=100)
    assert ada.p == pytest.approx(0.5)


def test_ada_state_round_trips():
    ada = AdaptiveAugment("ada", p=0.2)
    ada.accumulate(torch.tensor([1.0, -1.0, 1.0]))
    other = AdaptiveAugment("ada")
    other.load_state(ada.state())
    assert other.p == ada.p and torch.equal(other.stats, ada.stats)


def test_mode_none_is_the_identity():
    x = images()
    assert AdaptiveAugment("none", p=1.0)(x) is x
