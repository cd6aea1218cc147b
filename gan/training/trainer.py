"""What the training loop needs from an architecture's trainer, and the parts both trainers share.

The loop (loop.py) calls, per step: `begin_step(cur_nimg)` (schedule changes), `batch_size(cur_nimg)`,
`real_images(uint8 batch)`, `step(real, step_idx)`; and for snapshots `optimizers()`,
`extra_tensors()` / `load_extra_tensors()`. StyleGAN2Trainer and PGGANTrainer subclass `Trainer`
and override what differs (PGGAN's schedule, per-stage reals and batch sizes).
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.layers import split_group_pair, stddev_group_pair
from .augment import AdaptiveAugment
from .config import TrainConfig


class Trainer:
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer

    def __init__(self, cfg: TrainConfig, G: nn.Module, D: nn.Module, augment: AdaptiveAugment, dist, amp):
        self.cfg, self.G, self.D, self.augment, self.dist, self.amp = cfg, G, D, augment, dist, amp
        self.device = dist.device

    # ---- the interface the training loop uses ---------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers whose state a snapshot keeps, by the name their tensors are stored under."""
        return {"opt_G": self.opt_G, "opt_D": self.opt_D}

    def extra_tensors(self) -> dict[str, torch.Tensor]:
        """Loop state beyond weights and optimizers that a snapshot must keep."""
        return {}

    def load_extra_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def batch_size(self, cur_nimg: int) -> int:
        return self.cfg.batch

    def begin_step(self, cur_nimg: int) -> dict | None:
        """Apply the schedule for `cur_nimg`; an event dict for the log when something changed."""
        return None

    def real_images(self, real_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [n, C, R, R] from the dataset -> float [-1, 1] on the training device."""
        return real_uint8.to(self.device, torch.float32) / 127.5 - 1

    def step(self, real: torch.Tensor, step_idx: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # ---- shared helpers ---------------------------------------------------------------------------
    def latents(self, n: int) -> torch.Tensor:
        return torch.randn([n, self.G.z_dim], device=self.device)

    def scores_of_two(self, D, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(D(a), D(b)) from one pass over both batches where D's minibatch-stddev groups allow it
        (layers.stddev_group_pair): the same scores, with fewer and larger convolutions (a 64-channel
        32 px D forward and backward ~5% faster on a 2-core CPU). D: self.D or its compiled form."""
        group = self.D.cfg.mbstd_group_size
        both = stddev_group_pair(a, b, group)
        if both is None:
            return D(a), D(b)
        return split_group_pair(D(both), group)

    def phase(self, module: nn.Module, opt: torch.optim.Optimizer) -> "Phase":
        return Phase(module, opt, self.dist)


class Phase:
    """Train only `module`: grads on for it alone, zeroed before, averaged across processes and
    applied with `opt` after."""

    def __init__(self, module: nn.Module, opt: torch.optim.Optimizer, dist):
        self.module, self.opt, self.dist = module, opt, dist

    def __enter__(self):
        self.module.requires_grad_(True)
        self.opt.zero_grad(set_to_none=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.dist.sync_grads(self.module)
            self.opt.step()
        self.module.requires_grad_(False)
        return False
