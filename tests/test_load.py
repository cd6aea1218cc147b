"""Fair concurrency, small: 8 gradio_client clients x 20 renders against `python app.py --public`
while another client computes a model's PCA directions. The server has one render slot
(--render-workers 1), so if the directions ran in the render lane no render could finish until they
were done; in their own lane renders keep being served. bench/load.py is the full-size measurement
(16 x 50 on the default model, with and without a model loading, p95 within 2x)."""
from __future__ import annotations

import threading
import time

import pytest

from conftest import tiny_config
from ui_helpers import App, percentile, render_load


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """models/: tiny-sg2 (rendered) and slow-pca, whose 4 x 256 mapping makes its directions take
    seconds to compute (none cached: $GAN_CACHE_DIR is empty)."""
    from gan.commands import new_model
    root = tmp_path_factory.mktemp("load")
    models = root / "models"
    new_model(models / "tiny-sg2", tiny_config("stylegan2"), seed=1)
    new_model(models / "slow-pca", tiny_config("stylegan2", img_resolution=8, z_dim=256, w_dim=256,
                                               mapping_layers=4, channel_max=16), seed=2)
    (models / "DEFAULT").write_text("tiny-sg2\n")
    with App(["--public", "--render-workers", "1", "--models-dir", str(models)], root / "app.log",
             env={"GAN_CACHE_DIR": str(root / "cache")}) as app:
        yield app, root


def test_renders_are_served_while_a_model_computes_its_directions(server):
    app, root = server
    from gradio_client import Client
    window = {}

    def directions():
        client = Client(app.url, verbose=False, download_files=str(root / "dl"))
        window["start"] = time.monotonic()
        window["table"] = client.predict(model="slow-pca", api_name="/directions")
        window["end"] = time.monotonic()

    loader = threading.Thread(target=directions)

    def start_loading():                          # the PCA is under way before the renders start
        loader.start()
        time.sleep(0.3)
    busy, errors = render_load(app.url, "tiny-sg2", clients=8, renders=20, download_to=root / "dl", seed0=500,
                               on_ready=start_loading)
    loader.join()
    assert errors == [] and len(busy) == 160
    assert len(window["table"]["components"]) >= 8
    during = [s for t, s in busy if window["start"] < t < window["end"]]
    seconds = [s for _, s in busy]
    print(f"\n[8 x 20 renders while a model computes its directions: p50 {1000 * percentile(seconds, .5):.0f} ms, "
          f"p95 {1000 * percentile(seconds, .95):.0f} ms, 0 errors; {len(during)} finished during the "
          f"{window['end'] - window['start']:.1f} s PCA]")
    assert len(during) >= 5, "renders stalled behind the directions computation"


def test_render_workers_fit_the_cores():
    import app as app_module
    args = app_module.parse_args([])
    assert app_module.render_workers(args, threads=1, cores=2) == 2
    assert app_module.render_workers(args, threads=4, cores=16) == 4
    assert app_module.render_workers(args, threads=1, cores=1) == 1
    assert app_module.render_workers(app_module.parse_args(["--render-workers", "3"]), threads=1, cores=2) == 3
