"""One StyleGAN2 training step (Karras et al. 2020), as in the official StyleGAN2-ADA loop.

Each step runs up to four phases, each its own optimizer step:
1. Gmain: non-saturating logistic loss on fakes (with style mixing), through D(augment(fake)).
2. Greg (every g_reg_interval steps): path-length penalty on half a batch, weighted by interval.
3. Dmain: logistic loss on reals and fakes, both augmented.
4. Dreg (every d_reg_interval steps): R1 penalty on augmented reals, gamma / 2 x interval.
Lazy regularisation runs the penalties less often; to keep the same effective optimisation the
Adam learning rate and betas are corrected by ratio = interval / (interval + 1): lr * ratio,
beta ** ratio (paper, appendix B). Gradients are averaged across processes at the end of every
phase (see gan/training/distributed.py).
"""
from __future__ import annotations

import torch
from torch import nn

from . import losses
from .augment import AdaptiveAugment
from .config import TrainConfig
from .trainer import Trainer

PL_BATCH_SHRINK = 2   # the path-length pass uses half the batch (official pl_batch_shrink)
PL_DECAY = 0.01       # tracking rate of the path-length mean


def lazy_adam(params, lr: float, reg_interval: int | None, betas=(0.0, 0.99)) -> torch.optim.Adam:
    """Adam with the lazy-regularisation correction (ratio = interval / (interval + 1))."""
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=tuple(b ** ratio for b in betas), eps=1e-8)


class StyleGAN2Trainer(Trainer):
    def __init__(self, cfg: TrainConfig, G: nn.Module, D: nn.Module, augment: AdaptiveAugment, dist, amp):
        super().__init__(cfg, G, D, augment, dist, amp)
        self.do_pl = cfg.pl_weight > 0
        self.do_r1 = cfg.gamma > 0
        self.opt_G = lazy_adam(G.parameters(), cfg.lr, cfg.g_reg_interval if self.do_pl else None)
        self.opt_D = lazy_adam(D.parameters(), cfg.lr, cfg.d_reg_interval if self.do_r1 else None)
        self.pl_mean = torch.zeros([], device=self.device)
        # torch.compile cannot differentiate twice: only the main passes use the compiled modules.
        self.synthesis_main = torch.compile(G.synthesis) if cfg.compile else G.synthesis
        self.D_main = torch.compile(D) if cfg.compile else D

    # ---- the interface the training loop uses (the rest is Trainer's) ----------------------------
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        return {"pl_mean": self.pl_mean}

    def load_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.pl_mean.copy_(tensors["pl_mean"])

    def step(self, real: torch.Tensor, step_idx: int) -> dict[str, torch.Tensor]:
        """One step on this process's reals [n, C, R, R] in [-1, 1]. Returns detached loss scalars."""
        cfg, G, D = self.cfg, self.G, self.D
        n = real.shape[0]
        stats = {}

        # 1. Gmain: make D call fakes real.
        with self.phase(G, self.opt_G):
            ws = self.mapping(self.latents(n))  # the mapping runs in fp32 (it tracks w_avg)
            with self.amp():
                fake = self.synthesis_main(ws, noise_mode="random")
                logits = self.D_main(self.augment(fake)).float()
            loss = losses.g_nonsaturating_loss(logits)
            loss.backward()
            stats["loss_G"] = loss.detach()

        # 2. Greg: path-length regularisation, lazily.
        if self.do_pl and step_idx % cfg.g_reg_interval == 0:
            with self.phase(G, self.opt_G):
                ws = self.mapping(self.latents(max(1, n // PL_BATCH_SHRINK)))
                with self.amp():
                    img = G.synthesis(ws, noise_mode="random")
                lengths = losses.path_lengths(img.float(), ws)
                self.pl_mean.copy_(losses.updated_pl_mean(self.pl_mean, self.dist.all_reduce_mean(lengths.mean()),
                                                          PL_DECAY))
                penalty = losses.path_length_penalty(lengths, self.pl_mean)
                (penalty.mean() * cfg.pl_weight * cfg.g_reg_interval).backward()
                stats["pl_penalty"] = penalty.mean().detach()

        # 3. Dmain: tell reals from fakes.
        with self.phase(D, self.opt_D):
            with torch.no_grad():
                ws = self.mapping(self.latents(n), update_emas=True)
                with self.amp():
                    fake = G.synthesis(ws, noise_mode="random").float()
            with self.amp():
                fake_logits = self.D_main(self.augment(fake)).float()
                real_logits = self.D_main(self.augment(real)).float()
            loss = losses.d_logistic_loss(real_logits, fake_logits)
            loss.backward()
            self.augment.accumulate(real_logits)
            stats["loss_D"] = loss.detach()
            stats["D_real"] = real_logits.mean().detach()
            stats["D_fake"] = fake_logits.mean().detach()

        # 4. Dreg: R1 on reals, lazily.
        if self.do_r1 and step_idx % cfg.d_reg_interval == 0:
            with self.phase(D, self.opt_D):
                real_req = real.detach().requires_grad_(True)
                with self.amp():
                    logits = D(self.augment(real_req)).float()
                penalty = losses.r1_penalty(logits, real_req)
                (penalty.mean() * (cfg.gamma / 2) * cfg.d_reg_interval).backward()
                stats["r1_penalty"] = penalty.mean().detach()

        # 5. Augmentation strength (ADA heuristic), every few steps.
        if (step_idx + 1) % self.augment.interval == 0:
            self.augment.update(cfg.batch * self.augment.interval, self.dist.all_reduce_sum)
        return stats

    # ---- helpers ----------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        """z -> ws with style-mixing regularisation: with probability mixing_prob, the ws from a random
        cutoff layer on come from a second latent (one cutoff for the whole batch, as the official code)."""
        ws = self.G.mapping(z, update_emas=update_emas)
        if self.cfg.mixing_prob > 0:
            cutoff = int(torch.randint(1, ws.shape[1], [], device=self.device)) if ws.shape[1] > 1 else 1
            if float(torch.rand([], device=self.device)) >= self.cfg.mixing_prob:
                cutoff = ws.shape[1]
            if cutoff < ws.shape[1]:
                ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), update_emas=False)[:, cutoff:]
        return ws
