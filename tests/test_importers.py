"""Importing NVIDIA's network pickles: same images as the network written, and hostile files refused
before anything runs or is written.

The pickles are written by tests/official_pickles.py in the official on-disk formats (same globals, same
structure, storages as nested torch.save archives, numpy arrays for TF) from a project network with
random non-trivial weights. Every pickle's module_src is code that would create MODULE_SRC_MARKER in the
current folder if it were executed; tests run in tmp_path and check it never appears.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import warnings

import pytest
import torch

import official_pickles as op
from gan.__main__ import main
from gan.commands import generate_images
from gan.importers import (PickleImportError, UnsafePickleError, UnsupportedNetworkError, import_pickle,
                           read_network_pickle, sha256_file)
from gan.io.cache import user_cache_dir
from gan.io.checkpoint import CheckpointError, load_model, load_network, read_config, resolve_model_folder
from gan.models.config import ModelConfig
from gan.models.networks import build_discriminator, build_generator
from gan.seeds import z_from_seeds

SEEDS = [0, 1, 2, 3]
MARKER = "payload_ran.txt"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path (where a payload or module_src would write its marker) with a private cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path
    assert not (tmp_path / op.MODULE_SRC_MARKER).exists(), "module_src was executed"
    assert not (tmp_path / MARKER).exists(), "a payload ran"


def make(seed: int = 0, **overrides):
    """A tiny StyleGAN2 (16x16) with random weights moved off their initial values (zero biases, zero noise
    strengths and unit style biases would hide mapping mistakes)."""
    kw = dict(img_resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)
    kw.update(overrides)
    cfg = ModelConfig(**kw).validate()
    torch.manual_seed(seed)
    G = op.perturbed(build_generator(cfg), 0.3, seed + 1).eval().requires_grad_(False)
    D = op.perturbed(build_discriminator(cfg), 0.3, seed + 2).eval().requires_grad_(False)
    return cfg, G, D


def assert_same_generator(G, G2, classes: int = 0):
    """Same num_ws, w_avg and images (noise const, psi 1 and 0.7, SEEDS; each class of a conditional
    model), all images in one synthesis call per network (the tests run on a shared 2-core CPU)."""
    assert G2.num_ws == G.num_ws
    assert torch.equal(G2.mapping.w_avg, G.mapping.w_avg)
    z = z_from_seeds(SEEDS, G.z_dim)
    c = None
    if classes:
        z = z.repeat(classes, 1)
        c = torch.eye(classes).repeat_interleave(len(SEEDS), dim=0)  # [classes * seeds, classes] one-hot
    with torch.inference_mode():
        want = G.synthesis(torch.cat([G.mapping(z, c, truncation_psi=psi) for psi in (1.0, 0.7)]))
        got = G2.synthesis(torch.cat([G2.mapping(z, c, truncation_psi=psi) for psi in (1.0, 0.7)]))
    assert (want - got).abs().max().item() < 1e-5
    return got


def assert_same_discriminator(D, D2):
    x = torch.randn(4, D.img_channels, D.img_resolution, D.img_resolution, generator=torch.Generator().manual_seed(3))
    assert (D(x) - D2(x)).abs().max().item() < 1e-5


def nothing_written(tmp_path, out):
    assert not out.exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.safetensors"))


# ---- the official formats import with the same images ------------------------------------------------

@pytest.mark.parametrize("flavour,fmt", [("ada", "stylegan2-ada-pytorch"), ("legacy", "stylegan2-ada-pytorch"),
                                         ("stylegan3", "stylegan3 (--cfg stylegan2)")])
def test_pytorch_pickle_imports_g_ema_and_d_with_the_same_outputs(tmp_path, flavour, fmt):
    cfg, G, D = make()
    src = op.write_ada_pickle(tmp_path / "network-snapshot-000100.pkl", G, cfg, D=D, flavour=flavour)
    out, model = import_pickle(src, tmp_path / "model")
    assert model.format == fmt and model.D is not None, model.notes
    G2, cfg2 = load_model(out)
    assert cfg2 == cfg
    assert_same_generator(G, G2)
    assert_same_discriminator(D, load_network(out, "D"))


def test_the_training_copy_g_is_not_what_is_imported(tmp_path):
    cfg, G, D = make()
    src = op.write_ada_pickle(tmp_path / "x.pkl", G, cfg, D=D, G=op.perturbed(G, 0.5, 9))
    out, _ = import_pickle(src, tmp_path / "model")
    assert torch.equal(load_model(out)[0].synthesis.b4.const, G.synthesis.b4.const)


@pytest.mark.parametrize("only_Gs", [False, True])
def test_tensorflow_pickle_imports_gs_and_d_with_the_same_outputs(tmp_path, only_Gs):
    cfg, G, D = make(conv_clamp=None)  # NVlabs/stylegan2 (TF) has no conv_clamp
    src = op.write_tf_pickle(tmp_path / "stylegan2-ffhq-config-f.pkl", G, cfg, D=D, only_Gs=only_Gs)
    out, model = import_pickle(src, tmp_path / "model")
    assert model.format == "stylegan2-tensorflow"
    G2, cfg2 = load_model(out)
    assert cfg2 == cfg
    assert_same_generator(G, G2)
    if only_Gs:
        assert model.D is None and "D not imported: the file has none" in model.notes
    else:
        assert_same_discriminator(D, load_network(out, "D"))


def test_tensorflow_pickle_of_stylegan2_ada_with_conv_clamp(tmp_path):
    cfg, G, D = make(conv_clamp=256.0)
    src = op.write_tf_pickle(tmp_path / "ada-tf.pkl", G, cfg, D=D, synthesis_func="G_synthesis", num_fp16_res=4)
    out, _ = import_pickle(src, tmp_path / "model")
    G2, cfg2 = load_model(out)
    assert cfg2.conv_clamp == 256.0
    assert_same_generator(G, G2)


def test_fp16_weights_are_imported_as_float32(tmp_path):
    cfg, G, D = make()
    src = op.write_ada_pickle(tmp_path / "half.pkl", G.half(), cfg)
    out, model = import_pickle(src, tmp_path / "model")
    G2, _ = load_model(out)
    assert all(t.dtype == torch.float32 for t in G2.state_dict().values())
    assert_same_generator(G.float(), G2)
    assert "D not imported: the file has none" in model.notes


@pytest.mark.parametrize("fmt", ["ada", "tf"])
def test_conditional_model_gives_each_class_its_image(tmp_path, fmt):
    cfg, G, D = make(c_dim=3, conv_clamp=None)
    src = (op.write_ada_pickle(tmp_path / "cifar10.pkl", G, cfg, D=D) if fmt == "ada"
           else op.write_tf_pickle(tmp_path / "cifar10-tf.pkl", G, cfg, D=D))
    out, model = import_pickle(src, tmp_path / "model")
    G2, cfg2 = load_model(out)
    assert cfg2.c_dim == 3 and G2.c_dim == 3
    images = assert_same_generator(G, G2, classes=3)[: 3 * len(SEEDS)].reshape(3, len(SEEDS), -1)  # psi 1
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])
    class2 = generate_images(G2, SEEDS, class_idx=2).reshape(len(SEEDS), -1)  # what gan generate --class 2 renders
    assert (class2 - images[2]).abs().max().item() < 1e-5
    assert model.D is None and any("conditional discriminators" in n for n in model.notes)


def test_a_discriminator_that_does_not_map_onto_ours_is_left_out_saying_why(tmp_path):
    cfg, G, D = make()  # stylegan2-ada's cifar config: D architecture 'orig' (no residual skips)
    tree = op.module_tree(D, op.Flavour("ada"), cfg)
    for name, block in tree.args[0]["state"]["_modules"].items():
        block.args[0]["state"]["architecture"] = "orig"
        block.args[0]["state"]["_modules"].pop("skip", None)
    src = op.write_ada_pickle(tmp_path / "cifar10.pkl", G, cfg, extra={"D": tree})
    out, model = import_pickle(src, tmp_path / "model")
    assert model.D is None and "D not imported: D architecture 'orig' is not supported yet" in " ".join(model.notes)
    assert not (out / "D.safetensors").exists()
    assert_same_generator(G, load_model(out)[0])
    assert json.loads((out / "config.json").read_text())["source"]["imported"] == ["G"]


def test_config_json_records_the_source(tmp_path):
    cfg, G, D = make()
    src = op.write_ada_pickle(tmp_path / "ffhq.pkl", G, cfg, D=D)
    out, _ = import_pickle(src, tmp_path / "model")
    raw = json.loads((out / "config.json").read_text())
    assert raw["source"]["file"] == "ffhq.pkl"
    assert raw["source"]["sha256"] == sha256_file(src)
    assert raw["source"]["format"] == "stylegan2-ada-pytorch" and raw["source"]["imported"] == ["G", "D"]
    assert raw["source"]["init_kwargs"]["synthesis_kwargs"]["channel_base"] == 128
    assert raw["dataset"]["path"] == "ffhq.zip"
    read_config(out)  # our own reader accepts the extra section


def test_existing_model_folders_without_c_dim_still_load(tmp_path):
    cfg, G, D = make()
    from gan.io.checkpoint import save_model
    save_model(tmp_path / "m", G, cfg)
    raw = json.loads((tmp_path / "m" / "config.json").read_text())
    del raw["model"]["c_dim"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(raw))
    assert read_config(tmp_path / "m")[0].c_dim == 0


# ---- entry points -----------------------------------------------------------------------------------

def test_a_pkl_path_opens_anywhere_through_a_cache_keyed_by_sha256(tmp_path, monkeypatch):
    cfg, G, D = make()
    src = op.write_ada_pickle(tmp_path / "ffhq.pkl", G, cfg, D=D)
    folder = resolve_model_folder(src)
    assert folder == user_cache_dir("imports") / sha256_file(src)
    assert_same_generator(G, load_model(src)[0])
    (folder / "directions").mkdir()
    import gan.importers.importer as importer
    monkeypatch.setattr(importer, "read_network_pickle", lambda *a, **k: pytest.fail("imported twice"))
    renamed = tmp_path / "copy-of-ffhq.pkl"
    renamed.write_bytes(src.read_bytes())
    assert resolve_model_folder(renamed) == folder and (folder / "directions").is_dir()


def test_gan_cli_accepts_a_pkl_and_class(tmp_path, capsys):
    cfg, G, D = make(c_dim=3)
    src = op.write_ada_pickle(tmp_path / "cond.pkl", G, cfg, D=D)
    assert main(["generate", "--model", str(src), "--seeds", "0-1", "--out", str(tmp_path / "none")]) == 2
    assert "choose one with --class 0..2" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    assert main(["generate", "--model", str(src), "--seeds", "0-1", "--class", "2", "--out", str(tmp_path / "imgs")]) == 0
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["seed0000.png", "seed0001.png"]
    assert main(["info", "--model", str(src)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["c_dim"] == 3 and info["source"]["sha256"] == sha256_file(src)


def test_gan_import_refuses_to_overwrite_a_different_model(tmp_path, capsys):
    cfg, G, D = make()
    a = op.write_ada_pickle(tmp_path / "a.pkl", G, cfg, D=D)
    cfg_b, G_b, _ = make(seed=5, conv_clamp=None)
    b = op.write_tf_pickle(tmp_path / "b.pkl", G_b, cfg_b, only_Gs=True)
    out = tmp_path / "model"
    assert main(["import", str(a), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    assert main(["import", str(a), "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert main(["import", str(b), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds a different import" in err and err.count("\n") == 1
    assert json.loads((out / "config.json").read_text())["source"]["file"] == "a.pkl"
    assert main(["import", str(b), "--out", str(out), "--force"]) == 0
    assert json.loads((out / "config.json").read_text())["source"]["file"] == "b.pkl"
    assert not (out / "D.safetensors").exists()  # b has no D: a's must not remain


def test_other_pickle_suffixes_are_still_refused(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"\x80\x04N.")
    with pytest.raises(CheckpointError, match="refusing to open a pickle"):
        resolve_model_folder(tmp_path / "model.pt")
    run = tmp_path / "run"
    run.mkdir()
    (run / "network-snapshot-000100.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(CheckpointError, match="network pickles: give one of them"):
        resolve_model_folder(run)


# ---- refused: unsupported networks -------------------------------------------------------------------

def stylegan3_generator(fl: op.Flavour):
    fc = lambda i, o: op.persistent(fl, "FullyConnectedLayer", {"weight": torch.randn(o, i), "bias": torch.zeros(o)},
                                    {}, {}, {"activation": "linear"}, {})  # noqa: E731
    layer = lambda: op.persistent(fl, "SynthesisLayer", {"weight": torch.randn(8, 8, 3, 3)}, {}, {"affine": fc(16, 8)},
                                  {"conv_kernel": 3}, {})  # noqa: E731
    src = op.MODULE_SRC + "\nclass SynthesisInput:\n    pass\n"
    synthesis = op.persistent(fl, "SynthesisNetwork", {}, {}, {"input": op.persistent(
        fl, "SynthesisInput", {"weight": torch.randn(8, 8)}, {"freqs": torch.randn(8, 2)}, {"affine": fc(16, 4)}, {}, {}),
        "L0_36_512": layer(), "L1_36_512": layer()}, {"num_ws": 4}, {}, src)
    mapping = op.persistent(fl, "MappingNetwork", {}, {"w_avg": torch.zeros(16)}, {"fc0": fc(16, 16)}, {"num_layers": 1}, {})
    return op.persistent(fl, "Generator", {}, {}, {"synthesis": synthesis, "mapping": mapping},
                         {"z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16, "img_channels": 3},
                         {"z_dim": 16, "w_dim": 16, "conv_kernel": 1}, src)


def test_stylegan3_pickle_is_refused_saying_so(tmp_path):
    fl = op.Flavour("ada")
    G = stylegan3_generator(fl)
    op.dump({"G": G, "D": None, "G_ema": G, "augment_pipe": None}, tmp_path / "stylegan3-r-ffhq.pkl")
    with pytest.raises(UnsupportedNetworkError, match="StyleGAN3-R .*StyleGAN3 is not supported yet"):
        import_pickle(tmp_path / "stylegan3-r-ffhq.pkl", tmp_path / "model")
    nothing_written(tmp_path, tmp_path / "model")


@pytest.mark.parametrize("func,message", [("G_style", "StyleGAN \\(v1\\)"), ("G_paper", "Progressive GAN")])
def test_stylegan1_and_pggan_tensorflow_pickles_are_refused(tmp_path, func, message):
    fl = op.Flavour("legacy")
    net = op.tf_network(fl, "Gs", func, {"resolution": 16}, {"lod": 0.0})
    op.dump((net, net, net), tmp_path / "karras2019.pkl", protocol=3)
    with pytest.raises(UnsupportedNetworkError, match=message + ".*not supported yet"):
        import_pickle(tmp_path / "karras2019.pkl", tmp_path / "model")


def test_original_pggan_tensorflow_pickle_is_refused_by_its_global(tmp_path):
    op.dump(op.NewObj(op.Global("tfutil", "Network"), state={}), tmp_path / "pggan.pkl", protocol=2)
    with pytest.raises(UnsupportedNetworkError, match="Progressive GAN"):
        import_pickle(tmp_path / "pggan.pkl", tmp_path / "model")


def test_resnet_generator_architecture_is_refused(tmp_path):
    cfg, G, D = make()
    fl = op.Flavour("ada")
    tree = op.module_tree(G, fl, cfg)
    block = tree.args[0]["state"]["_modules"]["synthesis"].args[0]["state"]["_modules"]["b8"].args[0]["state"]
    block["architecture"] = "resnet"
    op.dump({"G_ema": tree}, tmp_path / "resnet.pkl")
    with pytest.raises(UnsupportedNetworkError, match="architecture 'resnet': not supported yet"):
        import_pickle(tmp_path / "resnet.pkl", tmp_path / "model")


# ---- refused: hostile and broken files, before anything runs or is written ----------------------------

def touch_payload(tmp_path) -> str:
    return f"touch {tmp_path / MARKER}"


def hostile_init_kwargs(tmp_path):
    cfg, G, D = make()
    tree = op.module_tree(G, op.Flavour("ada"), cfg)
    code = f"open({str(tmp_path / MARKER)!r}, 'w').close() or 16"
    tree.args[0]["state"]["_init_kwargs"]["z_dim"] = op.Call(op.Global("builtins", "eval"), (code,))
    return {"G_ema": tree}, "builtins.eval"


def hostile_popen_attribute(tmp_path):
    cfg, G, D = make()
    tree = op.module_tree(G, op.Flavour("ada"), cfg)
    mapping = tree.args[0]["state"]["_modules"]["mapping"].args[0]["state"]
    mapping["w_avg_beta"] = op.Call(op.Global("subprocess", "Popen"), (["touch", str(tmp_path / MARKER)],))
    return {"G_ema": tree}, "subprocess.Popen"


class _Evil:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("zip_archive", [False, True])
def test_payload_in_a_nested_storage_archive_is_refused(tmp_path, zip_archive):
    buf = io.BytesIO()
    torch.save(_Evil(touch_payload(tmp_path)), buf, _use_new_zipfile_serialization=zip_archive)
    storage = op.Call(op.Global("torch.storage", "_load_from_bytes"), (buf.getvalue(),))
    tensor = op.Call(op.Global("torch._utils", "_rebuild_tensor_v2"), (storage, 0, (1,), (1,), False, op.ordered_dict()))
    op.dump({"G_ema": tensor}, tmp_path / "evil.pkl")
    with pytest.raises(UnsafePickleError, match=r"refusing (posix|os)\.system inside a tensor storage archive"):
        import_pickle(tmp_path / "evil.pkl", tmp_path / "model")
    nothing_written(tmp_path, tmp_path / "model")


@pytest.mark.parametrize("build", ["reduce", "init_kwargs", "popen"])
def test_payload_calling_code_is_refused_naming_the_global(tmp_path, build):
    if build == "reduce":  # GLOBAL + REDUCE at the top, protocol 2
        data, name = op.Call(op.Global("posix", "system"), (touch_payload(tmp_path),)), "posix.system"
        protocol = 2
    else:
        data, name = (hostile_init_kwargs if build == "init_kwargs" else hostile_popen_attribute)(tmp_path)
        protocol = 4
    op.dump(data, tmp_path / "evil.pkl", protocol=protocol)
    for opener in (lambda: import_pickle(tmp_path / "evil.pkl", tmp_path / "model"),
                   lambda: load_model(tmp_path / "evil.pkl")):
        with pytest.raises(UnsafePickleError) as e:
            opener()
        assert f"refusing {name}: not a tensor or container" in str(e.value) and "\n" not in str(e.value)
    nothing_written(tmp_path, tmp_path / "model")


def test_pickle_machinery_opcodes_are_refused(tmp_path):
    marker = str(tmp_path / MARKER).encode()
    inst = b"\x80\x02(X" + len(b"touch " + marker).to_bytes(4, "little") + b"touch " + marker + b"ios\nsystem\n."
    persid = b"\x80\x02X\x03\x00\x00\x00abcQ."
    ext = b"\x80\x02\x82\x01."
    for data, opcode in ((inst, "INST"), (persid, "BINPERSID"), (ext, "EXT1")):
        (tmp_path / "evil.pkl").write_bytes(data)
        with pytest.raises(UnsafePickleError, match=f"refusing pickle opcode {opcode}"):
            read_network_pickle(tmp_path / "evil.pkl")


@pytest.mark.parametrize("case", ["hooks", "foreign storage", "out of bounds", "build on tensor", "object dtype"])
def test_tensor_rebuilds_check_their_arguments(tmp_path, case):
    fl = op.Flavour("ada")
    storage = fl.storage(torch.arange(4.0))
    args = [storage, 0, (4,), (1,), False, op.ordered_dict()]
    state = None
    if case == "hooks":
        args[5] = op.ordered_dict({"hook": 1})
    elif case == "foreign storage":
        args[0] = b"\x00" * 16
    elif case == "out of bounds":
        args[2] = (8,)
    elif case == "build on tensor":
        state = (storage, 0, (4,), (1,))
    data = op.Call(op.Global("torch._utils", "_rebuild_tensor_v2"), tuple(args), state=state)
    if case == "object dtype":
        data = op.Call(op.Global("numpy", "dtype"), ("O", False, True))
    op.dump({"G_ema": data}, tmp_path / "bad.pkl")
    with pytest.raises(PickleImportError) as e:
        read_network_pickle(tmp_path / "bad.pkl")
    assert {"hooks": "backward hooks", "foreign storage": "does not come from a storage archive",
            "out of bounds": "beyond its storage", "build on tensor": "refusing to set the state of a Tensor",
            "object dtype": "not a plain numeric type"}[case] in str(e.value)


def test_truncated_pickle_is_refused_and_nothing_is_written(tmp_path):
    cfg, G, D = make()
    data = op.write_ada_pickle(tmp_path / "full.pkl", G, cfg, D=D).read_bytes()
    (tmp_path / "ffhq.pkl").write_bytes(data[: len(data) // 2])
    for opener in (lambda: import_pickle(tmp_path / "ffhq.pkl", tmp_path / "model"),
                   lambda: resolve_model_folder(tmp_path / "ffhq.pkl")):
        with pytest.raises(PickleImportError, match="truncated pickle") as e:
            opener()
        assert "\n" not in str(e.value)
    nothing_written(tmp_path, tmp_path / "model")


@pytest.mark.parametrize("content,message", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "not a pickle"),
    (b"PK\x03\x04" + b"\x00" * 32, "a zip archive"),
    (b"<!DOCTYPE html><html>404</html>", "an HTML page"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
    (b"", "empty file"),
])
def test_non_pickle_files_are_refused_with_one_line(tmp_path, content, message):
    (tmp_path / "ffhq.pkl").write_bytes(content)
    with pytest.raises(PickleImportError, match=message) as e:
        import_pickle(tmp_path / "ffhq.pkl", tmp_path / "model")
    assert "\n" not in str(e.value)
    nothing_written(tmp_path, tmp_path / "model")


def test_plain_pickle_of_data_is_not_a_network(tmp_path):
    (tmp_path / "data.pkl").write_bytes(pickle.dumps({"a": [1, 2.0, "x"]}, protocol=4))
    with pytest.raises(UnsupportedNetworkError, match="a dict with keys a, with no G_ema or G network"):
        import_pickle(tmp_path / "data.pkl", tmp_path / "model")


def test_class_for_an_unconditional_model_is_ignored_with_a_warning():
    cfg, G, D = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = generate_images(G, [0], class_idx=1)
    assert images.shape == (1, 3, 16, 16) and "ignored" in str(caught[0].message)


def test_the_payloads_are_live_when_unpickled_the_unsafe_way(tmp_path):
    """Control for the refusals above: the same bytes, opened as NVIDIA's loader or torch.load(weights_only=False)
    would, do run their payload."""
    op.dump(op.Call(op.Global("posix", "system"), (touch_payload(tmp_path),)), tmp_path / "evil.pkl", protocol=2)
    pickle.loads((tmp_path / "evil.pkl").read_bytes())
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
    buf = io.BytesIO()
    torch.save(_Evil(touch_payload(tmp_path)), buf, _use_new_zipfile_serialization=False)
    torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert (tmp_path / MARKER).exists()
    (tmp_path / MARKER).unlink()
