"""Training learns: a short run on the built-in digits moves the generator's images clearly towards the
data, measured against a freshly initialised generator of the same config (two statistics: the SWD
of PGGAN's paper, blind to global brightness because it normalises each set, and the distance of the
mean image, which sees it)."""
import pytest
import torch

from gan.data import load_dataset
from gan.io.checkpoint import load_model
from gan.metrics.swd import swd
from gan.models.networks import build_generator
from gan.training import TrainConfig, train

SMALL = dict(data="digits", channel_base=256, channel_max=32, z_dim=32, batch=16, snap=100, grid_seeds="0-3",
             progress=False, seed=0)


@pytest.fixture
def one_thread():
    """These tensors are tiny: threads cost more in per-op synchronisation than they win, most of all on
    shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def distances_to_the_data(G, resolution: int) -> dict[str, float]:
    ds = load_dataset("digits", resolution, channels=1)
    real = ds.get_batch(list(range(0, ds.num_images, 3))[:512]).float() / 127.5 - 1  # spread over all digits
    with torch.no_grad():
        fake = G(torch.randn(512, G.z_dim, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    return {"swd": swd(fake, real, min_res=8)["swd"], "mean_image": (fake.mean(0) - real.mean(0)).abs().mean().item()}


def learned(final, swd_ratio: float, mean_ratio: float) -> None:
    G, model_cfg = load_model(final)
    torch.manual_seed(0)
    untrained = build_generator(model_cfg).eval()
    before, after = distances_to_the_data(untrained, model_cfg.img_resolution), distances_to_the_data(G, model_cfg.img_resolution)
    assert after["swd"] < swd_ratio * before["swd"], (before, after)
    assert after["mean_image"] < mean_ratio * before["mean_image"], (before, after)


def test_a_short_stylegan2_run_on_digits_learns(tmp_path, one_thread):
    # 1 kimg at 16x16 (63 steps, ~15 s on one CPU thread); measured: SWD 412 -> 112, mean image 0.56 -> 0.14.
    final = train(TrainConfig(arch="stylegan2", resolution=16, w_dim=32, mapping_layers=2, kimg=1.0, tick_kimg=1.0,
                              out=str(tmp_path / "run"), **SMALL))
    learned(final, swd_ratio=0.5, mean_ratio=0.5)


def test_a_short_pggan_run_on_digits_learns(tmp_path, one_thread):
    # 8x8 after a quarter kimg at 4x4 and a quarter of fade-in, 2 kimg in all (~10 s); PGGAN's WGAN-GP at
    # lr 0.001 moves more slowly: measured SWD 469 -> 261, mean image 0.66 -> 0.25.
    final = train(TrainConfig(arch="pggan", resolution=8, kimg=2.0, tick_kimg=2.0, phase_kimg=0.25,
                              pggan_batch="4:16,8:16", out=str(tmp_path / "run"), **SMALL))
    learned(final, swd_ratio=0.75, mean_ratio=0.6)
