"""GANSpace PCA directions: their properties, how edits apply, and the per-model cache."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from explorer import directions as dirs_mod
from explorer.directions import (Directions, apply_edits_ws, apply_edits_z, compute_directions, load_or_compute,
                                 max_components)
from explorer.session import DirectionSettings, Edit, ExplorerError
from gan.io.checkpoint import load_model

SETTINGS = DirectionSettings(samples=2000, components=16, seed=0)


@pytest.fixture(scope="module")
def sg(tiny_stylegan2):
    G, _ = load_model(tiny_stylegan2)
    return G, compute_directions(G, SETTINGS, show_bar=False)


@pytest.fixture(scope="module")
def pg(tiny_pggan):
    G, _ = load_model(tiny_pggan)
    return G, compute_directions(G, SETTINGS, show_bar=False)


@pytest.fixture
def model_copy(tiny_stylegan2, tmp_path):
    """A private copy of the tiny StyleGAN2 folder (its cache files are ours to inspect)."""
    return shutil.copytree(tiny_stylegan2, tmp_path / "model")


# ---- StyleGAN2: PCA in w -----------------------------------------------------------------------

def test_stylegan2_components_are_orthonormal(sg):
    _, d = sg
    c = torch.from_numpy(d.components).double()
    assert c.shape == (16, 32)
    torch.testing.assert_close(c @ c.t(), torch.eye(16, dtype=torch.float64), atol=1e-5, rtol=0)


def test_stylegan2_components_are_sorted_by_explained_variance(sg):
    _, d = sg
    assert np.all(np.diff(d.explained_variance) <= 0)
    assert np.all(d.explained_variance_ratio > 0) and d.explained_variance_ratio.sum() <= 1 + 1e-6
    np.testing.assert_allclose(d.stdev, np.sqrt(d.explained_variance), rtol=1e-5)


def test_stylegan2_variance_matches_the_sampled_w(sg):
    """sigma of component c is the spread of fresh w samples along it (a property of PCA, not of our code)."""
    G, d = sg
    with torch.inference_mode():
        w = G.mapping(torch.randn(4000, G.z_dim, generator=torch.Generator().manual_seed(7)))[:, 0]
    proj = (w - w.mean(0)) @ torch.from_numpy(d.components[:3]).t()
    np.testing.assert_allclose(proj.std(0).numpy(), d.stdev[:3], rtol=0.15)


def test_directions_are_deterministic_for_a_seed(tiny_stylegan2, sg):
    G, d = sg
    again = compute_directions(G, SETTINGS, show_bar=False)
    np.testing.assert_array_equal(again.components, d.components)


def test_max_components_is_capped_by_the_latent_size(sg, pg):
    assert max_components(sg[0], DirectionSettings(components=500)) == sg[0].w_dim
    assert max_components(pg[0], DirectionSettings(components=500)) == pg[0].z_dim


# ---- edits -----------------------------------------------------------------------------------

def test_strength_zero_is_the_identity(sg):
    G, d = sg
    ws = G.mapping(torch.randn(3, G.z_dim))
    out = apply_edits_ws(ws, [Edit(0, 0.0), Edit(3, 0.0, 1, 4)], d)
    assert torch.equal(out, ws)


def test_an_edit_over_layers_a_to_b_changes_only_those_ws(sg):
    G, d = sg
    ws = G.mapping(torch.randn(2, G.z_dim))
    out = apply_edits_ws(ws, [Edit(1, 2.5, start=2, end=5)], d)
    changed = (out != ws).any(dim=2)                    # [N, num_ws]
    expect = torch.zeros(G.num_ws, dtype=torch.bool)
    expect[2:5] = True
    assert torch.equal(changed, expect.expand(2, -1))
    torch.testing.assert_close(out[:, 3] - ws[:, 3], (2.5 * d.stdev[1] * torch.from_numpy(d.components[1])).expand(2, -1))


def test_edit_end_none_means_all_layers(sg):
    G, d = sg
    ws = G.mapping(torch.randn(1, G.z_dim))
    assert (apply_edits_ws(ws, [Edit(0, 1.0)], d) != ws).any(dim=2).all()


def test_edits_are_additive(sg):
    G, d = sg
    ws = G.mapping(torch.randn(2, G.z_dim))
    a, b = Edit(0, 1.5, 0, 3), Edit(2, -2.0, 1, 6)
    both = apply_edits_ws(ws, [a, b], d)
    one_by_one = apply_edits_ws(apply_edits_ws(ws, [a], d), [b], d)
    torch.testing.assert_close(both, one_by_one)
    torch.testing.assert_close(apply_edits_ws(ws, [a, b], d), apply_edits_ws(ws, [b, a], d))
    torch.testing.assert_close(apply_edits_ws(ws, [Edit(0, 1.0), Edit(0, 2.0)], d), apply_edits_ws(ws, [Edit(0, 3.0)], d))


def test_an_edit_outside_the_layers_is_refused(sg):
    G, d = sg
    ws = G.mapping(torch.randn(1, G.z_dim))
    with pytest.raises(ExplorerError, match="outside"):
        apply_edits_ws(ws, [Edit(0, 1.0, 2, G.num_ws + 1)], d)
    with pytest.raises(ExplorerError, match="unknown component"):
        apply_edits_ws(ws, [Edit(99, 1.0)], d)


# ---- PGGAN: PCA of activations, regressed to z -----------------------------------------------

def test_pggan_directions_are_unit_z_directions_sorted_by_activation_variance(pg):
    G, d = pg
    assert d.space == "z" and d.dim == G.z_dim and d.num_components == 16
    np.testing.assert_allclose(np.linalg.norm(d.components, axis=1), 1.0, rtol=1e-5)
    assert np.all(np.diff(d.explained_variance) <= 0)
    assert np.all((d.stdev > 0.5) & (d.stdev < 2.0))   # z ~ N(0, I): about one per unit direction
    assert "b4" in d.activation


def test_pggan_first_direction_finds_a_planted_dominant_z_direction(tiny_pggan):
    """Amplify z[:, 5] in the first layer so that it dominates the 4x4 activations: the activations'
    first principal component, regressed back to z, must then point along z axis 5."""
    G, _ = load_model(tiny_pggan)
    with torch.no_grad():
        G.b4.dense.weight[:, 5] *= 10.0
    d = compute_directions(G, SETTINGS, show_bar=False)
    assert abs(d.components[0, 5]) > 0.9
    assert d.explained_variance_ratio[0] > 3 * d.explained_variance_ratio[1]


def test_pggan_strength_zero_is_the_identity_and_edits_add(pg):
    G, d = pg
    z = torch.randn(2, G.z_dim)
    assert torch.equal(apply_edits_z(z, [Edit(0, 0.0)], d), z)
    torch.testing.assert_close(apply_edits_z(z, [Edit(0, 1.0), Edit(1, 1.0)], d),
                               z + d.offset(0, 1.0) + d.offset(1, 1.0))
    with pytest.raises(ExplorerError):
        apply_edits_ws(G.mapping(z), [Edit(0, 1.0)], d)


# ---- progress and the cache -------------------------------------------------------------------

def test_progress_callback_reports_fractions_up_to_one(sg):
    G, _ = sg
    calls = []
    compute_directions(G, DirectionSettings(samples=600, components=4), show_bar=False, batch=200,
                       progress=lambda f, text: calls.append((f, text)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(t, str) and t for _, t in calls)


def test_cache_is_written_next_to_the_model_and_reused(model_copy, tmp_path, monkeypatch):
    G, _ = load_model(model_copy)
    first = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    assert first.source.startswith(str(model_copy / "directions"))
    monkeypatch.setattr(dirs_mod, "compute_directions", lambda *a, **k: pytest.fail("recomputed"))
    again = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    np.testing.assert_array_equal(again.components, first.components)
    loaded = Directions.load(first.source)              # plain npz, no pickles
    assert loaded.settings == SETTINGS and loaded.weights_hash == first.weights_hash


def test_cache_is_invalidated_when_the_weights_change(model_copy, tmp_path):
    from gan.io.checkpoint import save_model
    G, cfg = load_model(model_copy)
    first = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    with torch.no_grad():
        G.mapping.fc0.weight.mul_(-1.0)
    save_model(model_copy, G, cfg)
    G2, _ = load_model(model_copy)
    second = load_or_compute(model_copy, G2, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    assert second.weights_hash != first.weights_hash and second.source != first.source
    assert not np.array_equal(second.components, first.components)


def test_other_settings_get_their_own_cache_file(model_copy, tmp_path):
    G, _ = load_model(model_copy)
    a = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    b = load_or_compute(model_copy, G, DirectionSettings(samples=1000, components=8), cache_dir=tmp_path / "user",
                        show_bar=False)
    assert a.source != b.source and b.num_components == 8


def test_read_only_model_folder_falls_back_to_the_user_cache(model_copy, tmp_path, monkeypatch):
    real_save = Directions.save

    def save(self, path):
        if str(path).startswith(str(model_copy)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_save(self, path)
    monkeypatch.setattr(Directions, "save", save)
    G, _ = load_model(model_copy)
    d = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    assert d.source.startswith(str(tmp_path / "user"))
    monkeypatch.setattr(dirs_mod, "compute_directions", lambda *a, **k: pytest.fail("recomputed"))
    assert load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False).source == d.source


def test_no_writable_cache_still_returns_directions(model_copy, tmp_path, monkeypatch):
    def save(self, path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(Directions, "save", save)
    G, _ = load_model(model_copy)
    d = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    assert d.num_components == 16 and d.source == ""


def test_a_corrupt_cache_file_is_recomputed(model_copy, tmp_path):
    G, _ = load_model(model_copy)
    first = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    with open(first.source, "wb") as fh:
        fh.write(b"not an npz")
    again = load_or_compute(model_copy, G, SETTINGS, cache_dir=tmp_path / "user", show_bar=False)
    np.testing.assert_array_equal(again.components, first.components)
