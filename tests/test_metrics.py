"""Metrics: real computations on small real data (scikit-learn's digits), Gaussians with known
answers, tiny random generators, and a small TorchScript feature extractor saved to tmp_path."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan.metrics import (METRICS, InceptionError, append_jsonl, compute_metrics, fid, kid, load_inception,
                         metrics_main, ms_ssim, msssim_diversity, parse_metric_names, precision_recall)
from gan.metrics.swd import laplacian_pyramid, pyramid_resolutions, swd


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


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def tiny_grey_generator():
    """A 32x32 greyscale StyleGAN2 with random weights."""
    from gan.models.config import ModelConfig
    from gan.models.networks import build_generator
    torch.manual_seed(0)
    cfg = ModelConfig(arch="stylegan2", img_resolution=32, img_channels=1, z_dim=32, w_dim=32, mapping_layers=2,
                      channel_base=256, channel_max=32)
    return build_generator(cfg).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def feature_extractor_file(tmp_path_factory):
    """A small TorchScript module with the official Inception calling convention:
    module(uint8 [N, 3, H, W], return_features=True) -> [N, D]. Its features are 4x4 average-pooled
    pixels (48-d): real features of the images, cheap enough for a test."""

    class PooledPixels(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            assert x.dtype == torch.uint8 and x.shape[1] == 3
            return F.adaptive_avg_pool2d(x.float() / 255.0, 4).flatten(1)

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

def test_msssim_of_identical_images_is_one(digits32):
    assert torch.allclose(ms_ssim(digits32[:16], digits32[:16]), torch.ones(16, dtype=torch.float64), atol=1e-4)


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


# ---- registry and end to end -----------------------------------------------------------------------

def test_registry_lists_the_metrics_and_rejects_unknown_names(tiny_grey_generator, digits32):
    assert set(METRICS) == {"swd", "msssim", "fid", "kid", "pr"}
    assert parse_metric_names("swd, fid,swd") == ["swd", "fid"]
    with pytest.raises(ValueError, match="unknown metric 'is'.*swd, msssim, fid, kid, pr"):
        compute_metrics(tiny_grey_generator, ArrayDataset(to_uint8(digits32[:8])), ["swd", "is"], num=8)


def test_compute_metrics_swd_and_msssim_on_a_tiny_generator(tiny_grey_generator, digits32):
    ds = ArrayDataset(to_uint8(digits32[:64]))
    results = compute_metrics(tiny_grey_generator, ds, ["swd", "msssim"], num=64, batch=32, progress=False)
    assert set(results) == {"swd", "swd_32", "swd_16", "msssim", "msssim_real"}
    assert all(np.isfinite(v) for v in results.values())
    assert results["swd"] > 0 and 0 <= results["msssim"] <= 1
    # Same seed, same numbers (generated seeds 0..num-1, seeded real sample and projections).
    # Batch size changes nothing either: patch positions are drawn image by image.
    again = compute_metrics(tiny_grey_generator, ds, "swd", num=64, batch=16, progress=False)
    assert again["swd"] == pytest.approx(results["swd"], rel=1e-6)


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
