"""Model folders: safetensors + JSON, validated before anything is built, written atomically."""
import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from conftest import tiny_config
from gan.io.checkpoint import CheckpointError, load_model, load_network, read_config, save_model
from gan.commands import generate_images, new_model
from gan.models.networks import build_generator


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("arch", ["stylegan2", "pggan"])
def test_save_then_load_renders_identical_images(tmp_path, arch):
    torch.manual_seed(3)
    cfg = tiny_config(arch)
    G = build_generator(cfg).eval()
    if arch == "stylegan2":
        G.mapping.w_avg.normal_()  # buffers travel too
    save_model(tmp_path / "m", G, cfg, training={"kimg": 12})
    G2, cfg2 = load_model(tmp_path / "m")
    assert cfg2 == cfg
    assert torch.equal(generate_images(G, [1, 2], 0.7), generate_images(G2, [1, 2], 0.7))
    assert not any(p.requires_grad for p in G2.parameters()) and not G2.training
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    assert raw["format_version"] == 1 and raw["arch"] == arch and raw["training"]["kimg"] == 12


def test_a_file_inside_the_folder_is_accepted(tiny_stylegan2):
    G, _ = load_model(tiny_stylegan2 / "G.safetensors")
    assert G.img_resolution == 32


def test_weights_that_do_not_match_the_config_are_refused_naming_file_and_tensor(tmp_path):
    cfg = tiny_config("stylegan2")
    save_model(tmp_path / "m", build_generator(cfg), cfg)
    other = tiny_config("stylegan2", channel_max=16)
    save_file({k: v.contiguous() for k, v in build_generator(other).state_dict().items()},
              str(tmp_path / "m" / "G.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_model(tmp_path / "m")
    msg = one_line(e)
    assert "G.safetensors" in msg and "config.json" in msg and "synthesis.b4.const" in msg


def test_missing_and_unexpected_tensors_are_refused(tmp_path):
    cfg = tiny_config("stylegan2")
    sd = build_generator(cfg).state_dict()
    save_model(tmp_path / "m", build_generator(cfg), cfg)
    partial = {k: v.contiguous() for k, v in sd.items() if k != "mapping.w_avg"}
    save_file(partial, str(tmp_path / "m" / "G.safetensors"))
    with pytest.raises(CheckpointError, match="'mapping.w_avg'.*missing"):
        load_model(tmp_path / "m")
    save_file({**{k: v.contiguous() for k, v in sd.items()}, "evil": torch.zeros(1)},
              str(tmp_path / "m" / "G.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected tensor 'evil'"):
        load_model(tmp_path / "m")


def test_corrupt_safetensors_file_gives_one_line_error(tiny_stylegan2, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_stylegan2 / "config.json").read_text())
    (bad / "G.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError) as e:
        load_model(bad)
    assert "not a readable safetensors file" in one_line(e)


def test_hostile_pickles_are_refused_without_running_anything(tmp_path, monkeypatch):
    """A .pkl goes through the restricted importer (which refuses os.system by name); other pickle
    suffixes are refused unopened; a folder of pickles points at them. The payload never runs."""
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))
    (tmp_path / "network-snapshot.pkl").write_bytes(pickle.dumps(Boom()))
    (tmp_path / "g.pt").write_bytes(pickle.dumps(Boom()))
    for path, expect in [(tmp_path / "network-snapshot.pkl", "refusing posix.system: not a tensor or container"),
                         (tmp_path / "g.pt", "arbitrary code"), (tmp_path, "network pickles")]:
        with pytest.raises(CheckpointError) as e:
            load_model(path)
        assert expect in one_line(e)
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "cache" / "imports").exists() or not any((tmp_path / "cache" / "imports").iterdir())


def test_config_problems_are_refused(tiny_stylegan2, tmp_path):
    raw = json.loads((tiny_stylegan2 / "config.json").read_text())
    cases = {
        "unknown": ({**raw, "model": {**raw["model"], "mystery": 1}}, "unknown model config key"),
        "future": ({**raw, "format_version": 99}, "format_version 99"),
        "res": ({**raw, "model": {**raw["model"], "img_resolution": 48}}, "power of two"),
        "arch": ({**raw, "arch": "pggan"}, "arch"),
    }
    for name, (cfg, expect) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(CheckpointError) as e:
            read_config(folder)
        assert expect in one_line(e)
    (tmp_path / "notjson" ).mkdir()
    (tmp_path / "notjson" / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="unreadable JSON"):
        read_config(tmp_path / "notjson")
    with pytest.raises(CheckpointError, match="no such model folder"):
        read_config(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        read_config(tmp_path / "empty")


def test_new_model_refuses_to_overwrite_an_existing_model(tiny_stylegan2):
    before = (tiny_stylegan2 / "G.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a model"):
        new_model(tiny_stylegan2, tiny_config("pggan"))
    assert (tiny_stylegan2 / "G.safetensors").read_bytes() == before


def test_discriminator_loads_from_the_folder(tiny_pggan):
    D = load_network(tiny_pggan, "D")
    assert D(torch.zeros(2, 3, 32, 32)).shape == (2, 1)


def test_saved_files_get_the_usual_permissions(tmp_path):
    # Atomic writes go through a private temp file (mode 0600); the result must be readable by
    # others as a plain open() would make it (a model folder served by a Space, shared on a cluster).
    old = os.umask(0o022)
    try:
        cfg = tiny_config("stylegan2")
        save_model(tmp_path / "m", build_generator(cfg), cfg)
    finally:
        os.umask(old)
    for name in ("G.safetensors", "config.json"):
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o644


def test_a_config_without_format_version_is_refused_as_not_ours(tiny_stylegan2, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    raw = json.loads((tiny_stylegan2 / "config.json").read_text())
    del raw["format_version"]
    (folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError) as err:
        read_config(folder)
    message = str(err.value)
    assert "no format_version" in message and "python -m gan" in message and "\n" not in message


def test_a_crash_between_the_weights_and_config_json_is_caught_at_load(tmp_path, monkeypatch):
    """Re-saving a folder with another model, killed after G.safetensors but before config.json: the
    old config must not silently pair with the new weights (same shapes, so only the save id tells)."""
    import gan.io.checkpoint as checkpoint
    cfg = tiny_config()
    torch.manual_seed(0)
    old_G = build_generator(cfg)
    save_model(tmp_path / "m", old_G, cfg)
    torch.manual_seed(1)
    new_G = build_generator(cfg)

    def crash_on_config(path, obj):
        raise KeyboardInterrupt  # the process dies here: G is written, config.json is the old one
    monkeypatch.setattr(checkpoint, "atomic_write_json", crash_on_config)
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path / "m", new_G, cfg)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="come from different saves"):
        load_model(tmp_path / "m")
    save_model(tmp_path / "m", new_G, cfg)  # saving again mends the folder
    G, _ = load_model(tmp_path / "m")
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), new_G.state_dict().values()))


def test_load_network_names_only_g_or_d(tiny_stylegan2):
    with pytest.raises(ValueError, match="'G' or 'D'"):
        load_network(tiny_stylegan2, "g_ema")
