"""Build either architecture's networks from a ModelConfig: the one place that branches on `arch`."""
from __future__ import annotations

from torch import nn

from . import pggan, stylegan2
from .config import ModelConfig

_GENERATORS = {"stylegan2": stylegan2.Generator, "pggan": pggan.Generator}
_DISCRIMINATORS = {"stylegan2": stylegan2.Discriminator, "pggan": pggan.Discriminator}


def build_generator(cfg: ModelConfig) -> nn.Module:
    return _GENERATORS[cfg.validate().arch](cfg)


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    return _DISCRIMINATORS[cfg.validate().arch](cfg)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
