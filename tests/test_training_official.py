"""Where our StyleGAN2 training follows NVIDIA's official trainer (github.com/NVlabs/stylegan2-ada-pytorch),
checked against formulas transcribed from its code, file by file, into this test (not imported from
ours)."""
import json
import math
from contextlib import nullcontext

import pytest
import torch

from gan.__main__ import main as gan_main
from gan.models.networks import build_discriminator, build_generator
from gan.training.augment import AdaptiveAugment
from gan.training.config import TrainConfig, TrainConfigError
from gan.training.distributed import Dist
from gan.training.loop import ema_beta
from gan.training.stylegan2 import StyleGAN2Trainer


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


# ---- --cfg: train.py, setup_training_loop_kwargs (cfg_specs, the 'auto' formulas, --batch / --gamma) ------
# auto:  batch = max(min(gpus * min(4096 // res, 32), 64), gpus);  mbstd = min(batch // gpus, 4)
#        channel_base = (1 if res >= 512 else 0.5) * 32768;  lr = 0.002 if res >= 1024 else 0.0025
#        gamma = 0.0002 * res ** 2 / batch;  ema_kimg = batch * 10 / 32;  ramp-up 0.05;  mapping 2
# named: stylegan2 (mb 32, mbstd 4, fmaps 1, lr 0.002, gamma 10, ema 10, ramp None, map 8),
#        paper256 (64, 8, 0.5, 0.0025, 1, 20, None, 8), paper512 (64, 8, 1, 0.0025, 0.5, 20, None, 8),
#        paper1024 (32, 4, 1, 0.002, 2, 10, None, 8), cifar (64, 32, 1, 0.0025, 0.01, 500, 0.05, 2;
#        no path length, no style mixing). --batch replaces batch only (gamma, ema and mbstd keep the
#        configuration's values); --gamma replaces gamma. Every configuration: aug 'ada', target 0.6,
#        ada_kimg 500 (training_loop.py's default), p starting at 0. The numbers below are worked out by hand.
COLUMNS = ("batch", "mbstd_group", "channel_base", "lr", "gamma", "ema_kimg", "ema_rampup", "mapping_layers",
           "pl_weight", "mixing_prob")
RESOLVED = [
    # cfg, res, gpus, --batch, --gamma -> batch, mbstd, channel_base, lr, gamma, ema_kimg, ramp, map, pl, mixing
    ("auto", 32, 1, None, None, (32, 4, 16384, 0.0025, 0.0064, 10, 0.05, 2, 2, 0.9)),
    ("auto", 32, 1, 8, None, (8, 4, 16384, 0.0025, 0.0064, 10, 0.05, 2, 2, 0.9)),       # issue 17's example
    ("auto", 256, 1, 32, None, (32, 4, 16384, 0.0025, 0.8192, 5, 0.05, 2, 2, 0.9)),     # its batch is 16
    ("auto", 256, 8, None, None, (64, 4, 16384, 0.0025, 0.2048, 20, 0.05, 2, 2, 0.9)),
    ("auto", 512, 2, None, None, (16, 4, 32768, 0.0025, 3.2768, 5, 0.05, 2, 2, 0.9)),
    ("auto", 1024, 1, None, None, (4, 4, 32768, 0.002, 52.4288, 1.25, 0.05, 2, 2, 0.9)),
    ("auto", 2048, 1, None, None, (2, 2, 32768, 0.002, 419.4304, 0.625, 0.05, 2, 2, 0.9)),
    ("auto", 64, 32, None, None, (64, 2, 16384, 0.0025, 0.0128, 20, 0.05, 2, 2, 0.9)),
    ("auto", 32, 1, None, 1.0, (32, 4, 16384, 0.0025, 1.0, 10, 0.05, 2, 2, 0.9)),
    ("stylegan2", 1024, 8, None, None, (32, 4, 32768, 0.002, 10, 10, 0, 8, 2, 0.9)),
    ("stylegan2", 256, 1, 16, None, (16, 4, 32768, 0.002, 10, 10, 0, 8, 2, 0.9)),
    ("paper256", 256, 8, None, None, (64, 8, 16384, 0.0025, 1, 20, 0, 8, 2, 0.9)),
    ("paper512", 512, 8, None, None, (64, 8, 32768, 0.0025, 0.5, 20, 0, 8, 2, 0.9)),
    ("paper1024", 1024, 8, None, None, (32, 4, 32768, 0.002, 2, 10, 0, 8, 2, 0.9)),
    ("cifar", 32, 2, None, 0.05, (64, 32, 32768, 0.0025, 0.05, 500, 0.05, 2, 0, 0)),
]


def given(cfg, res, batch, gamma) -> dict:
    kw = dict(cfg=cfg, data="digits", resolution=res, out="x")
    if batch is not None:
        kw["batch"] = batch
    if gamma is not None:
        kw["gamma"] = gamma
    return kw


@pytest.mark.parametrize("cfg, res, gpus, batch, gamma, expected", RESOLVED)
def test_cfg_resolves_to_the_official_numbers(cfg, res, gpus, batch, gamma, expected):
    r = TrainConfig(**given(cfg, res, batch, gamma)).resolve(gpus=gpus)
    assert {k: getattr(r, k) for k in COLUMNS} == pytest.approx(dict(zip(COLUMNS, expected)), rel=1e-12)
    assert (r.augment, r.augment_p, r.ada_target, r.ada_kimg) == ("ada", 0.0, 0.6, 500)
    model = r.model_config()
    assert (model.channel_base, model.mapping_layers, model.mbstd_group_size) == (expected[2], expected[7],
                                                                                  expected[1])
    if cfg != "auto":  # the official network widths; 'auto' keeps this project's CPU-sized ones (config.py)
        assert (model.channel_max, model.z_dim, model.w_dim) == (512, 512, 512)


def test_explicit_flags_override_their_one_value_only():
    r = TrainConfig(cfg="paper256", data="digits", resolution=256, out="x", lr=0.01, mapping_layers=4,
                    ema_rampup=0.1, mbstd_group=2, pl_weight=0, augment="none").resolve(gpus=8)
    assert (r.lr, r.mapping_layers, r.ema_rampup, r.mbstd_group, r.pl_weight, r.augment) == (0.01, 4, 0.1, 2, 0, "none")
    assert (r.batch, r.gamma, r.ema_kimg, r.channel_base) == (64, 1, 20, 16384)  # the rest stays paper256's


@pytest.mark.parametrize("cfg, res, gpus, batch, gamma, expected", [RESOLVED[1], RESOLVED[3], RESOLVED[14]])
def test_dry_run_prints_the_resolved_numbers(cfg, res, gpus, batch, gamma, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", str(gpus))  # as torchrun --nproc_per_node would set it
    argv = ["train", "--cfg", cfg, "--data", "digits", "--resolution", str(res), "--out", str(tmp_path / "run"),
            "--dry-run"]
    argv += ["--batch", str(batch)] if batch is not None else []
    argv += ["--gamma", str(gamma)] if gamma is not None else []
    assert gan_main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed["train"][k] for k in COLUMNS} == pytest.approx(dict(zip(COLUMNS, expected)), rel=1e-12)
    assert printed["model"]["mbstd_group_size"] == expected[1] and not (tmp_path / "run").exists()


def test_a_named_cfg_is_refused_for_pggan_in_one_line():
    with pytest.raises(TrainConfigError, match="--cfg paper256 is a StyleGAN2 configuration") as e:
        TrainConfig(arch="pggan", cfg="paper256", data="digits", resolution=256, out="x").validate()
    assert "\n" not in str(e.value)


# ---- the StyleGAN2 loss (training/loss.py) and mapping network (training/networks.py) --------------------

def tiny_trainer(**kw) -> StyleGAN2Trainer:
    cfg = TrainConfig(**{**dict(data="unused", resolution=16, channel_base=256, channel_max=32, z_dim=32, w_dim=32,
                                batch=8, augment="none", out="unused"), **kw}).resolve()
    torch.manual_seed(0)
    G = build_generator(cfg.model_config()).train().requires_grad_(False)
    D = build_discriminator(cfg.model_config()).train().requires_grad_(False)
    return StyleGAN2Trainer(cfg, G, D, AdaptiveAugment("none"), Dist("cpu"), nullcontext)


def official_path_length_grads(G, z, noise, pl_mean_prev, pl_weight, gain, detach_target=False):
    """Gpl as training/loss.py writes it (our words): lengths from the gradient of (img * noise / sqrt(H W))
    with respect to ws; the target pl_mean_prev.lerp(mean length, 0.01) NOT detached; back-propagated as
    (img[:, 0, 0, 0] * 0 + penalty * pl_weight).mean() * gain. Returns ({name: grad}, the stored new mean)."""
    ws = G.mapping(z)
    img = G.synthesis(ws, noise_mode="const")
    y = noise / math.sqrt(img.shape[2] * img.shape[3])
    (grad_ws,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    lengths = grad_ws.square().sum(2).mean(1).sqrt()
    target = pl_mean_prev.lerp(lengths.mean(), 0.01)
    if detach_target:
        target = target.detach()
    loss = (img[:, 0, 0, 0] * 0 + (lengths - target).square() * pl_weight).mean() * gain
    names, params = zip(*G.named_parameters())
    return dict(zip(names, torch.autograd.grad(loss, params))), target.detach()


def our_path_length_grads(trainer, z, noise):
    G = trainer.G
    G.requires_grad_(True)
    G.zero_grad(set_to_none=True)
    ws = G.mapping(z)
    trainer.path_length_backward(G.synthesis(ws, noise_mode="const"), ws, noise)
    G.requires_grad_(False)
    return {name: p.grad.clone() for name, p in G.named_parameters()}


@pytest.mark.parametrize("detach", [False, True])
def test_the_path_length_gradient_is_the_official_expressions(detach):
    trainer = tiny_trainer(pl_detach_mean=detach)
    trainer.pl_mean.fill_(0.3)  # a running mean that is not the batch's
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    ours = our_path_length_grads(trainer, z, noise)
    G = trainer.G.requires_grad_(True)
    official, stored_mean = official_path_length_grads(G, z, noise, torch.tensor(0.3), trainer.cfg.pl_weight,
                                                       trainer.cfg.g_reg_interval, detach_target=detach)
    assert trainer.pl_mean.item() == pytest.approx(stored_mean.item(), rel=1e-6)
    assert ours.keys() == official.keys()
    for name, grad in official.items():
        assert torch.allclose(ours[name], grad, rtol=1e-5, atol=1e-9), name  # the same float32 ops
    # The two forms really differ (issue 17: by ~1%), so the test tells them apart.
    other, _ = official_path_length_grads(G, z, noise, torch.tensor(0.3), trainer.cfg.pl_weight,
                                          trainer.cfg.g_reg_interval, detach_target=not detach)
    assert max((other[k] - ours[k]).abs().max() / ours[k].abs().max().clamp_min(1e-12) for k in ours) > 1e-3


def test_after_two_steps_every_parameter_has_the_same_adam_step_count():
    """Step 0 runs G main, G reg, D main, D reg; step 1 the main phases: 3 Adam steps for every tensor of G
    and of D, including those no penalty reaches (toRGB biases, D's output bias), as `loss + 0 * output`
    gives them a zero gradient in the official code. (The path-length test above checks that those
    gradients are the official zeros: its transcription back-propagates the `0 * img` term.)"""
    trainer = tiny_trainer()
    real = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for step in range(2):
        trainer.step(real, step)
    for net, opt in ((trainer.G, trainer.opt_G), (trainer.D, trainer.opt_D)):
        steps = {name: int(opt.state[p]["step"]) if p in opt.state else 0 for name, p in net.named_parameters()}
        assert set(steps.values()) == {3}, {k: v for k, v in steps.items() if v != 3}
    assert "b16.torgb.bias" in dict(trainer.G.synthesis.named_parameters()) and "b4.out.bias" in dict(
        trainer.D.named_parameters())  # the tensors issue 17 found behind


def test_w_avg_moves_in_every_training_mapping_pass_but_not_the_mixing_pass():
    trainer = tiny_trainer(mixing_prob=1.0)  # every pass is followed by a style-mixing pass
    mapping, moved, before = trainer.G.mapping, [], []
    mapping.register_forward_pre_hook(lambda module, args: before.append(module.w_avg.clone()))
    mapping.register_forward_hook(lambda module, args, out: moved.append(not torch.equal(module.w_avg, before[-1])))
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    trainer.step(real, 0)  # G main, G reg, D main (D reg runs no mapping)
    assert moved == [True, False] * 3
    moved.clear()
    trainer.step(real, 1)  # G main, D main
    assert moved == [True, False] * 2


@pytest.mark.parametrize("pl_weight, gamma", [(2.0, 1.0), (0.0, 1.0), (2.0, 0.0)])
def test_the_lazy_regularisation_correction_follows_the_interval_even_with_a_zero_weight(pl_weight, gamma):
    """training_loop.py: mb_ratio = reg_interval / (reg_interval + 1) scales lr and betas whenever an interval
    is set, whatever the penalty's weight (--cfg cifar: pl_weight 0, G still at lr * 4/5)."""
    trainer = tiny_trainer(pl_weight=pl_weight, gamma=gamma, lr=0.0025)
    for opt, interval in ((trainer.opt_G, 4), (trainer.opt_D, 16)):
        ratio = interval / (interval + 1)
        group = opt.param_groups[0]
        assert group["lr"] == pytest.approx(0.0025 * ratio, rel=1e-12)
        assert group["betas"] == pytest.approx((0.0, 0.99 ** ratio), rel=1e-12)
