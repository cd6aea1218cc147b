"""What a reader makes of a network pickle: our ModelConfig plus G (and D) tensors under our names,
checked name for name and shape for shape against the networks the config builds."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..io.checkpoint import expected_shapes
from ..models.config import ConfigError, ModelConfig
from ..models.layers import make_fir_filter
from ..models.networks import build_discriminator, build_generator
from .errors import UnsupportedNetworkError


@dataclass
class ImportedModel:
    cfg: ModelConfig
    G: dict[str, torch.Tensor]                 # our state-dict names, float32; G_ema when the file has one
    D: dict[str, torch.Tensor] | None          # None: the file has no D, or it does not map onto ours (see notes)
    format: str                                # "stylegan2-ada-pytorch", "stylegan3 (--cfg stylegan2)", ...
    init_kwargs: dict                          # the generator's original kwargs, JSON-able
    notes: list[str] = field(default_factory=list)
    dataset: dict = field(default_factory=dict)

    def networks(self) -> tuple[nn.Module, nn.Module | None]:
        """(G, D) modules holding these very tensors (built on the meta device, then assigned: no copy)."""
        return _module(build_generator, self.cfg, self.G), (
            None if self.D is None else _module(build_discriminator, self.cfg, self.D))


def _module(builder, cfg: ModelConfig, tensors: dict[str, torch.Tensor]) -> nn.Module:
    with torch.device("meta"):
        net = builder(cfg)
    net.load_state_dict(tensors, strict=True, assign=True)
    return net.eval().requires_grad_(False)


def make_config(what: str, **fields) -> ModelConfig:
    """ModelConfig(**fields).validate(), a config error reported as an unsupported network."""
    try:
        return ModelConfig(arch="stylegan2", **fields).validate()
    except (ConfigError, TypeError) as e:
        raise UnsupportedNetworkError(f"{what}: {e}") from None


def shape_mismatch(which: str, tensors: dict[str, torch.Tensor], cfg: ModelConfig) -> str | None:
    """The first difference between `tensors` and what `cfg` builds for G or D, in words; None if none."""
    builder = build_generator if which == "G" else build_discriminator
    expected = expected_shapes(builder, cfg)
    for name, shape in expected.items():
        if name not in tensors:
            return f"tensor {name} {list(shape)} is missing"
        if tuple(tensors[name].shape) != shape:
            return f"tensor {name} has shape {list(tensors[name].shape)}, expected {list(shape)}"
    extra = sorted(set(tensors) - set(expected))
    if extra:
        return f"unexpected tensor {extra[0]} {list(tensors[extra[0]].shape)}"
    return None


def check_generator(tensors: dict[str, torch.Tensor], cfg: ModelConfig, what: str) -> None:
    problem = shape_mismatch("G", tensors, cfg)
    if problem:
        raise UnsupportedNetworkError(f"{what}: {problem}; not a StyleGAN2 generator this importer supports yet")


def as_float32(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp16 / bf16 / fp64 weights (num_fp16_res layers, or files saved in half precision) as float32."""
    return {k: v if v.dtype == torch.float32 else v.to(torch.float32) for k, v in tensors.items()}


def is_default_filter(t) -> bool:
    """True for the [1, 3, 3, 1] low-pass filter every official config uses (as a 2D normalised buffer)."""
    f = make_fir_filter()
    t = torch.as_tensor(t, dtype=torch.float32)
    return tuple(t.shape) == tuple(f.shape) and torch.allclose(t, f, atol=1e-6)
