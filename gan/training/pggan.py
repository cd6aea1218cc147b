"""PGGAN training (Karras et al. 2018): the growth schedule and one WGAN-GP training step.

Schedule: training starts at 4x4 and grows to the final resolution. Every new resolution
first fades in (alpha 0 -> 1 over `phase_kimg` thousand images: G blends its new block's
output with the upsampled previous image, D blends the new block with the downsampled input)
and then stabilises for another `phase_kimg`; the final resolution trains until the end. The
minibatch size can differ per resolution (`--pggan-batch`), and Adam's state is reset whenever
the phase changes, as in the official code (`reset_opt_for_new_lod`).

Reals are shown at the current resolution: average-pooled from the dataset's resolution and,
during a fade-in, blended with their 2x down-then-up-sampled version by the same alpha, so that
reals and fakes fade alike.

Step: D first (WGAN-GP, lambda 10, with the drift term epsilon * D(x)^2 that keeps the critic's
output near 0), then G (-D(G(z))); Adam lr 0.001, betas (0, 0.99).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import losses
from .augment import AdaptiveAugment
from .config import TrainConfig, parse_pggan_batch
from .trainer import Trainer


@dataclass(frozen=True)
class Stage:
    phase: int        # 0 = 4x4 stabilise, then fade-in / stabilise alternately: 1 = 8x8 fade-in, 2 = 8x8 stabilise, ...
    depth: int        # 0 = 4x4
    alpha: float      # fade-in progress of the newest block, 1 when stable
    resolution: int

    @property
    def fading(self) -> bool:
        return self.phase % 2 == 1

    def describe(self) -> str:
        return f"{self.resolution}x{self.resolution} " + (f"fade-in {self.alpha:.2f}" if self.fading else "stable")


def stage_at(cur_nimg: int, phase_kimg: float, resolutions: list[int]) -> Stage:
    """Where the growth schedule is after `cur_nimg` images."""
    last = 2 * (len(resolutions) - 1)
    phase_nimg = phase_kimg * 1000.0
    phase = min(int(cur_nimg // phase_nimg), last)
    depth = (phase + 1) // 2
    alpha = 1.0
    if phase % 2 == 1:
        alpha = min(1.0, max(0.0, (cur_nimg - phase * phase_nimg) / phase_nimg))
    return Stage(phase=phase, depth=depth, alpha=alpha, resolution=resolutions[depth])


def reals_at_stage(real: torch.Tensor, stage: Stage) -> torch.Tensor:
    """Full-resolution reals [N, C, R, R] -> [N, C, r, r] at the stage's resolution, faded like G's output."""
    factor = real.shape[-1] // stage.resolution
    x = F.avg_pool2d(real, factor) if factor > 1 else real
    if stage.fading and stage.alpha < 1:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, stage.alpha)
    return x


class PGGANTrainer(Trainer):
    def __init__(self, cfg: TrainConfig, G: nn.Module, D: nn.Module, augment: AdaptiveAugment, dist, amp):
        super().__init__(cfg, G, D, augment, dist, amp)
        self.batches = parse_pggan_batch(cfg.pggan_batch)
        self.resolutions = list(G.resolutions)
        self.opt_G, self.opt_D = self.new_optimizers()
        self.stage: Stage | None = None
        self.phase_index = -1  # the phase Adam's state belongs to (-1: none yet)
        self.G_main = torch.compile(G) if cfg.compile else G
        self.D_main = torch.compile(D) if cfg.compile else D

    def new_optimizers(self):
        kw = dict(lr=self.cfg.lr, betas=(0.0, 0.99), eps=1e-8)
        return torch.optim.Adam(self.G.parameters(), **kw), torch.optim.Adam(self.D.parameters(), **kw)

    # ---- the interface the training loop uses (the rest is Trainer's) ----------------------------
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        return {"phase_index": torch.tensor(self.phase_index, dtype=torch.int64)}

    def load_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.phase_index = int(tensors["phase_index"])

    def batch_size(self, cur_nimg: int) -> int:
        return self.batches[stage_at(cur_nimg, self.cfg.phase_kimg, self.resolutions).resolution]

    def begin_step(self, cur_nimg: int) -> dict | None:
        """Move G and D to the stage for `cur_nimg`. Returns an event when the phase changed
        ({'finished_depth': d} when a resolution was completed), else None."""
        stage = stage_at(cur_nimg, self.cfg.phase_kimg, self.resolutions)
        self.G.set_stage(stage.depth, stage.alpha)
        self.D.set_stage(stage.depth, stage.alpha)
        self.stage = stage
        if stage.phase == self.phase_index:
            return None
        event = {"phase": stage.phase, "stage": stage.describe()}
        if self.phase_index >= 0:
            self.opt_G, self.opt_D = self.new_optimizers()  # fresh Adam moments for each phase
            prev_depth = (self.phase_index + 1) // 2
            if stage.depth > prev_depth:
                event["finished_depth"] = prev_depth
        self.phase_index = stage.phase
        return event

    def real_images(self, real_uint8: torch.Tensor) -> torch.Tensor:
        return reals_at_stage(super().real_images(real_uint8), self.stage)

    def step(self, real: torch.Tensor, step_idx: int) -> dict[str, torch.Tensor]:
        """One step on this process's reals [n, C, r, r] (already at the stage's resolution)."""
        cfg, G, D = self.cfg, self.G, self.D
        n = real.shape[0]
        stats = {}

        # 1. D: WGAN-GP critic loss with the drift term.
        with self.phase(D, self.opt_D):
            with torch.no_grad(), self.amp():
                fake = G(self.latents(n)).float()
            with self.amp():
                real_scores, fake_scores = (t.float() for t in self.scores_of_two(
                    self.D_main, self.augment(real), self.augment(fake)))
            mixed = losses.interpolate_images(real, fake, torch.rand([n, 1, 1, 1], device=self.device))
            with self.amp():
                mixed_scores = D(self.augment(mixed)).float()
            gp = losses.gradient_penalty(mixed_scores, mixed)
            wgan = losses.wgan_d_loss(real_scores, fake_scores)
            loss = wgan + cfg.gp_lambda * gp.mean() + cfg.drift * losses.drift_penalty(real_scores).mean()
            loss.backward()
            self.augment.accumulate(real_scores)
            stats.update(loss_D=loss.detach(), wgan_distance=-wgan.detach(), gp=gp.mean().detach(),
                         D_real=real_scores.mean().detach(), D_fake=fake_scores.mean().detach())

        # 2. G: raise the critic's score of fakes.
        with self.phase(G, self.opt_G):
            with self.amp():
                scores = self.D_main(self.augment(self.G_main(self.latents(n)))).float()
            loss = losses.wgan_g_loss(scores)
            loss.backward()
            stats["loss_G"] = loss.detach()

        # 3. Augmentation strength (only moves with --augment ada).
        if (step_idx + 1) % self.augment.interval == 0:
            self.augment.update(n * self.dist.world * self.augment.interval, self.dist.all_reduce_sum)
        return stats
