"""Latent paths (explorer/interpolate.py) and GIF/MP4 export (explorer/export.py)."""

import math
import os
import weakref

import imageio.v2 as iio2
import numpy as np
import pytest
import torch
from PIL import Image

from explorer.export import export_frames, resize_frame, write_gif, write_mp4
from explorer.interpolate import EASINGS, MAX_FRAMES, count_frames, latent_path, lerp, slerp

# ---------------------------------------------------------------------------------------------
# slerp / lerp
# ---------------------------------------------------------------------------------------------


def test_slerp_endpoints_are_exact():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 64, generator=gen), torch.randn(4, 64, generator=gen)
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)
    t = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    assert torch.equal(slerp(a, b, t)[[0, 2]], a[[0, 2]])
    assert torch.equal(slerp(a, b, t)[[1, 3]], b[[1, 3]])


def test_slerp_keeps_unit_vectors_on_the_sphere():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 128, generator=gen)
    a, b = a / a.norm(), b / b.norm()
    t = torch.linspace(0, 1, 11)[:, None]  # [11, 1] weights -> [11, 128] points
    out = slerp(a, b, t)
    assert out.shape == (11, 128)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(11), atol=1e-5, rtol=0)


def test_slerp_moves_at_constant_angular_speed():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)
    torch.testing.assert_close(mid, torch.tensor([math.sqrt(0.5), math.sqrt(0.5)]))


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["parallel", "antiparallel"])
def test_slerp_is_finite_and_keeps_norm_for_degenerate_pairs(sign):
    a = torch.randn(32, generator=torch.Generator().manual_seed(2))
    a = a / a.norm()
    out = slerp(a, sign * a, torch.linspace(0, 1, 9)[:, None])
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(9), atol=1e-5, rtol=0)
    assert torch.equal(out[-1], sign * a)


def test_slerp_with_a_zero_vector_falls_back_to_lerp():
    a, b = torch.zeros(8), torch.ones(8)
    torch.testing.assert_close(slerp(a, b, 0.25), torch.full((8,), 0.25))


def test_lerp_midpoint_and_endpoints():
    a, b = torch.tensor([0.0, 2.0, -4.0]), torch.tensor([2.0, 4.0, 4.0])
    torch.testing.assert_close(lerp(a, b, 0.5), torch.tensor([1.0, 3.0, 0.0]))
    assert torch.equal(lerp(a, b, 0.0), a) and torch.equal(lerp(a, b, 1.0), b)


def test_lerp_works_on_whole_ws():
    a, b = torch.zeros(6, 16), torch.ones(6, 16)  # ws [num_ws, w_dim]
    out = lerp(a, b, torch.tensor([0.0, 0.5, 1.0]).reshape(3, 1, 1))
    assert out.shape == (3, 6, 16)
    torch.testing.assert_close(out[1], torch.full((6, 16), 0.5))


# ---------------------------------------------------------------------------------------------
# easing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easing_maps_0_to_0_and_1_to_1_monotonically(name):
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    y = EASINGS[name](t)
    assert y[0] == 0 and y[-1] == 1
    assert (y.diff() >= 0).all()


# ---------------------------------------------------------------------------------------------
# latent paths
# ---------------------------------------------------------------------------------------------


def _z_keys(k, z_dim=64, seed=0):
    return torch.randn(k, z_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("loop, expected", [(False, 3 * 5 + 1), (True, 4 * 5)])
def test_frame_count_follows_the_documented_rule(loop, expected):
    path = latent_path(_z_keys(4), frames_per_segment=5, space="z", loop=loop)
    assert path.shape == (expected, 64)
    assert count_frames(4, 5, loop) == expected


@pytest.mark.parametrize("space", ["z", "w"])
def test_every_keyframe_is_hit_exactly(space):
    keys = _z_keys(3) if space == "z" else torch.randn(3, 4, 16)  # z [K, z_dim] | ws [K, num_ws, w_dim]
    path = latent_path(keys, frames_per_segment=4, space=space, loop=False, easing="ease")
    assert torch.equal(path[0], keys[0])
    assert torch.equal(path[4], keys[1])
    assert torch.equal(path[-1], keys[-1])


def test_w_path_has_the_shape_of_ws():
    ws = torch.randn(2, 6, 16)
    assert latent_path(ws, frames_per_segment=3, space="w").shape == (4, 6, 16)


def test_loop_ends_just_before_the_first_keyframe_and_wraps_smoothly():
    keys = _z_keys(3, z_dim=256)
    path = latent_path(keys, frames_per_segment=8, space="z", loop=True)
    assert not torch.equal(path[-1], path[0])
    # Step sizes round the whole loop, including the wrap from the last frame to the first.
    steps = (torch.roll(path, -1, dims=0) - path).norm(dim=-1)
    assert steps.max() / steps.min() < 1.3


def test_single_keyframe_gives_a_single_frame():
    keys = _z_keys(1)
    for loop in (False, True):
        path = latent_path(keys, frames_per_segment=10, space="z", loop=loop)
        assert path.shape == (1, 64) and torch.equal(path[0], keys[0])


def test_no_keyframes_is_refused():
    with pytest.raises(ValueError, match="no keyframes"):
        latent_path(torch.zeros(0, 64), frames_per_segment=4)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_frames_per_segment_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="frames_per_segment"):
        latent_path(_z_keys(2), frames_per_segment=bad)


def test_too_many_frames_is_refused_naming_the_limit():
    with pytest.raises(ValueError, match=str(MAX_FRAMES)):
        latent_path(_z_keys(3), frames_per_segment=MAX_FRAMES)


def test_z_path_needs_z_shaped_keys_and_known_names():
    with pytest.raises(ValueError, match="z_dim"):
        latent_path(torch.randn(2, 4, 16), frames_per_segment=2, space="z")
    with pytest.raises(ValueError, match="easing"):
        latent_path(_z_keys(2), frames_per_segment=2, easing="bounce")
    with pytest.raises(ValueError, match="space"):
        latent_path(_z_keys(2), frames_per_segment=2, space="s")


# ---------------------------------------------------------------------------------------------
# synthetic frames: a white square moving over a two-colour background (few colours: the GIF
# palette reproduces them exactly)
# ---------------------------------------------------------------------------------------------


def _frames(n, size=32, channels=3):
    out = []
    for i in range(n):
        f = np.zeros((size, size, 3), np.uint8)
        f[:, : size // 2] = (200, 40, 40)
        f[:, size // 2 :] = (30, 60, 180)
        x = (i * 3) % (size - 8)
        f[4:12, x : x + 8] = 255
        out.append(f[:, :, :1] if channels == 1 else f)
    return out


def _no_progress(done, total):
    return None


def _read_gif(path):
    """(frames as uint8 arrays, per-frame durations in ms, loop) read back with Pillow."""
    frames, durations = [], []
    with Image.open(path) as im:
        loop = im.info.get("loop")
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            frames.append(np.asarray(im.convert("RGB")))
    return frames, durations, loop


# ---------------------------------------------------------------------------------------------
# GIF
# ---------------------------------------------------------------------------------------------


def test_gif_has_one_frame_per_input_frame_even_when_frames_repeat(tmp_path):
    frames = _frames(6)
    frames = frames[:2] + [frames[2]] * 3 + frames[3:]  # a pause: identical consecutive frames
    assert write_gif(frames, tmp_path / "a.gif", fps=10) == 8
    read, _, _ = _read_gif(tmp_path / "a.gif")
    assert len(read) == 8


def test_gif_loops_forever_by_default_and_once_on_request(tmp_path):
    write_gif(_frames(3), tmp_path / "loop.gif", fps=10)
    write_gif(_frames(3), tmp_path / "once.gif", fps=10, loop=False)
    assert _read_gif(tmp_path / "loop.gif")[2] == 0
    assert _read_gif(tmp_path / "once.gif")[2] is None


@pytest.mark.parametrize("fps", [10, 24])
def test_gif_frame_durations_match_fps(tmp_path, fps):
    write_gif(_frames(12), tmp_path / "a.gif", fps=fps)
    _, durations, _ = _read_gif(tmp_path / "a.gif")
    assert all(abs(d - 1000 / fps) <= 10 for d in durations)  # GIF delays are whole 1/100 s
    assert abs(sum(durations) - 12 * 1000 / fps) <= 10  # no drift over the animation


def test_gif_is_refused_above_its_maximum_fps(tmp_path):
    with pytest.raises(ValueError, match="50 fps"):
        write_gif(_frames(2), tmp_path / "a.gif", fps=60)


def test_greyscale_gif_is_exact(tmp_path):
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))[:, :, None]  # 64 grey levels
    frames = [ramp, np.ascontiguousarray(ramp[:, ::-1])]
    write_gif(frames, tmp_path / "g.gif", fps=10)
    read, _, _ = _read_gif(tmp_path / "g.gif")
    for got, want in zip(read, frames):
        np.testing.assert_array_equal(got[:, :, 0], want[:, :, 0])


def _palette_frames(n, size=128, colours=200, seed=0):
    """n frames of random pixels drawn from `colours` random RGB colours (<= 256, so the GIF must
    store them exactly). Random pixels barely compress: a 128 px frame is ~15 kB of LZW, more than
    a file buffer (8 kB), so a streaming writer's output reaches the disk frame by frame."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(256 ** 3, colours, replace=False)
    palette = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)
    return [palette[rng.integers(0, colours, (size, size))] for _ in range(n)]


def test_gif_streams_from_a_generator(tmp_path):
    fps, want, path = 20, _palette_frames(6), tmp_path / "a.gif"
    refs, alive_before, size_before = [], [], []

    def frames():
        # Made on demand; before making each, note how many earlier frames are still referenced
        # (a writer that collects frames until close, as imageio's pillow plugin does, keeps them
        # all) and how much of the file is already on disk.
        for f in want:
            alive_before.append(sum(r() is not None for r in refs))
            size_before.append(path.stat().st_size if path.exists() else 0)
            frame = f.copy()
            refs.append(weakref.ref(frame))
            yield frame
            del frame

    assert write_gif(frames(), path, fps=fps, loop=True) == 6
    # At most the frame being encoded is alive when the next is pulled...
    assert max(alive_before) <= 1, alive_before
    # ...and each encoded frame reached the file before the next one was pulled.
    assert all(b > a for a, b in zip(size_before[1:], size_before[2:])), size_before

    read, durations, loop = _read_gif(path)
    assert len(read) == 6 and all(r.shape == (128, 128, 3) for r in read)
    for i, (got, sent) in enumerate(zip(read, want)):
        np.testing.assert_array_equal(got, sent, err_msg=f"frame {i}")
    assert loop == 0                                   # NETSCAPE loop count 0: forever
    assert durations == [1000 / fps] * 6               # 5/100 s: exact in GIF's 1/100 s units


def test_gif_keeps_frames_of_up_to_256_colours_exact(tmp_path):
    # Pillow's quantizers alone change some of these (they merge close colours); see _to_palette.
    want = _palette_frames(3, size=64, colours=256, seed=1) + _palette_frames(2, size=64, colours=2, seed=2)
    write_gif(want, tmp_path / "a.gif", fps=10)
    read, _, _ = _read_gif(tmp_path / "a.gif")
    for got, sent in zip(read, want):
        np.testing.assert_array_equal(got, sent)


def test_gif_of_many_colours_loses_only_what_the_palette_loses(tmp_path):
    # 4096 colours must become 256: the GIF must hold exactly Pillow's FASTOCTREE palette image
    # (the LZW data and colour table are lossless), which stays near the input.
    y, x = np.mgrid[0:64, 0:64]
    frame = np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)
    write_gif([frame], tmp_path / "a.gif", fps=10)
    read, _, _ = _read_gif(tmp_path / "a.gif")
    quantised = Image.fromarray(frame, "RGB").quantize(256, method=Image.Quantize.FASTOCTREE).convert("RGB")
    np.testing.assert_array_equal(read[0], np.asarray(quantised))
    assert np.abs(read[0].astype(int) - frame).mean() < 8  # of 255: a palette, not noise


# ---------------------------------------------------------------------------------------------
# MP4
# ---------------------------------------------------------------------------------------------


def _read_mp4(path):
    with iio2.get_reader(path, format="FFMPEG") as reader:
        return [frame for frame in reader]


def test_mp4_is_readable_with_the_right_frame_count_and_size(tmp_path):
    assert write_mp4((f for f in _frames(10)), tmp_path / "a.mp4", fps=12) == 10
    read = _read_mp4(tmp_path / "a.mp4")
    assert len(read) == 10 and read[0].shape == (32, 32, 3)
    # Lossy, but close: the first frame is recognisably the first input frame.
    assert np.abs(read[0].astype(int) - _frames(1)[0]).mean() < 8


def test_mp4_accepts_greyscale_and_pads_odd_sizes(tmp_path):
    frames = [f[:31, :29] for f in _frames(3, channels=1)]
    write_mp4(frames, tmp_path / "g.mp4", fps=10)
    read = _read_mp4(tmp_path / "g.mp4")
    assert len(read) == 3 and read[0].shape == (32, 30, 3)


# ---------------------------------------------------------------------------------------------
# export_frames
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_export_writes_the_file_and_leaves_no_temporary_files(tmp_path, suffix):
    out = export_frames(_frames(4), tmp_path / f"clip{suffix}", fps=10)  # progress: a tqdm bar
    assert out == tmp_path / f"clip{suffix}"
    assert [p.name for p in tmp_path.iterdir()] == [f"clip{suffix}"]


@pytest.mark.parametrize("loop, count", [(True, 0), (False, None)])
def test_export_passes_loop_to_the_gif_and_mp4_takes_no_loop(tmp_path, loop, count):
    export_frames(_frames(3), tmp_path / "a.gif", fps=10, loop=loop, progress=_no_progress)
    assert _read_gif(tmp_path / "a.gif")[2] == count   # NETSCAPE loop count 0 = forever; none = once
    export_frames(_frames(3), tmp_path / "a.mp4", fps=10, loop=loop, progress=_no_progress)
    assert len(_read_mp4(tmp_path / "a.mp4")) == 3


def test_export_into_a_missing_folder_fails_before_any_work(tmp_path):
    consumed = []

    def frames():
        consumed.append(1)
        yield from _frames(2)

    with pytest.raises(ValueError, match="output folder .* does not exist"):
        export_frames(frames(), tmp_path / "nope" / "a.gif", fps=10)
    assert not consumed and not (tmp_path / "nope").exists()


def test_export_refuses_unknown_suffixes(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif, \.mp4"):
        export_frames(_frames(2), tmp_path / "a.avi", fps=10)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_nothing_behind(tmp_path):
    bad = _frames(3) + [np.zeros((16, 16, 3), np.uint8)]  # wrong size at frame 3
    with pytest.raises(ValueError, match="frame 3"):
        export_frames(bad, tmp_path / "a.gif", fps=10, progress=_no_progress)
    assert list(tmp_path.iterdir()) == []


def test_export_resizes_with_crisp_nearest_upscaling(tmp_path):
    frames = _frames(2)
    export_frames(frames, tmp_path / "big.gif", fps=10, size=96, progress=_no_progress)
    read, _, _ = _read_gif(tmp_path / "big.gif")
    assert read[0].shape == (96, 96, 3)
    np.testing.assert_array_equal(read[0], frames[0].repeat(3, axis=0).repeat(3, axis=1))


def test_resize_downscales_smoothly_and_keeps_greyscale():
    # A 1-px black/white checkerboard has nothing a 24 px image can show but its mean: a smoothing
    # (antialiasing) downscale gives mid-grey everywhere; a naive one would keep 0s and 255s.
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)[:, :, None]  # [H, W, 1]
    small = resize_frame(checker, 24)                  # 64 -> 24 is no integer factor: lanczos
    assert small.shape == (24, 24, 1) and small.dtype == np.uint8
    assert np.abs(small.astype(int) - 127.5).max() <= 4
    reference = Image.fromarray(checker[:, :, 0], "L").resize((24, 24), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(small[:, :, 0], np.asarray(reference))


@pytest.mark.parametrize("channels", [1, 3])
def test_resize_upscales_by_an_integer_factor_with_nearest(channels):
    frame = _frames(1, size=16, channels=channels)[0]
    big = resize_frame(frame, 48)                      # 3x: every pixel becomes a 3x3 block
    np.testing.assert_array_equal(big, frame.repeat(3, axis=0).repeat(3, axis=1))
    mode = "L" if channels == 1 else "RGB"
    reference = Image.fromarray(frame[:, :, 0] if channels == 1 else frame, mode).resize(
        (48, 48), Image.Resampling.NEAREST)
    np.testing.assert_array_equal(big.reshape(48, 48, channels), np.asarray(reference).reshape(48, 48, channels))


def test_export_reports_progress(tmp_path):
    calls = []
    export_frames(
        iter(_frames(5)), tmp_path / "a.gif", fps=10, num_frames=5, progress=lambda i, n: calls.append((i, n))
    )
    assert calls == [(i, 5) for i in range(1, 6)]


def test_export_refuses_float_frames_with_a_hint(tmp_path):
    with pytest.raises(ValueError, match=r"gan\.io\.images\.to_uint8"):
        export_frames([np.zeros((8, 8, 3), np.float32)], tmp_path / "a.gif", fps=10, progress=_no_progress)


def test_exported_file_has_normal_permissions(tmp_path):
    out = export_frames(_frames(2), tmp_path / "a.gif", fps=10, progress=_no_progress)
    reference = tmp_path / "ref"
    reference.write_bytes(b"")
    assert os.stat(out).st_mode == os.stat(reference).st_mode
