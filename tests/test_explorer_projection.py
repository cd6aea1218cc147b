"""A projected image as an explorer session: rendered with its own ws and noise maps, edited, mixed,
blended and saved like a seed's image (the projection's optimisation is tested in tests/test_project.py)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.__main__ import main
from explorer.engine import Engine
from explorer.project import load_projection, synthesize
from explorer.session import DirectionSettings, ExplorerError, ExplorerState
from gan.io.images import to_uint8

STEPS = 40
FAST = DirectionSettings(samples=2000, components=8)


@pytest.fixture(scope="module")
def model(tiny_stylegan2, tmp_path_factory):
    return shutil.copytree(tiny_stylegan2, tmp_path_factory.mktemp("proj") / "m")


@pytest.fixture(scope="module")
def projected(model, tmp_path_factory):
    """(engine, projected state, target png path): seed 77's image of the model, projected for a few steps."""
    engine = Engine(model, show_bars=False)
    folder = tmp_path_factory.mktemp("proj_out")
    target = folder / "target.png"
    engine.render(engine.default_state(seed=77)).save(target)
    state, result, _ = engine.project(target, folder / "p.safetensors", engine.default_state(directions=FAST),
                                      steps=STEPS, seed=1)
    return engine, state, result, target


def test_the_projected_state_renders_the_projection(projected):
    engine, state, result, _ = projected
    ws, noise = load_projection(state.projection, engine.G)
    want = to_uint8(synthesize(engine.G, ws, noise))[0].reshape(engine.render_array(state).shape)
    assert np.array_equal(engine.render_array(state), want)
    assert np.array_equal(to_uint8(result.image)[0].reshape(want.shape), want)


def test_a_projected_session_saved_and_loaded_renders_the_same_pixels(projected, tmp_path):
    engine, state, _, _ = projected
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(state.projection, moved / "p.safetensors")
    path = state.replace(projection=str(moved / "p.safetensors")).save(moved / "s.json")
    assert '"projection": "p.safetensors"' in path.read_text()       # relative: the pair moves together
    loaded = ExplorerState.load(path)
    fresh = Engine(engine.model_path, show_bars=False)
    assert np.array_equal(fresh.render_array(loaded), engine.render_array(state))


def test_edits_mixing_and_blending_act_on_a_projected_image(projected):
    engine, state, _, _ = projected
    base = engine.render_array(state)
    edited = state.with_edit(0, 3.0)
    d = engine.directions(FAST)
    want = engine.ws(state) + 3.0 * float(d.stdev[0]) * torch.from_numpy(d.components[0])
    assert (engine.ws(edited) - want).abs().max().item() < 1e-5
    assert not np.array_equal(engine.render_array(edited), base)
    mixed = state.replace(mix_seed=5, mix_layers=[0, 1])
    assert (engine.ws(mixed)[:, 0] - engine.ws(engine.default_state(seed=5, truncation_psi=state.truncation_psi))[:, 0]
            ).abs().max().item() < 1e-6
    assert torch.equal(engine.ws(mixed)[:, 2:], engine.ws(state)[:, 2:])
    one = state.replace(blend_seed=9, blend=1.0)
    assert np.array_equal(engine.render_array(one), engine.render_array(engine.default_state(seed=9,
                                                                      truncation_psi=state.truncation_psi)))
    with pytest.raises(ExplorerError, match="no z to slerp"):
        engine.render(state.replace(blend_seed=9, blend=0.5, blend_space="z"))


def test_a_missing_projection_file_is_one_line(projected, tmp_path):
    engine, state, _, _ = projected
    with pytest.raises(ExplorerError, match="projection file gone.safetensors is missing"):
        engine.render(state.replace(projection=str(tmp_path / "gone.safetensors")))


def test_cli_project_then_render_the_session(model, projected, tmp_path, capsys):
    _, _, _, target = projected
    out = tmp_path / "me.json"
    assert main(["project", "--model", str(model), "--target", str(target), "--steps", "20",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "PSNR" in err and (tmp_path / "me.safetensors").is_file() and (tmp_path / "me.png").is_file()
    again = tmp_path / "again.png"
    assert main(["render", "--session", str(out), "--out", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(tmp_path / "me.png")))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["project", "--model", str(model), "--target", str(bad), "--steps", "5",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "is not an image" in capsys.readouterr().err and not (tmp_path / "x.safetensors").exists()
