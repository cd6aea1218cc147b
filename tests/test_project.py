"""Projection of images into a generator's latent space, and loading target images from hostile files."""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.project import (learning_rate, load_discriminator, load_projection, noise_buffers, noise_regularizer,
                              project, psnr, save_projection, synthesize, w_noise_scale, w_stats)
from explorer.session import ExplorerError
from explorer.targets import MAX_DECODED_PIXELS, load_target, target_for
from gan.io.checkpoint import load_model
from gan.seeds import z_from_seeds

FASHION = Path(__file__).resolve().parents[1] / "assets" / "models" / "fashion-stylegan2"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batch-1 optimisation of a 32 px model gains nothing from a second thread, and on two shared cores a
    second spinning thread made each step 25x slower (measured): one thread, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fashion():
    G, _ = load_model(FASHION)
    return G


def generated(G, seed: int) -> torch.Tensor:
    with torch.no_grad():
        return G(z_from_seeds([seed], G.z_dim), noise_mode="const")[0]


# ---- projection ------------------------------------------------------------------------------

def test_projection_recovers_a_generated_image(fashion):
    """W+ projection, 150 steps, of the shipped model's own seed 91001 (measured: 31.0 dB; 27-31 dB over
    seeds 91000-91003; the starting image, w_avg's, is about 10 dB)."""
    target = generated(fashion, 91001)
    result = project(fashion, target, space="w+", steps=150, seed=0)
    assert result.psnr > 26.0
    start = synthesize(fashion, w_stats(fashion)[0].repeat(1, fashion.num_ws, 1))
    assert result.psnr > psnr(start, target) + 10
    assert result.ws.shape == (1, fashion.num_ws, fashion.w_dim)
    assert len(result.losses) == 150 and result.losses[-1] < result.losses[0]


def test_the_projected_latent_and_noise_render_the_projected_image(fashion):
    result = project(fashion, generated(fashion, 91002), space="w+", steps=20, seed=3)
    assert set(result.noise) == set(noise_buffers(fashion))
    again = synthesize(fashion, result.ws, result.noise)
    torch.testing.assert_close(again, result.image, rtol=0, atol=0)
    assert psnr(again, generated(fashion, 91002)) == pytest.approx(result.psnr)


def test_a_projection_saves_and_loads_against_its_model(fashion, tiny_stylegan2, tmp_path):
    result = project(fashion, generated(fashion, 91007), steps=5)
    ws, noise = load_projection(save_projection(result, tmp_path / "p.safetensors"), fashion)
    torch.testing.assert_close(synthesize(fashion, ws, noise), result.image, rtol=0, atol=0)
    with pytest.raises(ExplorerError, match="no ws"):
        load_projection(tmp_path / "p.safetensors", load_model(tiny_stylegan2)[0])
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ExplorerError, match="not a readable projection file"):
        load_projection(tmp_path / "bad.safetensors", fashion)


def test_projection_is_deterministic_for_a_fixed_seed(fashion):
    target = generated(fashion, 91003)
    a, b = (project(fashion, target, space="w+", steps=25, seed=5) for _ in range(2))
    c = project(fashion, target, space="w+", steps=25, seed=6)
    assert torch.equal(a.ws, b.ws) and a.losses == b.losses
    assert all(torch.equal(a.noise[k], b.noise[k]) for k in a.noise)
    assert not torch.equal(a.ws, c.ws)


def test_space_w_gives_one_w_for_every_layer(fashion):
    result = project(fashion, generated(fashion, 91004), space="w", steps=10)
    torch.testing.assert_close(result.ws, result.ws[:, :1].expand_as(result.ws), rtol=0, atol=0)


def test_projection_leaves_the_model_untouched(fashion):
    before = {k: v.clone() for k, v in fashion.state_dict().items()}
    progress = []
    project(fashion, generated(fashion, 91005), steps=10, progress=lambda f, text: progress.append((f, text)))
    after = fashion.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in fashion.parameters())
    assert progress[-1][0] == 1.0 and "10/10" in progress[-1][1]
    assert all(a[0] < b[0] for a, b in zip(progress, progress[1:]))


def test_projection_runs_inside_inference_mode(fashion):
    """The engine's methods run under torch.inference_mode(); projection still gets its gradients."""
    with torch.inference_mode():
        target = generated(fashion, 91006)
        result = project(fashion, target, steps=5)
    assert math.isfinite(result.psnr)


def test_discriminator_features_join_the_loss(tiny_stylegan2):
    G, _ = load_model(tiny_stylegan2)
    D = load_discriminator(tiny_stylegan2)
    assert D is not None and load_discriminator(FASHION) is None   # shipped models keep only G
    target = generated(G, 4)
    plain = project(G, target, steps=15, seed=1)
    with_d = project(G, target, steps=15, seed=1, D=D)
    assert with_d.losses[0] > plain.losses[0]          # the same first image, plus the feature term
    assert with_d.pixel_losses[0] == pytest.approx(plain.pixel_losses[0])


def test_pggan_projects_its_one_latent_and_has_no_w_plus(tiny_pggan):
    G, _ = load_model(tiny_pggan)
    target = generated(G, 2)
    result = project(G, target, space="w", steps=30, pggan_init_samples=16)
    assert result.ws.shape == (1, 1, G.z_dim) and result.noise == {}
    assert result.ws.square().mean().item() == pytest.approx(1.0, rel=1e-4)   # on PGGAN's sphere
    torch.testing.assert_close(synthesize(G, result.ws), result.image)
    with pytest.raises(ExplorerError, match="no w\\+"):
        project(G, target, space="w+", steps=5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(vgg16="missing.safetensors"), "LPIPS needs VGG16 weights"),
    (dict(space="z"), "unknown projection space"),
    (dict(steps=0), "steps"),
    (dict(w_plus_after=1.0), "w_plus_after"),
])
def test_bad_projection_arguments_are_refused(fashion, kwargs, match):
    with pytest.raises(ExplorerError, match=match):
        project(fashion, generated(fashion, 1), **kwargs)


def test_a_target_of_the_wrong_shape_is_refused(fashion):
    with pytest.raises(ExplorerError, match=r"needs \[1, 32, 32\]"):
        project(fashion, torch.zeros(3, 32, 32), steps=1)


def test_schedules_follow_projector_py():
    assert learning_rate(0.0) == 0.0
    assert learning_rate(0.05) == pytest.approx(0.1)
    assert learning_rate(0.5) == pytest.approx(0.1)
    assert learning_rate(0.875) == pytest.approx(0.05)   # half way down the cosine
    assert w_noise_scale(0.0, 2.0) == pytest.approx(0.1) and w_noise_scale(0.75, 2.0) == 0.0
    smooth = torch.ones(16, 16)
    rough = torch.from_numpy(np.indices((16, 16)).sum(0) % 2 * 2.0 - 1).float()   # a checkerboard
    assert noise_regularizer([smooth]) > 1 and noise_regularizer([rough]) > 1   # both correlated
    assert noise_regularizer([torch.randn(16, 16, generator=torch.Generator().manual_seed(0))]) < 0.1


# ---- targets ---------------------------------------------------------------------------------

def test_a_target_is_prepared_like_training_images(tmp_path):
    """A 100x40 image: the centre 40x40 kept (the red bars at the sides cut off, far enough for Lanczos
    not to reach them), RGBA composited onto white."""
    arr = np.zeros((40, 100, 4), np.uint8)
    arr[..., 3] = 255
    arr[:, :10, 0] = arr[:, 90:, 0] = 255             # red bars outside the centre square
    arr[:, 10:90, 3] = 0                              # a transparent middle: white after compositing
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    t = load_target(tmp_path / "a.png", 8, 3)
    assert t.image.shape == (3, 8, 8) and t.source_size == (100, 40)
    torch.testing.assert_close(t.image, torch.ones(3, 8, 8))
    grey = load_target(tmp_path / "a.png", 8, 1).image
    assert grey.shape == (1, 8, 8)


def test_a_target_matches_the_model(fashion, tmp_path):
    Image.new("RGB", (64, 64), (0, 0, 0)).save(tmp_path / "black.jpg")
    t = target_for(fashion, tmp_path / "black.jpg")
    assert t.image.shape == (1, 32, 32) and t.image.max() < -0.95
    from_bytes = target_for(fashion, (tmp_path / "black.jpg").read_bytes())      # an upload's bytes
    torch.testing.assert_close(from_bytes.image, t.image, rtol=0, atol=0)


def test_an_animated_gif_uses_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 255, 255), (0, 0, 0), (128, 128, 128))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    t = load_target(tmp_path / "anim.gif", 16, 1)
    assert t.image.min() > 0.95 and "first of 3 frames" in t.notes[0]


def test_a_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=95)   # pure red ink
    assert Image.open(tmp_path / "red.jpg").mode == "CMYK"
    r, g, b = load_target(tmp_path / "red.jpg", 16, 3).image.mean(dim=(1, 2)).tolist()
    assert r > 0.9 and g < -0.9 and b < -0.9


def test_a_16_bit_png_is_scaled_by_its_bit_depth(tmp_path):
    """Mode I;16: 65535 is white, 32896 mid grey, and a dark image (all values <= 255) stays dark."""
    for value, want in ((65535, 1.0), (32896, 128 / 127.5 - 1), (200, -1.0)):
        Image.fromarray(np.full((8, 8), value, np.uint16)).save(tmp_path / "d.png")
        assert Image.open(tmp_path / "d.png").mode == "I;16"
        assert load_target(tmp_path / "d.png", 8, 1).image.mean().item() == pytest.approx(want, abs=0.01)


def test_a_100_megapixel_png_is_refused_before_decoding(tmp_path):
    Image.new("L", (10_000, 10_000)).save(tmp_path / "bomb.png")      # 97 kB on disk
    with pytest.raises(ExplorerError, match=r"10000x10000 \(100 MP\), over the 40 MP limit"):
        load_target(tmp_path / "bomb.png", 32, 1)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (8-bit grey) with one compressed row of data: what a
    decompression bomb looks like to a reader of headers."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


def test_a_png_over_pils_bomb_limit_is_refused_at_its_header(tmp_path):
    (tmp_path / "bomb2.png").write_bytes(png_claiming(20_000, 20_000))      # 400 MP claimed, 80 bytes
    with pytest.raises(ExplorerError, match="too many pixels"):
        load_target(tmp_path / "bomb2.png", 32, 1)


def test_a_100_megapixel_jpeg_is_decoded_at_reduced_size(tmp_path):
    Image.new("L", (10_000, 10_000), 255).save(tmp_path / "big.jpg", quality=50)
    t = load_target(tmp_path / "big.jpg", 32, 1)
    assert t.image.min() > 0.95 and "decoded at 1250x1250" in t.notes[0]
    assert 1250 * 1250 < MAX_DECODED_PIXELS


def noisy_image(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(path)
    return path


def truncated(path: Path) -> bytes:
    data = noisy_image(path).read_bytes()
    return data[:len(data) // 2]


def bit_flipped(path: Path) -> bytes:
    data = bytearray(noisy_image(path).read_bytes())
    data[len(data) // 2] ^= 0xFF                   # inside the compressed pixels: the stream breaks
    return bytes(data)


@pytest.mark.parametrize("name, make, match", [
    ("notes.png", lambda p: b"this is not an image\n" * 10, "not an image this tool reads"),
    ("empty.png", lambda p: b"", "is empty"),
    ("header-only.jpg", lambda p: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "not an image this tool reads"),
    ("truncated.jpg", truncated, "corrupt or truncated"),
    ("truncated.png", truncated, "corrupt or truncated"),
    ("flipped.png", bit_flipped, "corrupt or truncated"),
])
def test_broken_target_files_get_one_line(tmp_path, name, make, match):
    path = tmp_path / name
    path.write_bytes(make(path))
    with pytest.raises(ExplorerError, match=match) as err:
        load_target(path, 16, 3)
    assert "\n" not in str(err.value) and str(tmp_path) not in str(err.value)


def test_missing_targets_and_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ExplorerError, match="no such file"):
        load_target(tmp_path / "nope.png", 16, 3)
    with pytest.raises(ExplorerError, match="not a file"):
        load_target(tmp_path, 16, 3)
    with pytest.raises(ExplorerError, match="channels"):
        load_target(tmp_path / "nope.png", 16, 4)
