"""Where our StyleGAN2 training follows NVIDIA's official trainer (github.com/NVlabs/stylegan2-ada-pytorch),
checked against formulas transcribed from its code, file by file, into this test (not imported from
ours)."""
import pytest

from gan.training.config import TrainConfig
from gan.training.loop import ema_beta


# ---- G EMA (training/training_loop.py, "Update G_ema") -----------------------------------------------

def official_ema_beta(ema_kimg: float, ema_rampup: float | None, cur_nimg: int, batch_size: int) -> float:
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@pytest.mark.parametrize("ema_kimg, ema_rampup, cur_nimg, batch, expected", [
    (10, 0.05, 0, 32, 0.0),                      # nothing seen yet: the EMA copies G
    (10, 0.05, 1000, 32, 0.6417129487814521),     # ramp-up: half-life 0.05 x 1000 = 50 images
    (10, 0.05, 100_000, 32, 0.9955736831881946),  # still ramping: 5000 < 10000
    (10, 0.05, 1_000_000, 32, 0.9977843871238888),  # capped at ema_kimg: 0.5 ** (32 / 10000)
    (10, None, 0, 32, 0.9977843871238888),        # no ramp-up: the full half-life from the start
    (2.5, 0.05, 16_000, 8, 0.9930924954370359),   # min(2500, 800)
    (0, None, 5000, 32, 0.0),                     # half-life 0: no averaging at all
    (20, None, 5000, 64, 0.9977843871238888),
    (500, 0.05, 2000, 64, 0.6417129487814521),    # cifar's long half-life, early on
])
def test_ema_beta_follows_the_official_ramp_up(ema_kimg, ema_rampup, cur_nimg, batch, expected):
    assert official_ema_beta(ema_kimg, ema_rampup, cur_nimg, batch) == pytest.approx(expected, rel=1e-12, abs=0)
    # Ours writes the official "no ramp-up" (None) as 0.
    cfg = TrainConfig(data="digits", resolution=32, out="x", ema_kimg=ema_kimg, ema_rampup=ema_rampup or 0.0)
    assert ema_beta(cfg, cur_nimg, batch) == pytest.approx(expected, rel=1e-12, abs=0)
