"""NVIDIA network pickles and zipped model folders in the real app, driven through chromium: a .pkl given
by --model and by the path box, the Upload model control (a .pkl, a zipped folder, a hostile pickle, a
file over the limit), and a conditional model's class picker. The images shown are compared with the
network the pickle was written from (tests/official_pickles.py writes the official formats)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import official_pickles as op
from conftest import tiny_config
from explorer.ui import DEFAULT_PSI, DISPLAY_SIZE
from gan.models.config import ModelConfig
from gan.models.networks import build_discriminator, build_generator
from gan.seeds import z_from_seeds
from ui_helpers import ROOT, App, img_src, open_page, pixels, set_number, wait_src_change

MARKER = "payload_ran.txt"


def network(seed: int, **overrides):
    kw = dict(img_resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)
    cfg = ModelConfig(**{**kw, **overrides}).validate()
    torch.manual_seed(seed)
    G = op.perturbed(build_generator(cfg), 0.3, seed + 1).eval().requires_grad_(False)
    D = op.perturbed(build_discriminator(cfg), 0.3, seed + 2).eval().requires_grad_(False)
    return cfg, G, D


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """cifar10.pkl: conditional, 3 classes (ADA format); ffhq-tf.pkl: TF format; model.zip: a zipped model
    folder; evil.pkl: GLOBAL posix.system + REDUCE; big.pkl: over the app's 1 MB limit."""
    root = tmp_path_factory.mktemp("ui_import")
    cond, plain = network(10, c_dim=3, conv_clamp=None), network(20)
    out = SimpleNamespace(root=root, cond_G=cond[1], plain_G=plain[1], marker=root / MARKER)
    out.cond = op.write_ada_pickle(root / "cifar10.pkl", cond[1], cond[0], D=cond[2])
    out.tf = op.write_tf_pickle(root / "ffhq-tf.pkl", plain[1], plain[0], D=plain[2])
    from gan.commands import new_model
    folder = new_model(root / "zipped" / "my-model", tiny_config("stylegan2"), seed=7)
    out.zip = root / "my-model.zip"
    with zipfile.ZipFile(out.zip, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"my-model/{p.name}")
    out.zip_folder = folder
    out.evil = root / "evil.pkl"
    op.dump(op.Call(op.Global("posix", "system"), (f"touch {out.marker}",)), out.evil, protocol=2)
    out.big = root / "big.pkl"
    out.big.write_bytes(os.urandom(3 << 20))
    out.empty = root / "models"
    out.empty.mkdir()
    return out


@pytest.fixture(scope="module")
def app(browser, files):
    with App(["--models-dir", str(files.empty), "--model", str(files.cond), "--max-upload-mb", "1"],
             files.root / "app.log", env={"GAN_CACHE_DIR": str(files.root / "cache")}) as a:
        yield a
    assert not files.marker.exists() and not (ROOT / op.MODULE_SRC_MARKER).exists(), "code from a pickle ran"


@pytest.fixture
def page(browser, app):
    pg = open_page(browser, app.url)
    yield pg
    pg.context.close()


def shown(G, seed: int = 0, class_idx: int | None = None) -> np.ndarray:
    """What the page must show: the network's image (the official way: z from the seed, one-hot c,
    truncation DEFAULT_PSI, noise const) as RGB uint8, upscaled (nearest) to DISPLAY_SIZE."""
    c = None
    if class_idx is not None:
        c = torch.zeros(1, G.c_dim)
        c[0, class_idx] = 1
    with torch.inference_mode():
        img = G.synthesis(G.mapping(z_from_seeds([seed], G.z_dim), c, truncation_psi=DEFAULT_PSI), noise_mode="const")
    u8 = (img[0] * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    k = DISPLAY_SIZE // u8.shape[0]
    return u8.repeat(k, axis=0).repeat(k, axis=1)


def close_to(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to one level of rounding (the network's float output may round either way)."""
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def upload(page, path: Path) -> None:
    page.locator("#model_upload").locator("xpath=..").locator("input[type=file]").first.set_input_files(str(path))


def toast(page, text: str) -> str:
    t = page.locator(".toast-body").filter(has_text=text).first
    t.wait_for(state="visible", timeout=30_000)
    return t.inner_text()


def test_a_pkl_given_by_model_opens_with_a_class_picker(page, files):
    info = page.locator("#model_info").inner_text()
    assert "cifar10.pkl (imported)" in info and "3 classes" in info
    assert page.locator("#class_idx").is_visible()
    assert "up to 1 MB" in page.locator("#upload_note").inner_text()
    assert close_to(pixels(page), shown(files.cond_G, 0, class_idx=0))
    src = img_src(page)
    set_number(page, "#class_idx", 2)
    wait_src_change(page, src)
    assert close_to(pixels(page), shown(files.cond_G, 0, class_idx=2))
    assert not close_to(shown(files.cond_G, 0, class_idx=2), shown(files.cond_G, 0, class_idx=0))


def test_the_path_box_opens_a_tensorflow_pkl(page, files):
    src = img_src(page)
    page.locator("#model_path textarea, #model_path input").first.fill(str(files.tf))
    page.locator("#model_load").click()
    wait_src_change(page, src, timeout_ms=60_000)
    assert "ffhq-tf.pkl (imported)" in page.locator("#model_info").inner_text()
    assert not page.locator("#class_idx").is_visible()
    assert close_to(pixels(page), shown(files.plain_G))
    text = page.locator("body").inner_text()
    assert str(files.root) not in text and "/tmp" not in text


def test_upload_opens_a_zipped_model_folder(page, files):
    from explorer.engine import Engine
    src = img_src(page)
    upload(page, files.zip)
    wait_src_change(page, src, timeout_ms=60_000)
    assert "imported" in page.locator("#model_info").inner_text()
    engine = Engine(files.zip_folder, show_bars=False)
    want = np.asarray(engine.render(engine.default_state(truncation_psi=DEFAULT_PSI), size=DISPLAY_SIZE).convert("RGB"))
    assert np.array_equal(pixels(page), want)


def test_hostile_and_oversized_uploads_are_refused_and_the_page_keeps_working(page, files):
    before = pixels(page)
    upload(page, files.evil)
    message = toast(page, "refusing")
    assert "evil.pkl: refusing posix.system: not a tensor or container" in message
    assert "Traceback" not in message and str(files.root) not in message and not files.marker.exists()
    upload(page, files.big)    # gradio refuses it before storing it (max_file_size, from --max-upload-mb)
    toast(page, 'exceed the maximum allowed size of 1.0 Mb: "big.pkl"')
    assert np.array_equal(pixels(page), before)
    src = img_src(page)
    set_number(page, "#seed", 5)
    wait_src_change(page, src)
    assert close_to(pixels(page), shown(files.cond_G, 5, class_idx=0))
