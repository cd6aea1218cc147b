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

Three details follow the official code (training/loss.py, networks.py) where a paper reading
might differ, because they change the numbers:
- The path-length target is the mean updated with this batch, and it stays in the graph: the
  penalty's gradient includes its dependence on the batch's own lengths (--pl-detach-mean: not).
- In the regularisation phases every parameter gets a gradient, zero where the penalty does not
  reach (e.g. toRGB biases, D's output bias), so that Adam advances its step count and decays its
  second moment for all of them, as in the main phases. The official code back-propagates
  `penalty + 0 * output` for this; we fill in the zeros (`zero_missing_grads`), the same numbers
  without a second backward pass through the network.
- w_avg (the mean w for truncation) moves in every mapping pass in training: G main, G reg, D main
  (not in the second, style-mixing pass).
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


def zero_missing_grads(module: nn.Module) -> None:
    """A zero gradient for each parameter the backward pass did not reach (see the module doc)."""
    for p in module.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)


class StyleGAN2Trainer(Trainer):
    def __init__(self, cfg: TrainConfig, G: nn.Module, D: nn.Module, augment: AdaptiveAugment, dist, amp):
        super().__init__(cfg, G, D, augment, dist, amp)
        self.do_pl = cfg.pl_weight > 0
        self.do_r1 = cfg.gamma > 0
        # As the official loop: the correction follows the interval even when the penalty's weight is 0
        # (--cfg cifar has pl_weight 0; its G still trains at lr * 4/5, betas ** 4/5).
        self.opt_G = lazy_adam(G.parameters(), cfg.lr, cfg.g_reg_interval)
        self.opt_D = lazy_adam(D.parameters(), cfg.lr, cfg.d_reg_interval)
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
                    img = G.synthesis(ws, noise_mode="random").float()
                stats["pl_penalty"] = self.path_length_backward(img, ws).mean().detach()

        # 3. Dmain: tell reals from fakes.
        with self.phase(D, self.opt_D):
            with torch.no_grad():
                ws = self.mapping(self.latents(n))
                with self.amp():
                    fake = G.synthesis(ws, noise_mode="random").float()
            with self.amp():
                fake_logits, real_logits = (t.float() for t in self.scores_of_two(
                    self.D_main, self.augment(fake), self.augment(real)))
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
                zero_missing_grads(D)
                stats["r1_penalty"] = penalty.mean().detach()

        # 5. Augmentation strength (ADA heuristic), every few steps.
        if (step_idx + 1) % self.augment.interval == 0:
            self.augment.update(cfg.batch * self.augment.interval, self.dist.all_reduce_sum)
        return stats

    # ---- helpers ----------------------------------------------------------------------------------
    def path_length_backward(self, img: torch.Tensor, ws: torch.Tensor,
                             noise: torch.Tensor | None = None) -> torch.Tensor:
        """The G reg phase's gradients: back-propagates the weighted path-length penalty and returns it,
        (||J_w^T y|| - a)^2 per sample [N], for img [N, C, H, W] (fp32) made from ws [N, num_ws, w_dim].
        Updates the running mean pl_mean.

        a = pl_mean lerped towards this batch's mean length, undetached (the official expression) unless
        --pl-detach-mean. Across processes the mean's value is the global batch's, so that every process
        tracks the same pl_mean; its gradient is this process's share, as the official per-GPU mean's.
        """
        lengths = losses.path_lengths(img, ws, noise)
        batch_mean = lengths.mean()
        if self.dist.world > 1:
            batch_mean = batch_mean + (self.dist.all_reduce_mean(batch_mean.detach()) - batch_mean.detach())
        target = losses.updated_pl_mean(self.pl_mean, batch_mean, PL_DECAY)
        self.pl_mean.copy_(target.detach())
        penalty = losses.path_length_penalty(lengths, target.detach() if self.cfg.pl_detach_mean else target)
        (penalty.mean() * self.cfg.pl_weight * self.cfg.g_reg_interval).backward()
        zero_missing_grads(self.G)
        return penalty

    def mapping(self, z: torch.Tensor, update_emas: bool = True) -> torch.Tensor:
        """z -> ws with style-mixing regularisation: with probability mixing_prob, the ws from a random
        cutoff layer on come from a second latent (one cutoff for the whole batch, as the official code).
        The first pass tracks w_avg (every training pass does, officially), the mixing pass does not."""
        ws = self.G.mapping(z, update_emas=update_emas)
        if self.cfg.mixing_prob > 0:
            cutoff = int(torch.randint(1, ws.shape[1], [], device=self.device)) if ws.shape[1] > 1 else 1
            if float(torch.rand([], device=self.device)) >= self.cfg.mixing_prob:
                cutoff = ws.shape[1]
            if cutoff < ws.shape[1]:
                ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), update_emas=False)[:, cutoff:]
        return ws
