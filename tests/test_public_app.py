"""The app as a public server: `python app.py --public` driven through gradio_client (no browser).

Every documented endpoint answers with what the engine makes; hostile requests (/etc, ../..,
absolute paths, a symlink out of the models folder, another user's export) are refused with one
message that names no server path, and the tests check the file system for anything written
outside the allowed roots (the models folder, the user cache, gradio's and the export temp)."""
from __future__ import annotations

import json
import re
import struct
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_config
from ui_helpers import App

ENDPOINTS = {"/models", "/render", "/directions", "/mix_grid", "/stages", "/export"}


def tree(root: Path) -> dict[str, int]:
    """Every file under root with its mtime: a fingerprint to compare before and after."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """models/: one StyleGAN2 (DEFAULT) and a symlink out to outside/foreign, a model with no
    cached directions; cache/: the user cache ($GAN_CACHE_DIR)."""
    from gan.commands import new_model
    root = tmp_path_factory.mktemp("public")
    models, outside, cache = root / "models", root / "outside", root / "cache"
    new_model(models / "tiny-sg2", tiny_config("stylegan2"), seed=1)
    (models / "DEFAULT").write_text("tiny-sg2\n")
    new_model(outside / "foreign", tiny_config("stylegan2"), seed=5)
    (models / "escape").symlink_to(outside / "foreign", target_is_directory=True)
    before = tree(outside)
    from gradio_client import Client
    with App(["--public", "--models-dir", str(models)], root / "app.log", env={"GAN_CACHE_DIR": str(cache)}) as app:
        client = Client(app.url, verbose=False, download_files=str(root / "downloads"))
        yield SimpleNamespace(root=root, models=models, outside=outside, cache=cache, app=app, client=client,
                              outside_before=before)


def call(site, endpoint: str, **kw):
    return site.client.predict(api_name=endpoint, **kw)


def refusal(site, endpoint: str, **kw) -> str:
    """The one-line message of a refused request."""
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError) as err:
        call(site, endpoint, **kw)
    return str(err.value)


def assert_no_server_path(text: str, site) -> None:
    assert str(site.root) not in text and "/etc" not in text and "/tmp" not in text, text
    assert not re.search(r"(^|[\s'\"(=])/\w", text), text


def zlib_level(png: str) -> int:
    """The FLEVEL field of a PNG's zlib stream (RFC 1950: 0 for zlib levels 0-1, 1 for 2-5, 2 for the
    default 6, 3 for 7-9), read from its first IDAT chunk."""
    data = Path(png).read_bytes()
    pos = 8
    while True:
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            return data[pos + 9] >> 6   # the stream's second byte, FLG
        pos += 12 + length


def assert_fast_lossless_png(png: str) -> None:
    """What the app sends for an image: a PNG compressed at zlib's fastest level (widgets.png_to_cache;
    gradio's own would be the default level), compressed at all (level 0 only stores)."""
    img = Image.open(png)
    assert img.format == "PNG" and zlib_level(png) == 0, (png, zlib_level(png))
    assert Path(png).stat().st_size < len(img.tobytes()), "stored, not compressed"


RENDER = dict(seed=3, psi=0.7, noise="const", edits=[{"component": 0, "strength": 2.0}],
              mixing={"seed": 9, "layers": [0, 1]}, size=0)


def test_every_documented_endpoint_is_listed_and_public(site):
    info = site.client.view_api(print_info=False, return_format="dict")
    assert ENDPOINTS <= set(info["named_endpoints"]), info["named_endpoints"].keys()


def test_models_lists_names_only_not_the_symlink_out(site):
    out = call(site, "/models")
    assert out["api_version"] == 1
    assert [m["name"] for m in out["models"]] == ["tiny-sg2"]
    assert out["models"][0]["arch"] == "stylegan2" and out["models"][0]["img_resolution"] == 32


def test_render_is_the_engines_render_of_the_same_state(site):
    from explorer.engine import Engine
    from explorer.session import Edit, ExplorerState
    png = call(site, "/render", model="tiny-sg2", **RENDER)
    assert_fast_lossless_png(png)
    got = np.asarray(Image.open(png).convert("RGB"))
    engine = Engine(site.models / "tiny-sg2", show_bars=False, cache_dir=site.cache)
    state = ExplorerState(seed=3, truncation_psi=0.7, edits=(Edit(0, 2.0),), mix_seed=9, mix_layers=(0, 1))
    np.testing.assert_array_equal(got, np.asarray(engine.render(state).convert("RGB")))


def test_directions_stages_grid_and_export_answer(site):
    table = call(site, "/directions", model="tiny-sg2")
    assert table["model"] == "tiny-sg2" and len(table["components"]) >= 8
    ratios = [c["variance_ratio"] for c in table["components"]]
    assert ratios == sorted(ratios, reverse=True) and 0 < sum(ratios) <= 1.0001
    stages = call(site, "/stages", model="tiny-sg2", seed=1, psi=1.0, noise="const", edits=[], mixing={})
    assert [s["caption"] for s in stages] == ["4x4", "8x8", "16x16", "32x32"]
    for s in stages:
        assert_fast_lossless_png(s["image"])
    grid = Image.open(call(site, "/mix_grid", model="tiny-sg2", rows="1-2", cols="3-5", layers=[], preset="coarse",
                           psi=0.7, noise="const", size=0))
    assert grid.size == (4 * 32, 3 * 32)
    gif = call(site, "/export", model="tiny-sg2", seeds="1,2", frames=3, space="z", loop=True, fps=10, size=64,
               fmt="GIF", psi=0.7, noise="const", edits=[], mixing={})
    img = Image.open(gif)
    assert Path(gif).suffix == ".gif" and img.n_frames == 6 and img.size == (64, 64)


@pytest.mark.parametrize("name", ["/etc", "/etc/passwd", "../..", "../outside/foreign", "escape", "nope",
                                  "tiny-sg2/../../outside/foreign", "~"])
def test_hostile_or_unknown_model_names_get_one_answer_naming_no_path(site, name):
    message = refusal(site, "/render", model=name, **RENDER)
    assert "unknown model: choose one of tiny-sg2" in message
    assert_no_server_path(message, site)


def test_an_absolute_model_path_is_refused_and_nothing_is_written_outside(site):
    target = site.outside / "foreign"
    for endpoint, kw in (("/render", RENDER), ("/directions", {}), ("/stages", dict(seed=0, psi=1.0, noise="const",
                                                                                   edits=[], mixing={}))):
        message = refusal(site, endpoint, model=str(target), **kw)
        assert_no_server_path(message, site)
    assert tree(site.outside) == site.outside_before          # not read into a cache, not written
    assert not (target / "directions").exists()


def test_bad_values_are_refused_not_rounded(site):
    for kw, pattern in ((dict(seed=3.7), "seed must be an integer"), (dict(seed=-5), "seed must be an integer"),
                        (dict(psi=5), "psi must be a number"), (dict(edits=[{"component": 0, "strength": 500}]),
                                                                "strength"), (dict(mixing={"seed": 1, "layers": [99]}),
                                                                              "mixing layer 99")):
        message = refusal(site, "/render", model="tiny-sg2", **{**RENDER, **kw})
        assert re.search(pattern, message), message
        assert_no_server_path(message, site)


def test_config_and_page_name_no_server_path_and_have_no_path_box(site):
    config = urllib.request.urlopen(site.app.url + "config", timeout=10).read().decode()
    assert str(site.root) not in config and str(site.models) not in config
    assert '"model_path"' not in json.dumps([c.get("props", {}).get("elem_id") for c in
                                             json.loads(config)["components"]])


def test_exports_are_not_reachable_by_their_server_path(site):
    """Another user cannot fetch an export by naming its file: only gradio's own link serves it."""
    import tempfile
    call(site, "/export", model="tiny-sg2", seeds="4,5", frames=2, space="z", loop=False, fps=5, size=32,
         fmt="GIF", psi=0.7, noise="const", edits=[], mixing={})
    exports = sorted((Path(tempfile.gettempdir()) / "gle-exports").glob("*/*.gif"), key=lambda p: p.stat().st_mtime)
    assert exports and len(exports[-1].parent.name) >= 32               # unguessable folder names
    for path in (exports[-1], Path("/etc/passwd")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{site.app.url}gradio_api/file={path}", timeout=10)
        assert err.value.code in (403, 404)


def test_nothing_written_outside_the_allowed_roots(site):
    """After every test above: the outside folder is as it was; directions went beside the shipped
    model (ours) or into the user cache."""
    assert tree(site.outside) == site.outside_before
    assert list((site.models / "tiny-sg2" / "directions").glob("*.npz"))


# ---- model naming and cache placement (no server) -----------------------------------------------

def test_sessions_name_models_by_ref_and_load_on_another_machine(tmp_path):
    from gan.commands import new_model
    from explorer.ui import ModelRoots
    here, there = tmp_path / "here", tmp_path / "there"
    new_model(here / "m", tiny_config("stylegan2"), seed=1)
    new_model(there / "m", tiny_config("stylegan2"), seed=1)
    a, b = ModelRoots(here, public=True), ModelRoots(there, public=True)
    assert a.ref_of(here / "m") == "m"
    assert b.resolve_saved(a.ref_of(here / "m")) == there / "m"
    assert b.resolve_saved(str(here / "m")) == there / "m"     # an older session that stored a path


def test_a_model_that_is_not_ours_caches_directions_in_the_user_cache(tmp_path):
    from gan.commands import new_model
    from explorer.engine import Engine
    from explorer.ui import ModelRoots
    uploads, cache = tmp_path / "uploads", tmp_path / "cache"
    folder = new_model(uploads / "up", tiny_config("stylegan2"), seed=2)
    roots = ModelRoots(tmp_path / "models", public=True)
    kw = roots.engine_kwargs(Path(folder))
    assert kw["cache_beside_model"] is False
    before = tree(uploads)
    d = Engine(folder, show_bars=False, **{**kw, "cache_dir": cache}).directions()
    assert tree(uploads) == before and Path(d.source).is_relative_to(cache)


def test_public_mode_is_on_on_a_space_unless_local_is_asked():
    import app as app_module
    assert app_module.public_mode(app_module.parse_args([]), {}) is False
    assert app_module.public_mode(app_module.parse_args([]), {"SPACE_ID": "u/x"}) is True
    assert app_module.public_mode(app_module.parse_args(["--local"]), {"SPACE_ID": "u/x"}) is False
    assert app_module.public_mode(app_module.parse_args(["--public"]), {}) is True


def test_public_mode_refuses_a_model_path_at_start_up(tmp_path):
    """Even the operator's --model is a name in the models folder in public mode: exit 2, one line."""
    import subprocess
    import sys
    from ui_helpers import ROOT
    from gan.commands import new_model
    folder = new_model(tmp_path / "elsewhere" / "m", tiny_config("stylegan2"), seed=1)
    (tmp_path / "models").mkdir()
    run = subprocess.run([sys.executable, str(ROOT / "app.py"), "--public", "--models-dir", str(tmp_path / "models"),
                          "--model", str(folder), "--port", "1"], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2
    assert run.stderr.strip() == "error: unknown model: choose one of (none installed)"


def test_a_bad_vgg16_file_stops_the_app_at_start_up_in_one_line(tmp_path):
    """--vgg16 is loaded once, before the page starts: a file that is not VGG16 weights is exit 2, one line."""
    import subprocess
    import sys
    from ui_helpers import ROOT
    bad = tmp_path / "vgg16.safetensors"
    bad.write_bytes(b"not safetensors at all")
    run = subprocess.run([sys.executable, str(ROOT / "app.py"), "--models-dir", str(tmp_path), "--vgg16", str(bad),
                          "--port", "1"], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("error: --vgg16: vgg16.safetensors")


def test_imported_models_resolve_by_their_ref_but_are_never_listed(tmp_path):
    """An upload (imports/<sha256>) opens for whoever has its ref, in public mode too, but the Model box and
    /models list only the models folder; a ref that is not an importer's folder name resolves nothing."""
    from gan.commands import new_model
    from explorer.session import ExplorerError
    from explorer.ui import ModelRoots
    imports = tmp_path / "imports"
    sha = "ab" * 32
    new_model(imports / sha, tiny_config("stylegan2"), seed=1)
    new_model(imports / "plain-name", tiny_config("stylegan2"), seed=1)
    (tmp_path / "models").mkdir()
    roots = ModelRoots(tmp_path / "models", public=True, imports_dir=imports)
    assert roots.names() == []
    assert roots.resolve(f"imported/{sha}") == imports / sha
    assert roots.ref_of(imports / sha) == f"imported/{sha}"
    for bad in ("imported/plain-name", f"imported/{sha}/..", "imported/../imports/" + sha, sha):
        with pytest.raises(ExplorerError, match="unknown model"):
            roots.resolve(bad)
