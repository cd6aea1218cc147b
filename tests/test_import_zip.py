"""A zipped model folder (what a visitor uploads): unpacked into the imports cache only when it is a whole,
loadable model; hostile archives refused before anything is kept."""
from __future__ import annotations

import stat
import zipfile

import pytest
import torch

from conftest import tiny_config
from gan.commands import new_model
from gan.importers import ZipImportError, import_zipped_folder
from gan.io.cache import user_cache_dir
from gan.io.checkpoint import load_model

LIMIT = 64 << 20


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return new_model(tmp_path_factory.mktemp("zip") / "m", tiny_config("stylegan2"), seed=4)


def zip_of(path, entries: dict) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"x")
            else:
                zf.writestr(name, data)
    return path


def model_entries(folder, prefix: str = "") -> dict:
    return {prefix + p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def imports_left() -> list[str]:
    root = user_cache_dir("imports")
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.mark.parametrize("prefix", ["", "my-model/"])
def test_a_zipped_folder_opens_as_the_same_model_and_is_reused(tmp_path, folder, prefix):
    src = zip_of(tmp_path / "m.zip", {**model_entries(folder, prefix), prefix + "README.md": b"hello",
                                      prefix + "directions/x.npz": b"not ours"})
    out = import_zipped_folder(src, LIMIT, progress=False)
    assert out.parent == user_cache_dir("imports") and out.name.startswith("zip-")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in folder.iterdir() if p.is_file())
    (G1, _), (G2, _) = load_model(folder), load_model(out)
    z = torch.randn(2, G1.z_dim)
    with torch.inference_mode():
        assert torch.equal(G1(z, noise_mode="const"), G2(z, noise_mode="const"))
    assert import_zipped_folder(src, LIMIT, progress=False) == out
    assert imports_left() == [out.name]


@pytest.mark.parametrize("name, message", [
    ("../escape/config.json", "unsafe member name"),
    ("/abs/config.json", "unsafe member name"),
    ("C:\\\\evil\\\\config.json", "unsafe member name"),
])
def test_member_names_that_climb_out_are_refused(tmp_path, folder, name, message):
    src = zip_of(tmp_path / "evil.zip", {**model_entries(folder), name: b"{}"})
    with pytest.raises(ZipImportError, match=message):
        import_zipped_folder(src, LIMIT, progress=False)
    assert imports_left() == [] and not (tmp_path / "escape").exists()


def test_a_symbolic_link_is_refused(tmp_path, folder):
    link = zipfile.ZipInfo("G.safetensors")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    entries = {k: v for k, v in model_entries(folder).items() if k != "G.safetensors"}
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        for k, v in entries.items():
            zf.writestr(k, v)
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ZipImportError, match="symbolic link"):
        import_zipped_folder(tmp_path / "link.zip", LIMIT, progress=False)
    assert imports_left() == []


def test_a_zip_bomb_is_refused_by_its_declared_size(tmp_path, folder):
    entries = model_entries(folder)
    entries["D.safetensors"] = b"\0" * (LIMIT + 1)     # deflates to ~64 kB
    src = zip_of(tmp_path / "bomb.zip", entries)
    assert src.stat().st_size < 1 << 20
    with pytest.raises(ZipImportError, match="would unpack to 64 MB, over the limit of 64 MB"):
        import_zipped_folder(src, LIMIT, progress=False)
    assert imports_left() == []


@pytest.mark.parametrize("case", ["no model", "two models", "not a zip", "bad weights", "truncated"])
def test_broken_archives_get_one_line_and_nothing_is_kept(tmp_path, folder, case):
    entries = model_entries(folder)
    if case == "no model":
        src = zip_of(tmp_path / "x.zip", {"README.md": b"hi"})
    elif case == "two models":
        src = zip_of(tmp_path / "x.zip", {**model_entries(folder, "a/"), **model_entries(folder, "b/")})
    elif case == "not a zip":
        src = tmp_path / "x.zip"
        src.write_bytes(b"PK but not really")
    elif case == "bad weights":
        src = zip_of(tmp_path / "x.zip", {**entries, "G.safetensors": entries["G.safetensors"][:100]})
    else:
        whole = zip_of(tmp_path / "whole.zip", entries).read_bytes()
        src = tmp_path / "x.zip"
        src.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ZipImportError) as e:
        import_zipped_folder(src, LIMIT, progress=False)
    assert "\n" not in str(e.value) and str(e.value).startswith("x.zip: ")
    assert str(tmp_path) not in str(e.value)
    assert imports_left() == []
