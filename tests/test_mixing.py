"""Per-layer style mixing: layer selection, presets by resolution, the mixing grid, PGGAN refusal."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer import mixing
from explorer.engine import Engine
from explorer.session import ExplorerError, StyleMixingUnsupported


@pytest.fixture(scope="module")
def engine(tiny_stylegan2, tmp_path_factory):
    return Engine(tiny_stylegan2, cache_dir=tmp_path_factory.mktemp("cache"), show_bars=False)


@pytest.fixture(scope="module")
def pg_engine(tiny_pggan, tmp_path_factory):
    return Engine(tiny_pggan, cache_dir=tmp_path_factory.mktemp("cache"), show_bars=False)


def test_mix_ws_takes_exactly_the_chosen_layers_from_b():
    a, b = torch.zeros(2, 8, 4), torch.ones(1, 8, 4)
    out = mixing.mix_ws(a, b, [1, 2, 5])
    assert out[:, [1, 2, 5]].eq(1).all() and out[:, [0, 3, 4, 6, 7]].eq(0).all()
    assert a.eq(0).all()                                # inputs untouched


def test_presets_follow_the_resolution_of_each_layer(engine):
    # 32 px StyleGAN2: 4 -> ws[0]; 8 -> ws[1:3]; 16 -> ws[3:5]; 32 -> ws[5:8] (incl. the final toRGB)
    assert [r for r, _ in mixing.layer_groups(engine.G)] == [4, 8, 16, 32]
    # Under 64 px the paper's bands shrink with the model: fine = the last resolution.
    assert mixing.preset_layers(engine.G, "coarse") == [0, 1, 2]
    assert mixing.preset_layers(engine.G, "middle") == [3, 4]
    assert mixing.preset_layers(engine.G, "fine") == [5, 6, 7]
    assert sorted(sum(mixing.presets(engine.G).values(), [])) == list(range(engine.num_ws))


def test_preset_bands_are_the_papers_from_64_px_and_shrink_below():
    assert mixing.preset_resolutions([4, 8, 16, 32, 64, 128, 256, 512, 1024]) == {
        "coarse": [4, 8], "middle": [16, 32], "fine": [64, 128, 256, 512, 1024]}
    assert mixing.preset_resolutions([4, 8, 16, 32, 64]) == {"coarse": [4, 8], "middle": [16, 32], "fine": [64]}
    assert mixing.preset_resolutions([4, 8, 16]) == {"coarse": [4], "middle": [8], "fine": [16]}
    assert mixing.preset_resolutions([4, 8]) == {"coarse": [4], "middle": [], "fine": [8]}


def test_an_empty_preset_or_bad_layers_are_refused_with_one_line(engine):
    with pytest.raises(ExplorerError, match="unknown mixing preset"):
        mixing.resolve_layers(engine.G, preset="ultra")
    with pytest.raises(ExplorerError, match="outside"):
        mixing.resolve_layers(engine.G, layers=[0, engine.num_ws])
    with pytest.raises(ExplorerError, match="either"):
        mixing.resolve_layers(engine.G, layers=[0], preset="coarse")
    assert mixing.resolve_layers(engine.G, layers="0-2,5") == [0, 1, 2, 5]   # CLI ranges are inclusive


def test_mixing_changes_only_the_mixed_layers(engine):
    state = engine.default_state(seed=1, mix_seed=2, mix_layers=[0, 1, 2])
    ws_mixed = engine.ws(state)
    ws_a = engine.ws(state.replace(mix_seed=None, mix_layers=()))
    ws_b = engine.ws(state.replace(seed=2, mix_seed=None, mix_layers=()))
    assert torch.equal(ws_mixed[:, :3], ws_b[:, :3]) and torch.equal(ws_mixed[:, 3:], ws_a[:, 3:])


def test_mixing_every_layer_gives_seed_b(engine):
    every = engine.render(engine.default_state(seed=1, mix_seed=2, mix_layers=list(range(engine.num_ws))))
    assert np.array_equal(np.asarray(every), np.asarray(engine.render(engine.default_state(seed=2))))


def test_mixing_grid_has_sources_in_first_row_and_column_and_blank_corner(engine):
    r = engine.img_resolution
    state = engine.default_state()
    grid = np.asarray(engine.mixing_grid(state, [1, 2, 3], [4, 5], preset="coarse"))
    assert grid.shape == (4 * r, 3 * r, 3)
    assert (grid[:r, :r] == 255).all()                  # top-left blank (white)
    src = {s: np.asarray(engine.render(engine.default_state(seed=s))).astype(int) for s in (1, 3, 5)}
    # Batched rendering may differ from a single render in the last bit of float: allow 1 level.
    assert np.abs(grid[:r, 2 * r:3 * r] - src[5]).max() <= 1        # column seed 5, top row
    assert np.abs(grid[3 * r:, :r] - src[3]).max() <= 1             # row seed 3, first column
    cell = engine.render(engine.default_state(seed=1, mix_seed=5, mix_layers=[0, 1, 2]))
    assert np.abs(grid[r:2 * r, 2 * r:3 * r] - np.asarray(cell).astype(int)).max() <= 1


def test_mixing_grid_tiles_can_be_scaled(engine):
    grid = engine.mixing_grid(engine.default_state(), [1], [2, 3], layers=[0], size=64)
    assert grid.size == (3 * 64, 2 * 64)


def test_pggan_refuses_style_mixing_with_one_line(pg_engine):
    with pytest.raises(StyleMixingUnsupported, match="needs a StyleGAN2 model"):
        pg_engine.mixing_grid(pg_engine.default_state(), [1], [2], layers=[0])
    with pytest.raises(StyleMixingUnsupported):
        pg_engine.default_state(mix_seed=2, mix_layers=[0])
    assert pg_engine.info()["supports_style_mixing"] is False and pg_engine.info()["mixing_presets"] == {}
