"""bf16 autocast and channels-last: the trainer's numbers against fp32 and contiguous tensors, step by step
and through the whole training loop."""
import pytest
import torch

from gan.io.checkpoint import load_model
from gan.models.networks import build_discriminator, build_generator
from gan.training import train
from gan.training.augment import AdaptiveAugment
from gan.training.distributed import Dist, autocast_context
from gan.training.stylegan2 import StyleGAN2Trainer
from test_training import log_records, make_images, tiny  # the tiny run options and helpers of the main file

# bf16 keeps 8 significant bits: autocast rounds every conv / linear input to within 2^-9 (0.2%) and
# accumulates in fp32. Through G's and D's dozen layers, and the penalties' second backward, these
# errors add up to about 1% (measured: losses 0.02-0.4%, penalties 0.5-0.7%, mean logits 0.001-0.002
# absolute, as they sit near 0); the tolerances leave 3-5x room over that.
BF16_LOSS_RTOL, BF16_PENALTY_RTOL, BF16_LOGIT_ATOL = 0.02, 0.05, 0.01
LOSSES, PENALTIES, LOGITS = ("loss_G", "loss_D"), ("pl_penalty", "r1_penalty"), ("D_real", "D_fake")


def trainer_stats(precision: str, channels_last: bool, steps: int = 2) -> list[dict]:
    """Each step's stats from the real trainer on fixed reals, regularising at every step. lr 1e-12: Adam
    moves no weight by more than fp32 rounding, so every phase sees the same weights in every variant
    (with a real lr, Adam's sign-like first steps turn rounding noise into lr-sized differences)."""
    cfg = tiny(data="unused", out="unused", lr=1e-12, g_reg_interval=1, d_reg_interval=1, augment="none",
               precision=precision).resolve()
    torch.manual_seed(0)
    G = build_generator(cfg.model_config()).train().requires_grad_(False)
    D = build_discriminator(cfg.model_config()).train().requires_grad_(False)
    real = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        real = real.contiguous(memory_format=torch.channels_last)
    dist = Dist("cpu")
    trainer = StyleGAN2Trainer(cfg, G, D, AdaptiveAugment("none"), dist, lambda: autocast_context(dist.device, precision))
    torch.manual_seed(2)
    return [{k: float(v) for k, v in trainer.step(real, i).items()} for i in range(steps)]


def test_channels_last_gives_the_numbers_of_contiguous_tensors_and_bf16_stays_close():
    fp32, channels_last, bf16 = trainer_stats("fp32", False), trainer_stats("fp32", True), trainer_stats("bf16", True)
    for step in range(2):
        assert fp32[step].keys() == channels_last[step].keys() == bf16[step].keys() >= {*LOSSES, *PENALTIES}
        for key, value in fp32[step].items():
            assert channels_last[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)  # fp32 rounding
            tol = (dict(abs=BF16_LOGIT_ATOL) if key in LOGITS else
                   dict(rel=BF16_PENALTY_RTOL if key in PENALTIES else BF16_LOSS_RTOL))
            assert bf16[step][key] == pytest.approx(value, **tol), (step, key)
            assert bf16[step][key] != value, (step, key)  # bf16 really ran: its rounding shows


def test_bf16_autocast_and_channels_last_train_like_fp32_in_the_loop(tmp_path):
    """The whole loop (nets, reals and snapshots in channels-last, bf16 autocast) against an fp32 run."""
    image_folder = tmp_path / "icons"
    make_images(image_folder)
    runs = {}
    for name, kw in (("fp32", {}), ("bf16", dict(precision="bf16", channels_last=True))):
        final = train(tiny(data=str(image_folder), kimg=0.016, g_reg_interval=1, d_reg_interval=1,
                           out=str(tmp_path / name), **kw))
        assert torch.isfinite(load_model(final)[0](torch.randn(2, 32))).all()
        runs[name] = [r for r in log_records(tmp_path / name) if r["event"] == "tick"][-1]
    # The tick averages two steps; the second follows an Adam step, which amplifies rounding (see
    # trainer_stats), hence twice the single-step tolerances.
    for key in LOSSES + PENALTIES:
        rel = 2 * (BF16_PENALTY_RTOL if key in PENALTIES else BF16_LOSS_RTOL)
        assert runs["bf16"][key] == pytest.approx(runs["fp32"][key], rel=rel), key
    for key in LOGITS:
        assert runs["bf16"][key] == pytest.approx(runs["fp32"][key], abs=2 * BF16_LOGIT_ATOL), key
