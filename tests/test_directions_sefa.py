"""SeFa as a direction method beside PCA: through the engine, the cache and the CLI (the math itself is
checked in tests/test_sefa.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.__main__ import main
from explorer.directions import find_cached
from explorer.engine import Engine
from explorer.sefa import compute_sefa
from explorer.session import DirectionSettings, ExplorerError, ExplorerState
from gan.io.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]
SEFA = DirectionSettings(method="sefa", components=8, samples=2000, sefa_start=0, sefa_end=4)


@pytest.fixture(scope="module")
def model(tiny_stylegan2, tmp_path_factory):
    return shutil.copytree(tiny_stylegan2, tmp_path_factory.mktemp("sefa") / "m")


def test_the_engine_serves_sefa_directions_and_caches_them(model):
    engine = Engine(model, show_bars=False)
    d = engine.directions(SEFA)
    want = compute_sefa(engine.G, 0, 4, components=8, samples=2000, seed=0)
    assert np.array_equal(d.components, want.components) and np.allclose(d.stdev, want.stdev)
    assert d.source and Path(d.source).parent == model / "directions"
    again = Engine(model, show_bars=False).directions(SEFA)
    assert again.source == d.source and np.array_equal(again.components, d.components)
    state = engine.default_state(seed=3, directions=SEFA).with_edit(1, 2.0, 0, 4)
    plain = engine.ws(state.replace(edits=()))
    offset = 2.0 * float(d.stdev[1]) * torch.from_numpy(d.components[1])
    want_ws = plain.clone()
    want_ws[:, 0:4] += offset
    assert (engine.ws(state) - want_ws).abs().max().item() < 1e-5
    loaded = ExplorerState.from_json(state.to_json())
    assert loaded.directions == SEFA


def test_pca_settings_keep_their_old_cache_keys_and_session_form():
    """Adding SeFa left PCA's dict (the cache key's input) as it was: the shipped caches still hit."""
    assert DirectionSettings().to_dict() == {"samples": 100_000, "components": 80, "seed": 0}
    for name in ("fashion-stylegan2", "fashion-pggan"):
        folder = ROOT / "assets" / "models" / name
        assert find_cached(folder, load_model(folder)[0], DirectionSettings()) is not None, name


def test_bad_sefa_settings_are_refused():
    with pytest.raises(ExplorerError, match="unknown direction method"):
        DirectionSettings(method="ica").validate()
    with pytest.raises(ExplorerError, match="is empty"):
        DirectionSettings(method="sefa", sefa_start=3, sefa_end=3).validate()
    with pytest.raises(ExplorerError, match="the method is pca"):
        DirectionSettings(sefa_start=2).validate()


def test_cli_directions_and_render_with_sefa(model, tmp_path, capsys):
    assert main(["directions", "--model", str(model), "--method", "sefa", "--sefa-layers", "0-3",
                 "--components", "8", "--samples", "2000"]) == 0
    out = capsys.readouterr().out
    assert "SeFa: style weights of ws 0-3" in out
    png = tmp_path / "e.png"
    assert main(["render", "--model", str(model), "--seed", "3", "--method", "sefa", "--sefa-layers", "0-3",
                 "--components", "8", "--samples", "2000", "--edit", "1:2@0-3", "--out", str(png)]) == 0
    engine = Engine(model, show_bars=False)
    state = engine.default_state(seed=3, directions=SEFA).with_edit(1, 2.0, 0, 4)
    assert np.array_equal(np.asarray(Image.open(png)), engine.render_array(state).squeeze())
    assert main(["directions", "--model", str(model), "--sefa-layers", "0-3"]) == 2
    assert "--sefa-layers needs --method sefa" in capsys.readouterr().err
