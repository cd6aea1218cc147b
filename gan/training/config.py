"""Training options: one frozen dataclass, validated in one place, stored in the run folder.

`TrainConfig` holds everything a run needs. Options that default to "auto" (0, -1, "auto")
are filled in by `resolve()` from the architecture, the StyleGAN2 base configuration (`--cfg`,
presets.py: the official trainer's numbers), the resolution and the process count, and the
resolved config is what `config.json` records, so a resumed run uses exactly the same values.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from .presets import CFG_NAMES, preset
from ..io.json_dataclass import from_json_dict
from ..models.config import ARCHS, ConfigError, ModelConfig, is_power_of_two
from ..seeds import parse_seeds

AUGMENT_MODES = ("none", "fixed", "ada")    # augment.py's; here, so that the options import no torch
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
GREYSCALE_BUILTINS = ("digits", "fashion-mnist")
BUILTIN_DATA = GREYSCALE_BUILTINS + ("emoji",)
# Fields that define what is being trained: a resume whose values differ is refused.
IDENTITY_FIELDS = ("arch", "cfg", "data", "resolution", "channels", "xflip", "max_images", "channel_base",
                   "channel_max", "z_dim", "w_dim", "mapping_layers", "mbstd_group")

# The value that means "auto" for each option resolve() fills in. (cfg "auto" is a configuration of
# its own, but a resume that does not name one keeps the stored run's.)
AUTO_VALUES = {"cfg": "auto", "channels": 0, "channel_base": 0, "channel_max": 0, "z_dim": 0, "w_dim": 0,
               "mapping_layers": 0, "mbstd_group": 0, "tick_kimg": 0.0, "batch": 0, "lr": 0.0, "ema_kimg": -1.0,
               "ema_rampup": -1.0, "gamma": -1.0, "pl_weight": -1.0, "mixing_prob": -1.0, "phase_kimg": 0.0,
               "pggan_batch": "", "augment": "auto", "augment_p": -1.0}
PGGAN_BATCH = 32     # PGGAN's auto --batch at the final resolution


class TrainConfigError(ConfigError):
    """A training option that cannot work (one-line message naming the option and the fix)."""


@dataclass(frozen=True)
class TrainConfig:
    # ---- what to train -----------------------------------------------------------------------
    arch: str = "stylegan2"          # "stylegan2" | "pggan"
    cfg: str = "auto"                # StyleGAN2 base configuration (presets.py): auto | stylegan2 | paper256 | ...
    data: str = ""                   # folder | .zip | fashion-mnist | emoji | digits
    resolution: int = 0              # training resolution (power of two, 8..2048)
    channels: int = 0                # 1 | 3; 0 = auto (1 for digits / fashion-mnist, else 3)
    xflip: bool = False              # add left-right mirrored copies of the data
    max_images: int | None = None    # use only the first N images
    # ---- model size (0 = auto: from --cfg; 'auto' is CPU-friendly below 256 px) ----------------
    channel_base: int = 0            # channels at resolution r: min(channel_base / r, channel_max)
    channel_max: int = 0
    z_dim: int = 0
    w_dim: int = 0                   # StyleGAN2 only (PGGAN uses z_dim)
    mapping_layers: int = 0          # StyleGAN2 only; auto = the --cfg's (auto 2, paper configs 8)
    mbstd_group: int = 0             # D's minibatch-stddev group size; 0 = the --cfg's (PGGAN 4)
    # ---- length and reporting ----------------------------------------------------------------
    kimg: float = 200.0              # train until this many thousand real images were shown
    tick_kimg: float = 0.0           # log / sample grid every this many kimg; 0 = auto (kimg / 10, <= 4)
    snap: int = 5                    # training snapshot every this many ticks (and at the end)
    keep_snapshots: int = 2          # snapshot files kept (the newest ones)
    grid_seeds: str = "0-35"         # the fixed seeds of the sample grids
    seed: int = 0                    # initialisation, latents, data order
    # ---- optimisation ------------------------------------------------------------------------
    batch: int = 0                   # global batch (all processes together), 0 = the --cfg's (PGGAN 32, at the
                                     # final resolution)
    lr: float = 0.0                  # 0 = the --cfg's (auto: 0.0025, 0.002 from 1024 px; PGGAN 0.001)
    ema_kimg: float = -1.0           # G EMA half-life in kimg; -1 = the --cfg's (auto: its batch * 10 / 32)
    ema_rampup: float = -1.0         # EMA half-life at most this fraction of the images seen so far; 0 = off,
                                     # -1 = the --cfg's (auto 0.05, paper configs off)
    # StyleGAN2
    gamma: float = -1.0              # R1 weight; -1 = the --cfg's (auto: 0.0002 * resolution^2 / its batch)
    pl_weight: float = -1.0          # path-length regularisation weight; 0 = off; -1 = the --cfg's (2, cifar 0)
    pl_detach_mean: bool = False     # treat the path-length target as a constant (the official code does not)
    mixing_prob: float = -1.0        # style-mixing probability; 0 = off; -1 = the --cfg's (0.9, cifar 0)
    g_reg_interval: int = 4          # lazy regularisation: path length every N steps
    d_reg_interval: int = 16         # lazy regularisation: R1 every N steps
    # PGGAN
    phase_kimg: float = 0.0          # kimg per fade-in and per stabilise phase; 0 = auto (fits all stages into kimg)
    pggan_batch: str = ""            # per-resolution batch "4:64,8:64,16:32"; "" = auto (2x batch below the final two)
    gp_lambda: float = 10.0          # WGAN-GP weight
    drift: float = 0.001             # drift term epsilon
    # ---- augmentation ------------------------------------------------------------------------
    augment: str = "auto"            # none | fixed | ada | auto (StyleGAN2: ada, as the official trainer; PGGAN: none)
    augment_p: float = -1.0          # initial (ada) or constant (fixed) probability; -1 = auto (ada 0, fixed 1)
    ada_target: float = 0.6          # ADA target for E[sign(D(real))]
    ada_kimg: float = 500.0          # ADA speed: p can go 0 -> 1 in this many kimg (official 500)
    # ---- where and how -----------------------------------------------------------------------
    out: str = ""                    # run folder
    resume: str = ""                 # run folder or snapshot to resume from ("" = --out if it holds one)
    device: str = "auto"             # auto | cpu | cuda
    precision: str = "fp32"          # fp32 | bf16 (autocast)
    channels_last: bool | None = None  # None = auto (on: see uses_channels_last)
    compile: bool = False            # torch.compile the non-regularisation passes
    progress: bool = True            # tqdm progress bar on stderr

    # ---- validation --------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        def bad(msg: str):
            raise TrainConfigError(msg)

        if self.arch not in ARCHS:
            bad(f"unknown --arch {self.arch!r}: use one of {', '.join(ARCHS)}")
        if self.cfg not in CFG_NAMES:
            bad(f"unknown --cfg {self.cfg!r}: use one of {', '.join(CFG_NAMES)}")
        if self.arch == "pggan" and self.cfg != "auto":
            bad(f"--cfg {self.cfg} is a StyleGAN2 configuration: leave --cfg out for PGGAN")
        if not self.data:
            bad("no training data: give --data (a folder, a .zip, or fashion-mnist | emoji | digits)")
        if self.resolution == 0:
            bad("no --resolution: give the training resolution, a power of two from 8 to 2048 (e.g. 32)")
        if not is_power_of_two(self.resolution) or not 8 <= self.resolution <= 2048:
            bad(f"--resolution {self.resolution} is not a power of two from 8 to 2048: use e.g. 16, 32, 64 or 256")
        if self.channels not in (0, 1, 3):
            bad(f"--channels must be 1 (greyscale) or 3 (RGB), got {self.channels}")
        if self.max_images is not None and self.max_images < 1:
            bad(f"--max-images must be positive, got {self.max_images}")
        for name in ("channel_base", "channel_max", "z_dim", "w_dim", "mapping_layers", "mbstd_group", "batch"):
            if getattr(self, name) < 0:
                bad(f"--{name.replace('_', '-')} must be >= 0 (0 = auto), got {getattr(self, name)}")
        if not self.kimg > 0 or not math.isfinite(self.kimg):
            bad(f"--kimg must be a positive number, got {self.kimg}")
        if self.tick_kimg < 0:
            bad(f"--tick-kimg must be >= 0 (0 = auto), got {self.tick_kimg}")
        if self.snap < 1 or self.keep_snapshots < 1:
            bad("--snap and --keep-snapshots must be >= 1")
        try:
            parse_seeds(self.grid_seeds)
        except ValueError as e:
            bad(f"--grid-seeds: {e}")
        if self.lr < 0 or self.gp_lambda < 0 or self.drift < 0:
            bad("--lr, --gp-lambda and --drift must be >= 0")
        for name in ("ema_kimg", "ema_rampup", "gamma", "pl_weight"):
            if getattr(self, name) < 0 and getattr(self, name) != -1:
                bad(f"--{name.replace('_', '-')} must be >= 0 (or -1 = from --cfg), got {getattr(self, name)}")
        if not (0 <= self.mixing_prob <= 1 or self.mixing_prob == -1):
            bad(f"--mixing-prob must be in [0, 1] (or -1 = from --cfg), got {self.mixing_prob}")
        if self.g_reg_interval < 1 or self.d_reg_interval < 1:
            bad("--g-reg-interval and --d-reg-interval must be >= 1")
        if self.phase_kimg < 0:
            bad(f"--phase-kimg must be >= 0 (0 = auto), got {self.phase_kimg}")
        parse_pggan_batch(self.pggan_batch)
        if self.augment not in AUGMENT_MODES + ("auto",):
            bad(f"unknown --augment {self.augment!r}: use one of auto, {', '.join(AUGMENT_MODES)}")
        if not (0 <= self.augment_p <= 1 or self.augment_p == -1):
            bad(f"--augment-p must be in [0, 1] (or -1 = auto), got {self.augment_p}")
        if not 0 < self.ada_target < 1 or self.ada_kimg <= 0:
            bad("--ada-target must be in (0, 1) and --ada-kimg positive")
        if not self.out:
            bad("no run folder: give --out DIR")
        if self.device not in DEVICES:
            bad(f"unknown --device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            bad(f"unknown --precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        self.model_config().validate()  # channel sizes that give 0 channels, ...
        return self

    # ---- auto values -------------------------------------------------------------------------
    def resolve(self, gpus: int = 1) -> "TrainConfig":
        """A copy with every auto option filled in; `gpus` (the process count) matters to --cfg auto."""
        r, sg2 = self.resolution, self.arch == "stylegan2"
        spec = preset(self.cfg, r, gpus) if sg2 and self.cfg in CFG_NAMES else None
        if spec is not None and spec.official_sizes:
            channel_max, z_dim = self.channel_max or 512, self.z_dim or 512
        else:  # this project's CPU-sized networks below 256 px: 16 -> 32 channels, 64 -> 128, 256 -> 512
            channel_max = self.channel_max or min(512, max(32, 2 * r))
            z_dim = self.z_dim or min(512, max(64, 2 * channel_max))
        batch = self.batch or (spec.batch if spec else PGGAN_BATCH)
        auto_base = spec.channel_base if spec else ModelConfig(arch=self.arch, img_resolution=r).resolved_channel_base

        def given_or(name: str, value):
            return getattr(self, name) if getattr(self, name) != AUTO_VALUES[name] else value

        changes = dict(
            channels=self.channels or (1 if self.data.strip().lower() in GREYSCALE_BUILTINS else 3),
            channel_max=channel_max,
            channel_base=self.channel_base or auto_base,
            z_dim=z_dim,
            w_dim=z_dim if self.arch == "pggan" else (self.w_dim or z_dim),
            mapping_layers=self.mapping_layers or (spec.mapping_layers if spec else 2),
            mbstd_group=self.mbstd_group or (spec.mbstd_group if spec else 4),
            tick_kimg=self.tick_kimg or round(min(4.0, max(self.kimg / 10, 0.001)), 3),
            batch=batch,
            lr=self.lr or (spec.lr if spec else 0.001),
            # StyleGAN2 takes these from the configuration's own batch, not --batch (presets.py).
            ema_kimg=given_or("ema_kimg", spec.ema_kimg if spec else batch * 10 / 32),
            ema_rampup=given_or("ema_rampup", spec.ema_rampup if spec else 0.05),
            gamma=given_or("gamma", spec.gamma if spec else 0.0),            # PGGAN has no R1
            pl_weight=given_or("pl_weight", spec.pl_weight if spec else 0.0),
            mixing_prob=given_or("mixing_prob", spec.mixing_prob if spec else 0.0),
            augment=given_or("augment", "ada" if sg2 else "none"),
        )
        if self.arch == "pggan":
            stages = int(math.log2(r)) - 1
            changes["phase_kimg"] = self.phase_kimg or round(self.kimg / (2 * stages - 1), 6)
            changes["pggan_batch"] = format_pggan_batch(pggan_batch_schedule(dataclasses.replace(self, batch=batch)))
        if self.augment_p == -1:
            changes["augment_p"] = 1.0 if changes["augment"] == "fixed" else 0.0
        return dataclasses.replace(self, **changes)

    def model_config(self) -> ModelConfig:
        """The network config (auto sizes resolved)."""
        c = self.resolve()
        return ModelConfig(arch=c.arch, img_resolution=c.resolution, img_channels=c.channels or 3,
                           z_dim=c.z_dim, w_dim=c.z_dim if c.arch == "pggan" else c.w_dim,
                           mapping_layers=c.mapping_layers, channel_base=c.channel_base,
                           channel_max=c.channel_max, mbstd_group_size=c.mbstd_group)

    @property
    def uses_channels_last(self) -> bool:
        """Whether the networks and reals are channels-last: --channels-last, or auto: on, on CUDA and on
        CPU alike (oneDNN's convolutions forward and backward are faster in that layout: +10-35% img/s
        measured on a 2-core CPU, both architectures, 32 and 64 px)."""
        return self.channels_last is not False

    # ---- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Unknown keys are refused; missing keys get defaults."""
        return from_json_dict(cls, d, "training config", TrainConfigError, keys="training option(s)")

    def inherit_auto(self, stored: "TrainConfig") -> "TrainConfig":
        """Options left at auto take the stored run's resolved values, so that a resumed run keeps its
        schedule (e.g. PGGAN's phase length) even when --kimg changes."""
        changes = {name: getattr(stored, name) for name, auto in AUTO_VALUES.items()
                   if getattr(self, name) == auto and getattr(stored, name) != auto}
        return dataclasses.replace(self, **changes)

    def identity_mismatch(self, other: "TrainConfig") -> str | None:
        """The first identity field (what is trained, on what) that differs, as 'name: a vs b'."""
        for name in IDENTITY_FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            if name == "data":  # the same folder written two ways is the same data
                a, b = _data_key(a), _data_key(b)
            if a != b:
                return f"{name} {b!r} (stored) vs {a!r} (now)"
        return None


def _data_key(spec: str) -> str:
    key = spec.strip().lower()
    return key if key in BUILTIN_DATA else os.path.abspath(os.path.expanduser(spec))


# ---- PGGAN minibatch per resolution ---------------------------------------------------------------

def parse_pggan_batch(spec: str) -> dict[int, int]:
    """'4:64,8:64,16:32' -> {4: 64, 8: 64, 16: 32}."""
    out: dict[int, int] = {}
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        try:
            res, batch = (int(v) for v in part.split(":"))
        except ValueError:
            raise TrainConfigError(f"bad --pggan-batch entry {part!r}: write resolution:batch pairs "
                                   "like 4:64,8:64,16:32") from None
        if not is_power_of_two(res) or batch < 1:
            raise TrainConfigError(f"bad --pggan-batch entry {part!r}: the resolution must be a power "
                                   "of two and the batch positive")
        out[res] = batch
    return out


def format_pggan_batch(schedule: dict[int, int]) -> str:
    return ",".join(f"{r}:{b}" for r, b in sorted(schedule.items()))


def pggan_batch_schedule(cfg: TrainConfig) -> dict[int, int]:
    """Global minibatch per resolution: given entries win; otherwise 2x --batch up to a quarter of
    the final resolution and --batch above (the paper also shrinks the minibatch as images grow)."""
    given = parse_pggan_batch(cfg.pggan_batch)
    out = {}
    r = 4
    while r <= cfg.resolution:
        out[r] = given.get(r, cfg.batch * 2 if r * 4 <= cfg.resolution else cfg.batch)
        r *= 2
    return out
