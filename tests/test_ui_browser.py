"""The explorer UI in a real browser: `python app.py` on tiny random models, driven through chromium.

Needs Debian's chromium (`make test` installs it); without it these tests fail with that command,
rather than skip, so a CI that lost its browser cannot pass silently. A full-page screenshot is saved
to $E2E_SHOT (default artifacts/screenshot.png)."""
from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from conftest import tiny_config
from ui_helpers import (IMAGE, ROOT, App, choose, fetch_pixels, img_src, open_explorer,
                        open_tab, pixels, set_number, wait_src_change)

SHOT = Path(os.environ.get("E2E_SHOT", ROOT / "artifacts" / "screenshot.png"))


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """shipped/: one StyleGAN2 model (the app's --models-dir, named by DEFAULT); pg-run/: a PGGAN
    run's final model with two stage snapshots beside it; empty/: no models at all."""
    from gan.commands import new_model
    root = tmp_path_factory.mktemp("ui_models")
    shipped, run, empty = root / "shipped", root / "pg-run", root / "empty"
    new_model(shipped / "tiny-sg2", tiny_config("stylegan2"), seed=1)
    (shipped / "DEFAULT").write_text("tiny-sg2\n")
    new_model(run / "final", tiny_config("pggan"), seed=2)
    for r in (8, 16):
        new_model(run / "stages" / f"{r:03d}x{r:03d}", tiny_config("pggan", img_resolution=r), seed=3)
    empty.mkdir()
    return SimpleNamespace(shipped=shipped, sg2=shipped / "tiny-sg2", pggan=run / "final", empty=empty,
                           root=root)


@pytest.fixture(scope="session")
def app(browser, models):
    """The app on the shipped folder, no --model: it must open the DEFAULT model by itself."""
    with App(["--models-dir", str(models.shipped)], models.root / "app.log") as a:
        print(f"\n[app up in {a.startup_s:.1f}s]")
        yield a


@pytest.fixture(scope="session")
def empty_app(browser, models):
    with App(["--models-dir", str(models.empty)], models.root / "empty_app.log") as a:
        yield a


@pytest.fixture(scope="session")
def engine(models):
    """The app's default model loaded in this process: what the browser shows must be its render."""
    from explorer.engine import Engine
    return Engine(models.sg2, show_bars=False)


def engine_pixels(engine, seed: int = 0, edits=(), psi: float | None = None) -> np.ndarray:
    """RGB pixels of the engine's render of the state the page shows: the app opens the model at
    truncation DEFAULT_PSI and draws the main image at DISPLAY_SIZE. edits: (component, strength,
    start, end) tuples, end exclusive (the page's layer boxes are inclusive)."""
    from explorer.session import Edit
    from explorer.ui import DEFAULT_PSI, DISPLAY_SIZE
    state = engine.default_state(seed=seed, truncation_psi=DEFAULT_PSI if psi is None else psi,
                                 edits=tuple(Edit(*e) for e in edits))
    return np.asarray(engine.render(state, size=DISPLAY_SIZE).convert("RGB"))


@pytest.fixture
def page(browser, app):
    pg = open_explorer(browser, app.url)
    yield pg
    pg.context.close()


def error_toast(page, pattern: str, timeout_ms: int = 15_000) -> str:
    """The text of the error toast matching `pattern` (waits for it)."""
    toast = page.locator(".toast-body").filter(has_text=re.compile(pattern))
    toast.first.wait_for(state="visible", timeout=timeout_ms)
    return toast.first.inner_text()


def assert_no_traceback(page) -> None:
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and 'File "' not in text


# ---- choosing the model (no browser) ----------------------------------------------------------

def test_default_model_is_the_DEFAULT_file_choice_else_the_first_by_name(tmp_path, models):
    from explorer.ui import default_model, list_models
    assert default_model(models.shipped) == models.sg2
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{}")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{}")
    (tmp_path / "not-a-model").mkdir()
    assert [p.name for p in list_models(tmp_path)] == ["a", "b"]
    assert default_model(tmp_path).name == "a"
    (tmp_path / "DEFAULT").write_text("b")
    assert default_model(tmp_path).name == "b"
    assert default_model(tmp_path / "missing") is None


def test_model_argument_is_a_shipped_name_or_a_path(models):
    from explorer.session import ExplorerError
    from explorer.ui import resolve_model
    assert resolve_model("tiny-sg2", models.shipped) == models.shipped / "tiny-sg2"
    assert resolve_model(str(models.pggan), models.shipped) == models.pggan
    with pytest.raises(ExplorerError, match="no model folder at nope"):
        resolve_model("nope", models.shipped)


def test_binds_loopback_by_default_and_all_interfaces_on_spaces():
    import app as app_module
    args = app_module.parse_args([])
    assert app_module.server_address(args, {}) == ("127.0.0.1", 7860)
    assert app_module.server_address(args, {"SPACE_ID": "u/x"}) == ("0.0.0.0", 7860)
    assert app_module.server_address(args, {"GRADIO_SERVER_NAME": "10.0.0.1", "GRADIO_SERVER_PORT": "9000"}) \
        == ("10.0.0.1", 9000)
    assert app_module.server_address(app_module.parse_args(["--port", "8001"]), {"SPACE_ID": "u/x"}) \
        == ("0.0.0.0", 8001)


# ---- the explorer in the browser --------------------------------------------------------------

def test_page_opens_the_default_model_with_a_large_image(page):
    assert "tiny-sg2" in page.locator("#model_info").inner_text()
    assert "StyleGAN2" in page.locator("#model_info").inner_text()
    img = pixels(page)
    assert img.shape == (512, 512, 3) and img.std() > 0
    # 32 px upscaled 16x by nearest neighbour: every 16x16 block is one colour
    assert (img[::16, ::16].repeat(16, 0).repeat(16, 1) == img).all()
    # the sliders panel is a @gr.render after the load event: it may come after the first image
    expect(page.locator("#dir7")).to_be_visible(timeout=90_000)
    assert not page.locator("#dir8").is_visible()
    assert "% of variance" in page.locator("#dir0").inner_text()
    assert not page.locator("#placeholder").is_visible()


def test_changing_the_seed_changes_the_image(page):
    before_src, before = img_src(page), pixels(page)
    set_number(page, "#seed", 7)
    wait_src_change(page, before_src)
    assert not np.array_equal(pixels(page), before)
    src = img_src(page)
    page.locator("#seed_random").click()
    wait_src_change(page, src)
    seed = int(page.locator("#seed input").input_value())
    assert seed != 7
    open_tab(page, "Export")                     # keyframes follow the seed until edited by hand
    assert page.locator("#export_seeds textarea, #export_seeds input").first.input_value() == \
        ",".join(str(seed + i) for i in range(4))


def test_a_direction_slider_changes_the_image_and_moving_it_back_restores_it(page):
    src0, original = img_src(page), pixels(page)
    t0 = time.perf_counter()
    set_number(page, "#dir0", 3)
    src1 = wait_src_change(page, src0)
    print(f"\n[direction -> new image: {1000 * (time.perf_counter() - t0):.0f} ms]")
    edited = pixels(page)
    assert not np.array_equal(edited, original)
    set_number(page, "#dir0", 0)
    wait_src_change(page, src1)
    assert np.array_equal(pixels(page), original)


def test_clicking_a_slider_track_renders_the_new_value(page):
    src0, original = img_src(page), pixels(page)
    track = page.locator("#dir1 input[type=range]")
    track.scroll_into_view_if_needed()   # a mouse click lands only inside the viewport
    box = track.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.85, box["y"] + box["height"] / 2)
    wait_src_change(page, src0)
    assert float(page.locator("#dir1 input[type=number]").input_value()) > 2
    assert not np.array_equal(pixels(page), original)


def test_an_edit_applies_only_to_its_layer_range(page, engine):
    last = engine.num_ws - 1
    src = img_src(page)
    set_number(page, "#dir0", 4)
    src = wait_src_change(page, src)
    all_layers = pixels(page)
    # Pixel-exact: the PNG the browser got is the engine's render of that state (same model, same
    # CPU, same code; only the process differs).
    np.testing.assert_array_equal(all_layers, engine_pixels(engine, edits=[(0, 4.0, 0, engine.num_ws)]))
    choose(page, "#dir0_start", f"{last} · 32px")     # only the last (finest) layer
    wait_src_change(page, src)
    one_layer = pixels(page)
    np.testing.assert_array_equal(one_layer, engine_pixels(engine, edits=[(0, 4.0, last, engine.num_ws)]))
    assert not np.array_equal(one_layer, all_layers)
    assert not np.array_equal(one_layer, engine_pixels(engine))   # the one-layer edit still changes it


def test_more_directions_reveals_hidden_sliders(page):
    # the sliders panel is a @gr.render after the page's load event: on a loaded CI machine it can come late
    page.locator("#dirs_more").wait_for(state="visible", timeout=90_000)
    assert not page.locator("#dir8").is_visible()
    page.locator("#dirs_more").click()
    page.locator("#dir15").wait_for(state="visible")
    assert "16 of 32" in page.locator("#dirs_more").inner_text()
    assert "% of variance" in page.locator("#dir12").inner_text()


def test_style_mixing_layers_change_the_image(page):
    original_src, original = img_src(page), pixels(page)
    open_tab(page, "Style mixing")
    page.locator("#mix_out img").wait_for(state="visible")
    assert np.array_equal(pixels(page, "#mix_a"), pixels(page, "#mix_out"))     # nothing mixed yet
    assert page.locator("#mix_group0").is_visible() and not page.locator("#mix_group4").is_visible()
    page.locator("#mix_group0 label", has_text="layer 0").click()
    mixed_src = wait_src_change(page, original_src)
    assert not np.array_equal(pixels(page), original)
    page.locator("#mix_preset_coarse").click()                                      # layers 0-2
    coarse_src = wait_src_change(page, mixed_src)
    assert page.locator("#mix_group1 input[type=checkbox]:checked").count() == 2
    page.locator("#mix_preset_fine").click()                                        # 32 px: layers 5-7
    fine_src = wait_src_change(page, coarse_src)
    assert page.locator("#mix_group3 input[type=checkbox]:checked").count() == 3
    assert page.locator("#mix_group1 input[type=checkbox]:checked").count() == 0
    page.locator("#mix_preset_none").click()
    wait_src_change(page, fine_src)
    assert np.array_equal(pixels(page), original)
    page.locator("#mix_preset_middle").click()
    page.get_by_text("Mixing grid").click()
    page.locator("#grid_make").click()
    page.locator("#grid_image img").wait_for(state="visible")
    grid = pixels(page, "#grid_image")
    assert grid.shape == (4 * 128, 5 * 128, 3)            # rows 1-3, columns 4-7, plus the sources


def test_stages_gallery_shows_one_image_per_stage(page):
    open_tab(page, "Resolution stages")
    items = page.locator("#stages img")
    items.nth(3).wait_for(state="visible")
    assert items.count() == 4
    captions = page.locator("#stages").inner_text()
    assert all(f"{r}x{r}" in captions for r in (4, 8, 16, 32))
    assert not page.locator("#snapshots").is_visible()


def test_export_downloads_a_looping_gif_with_the_requested_frames(page):
    open_tab(page, "Export")
    page.locator("#export_seeds textarea, #export_seeds input").first.fill("3,4,5")
    set_number(page, "#export_frames", 4)          # 3 seeds x 4 frames, looping: 12 frames
    t0 = time.perf_counter()
    page.locator("#export_button").click()
    link = page.locator("#export_file a[href]").first
    link.wait_for(state="attached", timeout=60_000)
    print(f"\n[export 12-frame GIF: {1000 * (time.perf_counter() - t0):.0f} ms]")
    href = link.get_attribute("href")
    assert href.split("?")[0].endswith(".gif")
    body = page.request.get(href).body()
    assert body[:6] == b"GIF89a" and b"NETSCAPE2.0" in body       # loops forever
    gif = Image.open(io.BytesIO(body))
    assert gif.n_frames == 12 and gif.size == (256, 256) and gif.info.get("loop") == 0
    page.locator("#export_preview img").wait_for(state="visible")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".gif")


def test_invalid_input_shows_a_one_line_error_not_a_traceback(page):
    open_tab(page, "Export")
    page.locator("#export_seeds textarea, #export_seeds input").first.fill("3,x")
    page.locator("#export_button").click()
    message = error_toast(page, "bad seed")
    assert "'x'" in message
    page.locator("#export_seeds textarea, #export_seeds input").first.fill("3,4")
    set_number(page, "#export_fps", 60)
    page.locator("#export_button").click()               # GIF plays at most 50 fps: clamped, and said
    expect(page.locator("#export_note")).to_contain_text("GIF fps 60 is out of range: using 50")
    expect(page.locator("#export_fps input[type=number]")).to_have_value("50")
    assert_no_traceback(page)


def test_session_saves_and_loads_as_json(page, tmp_path):
    src = img_src(page)
    set_number(page, "#seed", 11)
    src = wait_src_change(page, src)
    set_number(page, "#dir2", 2)
    wait_src_change(page, src)
    open_tab(page, "Session")
    page.locator("#session_save").click()
    link = page.locator("#session_file a[href]").first
    link.wait_for(state="attached")
    saved = json.loads(page.request.get(link.get_attribute("href")).body())
    assert saved["model"] == "tiny-sg2"          # its name, not this server's path: loads on any machine
    assert saved["seed"] == 11 and saved["edits"] == [{"component": 2, "strength": 2.0, "start": 0, "end": 8}]
    saved.update(seed=12, edits=[{"component": 1, "strength": -1.5, "start": 0, "end": 4}])
    path = tmp_path / "session.json"
    path.write_text(json.dumps(saved))
    src = img_src(page)
    page.locator("#session_upload").locator("xpath=..").locator("input[type=file]").set_input_files(str(path))
    wait_src_change(page, src)
    assert page.locator("#seed input").input_value() == "12"
    open_tab(page, "Directions")                 # the sliders are rebuilt from the session's edits
    expect(page.locator("#dir1 input[type=number]")).to_have_value("-1.5", timeout=60_000)   # a @gr.render
    expect(page.locator("#dir1_end input")).to_have_value(re.compile(r"^3 · 16px"))
    expect(page.locator("#dir2 input[type=number]")).to_have_value("0")


def test_screenshot(page, engine):
    """A full-page screenshot to $E2E_SHOT of an edited state, checked to show what it should."""
    src = img_src(page)
    set_number(page, "#seed", 21)
    src = wait_src_change(page, src)
    set_number(page, "#dir0", 2.5)
    src = wait_src_change(page, src)
    set_number(page, "#dir3", -2)
    wait_src_change(page, src)
    want = engine_pixels(engine, seed=21, edits=[(0, 2.5, 0, engine.num_ws), (3, -2.0, 0, engine.num_ws)])
    np.testing.assert_array_equal(pixels(page), want)
    assert all(page.locator(f"#dir{i}").is_visible() for i in range(8))       # the first 8 sliders
    page.mouse.click(5, 5)                       # no focus ring in the picture
    # At the top of the page, viewport and page coordinates agree and the sticky image column sits
    # where the full-page picture draws it.
    page.evaluate("window.scrollTo(0, 0)")
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT), full_page=True)
    shot = Image.open(SHOT).convert("RGB")
    assert shot.width == 1280 and shot.height >= 900      # the viewport's width, the whole page's height
    # The main image is on screen as rendered: the screenshot's pixels inside the <img> box are the
    # render scaled to that box (pixelated CSS: nearest neighbour).
    box = page.locator(f"{IMAGE} img").bounding_box()
    x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
    assert w >= 400 and h == w, box
    seen = np.asarray(shot.crop((x, y, x + w, y + h))).astype(int)
    drawn = np.asarray(Image.fromarray(want).resize((w, h), Image.Resampling.NEAREST)).astype(int)
    # The <img> sits at a fractional offset (x 664.7, y 261.7 here), so block edges may land a pixel
    # apart: measured 0.35% of values off; a missing or different image is off almost everywhere.
    assert np.mean(np.abs(seen - drawn) > 8) < 0.02


# ---- no model shipped; a PGGAN loaded by path --------------------------------------------------

def test_without_models_a_placeholder_then_a_pggan_loaded_by_path(browser, empty_app, models):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    try:
        pg.goto(empty_app.url)
        pg.locator("#placeholder").wait_for(state="visible")
        assert "No model" in pg.locator("#placeholder").inner_text()
        assert not pg.locator("#image").is_visible()
        box = pg.locator("#model_path textarea, #model_path input").first
        box.fill(str(models.root / "no-such-run" / "final"))
        pg.locator("#model_load").click()
        message = error_toast(pg, "no model folder at")
        assert str(models.root) not in message and "/tmp" not in message, message   # no server path
        box.fill(str(models.pggan))
        pg.locator("#model_load").click()
        pg.locator("#image img").wait_for(state="visible", timeout=60_000)
        assert "PGGAN" in pg.locator("#model_info").inner_text()
        assert not pg.locator("#placeholder").is_visible()
        assert not pg.locator("#noise").is_visible() and not pg.locator("#dir0_start").is_visible()
        open_tab(pg, "Style mixing")
        pg.locator("#no_mixing").wait_for(state="visible")
        assert pg.locator("#mix_seed").count() == 0 and not pg.locator("#mix_a").is_visible()
        open_tab(pg, "Directions")
        src, before = img_src(pg), pixels(pg)
        set_number(pg, "#dir0", 3)
        wait_src_change(pg, src)
        assert not np.array_equal(pixels(pg), before)
        open_tab(pg, "Resolution stages")
        pg.locator("#stages img").nth(3).wait_for(state="visible")
        pg.locator("#snapshots img").nth(1).wait_for(state="visible")
        assert pg.locator("#stages img").count() == 4 and pg.locator("#snapshots img").count() == 2
        assert "16x16" in pg.locator("#snapshots").inner_text()
        assert fetch_pixels(pg, pg.locator("#snapshots img").first.get_attribute("src")).shape == (128, 128, 3)
    finally:
        ctx.close()


# ---- controls that never lie: the widget shows the value the image was made with ---------------

def number_value(page, sel: str) -> float:
    return float(page.locator(f"{sel} input[type=number]").first.input_value())


def test_a_sliders_reset_icon_renders_the_reset_value(page):
    src0, original = img_src(page), pixels(page)
    set_number(page, "#dir0", 3)
    src = wait_src_change(page, src0)
    page.locator("#dir0 button[aria-label='Reset to default value']").click()
    wait_src_change(page, src)
    assert number_value(page, "#dir0") == 0
    np.testing.assert_array_equal(pixels(page), original)


def test_psi_moved_with_the_keyboard_renders(page, engine):
    src = img_src(page)
    page.locator("#psi input[type=range]").focus()
    page.keyboard.press("ArrowLeft")                 # one step: 0.7 -> 0.65
    wait_src_change(page, src)
    assert number_value(page, "#psi") == pytest.approx(0.65)
    np.testing.assert_array_equal(pixels(page), engine_pixels(engine, psi=0.65))


def test_out_of_range_values_are_clamped_and_shown_clamped(page, engine):
    src = img_src(page)
    set_number(page, "#psi", 5)
    src = wait_src_change(page, src)
    expect(page.locator("#psi input[type=number]")).to_have_value("1.5")
    expect(page.locator("#image_note")).to_have_text("truncation ψ 5 is out of range: using 1.5 "
                                                     "(truncation ψ goes from 0 to 1.5)")
    np.testing.assert_array_equal(pixels(page), engine_pixels(engine, psi=1.5))
    set_number(page, "#psi", 0.7)
    src = wait_src_change(page, src)
    set_number(page, "#dir0", 50)
    src = wait_src_change(page, src)
    expect(page.locator("#dir0 input[type=number]")).to_have_value("5")
    np.testing.assert_array_equal(pixels(page), engine_pixels(engine, edits=[(0, 5.0, 0, engine.num_ws)]))
    set_number(page, "#seed", 3.7)                    # a seed is a whole number: 4, and the box says 4
    src = wait_src_change(page, src)
    expect(page.locator("#seed input")).to_have_value("4")
    np.testing.assert_array_equal(pixels(page), engine_pixels(engine, seed=4, edits=[(0, 5.0, 0, engine.num_ws)]))
    set_number(page, "#seed", -5)
    wait_src_change(page, src)
    expect(page.locator("#seed input")).to_have_value("0")
    np.testing.assert_array_equal(pixels(page), engine_pixels(engine, seed=0, edits=[(0, 5.0, 0, engine.num_ws)]))


def test_a_layer_range_with_from_after_to_is_refused_and_reverted(page, engine):
    assert page.locator("#dir2_start input").input_value().startswith("0 · 4px")
    assert page.locator("#dir2_end input").input_value().startswith("7 · 32px")
    src = img_src(page)
    set_number(page, "#dir2", 2)
    src = wait_src_change(page, src)
    choose(page, "#dir2_start", "6 · ")
    src = wait_src_change(page, src)                 # 6..7
    choose(page, "#dir2_end", "2 · ")                # 6..2: refused
    expect(page.locator("#image_note")).to_have_text("direction 2: 'from' layer 6 is after 'to' layer 2; kept 6 to 7")
    expect(page.locator("#dir2_end input")).to_have_value(re.compile(r"^7 · "))
    expect(page.locator("#dir2_start input")).to_have_value(re.compile(r"^6 · "))
    np.testing.assert_array_equal(pixels(page), engine_pixels(engine, edits=[(2, 2.0, 6, engine.num_ws)]))


def test_export_shows_what_it_adjusted(page):
    open_tab(page, "Export")
    page.locator("#export_seeds textarea, #export_seeds input").first.fill("1,2")
    set_number(page, "#export_frames", 0)         # the slider's box clamps to 1 as it loses focus
    set_number(page, "#export_fps", 0)
    expect(page.locator("#export_frames input[type=number]")).to_have_value("1")
    expect(page.locator("#export_fps input[type=number]")).to_have_value("1")
    page.locator("#export_button").click()
    expect(page.locator("#export_note")).to_contain_text("2 frames at 1 fps (2.0 s)")   # 2 seeds x 1, looping
    page.locator("#export_file a[href]").first.wait_for(state="attached", timeout=60_000)
    gif = Image.open(io.BytesIO(page.request.get(page.locator("#export_file a[href]").first.get_attribute("href"))
                                .body()))
    assert gif.n_frames == 2 and gif.info["duration"] == 1000


def test_a_refused_mixing_grid_keeps_the_last_one_and_labels_its_seeds(page):
    open_tab(page, "Style mixing")
    page.get_by_text("Mixing grid").click()
    page.locator("#grid_make").click()
    page.locator("#grid_image img").wait_for(state="visible")
    expect(page.locator("#grid_image")).to_contain_text("rows: seeds 1, 2, 3 (A) · columns: seeds 4, 5, 6, 7 (B)")
    src = img_src(page, "#grid_image")
    page.locator("#grid_rows textarea, #grid_rows input").first.fill("0-99")    # 100 rows: over the limit
    page.locator("#grid_make").click()
    error_toast(page, "too many row seeds")
    assert img_src(page, "#grid_image") == src
    assert page.locator("#grid_image .error").count() == 0


# ---- a phone ----------------------------------------------------------------------------------

PHONE_SHOT = Path(os.environ.get("E2E_PHONE_SHOT", ROOT / "artifacts" / "screenshot-phone.png"))


def test_on_a_phone_the_image_stays_in_view_while_sliders_move(browser, app, engine):
    """390x844: the image comes first and stays pinned at the top while the sliders scroll under
    it; the screenshot goes to $E2E_PHONE_SHOT (default artifacts/screenshot-phone.png)."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                              has_touch=True)
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    try:
        pg.goto(app.url)
        pg.locator(f"{IMAGE} img").wait_for(state="visible", timeout=60_000)
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390       # no sideways scrolling
        pg.locator("#dir6").scroll_into_view_if_needed()
        img = pg.locator(f"{IMAGE} img").bounding_box()
        slider = pg.locator("#dir6").bounding_box()
        assert pg.evaluate("window.scrollY") > 300                              # the page did scroll
        assert 0 <= img["y"] and img["y"] + img["height"] <= 844 and img["height"] >= 200, img
        assert slider["y"] >= img["y"] + img["height"] - 1, (img, slider)      # the slider is below, not under
        src = img_src(pg)
        set_number(pg, "#dir6", 3)
        wait_src_change(pg, src)
        assert pg.locator(f"{IMAGE} img").bounding_box()["y"] >= 0              # still in view
        np.testing.assert_array_equal(pixels(pg), engine_pixels(engine, edits=[(6, 3.0, 0, engine.num_ws)]))
        pg.mouse.click(5, 5)
        PHONE_SHOT.parent.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(PHONE_SHOT))
        assert Image.open(PHONE_SHOT).size == (390, 844)
    finally:
        ctx.close()
