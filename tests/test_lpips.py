"""LPIPS on VGG16 weights from a user's file: the paper's formula on torchvision's layout, the file checks,
the converter from torch.save pickles (read as data only), and projection with it. Every VGG16 here has
random (seeded) weights: no real ones can be downloaded, so these tests pin the arithmetic, not quality."""
from __future__ import annotations

import io
import os
import pickle
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from explorer.lpips import LPIPS, convert_weights, lin_shapes, load_lpips, vgg_shapes
from explorer.project import project
from explorer.session import ExplorerError
from gan.importers import PickleImportError, UnsafePickleError
from gan.importers.torch_save import read_state_dict
from gan.io.checkpoint import atomic_save_tensors
import test_project
from test_project import generated

fashion = test_project.fashion          # the shipped fashion model, loaded once for this module
one_thread = test_project.one_thread    # autouse: one torch thread, as test_project measures

# torchvision's vgg16().features (cfg "D") up to relu5_3, written out: C = 3x3 conv (padding 1), R = ReLU,
# M = 2x2 max-pool. Built here, independently of explorer.lpips, as the reference.
TORCHVISION_VGG16 = ["C64", "R", "C64", "R", "M", "C128", "R", "C128", "R", "M", "C256", "R", "C256", "R", "C256",
                     "R", "M", "C512", "R", "C512", "R", "C512", "R", "M", "C512", "R", "C512", "R", "C512", "R"]
TAP_INDICES = (3, 8, 15, 22, 29)     # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (lpips.pretrained_networks.vgg16)


def random_vgg16(seed: int = 0) -> dict[str, torch.Tensor]:
    """VGG16 conv tensors named as torchvision's state dict, He-scaled so activations keep their size."""
    gen = torch.Generator().manual_seed(seed)
    reference = reference_stack()
    out = {}
    for key, value in reference.state_dict().items():
        if key.endswith("weight"):
            out[f"features.{key}"] = torch.randn(value.shape, generator=gen) * (2 / value[0].numel()) ** 0.5
        else:
            out[f"features.{key}"] = torch.randn(value.shape, generator=gen) * 0.05
    return out


def random_lin(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand((1, c, 1, 1), generator=gen) * 0.2
            for k, c in enumerate((64, 128, 256, 512, 512))}


def reference_stack() -> nn.Sequential:
    layers, channels = [], 3
    for item in TORCHVISION_VGG16:
        if item == "R":
            layers.append(nn.ReLU())
        elif item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(nn.Conv2d(channels, int(item[1:]), 3, padding=1))
            channels = int(item[1:])
    return nn.Sequential(*layers)


def reference_lpips(tensors: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Zhang et al. 2018 eq. 1 written out, in float64, on torchvision's VGG16 loaded by key name."""
    stack = reference_stack().double()
    stack.load_state_dict({k: tensors[f"features.{k}"].double() for k in stack.state_dict()})
    shift = torch.tensor([-.030, -.088, -.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450], dtype=torch.float64).view(1, 3, 1, 1)
    xa, xb = (a.double() - shift) / scale, (b.double() - shift) / scale
    total = torch.zeros(a.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for i, layer in enumerate(stack):
            xa, xb = layer(xa), layer(xb)
            if i in TAP_INDICES:
                k = TAP_INDICES.index(i)
                na = xa / (xa.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                nb = xb / (xb.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                lin = tensors.get(f"lin{k}.model.1.weight")
                w = lin.double().flatten() if lin is not None else torch.ones(xa.shape[1], dtype=torch.float64)
                h, wd = xa.shape[-2:]
                total += torch.einsum("nchw,c->n", (na - nb).square(), w) / (h * wd)
    return total


@pytest.fixture(scope="module")
def vgg():
    return random_vgg16()


@pytest.fixture(scope="module")
def files(vgg, tmp_path_factory):
    """Two weights files: VGG16 alone (the unlearned baseline) and VGG16 + LPIPS lin weights."""
    folder = tmp_path_factory.mktemp("lpips")
    return {"baseline": atomic_save_tensors(folder / "vgg16.safetensors", vgg),
            "learned": atomic_save_tensors(folder / "vgg16-lpips.safetensors", {**vgg, **random_lin()})}


@pytest.fixture(scope="module")
def baseline(files):
    return load_lpips(files["baseline"])


@pytest.fixture(scope="module")
def learned(files):
    return load_lpips(files["learned"])


def images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, channels, size, size), generator=gen) * 2 - 1


# ---- the distance ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["baseline", "learned"])
def test_lpips_matches_the_papers_formula_on_torchvisions_vgg16(kind, vgg, baseline, learned):
    module = {"baseline": baseline, "learned": learned}[kind]
    tensors = {**vgg, **(random_lin() if kind == "learned" else {})}
    a, b = images(3, seed=1), images(3, seed=2)
    got = module(a, b)
    assert got.shape == (3,)
    torch.testing.assert_close(got.double(), reference_lpips(tensors, a, b), rtol=1e-5, atol=0)


def test_which_distance_a_file_gives_is_said(baseline, learned):
    assert learned.learned and "learned lin weights" in learned.description
    assert not baseline.learned and "unlearned baseline" in baseline.description
    assert "vgg16.safetensors" in baseline.description


def test_an_image_is_at_distance_zero_from_itself_and_the_distance_is_symmetric(learned):
    a, b = images(2, seed=3), images(2, seed=4)
    assert torch.equal(learned(a, a), torch.zeros(2))
    torch.testing.assert_close(learned(a, b), learned(b, a), rtol=1e-6, atol=0)
    assert (learned(a, b) > 0).all()


def test_lin_weights_weigh_each_channel_as_the_formula_says(vgg, baseline, tmp_path):
    """All ones is the baseline; weights scale the distance linearly; one tap's weights alone give that tap."""
    a, b = images(2, seed=5), images(2, seed=6)
    ones = {k: torch.ones(s) for k, s in lin_shapes().items()}
    triple = {k: 3 * v for k, v in ones.items()}
    only_tap_2 = {k: (v if k.startswith("lin2.") else torch.zeros_like(v)) for k, v in ones.items()}
    d = {name: LPIPS(vgg, lin)(a, b) for name, lin in (("ones", ones), ("triple", triple), ("tap2", only_tap_2))}
    torch.testing.assert_close(d["ones"], baseline(a, b), rtol=1e-6, atol=0)
    torch.testing.assert_close(d["triple"], 3 * baseline(a, b), rtol=1e-5, atol=0)
    taps_a, taps_b = baseline.taps(a), baseline.taps(b)
    tap_2 = (taps_a[2] - taps_b[2]).square().sum(dim=1).mean(dim=(1, 2))
    torch.testing.assert_close(d["tap2"], tap_2, rtol=1e-5, atol=0)


def test_a_greyscale_image_is_its_three_channel_repeat(learned):
    a, b = images(2, channels=1, seed=7), images(2, channels=1, seed=8)
    assert torch.equal(learned(a, b), learned(a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)))


def test_images_over_256_px_are_area_downsampled_to_256_first(learned):
    a, b = images(1, size=272, seed=9), images(1, size=272, seed=10)
    small_a, small_b = (F.interpolate(x, size=(256, 256), mode="area") for x in (a, b))
    assert [t.shape[-1] for t in learned.taps(a)] == [256, 128, 64, 32, 16]
    torch.testing.assert_close(learned(a, b), learned(small_a, small_b), rtol=1e-6, atol=0)


def test_small_images_shrink_the_deep_taps_and_under_16_px_are_refused(learned):
    assert [t.shape[-1] for t in learned.taps(images(1, size=32))] == [32, 16, 8, 4, 2]
    d16 = learned(images(1, size=16, seed=1), images(1, size=16, seed=2))
    assert [t.shape[-1] for t in learned.taps(images(1, size=16))][-1] == 1 and torch.isfinite(d16).all()
    with pytest.raises(ValueError, match="at least 16 px"):
        learned(images(1, size=8), images(1, size=8))


def test_the_gradient_is_finite_where_a_tap_is_all_zero(vgg):
    """A position whose features are all zero (every ReLU off) has a NaN gradient in the reference code."""
    dead = {**vgg, "features.28.bias": torch.full((512,), -1e3)}     # relu5_3 is zero everywhere
    module = LPIPS(dead)
    x = images(1, seed=11).requires_grad_(True)
    assert module.taps(x)[-1].abs().max() == 0
    grad, = torch.autograd.grad(module(x, images(1, seed=12)).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


def test_the_modules_weights_take_no_gradients(learned):
    assert not any(p.requires_grad for p in learned.parameters()) and not learned.training


# ---- weights files that cannot be used ---------------------------------------------------------

def write_raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def header_claiming(n: int) -> bytes:
    return n.to_bytes(8, "little") + b'{"__metadata__":{}}'


@pytest.mark.parametrize("make, match", [
    (lambda d, vgg: d / "absent.safetensors", r"absent.safetensors: no such file \(LPIPS needs VGG16"),
    (lambda d, vgg: write_raw(d / "junk.safetensors", b"not weights at all"), "not a safetensors file"),
    (lambda d, vgg: write_raw(d / "huge.safetensors", header_claiming(1 << 40)), r"header claims 1099511627776"),
    (lambda d, vgg: torch.save(vgg, d / "vgg.pth") or d / "vgg.pth", "a torch.save / pickle file.*convert_weights"),
    (lambda d, vgg: atomic_save_tensors(d / "a.safetensors", {"features.0.weight": vgg["features.0.weight"]}),
     r"tensor 'features.0.bias' is missing"),
    (lambda d, vgg: atomic_save_tensors(d / "b.safetensors", {**vgg, "features.5.weight": torch.zeros(128, 64, 1, 1)}),
     r"tensor 'features.5.weight' is \[128, 64, 1, 1\], want \[128, 64, 3, 3\]"),
    (lambda d, vgg: atomic_save_tensors(d / "c.safetensors", {**vgg, "features.0.bias": torch.zeros(64, dtype=torch.int32)}),
     r"tensor 'features.0.bias' is I32, want a float"),
    (lambda d, vgg: atomic_save_tensors(d / "e.safetensors", {**vgg, "features.30.weight": torch.zeros(1)}),
     r"unexpected tensor 'features.30.weight'"),
    (lambda d, vgg: atomic_save_tensors(d / "f.safetensors", {**vgg, "lin0.model.1.weight": torch.ones(1, 64, 1, 1)}),
     r"tensor 'lin1.model.1.weight' is missing \(LPIPS' lin weights are all five or none"),
    (lambda d, vgg: atomic_save_tensors(d / "g.safetensors",
                                        {**vgg, "features.28.bias": torch.full((512,), float("nan"))}),
     r"tensor 'features.28.bias' has NaN or infinite values"),
    (lambda d, vgg: atomic_save_tensors(d / "h.safetensors",
                                        {**vgg, **random_lin(), "lin3.model.1.weight": -torch.ones(1, 512, 1, 1)}),
     r"tensor 'lin3.model.1.weight' has negative values"),
])
def test_a_weights_file_that_cannot_be_used_gets_one_line_naming_the_problem(make, match, vgg, tmp_path):
    path = make(tmp_path, vgg)
    with pytest.raises(ExplorerError, match=match) as info:
        load_lpips(path)
    assert "\n" not in str(info.value)


def test_classifier_tensors_in_the_file_are_ignored(vgg, baseline, tmp_path):
    path = atomic_save_tensors(tmp_path / "full.safetensors", {**vgg, "classifier.0.weight": torch.zeros(40, 25)})
    a, b = images(1, seed=13), images(1, seed=14)
    assert torch.equal(load_lpips(path)(a, b), baseline(a, b))


# ---- converting torch.save files --------------------------------------------------------------------

class _TorchvisionPickler(pickle.Pickler):
    """Tensors as torch 0.2-0.3 pickled them (torch._utils._rebuild_tensor), as in torchvision's 2017
    vgg16-397923af.pth: a real torch.save file in the legacy format with the older tensor encoding."""

    def reducer_override(self, obj):
        if type(obj) is torch.Tensor:
            storage = torch.storage.TypedStorage(wrap_storage=obj.untyped_storage(), dtype=obj.dtype, _internal=True)
            return torch._utils._rebuild_tensor, (storage, obj.storage_offset(), tuple(obj.size()), obj.stride())
        return NotImplemented


TORCH_02_PICKLE = types.SimpleNamespace(Pickler=_TorchvisionPickler, dump=pickle.dump, __name__="pickle")
SAVE_FORMATS = {
    "zip": dict(_use_new_zipfile_serialization=True),
    "legacy": dict(_use_new_zipfile_serialization=False),
    "legacy, torch 0.3 tensors": dict(_use_new_zipfile_serialization=False, pickle_module=TORCH_02_PICKLE),
}


@pytest.mark.parametrize("fmt", SAVE_FORMATS)
def test_the_converter_reads_torch_save_files_and_writes_what_the_loader_reads(fmt, vgg, learned, tmp_path):
    classifier = {"classifier.0.weight": torch.randn(8, 4), "classifier.0.bias": torch.randn(8)}
    torch.save({**vgg, **classifier}, tmp_path / "vgg16-397923af.pth", **SAVE_FORMATS[fmt])
    torch.save(random_lin(), tmp_path / "vgg.pth", **SAVE_FORMATS[fmt])
    for name in ("vgg16-397923af.pth", "vgg.pth"):   # what torch itself reads from these files
        assert torch.load(tmp_path / name, weights_only=True).keys() == read_state_dict(tmp_path / name).keys()
    out = convert_weights(tmp_path / "vgg16-397923af.pth", tmp_path / "vgg.pth", tmp_path / "out.safetensors")
    with safe_open(str(out), framework="pt") as fh:
        assert set(fh.keys()) == set(vgg_shapes()) | set(lin_shapes())     # the classifier is left out
        assert fh.metadata()["lin"] == "learned"
    converted = load_lpips(out)
    assert converted.learned
    a, b = images(2, seed=15), images(2, seed=16)
    assert torch.equal(converted(a, b), learned(a, b))


def test_the_converter_without_lin_weights_gives_the_baseline(vgg, baseline, tmp_path):
    torch.save(vgg, tmp_path / "vgg16.pth")
    converted = load_lpips(convert_weights(tmp_path / "vgg16.pth", None, tmp_path / "out.safetensors"))
    a, b = images(1, seed=17), images(1, seed=18)
    assert not converted.learned and torch.equal(converted(a, b), baseline(a, b))


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zipped", [True, False])
def test_the_converter_refuses_a_pickle_that_would_run_code(zipped, tmp_path):
    marker = tmp_path / "ran"
    torch.save({"features.0.weight": _RunsCode(marker)}, tmp_path / "evil.pth", _use_new_zipfile_serialization=zipped)
    with pytest.raises(ExplorerError, match=r"evil.pth: refusing (posix|os)\.system: not a tensor") as info:
        convert_weights(tmp_path / "evil.pth", None, tmp_path / "out.safetensors")
    assert "\n" not in str(info.value) and not marker.exists() and not (tmp_path / "out.safetensors").exists()
    with pytest.raises(UnsafePickleError):       # what gan.importers raises underneath
        read_state_dict(tmp_path / "evil.pth")


def test_the_converter_refuses_torch_save_files_it_cannot_read_safely(vgg, tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(ExplorerError, match="holds a list, not a state dict"):
        convert_weights(tmp_path / "list.pth", None, tmp_path / "o.safetensors")
    torch.save({"features.0.weight": torch.zeros(2)}, tmp_path / "small.pth")
    with pytest.raises(ExplorerError, match=r"small.pth: tensor 'features.0.weight' is \[2\], want \[64, 3, 3, 3\]"):
        convert_weights(tmp_path / "small.pth", None, tmp_path / "o.safetensors")
    # a compressed storage member (torch never compresses; one could expand past what the archive holds)
    torch.save({"x": torch.zeros(1000)}, tmp_path / "plain.pth")
    with zipfile.ZipFile(tmp_path / "plain.pth") as src, zipfile.ZipFile(tmp_path / "deflated.pth", "w") as dst:
        for info in src.infolist():
            compress = zipfile.ZIP_DEFLATED if "/data/" in info.filename else zipfile.ZIP_STORED
            dst.writestr(info.filename, src.read(info), compress_type=compress)
    with pytest.raises(ExplorerError, match=r"data/0 is not 4000 stored \(uncompressed\) bytes"):
        convert_weights(tmp_path / "deflated.pth", None, tmp_path / "o.safetensors")
    # a legacy file cut short: storages are allocated only if the rest of the file can hold them
    torch.save({"x": torch.zeros(1000)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    for cut, match in ((100, r"storages of 4008 bytes in all, more than the \d+ bytes left"),
                       (3, "truncated torch.save file")):
        (tmp_path / "cut.pth").write_bytes((tmp_path / "legacy.pth").read_bytes()[:-cut])
        with pytest.raises(ExplorerError, match=match):
            convert_weights(tmp_path / "cut.pth", None, tmp_path / "o.safetensors")
    assert not (tmp_path / "o.safetensors").exists()


class _Storage:
    """Stands for a storage in a hand-written zip-format torch.save file."""


class _Tensor:
    """Stands for a tensor there."""


class _ClaimingPickler(pickle.Pickler):
    """data.pkl with one tensor 'x' of `size` elements on storage '0' said to hold `numel` float32s."""

    def __init__(self, file, numel: int, size: int):
        super().__init__(file, protocol=2)
        self.numel, self.size, self.storage = numel, size, _Storage()

    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", self.numel) if obj is self.storage else None

    def reducer_override(self, obj):
        if type(obj) is _Tensor:
            return torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.size,), (1,), False, OrderedDict())
        return NotImplemented


def hand_written_zip(path: Path, numel: int, size: int, data: bytes) -> Path:
    buf = io.BytesIO()
    _ClaimingPickler(buf, numel, size).dump({"x": _Tensor()})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/data/0", data)
    return path


def test_storage_sizes_in_a_zip_are_checked_before_anything_is_allocated(tmp_path):
    ok = hand_written_zip(tmp_path / "ok.pth", 4, 4, bytes(16))
    assert torch.equal(read_state_dict(ok)["x"], torch.zeros(4))
    with pytest.raises(PickleImportError, match=r"archive/data/0 is not 4000000000000 stored"):
        read_state_dict(hand_written_zip(tmp_path / "huge.pth", 10**12, 4, bytes(16)))
    with pytest.raises(PickleImportError, match=r"a tensor of size \[5\] beyond its storage of 4 elements"):
        read_state_dict(hand_written_zip(tmp_path / "beyond.pth", 4, 5, bytes(16)))


# ---- projection with LPIPS ---------------------------------------------------------------------

def test_projection_with_lpips_is_deterministic_and_lowers_the_lpips_term(fashion, learned):
    """The shipped fashion model (greyscale 32 px) and random VGG16 weights, 20 steps."""
    target = generated(fashion, 91010)
    a, b = (project(fashion, target, steps=20, seed=2, vgg16=learned) for _ in range(2))
    assert torch.equal(a.ws, b.ws) and a.losses == b.losses and a.lpips_losses == b.lpips_losses
    assert len(a.lpips_losses) == 20 and a.lpips_losses[-1] < 0.5 * a.lpips_losses[0]
    plain = project(fashion, target, steps=20, seed=2)
    assert plain.lpips_losses == [] and a.pixel_losses[0] == pytest.approx(plain.pixel_losses[0])
    assert a.losses[0] == pytest.approx(plain.losses[0] + a.lpips_losses[0], rel=1e-6)


def test_projection_takes_the_weights_file_path_and_weighs_the_term(fashion, files):
    target = generated(fashion, 91011)
    result = project(fashion, target, steps=2, seed=0, vgg16=str(files["learned"]), lpips_weight=10.0)
    plain = project(fashion, target, steps=2, seed=0)
    assert result.losses[0] == pytest.approx(plain.losses[0] + 10 * result.lpips_losses[0], rel=1e-6)
    with pytest.raises(ExplorerError, match="lpips_weight must be a non-negative number"):
        project(fashion, target, steps=2, vgg16=files["learned"], lpips_weight=-1.0)
    with pytest.raises(ExplorerError, match="vgg16 must be the path of a VGG16 weights file"):
        project(fashion, target, steps=2, vgg16=42)


def test_the_cli_converts_the_pickles_and_projects_with_lpips(vgg, learned, tmp_path, capsys):
    """python -m explorer lpips-weights, then project --vgg16: the session's projection used LPIPS."""
    from explorer.__main__ import main
    torch.save(vgg, tmp_path / "vgg16-397923af.pth")
    torch.save(random_lin(), tmp_path / "vgg.pth")
    weights = tmp_path / "vgg16-lpips.safetensors"
    assert main(["lpips-weights", "--vgg", str(tmp_path / "vgg16-397923af.pth"), "--lin", str(tmp_path / "vgg.pth"),
                 "--out", str(weights)]) == 0
    assert "learned lin weights" in capsys.readouterr().err
    a, b = images(2, seed=17), images(2, seed=18)
    assert torch.equal(load_lpips(weights)(a, b), learned(a, b))
    from PIL import Image
    target = tmp_path / "me.png"
    Image.fromarray(((generated(test_project.load_model(test_project.FASHION)[0], 91012)[0] + 1) * 127.5)
                    .clamp(0, 255).byte().numpy()).save(target)
    assert main(["project", "--model", str(test_project.FASHION), "--target", str(target), "--steps", "3",
                 "--vgg16", str(weights), "--out", str(tmp_path / "me.json")]) == 0
    assert "loss: pixels + LPIPS" in capsys.readouterr().err
    assert main(["project", "--model", str(test_project.FASHION), "--target", str(target), "--steps", "3",
                 "--vgg16", str(tmp_path / "vgg.pth"), "--out", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and not (tmp_path / "bad.json").exists()
