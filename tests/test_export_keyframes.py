"""Interpolation exports whose keyframes mix seeds, the image shown ('this') and projected images, each
keyframe exactly as the explorer shows it, with the noise maps between them blended as keyframes.py says."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.__main__ import main
from explorer.engine import Engine
from explorer.keyframes import THIS, parse_keyframes
from explorer.project import ProjectionResult, noise_buffers, save_projection
from explorer.session import ExplorerError

N = 3   # frames per segment


@pytest.fixture(scope="module")
def engine(tiny_stylegan2, tmp_path_factory):
    return Engine(shutil.copytree(tiny_stylegan2, tmp_path_factory.mktemp("keys") / "m"), show_bars=False)


def projection_file(engine, path, seed):
    """A projection file as `project` writes one: some ws (a seed's, nudged off the mapping's range) and
    noise maps of its own (fresh N(0, 1), as a projection's are)."""
    gen = torch.Generator().manual_seed(seed)
    ws = engine.ws(engine.default_state(seed=seed)) + 0.3 * torch.randn(1, engine.num_ws, engine.w_dim, generator=gen)
    noise = {k: torch.randn(v.shape, generator=gen) for k, v in noise_buffers(engine.G).items()}
    result = ProjectionResult(ws=ws, noise=noise, losses=[], psnr=0.0, image=torch.zeros(1), space="w+", steps=0,
                              seed=seed)
    return save_projection(result, path)


@pytest.fixture(scope="module")
def projected(engine, tmp_path_factory):
    """(the state showing projection A, the path of projection B)."""
    folder = tmp_path_factory.mktemp("projections")
    a, b = projection_file(engine, folder / "a.safetensors", 1), projection_file(engine, folder / "b.safetensors", 2)
    return engine.default_state(truncation_psi=0.7).replace(projection=str(a)), b


def test_keyframes_parse_seeds_this_and_files_only_where_allowed():
    assert parse_keyframes("3, this,7-8") == [3, THIS, 7, 8]
    assert parse_keyframes("THIS,me.safetensors", allow_files=True)[1].name == "me.safetensors"
    with pytest.raises(ExplorerError, match="keyframes are seeds and 'this'"):
        parse_keyframes("3,/etc/me.safetensors")
    with pytest.raises(ExplorerError, match=r"keyframe 'x'"):
        parse_keyframes("3,x")


def test_every_keyframe_is_the_image_the_explorer_shows(engine, projected):
    """this (projection A) -> seed 5 -> projection B: frames 0, N and 2N are those three images, bitwise."""
    state, b = projected
    frames = list(engine.frames(state, [THIS, 5, b], N, space="w"))
    assert len(frames) == 2 * N + 1
    assert np.array_equal(frames[0], engine.render_array(state))
    assert np.array_equal(frames[N], engine.render_array(state.replace(projection=None, seed=5)))
    assert np.array_equal(frames[2 * N], engine.render_array(state.replace(projection=str(b))))
    # and the frames in between are neither end
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[1], frames[N])


def test_noise_maps_between_keyframes_keep_unit_variance(engine, projected):
    """Halfway from a projection to a seed the maps are (a + own) / sqrt(2), the blend written out; between
    two seeds they are the model's own maps (None)."""
    state, _ = projected
    ws, keys = engine.path(state, [THIS, 5, 6], 2, space="w")
    own = noise_buffers(engine.G)
    from explorer.keyframes import frame_weights
    weights = frame_weights(3, 2, False, "linear")            # rows: 1,0,0 | .5,.5,0 | 0,1,0 | 0,.5,.5 | 0,0,1
    a = keys.noise_sets[1]
    half = keys.frame_noise(weights[1], own)
    for name, m in own.items():
        torch.testing.assert_close(half[name], (a[name] + m) / 2 ** 0.5, rtol=1e-6, atol=1e-6)
    big = max(own, key=lambda k: own[k].numel())
    assert abs(half[big].var().item() - 1) < 0.3 and keys.frame_noise(weights[3], own) is None
    assert keys.frame_noise(weights[0], own) is a


def test_projected_keyframes_have_no_z(engine, projected, tmp_path):
    state, b = projected
    for keys, what in (([THIS, 5], "keyframe this is a projected image"), ([5, b], "keyframe b is a projected")):
        with pytest.raises(ExplorerError, match=what):
            engine.export(state, keys, tmp_path / "a.gif", frames_per_segment=N, space="z")
    blended = state.replace(projection=None, blend_seed=9, blend=0.5, blend_space="w")
    with pytest.raises(ExplorerError, match="blend in W, which has no z"):
        engine.check_path([THIS, 5], N, "z", state=blended)
    assert list(tmp_path.iterdir()) == []


def test_this_in_z_is_the_state_seed_or_its_z_blend(engine):
    state = engine.default_state(seed=4, truncation_psi=0.7)
    assert torch.equal(engine.path_ws(state, [THIS, 9], N, space="z")[0], engine.path_ws(state, [4, 9], N, "z")[0])
    blended = state.replace(blend_seed=9, blend=0.4, blend_space="z")
    frames = list(engine.frames(blended, [THIS, 9], N, space="z"))
    assert np.abs(frames[0].astype(int) - engine.render_array(blended).astype(int)).max() <= 1   # batched mapping
    assert np.array_equal(frames[-1], list(engine.frames(state, [9], 1))[0])


def test_cli_export_from_a_projected_session(engine, projected, tmp_path):
    state, b = projected
    session = state.save(tmp_path / "me.json")
    shutil.copy(state.projection, tmp_path / "a.safetensors")
    out = tmp_path / "walk.gif"
    assert main(["export", "--session", str(session), "--seeds", f"this,3,{b}", "--space", "w",
                 "--frames-per-seed", str(N), "--size", "32", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 2 * N + 1
        first = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(first - engine.render_array(state).astype(int)).mean() < 10        # GIF: 256 colours
    assert main(["export", "--session", str(session), "--seeds", "this,3", "--out", str(tmp_path / "z.gif")]) == 2
    assert not (tmp_path / "z.gif").exists()
