"""The editing tools in a real browser: seed blending, direction previews and names (and, with #16's
projection, editing an uploaded image). `python app.py` on a tiny random StyleGAN2, through chromium;
what the page shows is compared with the engine's render of the same state in this process."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect
from PIL import Image

from conftest import tiny_config
from explorer.engine import Engine
from explorer.ui import DEFAULT_PSI, DISPLAY_SIZE
from ui_helpers import App, choose, fetch_pixels, img_src, open_page, pixels, set_number, \
    wait_src_change


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from gan.commands import new_model
    root = tmp_path_factory.mktemp("edit_tools")
    return new_model(root / "models" / "tiny", tiny_config("stylegan2"), seed=5)


@pytest.fixture(scope="module")
def app(browser, model):
    with App(["--models-dir", str(model.parent)], model.parent.parent / "app.log",
             env={"GAN_CACHE_DIR": str(model.parent.parent / "cache")}) as a:
        yield a


@pytest.fixture(scope="module")
def engine(model):
    return Engine(model, show_bars=False)


@pytest.fixture
def page(browser, app):
    pg = open_page(browser, app.url)
    yield pg
    pg.context.close()


def shown(engine, **state) -> np.ndarray:
    s = engine.default_state(**{"truncation_psi": DEFAULT_PSI, **state})
    return np.asarray(engine.render(s, size=DISPLAY_SIZE).convert("RGB"))


def test_the_blend_slider_goes_from_this_seed_to_the_other(page, engine):
    assert np.array_equal(pixels(page), shown(engine, seed=0))
    set_number(page, "#blend_seed", 9)
    src = img_src(page)
    set_number(page, "#blend", 1)
    wait_src_change(page, src)
    assert np.array_equal(pixels(page), shown(engine, seed=9))
    src = img_src(page)
    set_number(page, "#blend", 0.5)
    wait_src_change(page, src)
    assert np.array_equal(pixels(page), shown(engine, seed=0, blend_seed=9, blend=0.5))
    src = img_src(page)
    page.locator("#blend_space").get_by_text("Z slerp").click()
    wait_src_change(page, src)
    assert np.array_equal(pixels(page), shown(engine, seed=0, blend_seed=9, blend=0.5, blend_space="z"))
    src = img_src(page)
    set_number(page, "#blend", 0)
    wait_src_change(page, src)
    assert np.array_equal(pixels(page), shown(engine, seed=0))


def test_a_direction_is_previewed_and_named_and_the_name_is_kept(page, engine, model, browser, app):
    page.locator("#dir_tools").get_by_text("What does a direction do?").click()
    choose(page, "#preview_dir", "Direction 2")
    page.locator("#dir_preview_btn").click()
    page.locator("#dir_preview img").wait_for(state="visible")
    strip = fetch_pixels(page, img_src(page, "#dir_preview"))
    assert strip.shape[1] > 6 * strip.shape[0] // 2          # seven tiles side by side (and labels under them)
    box = page.locator("#dir_label input, #dir_label textarea").first
    box.fill("sleeve length")
    box.press("Enter")
    page.get_by_text("Direction 2 · sleeve length").first.wait_for(state="visible")
    labels = list((model / "directions").glob("labels-*.json"))
    assert len(labels) == 1 and json.loads(labels[0].read_text()) == {"2": "sleeve length"}
    again = open_page(browser, app.url)      # another visit: the model's names come with it
    try:
        again.get_by_text("Direction 2 · sleeve length").first.wait_for(state="visible")
    finally:
        again.context.close()


def test_the_image_is_marked_busy_while_it_renders_and_cleared_after(page, engine):
    """The busy mark (dimmed image and a spinner, shown by CSS only after 150 ms) is set when an image
    event starts and cleared when it ends."""
    page.evaluate("""() => { window.gleMarks = [];
        new MutationObserver(() => window.gleMarks.push(document.getElementById('image').classList.contains('gle-busy')))
          .observe(document.getElementById('image'), {attributes: true, attributeFilter: ['class']}); }""")
    src = img_src(page)
    set_number(page, "#seed", 3)
    wait_src_change(page, src)
    page.wait_for_function("() => !document.getElementById('image').classList.contains('gle-busy')")
    assert page.evaluate("window.gleMarks")[:1] == [True]
    assert np.array_equal(pixels(page), shown(engine, seed=3))
    css = page.evaluate("getComputedStyle(document.querySelector('#image img')).opacity")
    assert float(css) == 1.0


def test_sefa_directions_replace_the_sliders_and_edit_the_image(page, engine):
    from explorer.session import DirectionSettings
    before = page.locator("#dir0").inner_text()          # "... 4.6% of variance": PCA's
    page.locator("#dirs_method").get_by_text("SeFa (closed form)").click()
    page.wait_for_function("(old) => { const d = document.querySelector('#dir0'); return d && d.innerText !== old; }",
                           arg=before)                     # the sliders were rebuilt for SeFa
    src = img_src(page)
    set_number(page, "#dir0", 2)
    wait_src_change(page, src)
    sefa = DirectionSettings(method="sefa")
    want = engine.render(engine.default_state(truncation_psi=DEFAULT_PSI, directions=sefa).with_edit(0, 2.0, 0, None),
                         size=DISPLAY_SIZE)
    assert np.array_equal(pixels(page), np.asarray(want.convert("RGB")))


def test_upload_an_image_project_it_and_move_a_direction_slider(page, engine, model, tmp_path):
    """The issue's walkthrough: a picture in, its projection shown before/after and as the image, a
    direction slider edits it; the page shows what the engine renders for that projection."""
    target = tmp_path / "me.png"
    engine.render(engine.default_state(seed=123), size=96).save(target)     # an image the model can make
    page.locator("#project_box").get_by_text("Edit your own image").first.click()
    src = img_src(page)
    page.locator("#project_steps input[type=number]").first.fill("30")
    page.locator("#project_steps input[type=number]").first.press("Tab")
    page.locator("#project_upload").locator("xpath=..").locator("input[type=file]").first.set_input_files(str(target))
    wait_src_change(page, src, timeout_ms=120_000)
    page.locator("#project_after img").wait_for(state="visible")
    assert "PSNR" in page.locator("#project_note").inner_text()
    projected = pixels(page)
    assert not np.array_equal(projected, shown(engine, seed=0))
    open_tab_named(page, "Directions")
    src = img_src(page)
    set_number(page, "#dir0", 2.5)
    wait_src_change(page, src)
    edited = pixels(page)
    assert not np.array_equal(edited, projected)
    # A refused input in an image event is said under the image (not a toast: these skip the queue),
    # and the image stays: a projected image has no z to slerp.
    src = img_src(page)
    set_number(page, "#blend", 0.5)
    src = wait_src_change(page, src)
    page.locator("#blend_space").get_by_text("Z slerp").click()
    expect(page.locator("#image_note")).to_contain_text("a projected image has no z to slerp: blend it in W")
    assert img_src(page) == src
    page.locator("#blend_space").get_by_text("W lerp").click()
    set_number(page, "#blend", 0)
    wait_src_change(page, src)
    expect(page.locator("#image_note")).to_have_text("")   # the next image event rewrites it
    assert np.array_equal(pixels(page), edited)
    # Export: the keyframes start at the image shown ('this', the W path chosen for it); the GIF's first
    # frame is the edited projection (GIF: 256 colours), its second keyframe seed 0's image.
    open_tab_named(page, "Export")
    assert page.locator("#export_seeds textarea, #export_seeds input").first.input_value() == "this,0,1,2,3"
    page.locator("#export_seeds textarea, #export_seeds input").first.fill("this,0")
    set_number(page, "#export_frames", 2)
    page.locator("#export_button").click()
    link = page.locator("#export_file a[href]").first
    link.wait_for(state="attached", timeout=60_000)
    gif = Image.open(io.BytesIO(page.request.get(link.get_attribute("href")).body()))
    assert gif.n_frames == 4                                  # loops by default: 2 keyframes x 2
    first = np.asarray(gif.convert("RGB").resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.NEAREST), int)
    assert np.abs(first - edited).mean() < np.abs(first - shown(engine, seed=0)).mean() / 2
    # Save session: a .zip of the JSON and the projection file, naming no server path; loaded back, the
    # same pixels.
    page.get_by_role("tab", name="Session").click()
    page.locator("#session_save").click()
    link = page.locator("#session_file a[href]").first
    link.wait_for(state="attached")
    bundle = tmp_path / "saved.zip"
    bundle.write_bytes(page.request.get(link.get_attribute("href")).body())
    with zipfile.ZipFile(bundle) as zf:
        assert sorted(zf.namelist()) == ["projection.safetensors", "session.json"]
        saved = json.loads(zf.read("session.json"))
    assert saved["projection"] == "projection.safetensors" and saved["model"] == "tiny"
    assert "/tmp" not in json.dumps(saved)
    src = img_src(page)
    set_number(page, "#seed", 8)                               # back to seeds
    wait_src_change(page, src)
    src = img_src(page)
    page.locator("#session_upload").locator("xpath=..").locator("input[type=file]").set_input_files(str(bundle))
    wait_src_change(page, src)
    assert np.array_equal(pixels(page), edited)


def open_tab_named(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_a_bad_image_gets_one_line_and_the_page_keeps_working(page, engine, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)     # a PNG signature and nothing readable after it
    page.locator("#project_box").get_by_text("Edit your own image").first.click()
    page.locator("#project_upload").locator("xpath=..").locator("input[type=file]").first.set_input_files(str(bad))
    toast = page.locator(".toast-body").filter(has_text="broken.png").first
    toast.wait_for(state="visible", timeout=30_000)
    text = toast.inner_text()
    assert "Traceback" not in text and str(tmp_path) not in text and "/tmp" not in text
    src = img_src(page)
    set_number(page, "#seed", 4)
    wait_src_change(page, src)
    assert np.array_equal(pixels(page), shown(engine, seed=4))
