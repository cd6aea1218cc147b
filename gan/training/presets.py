"""StyleGAN2's base configurations (`--cfg`), with the numbers of NVIDIA's official trainer.

People compare our runs with the official StyleGAN2-ADA trainer, so `--cfg NAME` means what its
`--cfg NAME` means. The numbers are those of `cfg_specs` in stylegan2-ada-pytorch's train.py, and
'auto' follows its formulas there:

    batch  = max(min(gpus * min(4096 // res, 32), 64), gpus)     (keeps GPU memory in check)
    mbstd  = min(batch // gpus, 4)                                (group size per GPU)
    fmaps  = 1 if res >= 512 else 0.5                             (channel_base = fmaps * 32768)
    lr     = 0.002 if res >= 1024 else 0.0025
    gamma  = 0.0002 * res ** 2 / batch
    ema    = batch * 10 / 32  (kimg);  ramp-up 0.05;  mapping 2 layers

As there, `--batch` replaces only the batch: gamma, the EMA half-life and the minibatch-stddev
group still come from the configuration's own batch; `--gamma` and the other flags replace just
their value. Where we differ on purpose:
- 'auto' keeps this project's smaller networks below 256 px (channel_max 2 x res, z_dim 2 x that,
  see config.py) so that CPU runs stay possible; the named configurations use the official 512.
- The official trainer reaches a configuration's batch on fewer GPUs than it was tuned for
  (`ref_gpus`) by accumulating gradients; we process the global batch in one pass per phase.
- The official 'cifar' D has no residual skips ('orig' architecture); our D is always residual,
  so `--cfg cifar` trains a residual D (with every number of the official cifar configuration).
- The official trainer runs the 4 highest resolutions in fp16 (num_fp16_res 4); we train in fp32,
  or bf16 with --precision bf16. conv_clamp 256 is the same.
- --kimg keeps its short default (200) instead of the official 25000.
"""
from __future__ import annotations

from dataclasses import dataclass

FMAPS_UNIT = 32768  # channel_base = fmaps * 32768, as the official train.py


@dataclass(frozen=True)
class Preset:
    batch: int               # global minibatch
    mbstd_group: int         # D's minibatch-stddev group size
    fmaps: float             # channel_base = fmaps * FMAPS_UNIT
    lr: float                # Adam learning rate (G and D)
    gamma: float             # R1 weight
    ema_kimg: float          # G EMA half-life
    ema_rampup: float        # EMA ramp-up; 0 = off (the official None)
    mapping_layers: int
    pl_weight: float = 2.0   # path-length weight (cifar: off)
    mixing_prob: float = 0.9  # style-mixing probability (cifar: off)
    official_sizes: bool = True  # channel_max 512 and z_dim = w_dim = 512, as the official networks

    @property
    def channel_base(self) -> int:
        return int(self.fmaps * FMAPS_UNIT)


# stylegan2-ada-pytorch, train.py, cfg_specs (kimg and ref_gpus are not used here, see the module doc).
PRESETS = {
    "stylegan2": Preset(batch=32, mbstd_group=4, fmaps=1, lr=0.002, gamma=10, ema_kimg=10, ema_rampup=0,
                        mapping_layers=8),
    "paper256": Preset(batch=64, mbstd_group=8, fmaps=0.5, lr=0.0025, gamma=1, ema_kimg=20, ema_rampup=0,
                       mapping_layers=8),
    "paper512": Preset(batch=64, mbstd_group=8, fmaps=1, lr=0.0025, gamma=0.5, ema_kimg=20, ema_rampup=0,
                       mapping_layers=8),
    "paper1024": Preset(batch=32, mbstd_group=4, fmaps=1, lr=0.002, gamma=2, ema_kimg=10, ema_rampup=0,
                        mapping_layers=8),
    "cifar": Preset(batch=64, mbstd_group=32, fmaps=1, lr=0.0025, gamma=0.01, ema_kimg=500, ema_rampup=0.05,
                    mapping_layers=2, pl_weight=0.0, mixing_prob=0.0),
}
CFG_NAMES = ("auto",) + tuple(PRESETS)


def auto_preset(resolution: int, gpus: int = 1) -> Preset:
    """The official 'auto' configuration for this resolution and GPU (process) count (module doc)."""
    batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    return Preset(batch=batch, mbstd_group=min(batch // gpus, 4), fmaps=1 if resolution >= 512 else 0.5,
                  lr=0.002 if resolution >= 1024 else 0.0025, gamma=0.0002 * resolution ** 2 / batch,
                  ema_kimg=batch * 10 / 32, ema_rampup=0.05, mapping_layers=2, official_sizes=False)


def preset(name: str, resolution: int, gpus: int = 1) -> Preset:
    return auto_preset(resolution, gpus) if name == "auto" else PRESETS[name]
