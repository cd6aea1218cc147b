"""Metrics: real computations on small real data (scikit-learn's digits), Gaussians with known
answers, MS-SSIM and IS against plain-numpy transcriptions of their formulas, tiny random
generators, and a small TorchScript stand-in for the Inception file saved to tmp_path."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan.io.images import quantise as to_uint8
from gan.metrics import (METRICS, InceptionError, append_jsonl, compute_metrics, fid, inception_score, kid,
                         load_inception, metrics_main, ms_ssim, msssim_diversity, parse_metric_names,
                         precision_recall)
from gan.metrics.swd import laplacian_pyramid, pyramid_resolutions, swd
from gan.seeds import z_from_seeds


@pytest.fixture(scope="module")
def digits32() -> torch.Tensor:
    """scikit-learn's 1,797 handwritten digits, upscaled to 32x32: float [-1, 1] [N, 1, 32, 32]."""
    from sklearn.datasets import load_digits
    x = torch.from_numpy(load_digits().images).float()[:, None] / 16.0       # [N, 1, 8, 8] in [0, 1]
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)
    return x * 2 - 1


@pytest.fixture(scope="module")
def shapes32() -> torch.Tensor:
    """512 synthetic 32x32 greyscale images with sharp edges: 1-3 ellipses or rectangles of random
    grey levels over a random linear gradient. Float [-1, 1] [512, 1, 32, 32]."""
    rs = np.random.RandomState(0)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 32
    out = np.empty((512, 1, 32, 32), np.float32)
    for i in range(len(out)):
        angle = rs.uniform(0, 2 * np.pi)
        img = rs.uniform(-0.8, 0.8) + 0.3 * (np.cos(angle) * xx + np.sin(angle) * yy)
        for _ in range(rs.randint(1, 4)):
            cx, cy, a, b = rs.uniform(0.2, 0.8), rs.uniform(0.2, 0.8), rs.uniform(0.08, 0.3), rs.uniform(0.08, 0.3)
            if rs.rand() < 0.5:
                mask = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 < 1
            else:
                mask = (np.abs(xx - cx) < a) & (np.abs(yy - cy) < b)
            img = np.where(mask, rs.uniform(-1, 1), img)
        out[i, 0] = img
    return torch.from_numpy(out).clamp(-1, 1)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma)
    g = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).view(1, 1, 1, -1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), g)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), g.transpose(2, 3))


class ArrayDataset:
    """The dataset interface (len, ds[i] -> uint8 [C, R, R], summary()) over an in-memory array."""

    def __init__(self, images_uint8: torch.Tensor, name: str = "array"):
        self.images, self.name = images_uint8, name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]

    def summary(self) -> dict:
        return {"name": self.name, "length": len(self), "shape": list(self.images.shape[1:])}


@pytest.fixture(scope="module")
def tiny_grey_generator():
    """A 32x32 greyscale StyleGAN2 with random weights."""
    from gan.models.config import ModelConfig
    from gan.models.networks import build_generator
    torch.manual_seed(0)
    cfg = ModelConfig(arch="stylegan2", img_resolution=32, img_channels=1, z_dim=32, w_dim=32, mapping_layers=2,
                      channel_base=256, channel_max=32)
    return build_generator(cfg).eval().requires_grad_(False)


class PooledPixels(torch.nn.Module):
    """A stand-in with the official Inception file's forward signature. Features (return_features):
    4x4 average-pooled pixels (48-d), real features of the images, cheap enough for a test.
    Otherwise a softmax over 8 classes of a fixed linear map of them, whose output bias (skipped
    with no_output_bias, as the official IS does) is large enough to put almost every image in
    class 0: a call that forgot no_output_bias would give an IS of about 1."""

    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.randn(48, 8, generator=torch.Generator().manual_seed(0)) * 20)
        self.register_buffer("bias", torch.tensor([50.0] + [0.0] * 7))

    def forward(self, x: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        feats = F.adaptive_avg_pool2d(x.float() / 255.0, 4).flatten(1)
        if return_features:
            return feats
        logits = (feats - feats.mean(dim=1, keepdim=True)) @ self.weight
        return (logits if no_output_bias else logits + self.bias).softmax(dim=1)


@pytest.fixture(scope="module")
def feature_extractor_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("detector") / "pooled_pixels.pt"
    torch.jit.save(torch.jit.script(PooledPixels()), str(path))
    return path


# ---- SWD -----------------------------------------------------------------------------------------

def test_laplacian_pyramid_levels_add_back_to_the_image(digits32):
    x = digits32[:4]
    levels = laplacian_pyramid(x, len(pyramid_resolutions(32)))
    assert [lv.shape[-1] for lv in levels] == [32, 16]
    # Reconstruct: the band-pass plus the upsampled low-pass gives back the image.
    from gan.metrics.swd import _binomial_kernel, _blur
    up = torch.zeros_like(x)
    up[:, :, ::2, ::2] = levels[1]
    assert torch.allclose(levels[0] + _blur(up, _binomial_kernel(1)) * 4, x, atol=1e-5)


def test_swd_separates_halves_of_a_dataset_from_blurred_and_noisy_copies(shapes32):
    a, b = shapes32[:256], shapes32[256:]
    same = swd(a, b, seed=0)["swd"]
    blurred = swd(a, blur(b, 2.0), seed=0)["swd"]
    gen = torch.Generator().manual_seed(0)
    noisy = [swd(a, (b + s * torch.randn(b.shape, generator=gen)).clamp(-1, 1), seed=0)["swd"] for s in (0.05, 0.2)]
    assert blurred > 2.5 * same
    assert noisy[0] > 2.5 * same
    assert noisy[1] > 1.5 * noisy[0]  # grows with the corruption


def test_swd_reports_each_pyramid_level_and_their_mean(digits32):
    result = swd(digits32[:64], digits32[64:128], seed=1)
    assert set(result) == {"swd", "swd_32", "swd_16"}
    assert result["swd"] == pytest.approx((result["swd_32"] + result["swd_16"]) / 2)


def test_swd_is_deterministic_given_a_seed_and_takes_uint8_or_float(digits32):
    a, b = digits32[:64], digits32[64:128]
    assert swd(a, b, seed=3) == swd(a, b, seed=3)
    assert swd(to_uint8(a), to_uint8(b), seed=3)["swd"] == pytest.approx(swd(a, b, seed=3)["swd"], rel=0.05)


# ---- MS-SSIM -------------------------------------------------------------------------------------

def reference_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """MS-SSIM of two images [C, H, W] with pixels 0..255, transcribed from the published definition
    as PGGAN's metrics/ms_ssim.py computes it, written independently of gan.metrics.msssim: an
    explicit 2-D window, each window's weighted, centred moments, a reshape for the 2x2 averages."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x, y = x.astype(np.float64), y.astype(np.float64)
    value = 1.0
    for scale, weight in enumerate(weights):
        channels, h, w = x.shape
        size = min(11, h, w)
        sigma, centre = 1.5 * size / 11, (size - 1) / 2
        window = np.array([[math.exp(-((i - centre) ** 2 + (j - centre) ** 2) / (2 * sigma ** 2))
                            for j in range(size)] for i in range(size)])
        window /= window.sum()
        ssim_maps, cs_maps = [], []
        for c in range(channels):
            px = np.lib.stride_tricks.sliding_window_view(x[c], (size, size))  # [H', W', size, size]
            py = np.lib.stride_tricks.sliding_window_view(y[c], (size, size))
            mu_x, mu_y = (px * window).sum((2, 3)), (py * window).sum((2, 3))
            dx, dy = px - mu_x[..., None, None], py - mu_y[..., None, None]
            var_x, var_y, cov = (dx * dx * window).sum((2, 3)), (dy * dy * window).sum((2, 3)), \
                (dx * dy * window).sum((2, 3))
            cs = (2 * cov + c2) / (var_x + var_y + c2)
            cs_maps.append(cs)
            ssim_maps.append((2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1) * cs)
        if scale == len(weights) - 1:
            return value * max(np.mean(ssim_maps), 0.0) ** weight
        value *= max(np.mean(cs_maps), 0.0) ** weight
        x = x.reshape(channels, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        y = y.reshape(channels, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def pattern_images(res: int, channels: int, seed: int = 0) -> torch.Tensor:
    """Seven uint8 images [7, C, res, res], paired as PAIRS says: a smooth gradient and a noisy copy;
    rectangles and ellipses over a gradient, and a copy with two shapes added; a dark copy of
    image 2 and a bright one with the same structure (only the luminance term tells them apart);
    image 2 shifted right by res / 16 pixels. Pair (1, 2) is unrelated (usually clamped to 0)."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res] / res

    def gradient():
        angle = rs.uniform(0, 2 * np.pi, size=(channels, 1, 1))
        return 0.5 + 0.4 * np.sin(3 * (np.cos(angle) * xx + np.sin(angle) * yy))

    def shapes(img, count):
        for _ in range(count):
            cx, cy, a, b = rs.uniform(0.1, 0.9, 2).tolist() + rs.uniform(0.05, 0.3, 2).tolist()
            inside = (((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 < 1) if rs.rand() < 0.5 else \
                ((abs(xx - cx) < a) & (abs(yy - cy) < b))
            img = np.where(inside, rs.uniform(0, 1, size=(channels, 1, 1)), img)
        return img

    smooth, first = gradient(), shapes(gradient() * 0.5, 6)
    images = [smooth, smooth + 0.15 * rs.randn(channels, res, res), first, shapes(first, 2),
              0.3 * first, 0.3 * first + 0.65, np.roll(first, res // 16, axis=2)]
    return torch.from_numpy(np.round(np.clip(np.stack(images), 0, 1) * 255)).to(torch.uint8)


PAIRS = ([0, 2, 4, 2, 1], [1, 3, 5, 6, 2])


@pytest.mark.parametrize("res, channels", [(16, 3), (32, 3), (32, 1), (192, 1)])
def test_msssim_matches_an_independent_transcription_of_the_reference_formula(res, channels):
    images = pattern_images(res, channels, seed=res + channels)
    a, b = images[PAIRS[0]], images[PAIRS[1]]
    expected = [reference_ms_ssim(x.numpy(), y.numpy()) for x, y in zip(a, b)]
    assert max(expected) - min(expected) > 0.3  # the pairs span similar to dissimilar
    np.testing.assert_allclose(ms_ssim(a, b).numpy(), expected, rtol=1e-7, atol=1e-9)


def test_msssim_of_a_brightness_shifted_copy_keeps_its_structure_score():
    # Signed [-1, 1] pixels made the coarsest luminance term negative here, clamped to an MS-SSIM of 0.
    images = pattern_images(32, 1, seed=7)
    dark, bright = images[4:5], images[5:6]
    value = ms_ssim(dark, bright).item()
    assert value > 0.6  # the luminance term (means about 0.15 and 0.8) ^ 0.1333; cs is about 1
    assert value == pytest.approx(reference_ms_ssim(dark[0].numpy(), bright[0].numpy()), rel=1e-7)


def test_msssim_of_float_images_is_measured_on_the_unsigned_scale(digits32):
    """[-1, 1] input means pixels (x + 1) * 127.5; its uint8 quantisation gives nearly the same value."""
    a, b = digits32[:6], digits32[6:12]
    expected = [reference_ms_ssim(((x + 1) * 127.5).numpy(), ((y + 1) * 127.5).numpy()) for x, y in zip(a, b)]
    np.testing.assert_allclose(ms_ssim(a, b).numpy(), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ms_ssim(to_uint8(a), to_uint8(b)).numpy(), expected, atol=5e-3)


@pytest.mark.parametrize("res, channels", [(16, 3), (32, 1), (192, 3)])
def test_msssim_of_identical_images_is_one(res, channels):
    images = pattern_images(res, channels)
    np.testing.assert_allclose(ms_ssim(images, images).numpy(), 1.0, atol=1e-9)
    floats = images.to(torch.float32) / 127.5 - 1
    np.testing.assert_allclose(ms_ssim(floats, floats).numpy(), 1.0, atol=1e-9)


def test_msssim_refuses_images_too_small_for_five_scales():
    tiny = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="at least 16x16") as err:
        ms_ssim(tiny, tiny)
    assert "\n" not in str(err.value)


def test_msssim_of_independent_noise_images_is_near_zero():
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(200, 3, 32, 32, generator=gen) * 2 - 1
    assert msssim_diversity(noise, num_pairs=200, seed=0) < 0.1


def test_msssim_diversity_is_lower_for_a_more_diverse_set(digits32):
    varied = msssim_diversity(digits32[:200], num_pairs=300, seed=0)
    repeated = msssim_diversity(digits32[:5].repeat(40, 1, 1, 1), num_pairs=300, seed=0)
    assert varied < repeated


# ---- FID / KID / precision-recall ----------------------------------------------------------------

def gaussians(n=5000, dim=16, shift=0.0, seed=0):
    return np.random.RandomState(seed).randn(n, dim) + shift


def test_fid_of_a_feature_set_with_itself_is_zero():
    a = gaussians()
    assert abs(fid(a, a)) < 1e-6


def test_fid_between_unit_gaussians_is_the_squared_mean_shift():
    mu = np.full(16, 0.5)  # ||mu||^2 = 4
    assert fid(gaussians(seed=0), gaussians(seed=1) + mu) == pytest.approx(4.0, abs=0.4)
    assert fid(gaussians(seed=0), gaussians(seed=1)) < 0.1


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted():
    same = kid(gaussians(seed=0), gaussians(seed=1), num_subsets=20, max_subset_size=500)
    shifted = kid(gaussians(seed=0), gaussians(seed=1, shift=0.5), num_subsets=20, max_subset_size=500)
    assert abs(same) < 0.01
    assert shifted > 0.5


def test_precision_recall_are_one_for_identical_sets_and_drop_for_disjoint_ones():
    a = gaussians(n=1000)
    assert precision_recall(a, a) == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(a, gaussians(n=1000, seed=1, shift=10.0))
    assert far["precision"] < 0.05 and far["recall"] < 0.05


def test_precision_drops_when_fakes_collapse_outside_recall_when_they_cover_part():
    real = gaussians(n=1000, dim=4)
    half = real[real[:, 0] > 0]  # the fakes cover half the real distribution, all inside it
    pr = precision_recall(real, half)
    assert pr["precision"] > 0.9 and pr["recall"] < 0.7


# ---- Inception Score -----------------------------------------------------------------------------

def reference_inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(mean over rows of KL(p(y|x) || p(y))) per consecutive split, written out with loops."""
    n, scores = len(probs), []
    for s in range(splits):
        rows = probs[s * n // splits:(s + 1) * n // splits]
        marginal = [sum(row[k] for row in rows) / len(rows) for k in range(probs.shape[1])]
        kls = [sum(p * math.log(p / m) for p, m in zip(row, marginal) if p > 0) for row in rows]
        scores.append(math.exp(sum(kls) / len(kls)))
    mean = sum(scores) / splits
    return mean, math.sqrt(sum((v - mean) ** 2 for v in scores) / splits)


def test_inception_score_of_identical_class_distributions_is_one():
    assert inception_score(np.full((100, 7), 1 / 7)) == pytest.approx((1.0, 0.0), abs=1e-12)


def test_inception_score_of_confident_images_spread_over_k_classes_is_k():
    k = 8
    one_hot = np.eye(k)[np.arange(10 * 3 * k) % k]  # every split holds each class 3 times
    assert inception_score(one_hot) == pytest.approx((k, 0.0), abs=1e-12)


def test_inception_score_uses_each_splits_own_marginal():
    # Sorted by class, each of the 10 splits holds one class only: within a split every image
    # predicts the split's marginal, so IS is 1, not the 10 a pooled marginal would give.
    assert inception_score(np.eye(10)[np.repeat(np.arange(10), 5)])[0] == pytest.approx(1.0)


def test_inception_score_matches_a_direct_transcription_on_random_probabilities():
    rs = np.random.RandomState(0)
    probs = rs.dirichlet(np.full(12, 0.3), size=1003)  # 1003 rows: splits of 100 and 101
    probs[5, :3] = 0.0  # exact zeros count as 0 * log 0 = 0
    probs[5] /= probs[5].sum()
    assert inception_score(probs) == pytest.approx(reference_inception_score(probs), rel=1e-10)


def test_inception_score_needs_one_image_per_split():
    with pytest.raises(ValueError, match="at least 10 images"):
        inception_score(np.full((9, 4), 0.25))


# ---- Inception loader ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [None, "", "/nonexistent/pt_inception-2015-12-05-6726825d.pt"])
def test_inception_loader_without_the_file_raises_a_one_line_error(path):
    with pytest.raises(InceptionError) as err:
        load_inception(path)
    msg = str(err.value)
    assert "\n" not in msg and "--inception" in msg and "pt_inception-2015-12-05" in msg
    assert isinstance(err.value, ValueError)


def test_inception_loader_refuses_a_state_dict_naming_the_supported_format(tmp_path):
    path = tmp_path / "inception_v3.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(InceptionError, match="TorchScript") as err:
        load_inception(path)
    assert "\n" not in str(err.value)


def test_torchscript_features_take_greyscale_images_replicated_to_rgb(feature_extractor_file):
    detector = load_inception(feature_extractor_file)
    grey = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    feats = detector(grey)
    assert feats.shape == (3, 48) and feats.dtype == np.float64
    np.testing.assert_allclose(feats, detector(grey.repeat(1, 3, 1, 1)))


class FeaturesOnly(torch.nn.Module):
    """A TorchScript file without the official no_output_bias argument."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.float(), 4).flatten(1)


class Logits(torch.nn.Module):
    """The official signature, but logits instead of a softmax."""

    def forward(self, x: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.float(), 2).flatten(1) - 100.0


@pytest.mark.parametrize("module, reason", [(FeaturesOnly, "no_output_bias"), (Logits, "not probabilities")])
def test_class_probabilities_refuse_a_file_that_cannot_give_them(module, reason, tmp_path):
    path = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(module()), str(path))
    with pytest.raises(InceptionError, match=reason) as err:
        load_inception(path).probabilities(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    assert "\n" not in str(err.value) and "pt_inception-2015-12-05" in str(err.value)


# ---- registry and end to end -----------------------------------------------------------------------

def test_registry_lists_the_metrics_and_rejects_unknown_names(tiny_grey_generator, digits32):
    assert set(METRICS) == {"swd", "msssim", "fid", "kid", "pr", "is"}
    assert parse_metric_names("swd, IS,swd") == ["swd", "is"]
    with pytest.raises(ValueError, match="unknown metric 'lpips'.*swd, msssim, fid, kid, pr, is"):
        compute_metrics(tiny_grey_generator, ArrayDataset(to_uint8(digits32[:8])), ["swd", "lpips"], num=8)


def test_compute_metrics_swd_and_msssim_on_a_tiny_generator(tiny_grey_generator, digits32):
    ds = ArrayDataset(to_uint8(digits32[:64]))
    results = compute_metrics(tiny_grey_generator, ds, ["swd", "msssim"], num=64, batch=32, progress=False)
    assert set(results) == {"swd", "swd_32", "swd_16", "msssim", "msssim_real"}
    assert all(np.isfinite(v) for v in results.values())
    assert results["swd"] > 0 and 0 <= results["msssim"] <= 1
    # Same seed, same numbers (generated seeds 0..num-1, seeded real sample and projections).
    # Batch size changes nothing either: patch positions are drawn image by image. (Only the rounding:
    # oneDNN picks its convolution kernels by shape, so images of batches of 16 and 32 differ by ~3e-6,
    # and the SWD by ~1.5e-6 relative; other patches would move it by far more than 1e-5.)
    again = compute_metrics(tiny_grey_generator, ds, "swd", num=64, batch=16, progress=False)
    assert again["swd"] == pytest.approx(results["swd"], rel=1e-5)


def test_compute_metrics_fid_kid_pr_through_a_torchscript_extractor_and_caches_real_features(
        tiny_grey_generator, digits32, feature_extractor_file, tmp_path):
    ds = ArrayDataset(to_uint8(digits32[:48]), name="digits48")
    kw = dict(num=48, inception_path=feature_extractor_file, batch=16, cache_dir=tmp_path, progress=False)
    results = compute_metrics(tiny_grey_generator, ds, ["fid", "kid", "pr"], **kw)
    assert set(results) == {"fid", "kid", "precision", "recall"}
    assert results["fid"] > 0
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as data:
        assert data["features"].shape == (48, 48)
    # A second run reads the cache: the real images are not touched (an empty stand-in proves it).
    class Untouchable(ArrayDataset):
        def __getitem__(self, i):
            raise AssertionError("real images were read despite the cache")
    assert compute_metrics(tiny_grey_generator, Untouchable(ds.images, "digits48"), ["fid", "kid", "pr"], **kw) \
        == pytest.approx(results)


def test_compute_metrics_is_scores_generated_images_through_the_file_without_its_output_bias(
        tiny_grey_generator, digits32, feature_extractor_file):
    class Untouchable(ArrayDataset):
        def __getitem__(self, i):
            raise AssertionError("IS read the real images")
    G = tiny_grey_generator
    results = compute_metrics(G, Untouchable(to_uint8(digits32[:8])), ["is"], num=30,
                              inception_path=feature_extractor_file, batch=8, progress=False)
    # The same 30 images by hand: seeds 0..29, quantised, greyscale as RGB, no_output_bias=True.
    with torch.no_grad():
        images = to_uint8(G.synthesis(G.mapping(z_from_seeds(list(range(30)), G.z_dim), truncation_psi=1.0),
                                      noise_mode="const"))
        probs = torch.jit.load(str(feature_extractor_file))(images.repeat(1, 3, 1, 1), no_output_bias=True)
    expected = reference_inception_score(probs.double().numpy())
    assert expected[0] > 1.5  # the file's output bias would have put nearly every image in one class
    assert (results["is"], results["is_std"]) == pytest.approx(expected, rel=1e-6)
    assert set(results) == {"is", "is_std"}


def test_is_needs_at_least_ten_images_before_any_work(tiny_grey_generator, digits32):
    with pytest.raises(ValueError, match="--num must be at least 10 for is") as err:
        compute_metrics(tiny_grey_generator, ArrayDataset(to_uint8(digits32[:8])), ["swd", "is"], num=8)
    assert "\n" not in str(err.value)


def test_compute_metrics_needs_the_inception_file_before_generating_anything(tiny_grey_generator, digits32):
    class Untouchable(ArrayDataset):
        def __getitem__(self, i):
            raise AssertionError("real images were read before the inception check")
    with pytest.raises(InceptionError, match="--inception"):
        compute_metrics(tiny_grey_generator, Untouchable(to_uint8(digits32[:8])), ["swd", "fid"], num=8)


def test_append_jsonl_writes_one_object_per_line(tmp_path):
    path = tmp_path / "sub" / "metrics.jsonl"
    append_jsonl(path, {"results": {"swd": 1.5}})
    append_jsonl(path, {"results": {"fid": float("nan")}})
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"results": {"swd": 1.5}}, {"results": {"fid": None}}]


def test_metrics_main_prints_one_json_line_and_appends_it_to_the_model_folder(tiny_stylegan2, tmp_path, capsys):
    pytest.importorskip("gan.data")
    model = shutil.copytree(tiny_stylegan2, tmp_path / "model")  # the shared fixture folder stays as it was
    record = metrics_main(model, "digits", "swd,msssim", 32, progress=False, cache_dir=None)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0]) == record
    assert record["data"] == "digits" and record["num"] == 32 and record["metrics"] == ["swd", "msssim"]
    assert {"timestamp", "model", "results"} <= set(record) and "swd" in record["results"]
    logged = (model / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in logged] == [record]


def test_cli_reports_a_missing_inception_file_as_one_line(tiny_stylegan2, capsys):
    from gan.__main__ import main
    code = main(["metrics", "--model", str(tiny_stylegan2), "--data", "digits", "--metrics", "swd,fid", "--num", "8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--inception" in err
