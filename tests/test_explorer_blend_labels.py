"""Seed blending, direction labels and direction previews on a tiny real model, checked against the
mapping and synthesis called directly."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from explorer.__main__ import main
from explorer.engine import Engine
from explorer.session import DirectionSettings, ExplorerError, ExplorerState
from gan.seeds import z_from_seeds

FAST = DirectionSettings(samples=2000, components=8)


@pytest.fixture(scope="module")
def model(tiny_stylegan2, tmp_path_factory):
    return shutil.copytree(tiny_stylegan2, tmp_path_factory.mktemp("blend") / "m")


@pytest.fixture(scope="module")
def engine(model):
    return Engine(model, show_bars=False)


def mapped(G, z, psi=0.7):
    with torch.inference_mode():
        return G.mapping(z, truncation_psi=psi)


@pytest.mark.parametrize("space", ["w", "z"])
def test_blend_0_and_1_are_the_two_images_exactly(engine, space):
    a = engine.default_state(seed=3, truncation_psi=0.7, blend_seed=8, blend_space=space)
    assert np.array_equal(engine.render_array(a), engine.render_array(a.replace(blend_seed=None)))
    one = a.replace(blend=1.0)
    assert np.array_equal(engine.render_array(one), engine.render_array(engine.default_state(seed=8, truncation_psi=0.7)))
    assert not np.array_equal(engine.render_array(a.replace(blend=0.5)), engine.render_array(a))


def test_blend_in_w_is_the_lerp_of_the_two_ws(engine):
    G = engine.G
    state = engine.default_state(seed=3, truncation_psi=0.7, blend_seed=8, blend=0.25)
    wa, wb = mapped(G, z_from_seeds([3], G.z_dim)), mapped(G, z_from_seeds([8], G.z_dim))
    assert (engine.ws(state) - (0.75 * wa + 0.25 * wb)).abs().max().item() < 1e-6


def test_blend_in_z_is_the_slerp_of_the_two_z(engine):
    """Against the textbook formula (Shoemake), written here in numpy float64."""
    G = engine.G
    state = engine.default_state(seed=3, truncation_psi=0.7, blend_seed=8, blend=0.4, blend_space="z")
    za, zb = (z_from_seeds([s], G.z_dim)[0].double().numpy() for s in (3, 8))
    omega = math.acos(np.dot(za, zb) / (np.linalg.norm(za) * np.linalg.norm(zb)))
    z = (math.sin(0.6 * omega) * za + math.sin(0.4 * omega) * zb) / math.sin(omega)
    want = mapped(G, torch.from_numpy(z).float()[None])
    assert (engine.ws(state) - want).abs().max().item() < 1e-5


def test_a_blend_without_a_seed_or_out_of_range_is_refused():
    with pytest.raises(ExplorerError, match="no blend seed"):
        ExplorerState(blend=0.5).validate()
    with pytest.raises(ExplorerError, match=r"blend 1.5 is outside \[0.0, 1.0\]"):
        ExplorerState(blend_seed=1, blend=1.5).validate()
    with pytest.raises(ExplorerError, match="unknown blend space"):
        ExplorerState(blend_space="x").validate()


def test_labels_round_trip_through_a_session_and_do_not_change_the_image(engine, tmp_path):
    state = engine.default_state(seed=2, blend_seed=4, blend=0.5).with_label(3, "sleeve length").with_label(1, "dark")
    assert state.labels == ((1, "dark"), (3, "sleeve length"))
    path = state.save(tmp_path / "s.json")
    assert json.loads(path.read_text())["labels"] == {"1": "dark", "3": "sleeve length"}
    loaded = ExplorerState.load(path)
    assert loaded.labels == state.labels and loaded.blend == 0.5 and loaded.blend_seed == 4
    assert loaded.with_label(3, "").labels == ((1, "dark"),)
    assert loaded == loaded.with_label(1, "other")          # labels are not part of the image
    with pytest.raises(ExplorerError, match="one line of at most 60"):
        state.with_label(0, "x" * 61)
    with pytest.raises(ExplorerError, match="one line"):
        state.with_label(0, "two\nlines")


def test_labels_are_stored_beside_the_direction_cache_and_read_by_a_fresh_engine(model, engine, capsys):
    engine.directions(FAST)
    where = engine.save_direction_labels({0: "sleeve length", 2: "brightness"}, FAST)
    npz = list((model / "directions").glob("directions-*.npz"))
    assert where.endswith(".json") and any(where == str(p.with_name("labels-" + p.stem.split("-", 1)[1] + ".json"))
                                           for p in npz)
    assert Engine(model, show_bars=False).direction_labels(FAST) == {0: "sleeve length", 2: "brightness"}
    assert Engine(model, show_bars=False).direction_labels(DirectionSettings(samples=3000)) == {}
    assert main(["label", "--model", str(model), "--component", "2", "--text", "", "--samples", "2000",
                 "--components", "8"]) == 0
    assert main(["directions", "--model", str(model), "--samples", "2000", "--components", "8"]) == 0
    table = capsys.readouterr().out
    assert "sleeve length" in table and "brightness" not in table


def test_a_read_only_model_keeps_labels_in_the_user_cache(model, tmp_path):
    cache = tmp_path / "cache"
    e = Engine(model, show_bars=False, cache_dir=cache, cache_beside_model=False)
    where = e.save_direction_labels({1: "collar"}, FAST)
    assert where.startswith(str(cache))
    assert Engine(model, show_bars=False, cache_dir=cache).direction_labels(FAST)[1] == "collar"


def test_a_direction_preview_shows_each_strength_on_the_edit_layers(engine):
    state = engine.default_state(seed=5, truncation_psi=0.7, directions=FAST).with_edit(1, 1.0, 2, 4)
    strip = engine.direction_preview(state, 1, sigmas=(-2, 0, 2))
    r = engine.img_resolution
    assert strip.width >= 3 * r and strip.height > r     # tiles and their labels under them
    gap = 4    # labelled_strip: 4 px around and between the tiles
    tiles = [np.asarray(strip.crop((gap + i * (r + gap), gap, gap + i * (r + gap) + r, gap + r))).astype(int)
             for i in range(3)]
    for tile, s in zip(tiles, (-2, 0, 2)):
        want = engine.render_array(state.with_edit(1, float(s), 2, 4)).astype(int)
        assert np.abs(tile - want).max() <= 1           # one batched pass: may round one level apart
    assert np.abs(tiles[0] - tiles[2]).max() > 10
