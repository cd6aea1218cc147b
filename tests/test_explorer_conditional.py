"""Conditional models (c_dim > 0, e.g. NVIDIA's cifar10.pkl) in the explorer: the state's class is the
mapping's one-hot label everywhere (render, mixing, directions, CLI, sessions), checked against the
network the pickle was written from, called directly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import official_pickles as op
from explorer.__main__ import main
from explorer.engine import Engine
from explorer.session import DirectionSettings, ExplorerError, ExplorerState
from gan.io.images import to_uint8
from gan.models.config import ModelConfig
from gan.models.networks import build_discriminator, build_generator
from gan.seeds import z_from_seeds

CLASSES = 3
FAST = DirectionSettings(samples=3000, components=4)


@pytest.fixture(scope="module")
def cond(tmp_path_factory):
    """(cifar-like .pkl in the official ADA format, the network it was written from)."""
    cfg = ModelConfig(img_resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16,
                      c_dim=CLASSES).validate()
    torch.manual_seed(3)
    G = op.perturbed(build_generator(cfg), 0.3, 4).eval().requires_grad_(False)
    D = op.perturbed(build_discriminator(cfg), 0.3, 5).eval().requires_grad_(False)
    return op.write_ada_pickle(tmp_path_factory.mktemp("cond") / "cifar10.pkl", G, cfg, D=D), G


@pytest.fixture(scope="module")
def engine(cond):
    return Engine(cond[0], show_bars=False)


def direct(G, seed: int, class_idx: int, psi: float = 1.0) -> torch.Tensor:
    """The image as the official generate.py makes it: z from the seed, one-hot c, mapping, synthesis."""
    c = torch.zeros(1, CLASSES)
    c[0, class_idx] = 1
    with torch.inference_mode():
        return G.synthesis(G.mapping(z_from_seeds([seed], G.z_dim), c, truncation_psi=psi), noise_mode="const")


def test_each_class_renders_as_the_network_does(cond, engine):
    _, G = cond
    assert engine.info()["c_dim"] == CLASSES
    state = engine.default_state(seed=5, truncation_psi=0.7)
    assert state.class_idx == 0
    images = []
    for k in range(CLASSES):
        got = engine.render_tensor(state.replace(class_idx=k))
        assert (got - direct(G, 5, k, 0.7)).abs().max().item() < 1e-5
        images.append(got)
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])


def test_style_mixing_takes_the_mix_seed_in_the_same_class(cond, engine):
    _, G = cond
    state = engine.default_state(seed=1, class_idx=2, mix_seed=9, mix_layers=[0, 1])
    c = torch.tensor([[0.0, 0.0, 1.0]])
    with torch.inference_mode():
        a = G.mapping(z_from_seeds([1], G.z_dim), c)
        b = G.mapping(z_from_seeds([9], G.z_dim), c)
    want = torch.cat([b[:, :2], a[:, 2:]], dim=1)
    assert (engine.ws(state) - want).abs().max().item() < 1e-6


def test_a_class_is_required_by_a_conditional_model_and_refused_by_an_unconditional_one(engine, tiny_stylegan2):
    with pytest.raises(ExplorerError, match=r"conditional \(3 classes\): choose a class 0..2"):
        engine.check_state(ExplorerState(model=str(engine.model_path)))
    with pytest.raises(ExplorerError, match="class 3 is out of range: this model has classes 0..2"):
        engine.default_state(class_idx=3)
    plain = Engine(tiny_stylegan2, show_bars=False)
    assert plain.default_state().class_idx is None
    with pytest.raises(ExplorerError, match="this model is unconditional: drop the class"):
        plain.default_state(class_idx=1)


def test_directions_are_sampled_over_all_classes(cond, engine):
    """The PCA mean is the mean w over every class: closer to an independent all-class average (other
    seeds, each class equally often) than to any one class's mean w."""
    _, G = cond
    d = engine.directions(FAST)
    mean = torch.from_numpy(d.mean)
    gen = torch.Generator().manual_seed(123)
    class_means = []
    with torch.inference_mode():
        for k in range(CLASSES):
            z = torch.randn(4000, G.z_dim, generator=gen)
            c = torch.zeros(4000, CLASSES)
            c[:, k] = 1
            class_means.append(G.mapping.to_w(z, c).mean(dim=0))
    overall = torch.stack(class_means).mean(dim=0)
    dist = (mean - overall).norm()
    assert all(dist < 0.5 * (mean - m).norm() for m in class_means)
    state = engine.default_state(seed=2, class_idx=1, directions=FAST).with_edit(0, 2.0)
    offset = 2.0 * float(d.stdev[0]) * torch.from_numpy(d.components[0])
    want = engine.ws(state.replace(edits=())) + offset
    assert (engine.ws(state) - want).abs().max().item() < 1e-5


def test_cli_renders_a_class_of_a_pkl_and_saves_it_in_the_session(cond, engine, tmp_path, capsys):
    src, G = cond
    out, session = tmp_path / "c2.png", tmp_path / "s.json"
    assert main(["render", "--model", str(src), "--seed", "4", "--out", str(out)]) == 2
    assert "conditional (3 classes): choose a class 0..2 (--class" in capsys.readouterr().err
    assert not out.exists()
    assert main(["render", "--model", str(src), "--seed", "4", "--class", "2", "--out", str(out),
                 "--save-session", str(session)]) == 0
    saved = json.loads(session.read_text())
    assert saved["class_idx"] == 2
    state = ExplorerState.load(session)
    assert np.array_equal(np.asarray(Image.open(out)), to_uint8(direct(G, 4, 2))[0])
    assert np.array_equal(engine.render_array(state), np.asarray(Image.open(out)))
