"""SeFa closed-form directions: orthonormal, sorted, the eigenvectors of the stacked style weights, and
usable wherever PCA directions are (one sigma = the spread of sampled latents along each)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from explorer.directions import apply_edits_ws, apply_edits_z
from explorer.sefa import affine_weights, compute_sefa
from explorer.session import Edit, ExplorerError
from gan.io.checkpoint import load_model


@pytest.fixture(scope="module")
def G(tiny_stylegan2):
    return load_model(tiny_stylegan2)[0]


def stacked_by_name(G, ws_indices) -> np.ndarray:
    """The SeFa matrix built from the state dict by name, the way the authors' code reads layers: the conv
    affine of each ws index (b4.conv1 is ws 0, then conv0 / conv1 of each block), and the last toRGB
    for the last index; each row divided by its norm (so no gains are needed)."""
    sd = G.state_dict()
    convs = sorted((k for k in sd if re.fullmatch(r"synthesis\.b\d+\.conv[01]\.affine\.weight", k)),
                   key=lambda k: (int(k.split(".")[1][1:]), k))
    rows = [sd[convs[i]].numpy() for i in ws_indices if i < len(convs)]
    if G.num_ws - 1 in ws_indices:
        rows.append(sd[f"synthesis.b{G.img_resolution}.torgb.affine.weight"].numpy())
    a = np.concatenate(rows).astype(np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_components_are_orthonormal_and_sorted(G):
    s = compute_sefa(G, samples=0)
    c = torch.from_numpy(s.components).double()
    assert c.shape == (G.w_dim, G.w_dim)
    torch.testing.assert_close(c @ c.t(), torch.eye(G.w_dim, dtype=torch.float64), atol=1e-5, rtol=0)
    assert np.all(np.diff(s.eigenvalues) <= 0) and s.eigenvalues[-1] >= 0
    assert s.eigenvalue_ratio.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("start, end", [(0, None), (0, 2), (3, 7)])
def test_components_match_an_svd_of_the_stacked_weights(G, start, end):
    """numpy's SVD of the matrix built by name: right singular vectors = components (up to sign),
    squared singular values = eigenvalues."""
    s = compute_sefa(G, start, end, samples=0)
    a = stacked_by_name(G, range(start, end or G.num_ws))
    _, sv, vt = np.linalg.svd(a, full_matrices=True)
    ev = np.zeros(G.w_dim)
    ev[:len(sv)] = sv ** 2
    np.testing.assert_allclose(s.eigenvalues, ev, rtol=1e-4, atol=1e-4)
    top = 6
    assert np.all(-np.diff(ev[:top + 1]) > 1e-3 * ev[0])   # distinct: each eigenvector is defined up to sign
    dots = np.abs(np.sum(s.components[:top].astype(np.float64) * vt[:top], axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-4)


def test_layer_ranges_pick_the_affines_that_read_them(G):
    """ws 0 is read by b4.conv1 (and b4's toRGB, left out as in the authors' code); ws 1 by b8.conv0."""
    rows = affine_weights(G, 0, 2).shape[0]
    assert rows == G.synthesis.b4.conv1.affine.out_features + G.synthesis.b8.conv0.affine.out_features
    with_torgb = affine_weights(G, 0, 2, include_torgb=True).shape[0]
    assert with_torgb == rows + G.synthesis.b4.torgb.affine.out_features
    assert affine_weights(G).shape[0] == sum(m.out_features for n, m in G.synthesis.named_modules()
                                             if n.endswith("affine") and "torgb" not in n) \
        + getattr(G.synthesis, f"b{G.img_resolution}").torgb.affine.out_features


def test_one_sigma_is_the_spread_of_sampled_w(G):
    s = compute_sefa(G, components=4, samples=4000, seed=1)
    with torch.inference_mode():
        w = G.mapping(torch.randn(4000, G.z_dim, generator=torch.Generator().manual_seed(9)))[:, 0].double()
    proj = (w - w.mean(0)) @ torch.from_numpy(s.components).double().t()
    np.testing.assert_allclose(proj.std(0).numpy(), s.stdev, rtol=0.1)


def test_sefa_plugs_into_the_edits_as_directions(G):
    s = compute_sefa(G, 2, 6, components=8, samples=500)
    d = s.to_directions()
    assert d.space == "w" and d.num_components == 8 and "SeFa" in d.activation
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)))
    out = apply_edits_ws(ws, [Edit(3, 2.0, start=s.layers[0], end=s.layers[1])], d)
    delta = torch.from_numpy(2.0 * s.stdev[3] * s.components[3])
    torch.testing.assert_close(out[:, 2:6] - ws[:, 2:6], delta.expand(2, 4, -1))
    torch.testing.assert_close(out[:, :2], ws[:, :2], rtol=0, atol=0)


def test_pggan_directions_live_in_z(tiny_pggan):
    P = load_model(tiny_pggan)[0]
    s = compute_sefa(P, components=6, samples=2000)
    assert s.space == "z" and s.components.shape == (6, P.z_dim)
    a = P.b4.dense.weight.double().numpy()
    _, _, vt = np.linalg.svd(a / np.linalg.norm(a, axis=1, keepdims=True))
    np.testing.assert_allclose(np.abs(np.sum(s.components[:2] * vt[:2], axis=1)), 1.0, atol=1e-4)
    np.testing.assert_allclose(s.stdev, 1.0, atol=0.1)       # raw z ~ N(0, I): unit spread every way
    z = torch.zeros(1, P.z_dim)
    moved = apply_edits_z(z, [Edit(0, 1.0)], s.to_directions())
    assert moved.norm().item() == pytest.approx(float(s.stdev[0]), rel=1e-5)


def test_per_row_normalisation_makes_the_gains_irrelevant(G):
    """The equalised-lr gains are one number per layer: after each row is normalised they cancel."""
    s = compute_sefa(G, samples=0, components=3)
    raw = torch.cat([affine_weights(G, i, i + 1) / math.pi ** i for i in range(G.num_ws)])
    raw = raw.double() / raw.double().norm(dim=1, keepdim=True)
    _, vecs = torch.linalg.eigh(raw.t() @ raw)
    dots = (torch.from_numpy(s.components).double() @ vecs.flip(1)[:, :3]).diagonal().abs()
    torch.testing.assert_close(dots, torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(start=3, end=3), "layer range"), (dict(start=0, end=99), "layer range"),
    (dict(components=0), "components"), (dict(samples=1), "samples"),
])
def test_bad_sefa_arguments_are_refused(G, kwargs, match):
    with pytest.raises(ExplorerError, match=match):
        compute_sefa(G, **kwargs)
