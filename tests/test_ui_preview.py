"""A slow model's early preview in a real browser: `python app.py --preview-after-ms 0` (every model
counts as slow), chromium records each image the page shows; the first after a seed change must be the
lower stage the engine computes for that state, shown busy, and the last the full image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from explorer.engine import Engine
from explorer.incremental import BlockCache
from explorer.session import Edit
from explorer.ui import DEFAULT_PSI, DISPLAY_SIZE
from ui_helpers import App, IMAGE, choose, fetch_pixels, open_explorer, set_number

# Each image the page shows (its src) and whether the image was marked busy when it came.
RECORD = """() => {
  const root = document.querySelector('#image');
  window.shownImages = [];
  let last = root.querySelector('img')?.src;
  new MutationObserver(() => {
    const img = root.querySelector('img');
    if (img && img.src && img.src !== last) {
      last = img.src;
      window.shownImages.push([img.src, root.classList.contains('gle-busy')]);
    }
  }).observe(root, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""
IDLE = "() => !document.querySelector('#image').classList.contains('gle-busy')"
SETTLED = "() => !document.querySelector('#image').classList.contains('gle-busy') && window.shownImages.length > 0"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from gan.commands import new_model
    root = tmp_path_factory.mktemp("preview")
    return new_model(root / "models" / "tiny", tiny_config("stylegan2", img_resolution=64), seed=8)


@pytest.fixture(scope="module")
def app(browser, model):
    with App(["--models-dir", str(model.parent), "--preview-after-ms", "0"], model.parent.parent / "app.log") as a:
        yield a


@pytest.fixture(scope="module")
def engine(model):
    return Engine(model, show_bars=False)


@pytest.fixture
def page(browser, app):
    pg = open_explorer(browser, app.url)
    pg.evaluate(RECORD)
    yield pg
    pg.context.close()


def state(engine, **changes):
    return engine.default_state(**{"truncation_psi": DEFAULT_PSI, **changes})


def shown_after(page, action) -> list[tuple[np.ndarray, bool]]:
    """Do `action`, wait for the page to settle; the images it showed meanwhile, in order."""
    page.evaluate("() => { window.shownImages = []; }")
    action()
    page.wait_for_function(SETTLED, timeout=30_000)
    page.wait_for_timeout(300)      # nothing more comes
    return [(fetch_pixels(page, src), busy) for src, busy in page.evaluate("() => window.shownImages")]


def test_a_seed_change_shows_a_lower_stage_then_the_image(page, engine):
    images = shown_after(page, lambda: set_number(page, "#seed", 9))
    target = state(engine, seed=9)
    preview = engine.early_preview(target, size=DISPLAY_SIZE)
    assert preview is not None and preview.resolution < engine.img_resolution
    assert len(images) == 2, [busy for _, busy in images]
    (first, first_busy), (last, _) = images
    assert np.array_equal(first, np.asarray(preview.image.convert("RGB")))
    assert first_busy                 # the preview is shown marked busy: the image is still coming
    assert np.array_equal(last, np.asarray(engine.render(target, size=DISPLAY_SIZE).convert("RGB")))


def test_an_edit_of_late_layers_shows_no_preview(page, engine):
    # From the layer after the preview block's toRGB on, the lower stages stay those of the image shown:
    # the page goes straight to the new image.
    synthesis = engine.G.synthesis
    block = BlockCache.preview_block(synthesis)
    late = sum(getattr(synthesis, f"b{r}").num_conv for r in synthesis.block_resolutions[:block + 1]) + 1
    choose(page, "#dir0_start", f"{late} · ")      # at strength 0: the same image, nothing to show
    page.wait_for_function(IDLE, timeout=30_000)
    images = shown_after(page, lambda: set_number(page, "#dir0", 2))
    target = state(engine, seed=0, edits=(Edit(0, 2.0, late, engine.num_ws),))
    assert len(images) == 1
    assert np.array_equal(images[0][0], np.asarray(engine.render(target, size=DISPLAY_SIZE).convert("RGB")))


def test_quick_moves_end_on_the_last_value(page, engine):
    def moves():
        for seed in (21, 22, 23, 24):
            set_number(page, "#seed", seed)
    images = shown_after(page, moves)
    final = np.asarray(engine.render(state(engine, seed=24), size=DISPLAY_SIZE).convert("RGB"))
    assert np.array_equal(images[-1][0], final)
    assert np.array_equal(fetch_pixels(page, page.locator(f"{IMAGE} img").first.get_attribute("src")), final)


def test_a_flood_of_seeds_ends_on_the_last_and_leaves_the_render_lane_free(page, engine):
    # 25 seeds typed without waiting for any image: each event, and each rest of a previewed render,
    # must give the render lane back (a leak would hang every later event), and the page ends on the
    # last seed's full image; one more seed after the flood still renders.
    def flood():
        box = page.locator("#seed input").first
        for seed in range(100, 125):
            box.fill(str(seed))
            box.press("Tab")
    images = shown_after(page, flood)
    assert np.array_equal(images[-1][0], np.asarray(engine.render(state(engine, seed=124), size=DISPLAY_SIZE)
                                                    .convert("RGB")))
    images = shown_after(page, lambda: set_number(page, "#seed", 7))
    assert np.array_equal(images[-1][0], np.asarray(engine.render(state(engine, seed=7), size=DISPLAY_SIZE)
                                                    .convert("RGB")))
