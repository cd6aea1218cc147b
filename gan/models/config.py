"""Model configuration: one frozen dataclass, stored in `config.json` next to the weights.

A loader rebuilds the exact network from this alone, with no command-line flags. Fields use the
vocabulary of NVIDIA's official code (`z_dim`, `w_dim`, `img_resolution`, `channel_base`, ...).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..io.json_dataclass import from_json_dict

ARCHS = ("stylegan2", "pggan")
# StyleGAN2 noise inputs, as the official gen_images.py --noise-mode (here, not in stylegan2.py, so that the
# command lines can offer them without importing torch).
NOISE_MODES = ("const", "random", "none")
FORMAT_VERSION = 1


class ConfigError(ValueError):
    """A configuration a user wrote or passed is invalid (one-line message)."""


def is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n >= 1 and (n & (n - 1)) == 0


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "stylegan2"          # "stylegan2" | "pggan"
    img_resolution: int = 256        # output size, a power of two in [8, 2048]
    img_channels: int = 3            # 1 (greyscale) or 3 (RGB)
    z_dim: int = 512                 # input latent size
    c_dim: int = 0                   # StyleGAN2: conditioning label size (number of classes), 0 = unconditional
    w_dim: int = 512                 # intermediate latent size (StyleGAN2; PGGAN uses z_dim)
    mapping_layers: int = 8          # StyleGAN2 mapping network depth
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 0            # feature maps per resolution, see channels_at(); 0 = auto
    channel_max: int = 512
    conv_clamp: float | None = 256.0  # StyleGAN2: clamp conv outputs (official default 256)
    mbstd_group_size: int = 4        # discriminator minibatch-stddev group size
    mbstd_num_channels: int = 1
    w_avg_beta: float = 0.995        # StyleGAN2: tracking rate of w_avg during training
    extra: dict = field(default_factory=dict)  # free-form, forward compatible

    # ---- derived -----------------------------------------------------------------------------
    @property
    def resolved_channel_base(self) -> int:
        """0 means 'auto': the official defaults for each architecture."""
        if self.channel_base:
            return self.channel_base
        if self.arch == "pggan":
            return 8192  # PGGAN paper: 512 up to 32x32 ... 16 at 1024x1024
        return 32768 if self.img_resolution >= 512 else 16384  # StyleGAN2-ADA 'auto' config

    def channels_at(self, res: int) -> int:
        """Feature maps of the blocks at resolution `res`: StyleGAN2 min(channel_base / res, channel_max)
        as the official code; PGGAN min(2 channel_base / res, channel_max), the paper's nf(log2(res) - 1)
        with fmap_base 8192 giving 512 up to 32x32 and 16 at 1024x1024."""
        base = self.resolved_channel_base * (2 if self.arch == "pggan" else 1)
        return min(base // res, self.channel_max)

    @property
    def resolutions(self) -> list[int]:
        """Every block resolution, 4, 8, ..., img_resolution. (A PGGAN generator's `stage_resolutions`
        are only the stages grown so far.)"""
        return [2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    # ---- validation and (de)serialisation ---------------------------------------------------
    def validate(self) -> "ModelConfig":
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown arch {self.arch!r}: use one of {', '.join(ARCHS)}")
        if not is_power_of_two(self.img_resolution) or not 8 <= self.img_resolution <= 2048:
            raise ConfigError(f"resolution {self.img_resolution} is not a power of two from 8 to 2048: "
                              "use e.g. 32, 64, 256 or 1024")
        if self.img_channels not in (1, 3):
            raise ConfigError(f"img_channels must be 1 or 3, got {self.img_channels}")
        for name in ("z_dim", "w_dim", "channel_max"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.c_dim < 0:
            raise ConfigError(f"c_dim must be >= 0 (0 = unconditional), got {self.c_dim}")
        if self.c_dim and self.arch != "stylegan2":
            raise ConfigError(f"c_dim {self.c_dim}: conditional models are StyleGAN2 only")
        if self.arch == "stylegan2" and self.mapping_layers < 1:
            raise ConfigError(f"mapping_layers must be >= 1, got {self.mapping_layers}")
        if self.channel_base < 0:
            raise ConfigError(f"channel_base must be >= 0 (0 = auto), got {self.channel_base}")
        if self.channels_at(self.img_resolution) < 1:
            need = self.img_resolution // (2 if self.arch == "pggan" else 1)
            raise ConfigError(
                f"channel_base {self.resolved_channel_base} gives 0 channels at {self.img_resolution}px: "
                f"use channel_base >= {need}")
        if self.mbstd_group_size < 1 or self.mbstd_num_channels < 1:
            raise ConfigError("mbstd_group_size and mbstd_num_channels must be >= 1")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Unknown keys are refused (they signal a newer or foreign file); missing keys get defaults."""
        return from_json_dict(cls, d, "model config", ConfigError).validate()
