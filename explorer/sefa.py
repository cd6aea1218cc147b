"""Closed-form latent directions: SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics
in GANs"), computed from the weights alone, beside GANSpace's PCA (directions.py).

StyleGAN2: every style affine A_l [in_channels, w_dim] (`affine` of each synthesis layer, with its
equalised-lr weight gain applied, and the toRGB layer's extra style gain) that reads one of the ws
indices start..end-1 is stacked into A [sum in_channels, w_dim]; each row is divided by its norm as in
the authors' code (genforce/sefa `factorize_weight`: weight / np.linalg.norm(weight, axis=0) on the
transposed matrix), so the per-layer gains cancel and every style channel counts the same; the
directions are the eigenvectors of A^T A [w_dim, w_dim] by eigenvalue, largest first: the unit w
directions that move the styles the most. As in that code, the conv layers' affines are used and,
of the toRGB layers, only the last (the one that has a ws index of its own); include_torgb adds the
others. PGGAN: A is the first layer's dense weight [C * 16, z_dim] (the 4x4 'conv' on z, as the
authors' PGGAN layer0), and the directions live in z (space "z"), like PGGAN's PCA directions.

SeFa has no sampled spread, so one "sigma" is measured: the standard deviation of `samples` sampled
latents (untruncated w; PGGAN: raw z) projected onto each direction, drawn from a torch generator seeded
with `seed`. An edit of s sigma then moves the latent by s times that spread, which is what s sigma
means for PCA too (there the spread along a component is its stdev by construction).
`to_directions()` gives a `directions.Directions` that the engine's edits accept; its explained
variance is that of the weights (the eigenvalues), not of w.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .directions import Directions, _sign_fix
from .session import DirectionSettings, ExplorerError

DEFAULT_SAMPLES = 2048          # latents drawn to measure one sigma: its relative error is about 1 / sqrt(2 n), 1.6%


@dataclass(frozen=True)
class SefaDirections:
    """components [K, D] float32, orthonormal rows (D = w_dim, or z_dim for PGGAN); eigenvalues [K] of A^T A,
    descending, and eigenvalue_ratio [K] (of their sum over all D); stdev [K]: spread of sampled latents
    along each component; mean [D]: their mean; layers (start, end): the ws indices whose affines were
    used (end exclusive), so the natural edit range."""
    components: np.ndarray
    eigenvalues: np.ndarray
    eigenvalue_ratio: np.ndarray
    stdev: np.ndarray
    mean: np.ndarray
    layers: tuple[int, int]
    space: str
    arch: str
    samples: int
    seed: int
    seconds: float = 0.0

    @property
    def num_components(self) -> int:
        return int(self.components.shape[0])

    def to_directions(self) -> Directions:
        """The same directions as a `Directions` (what apply_edits_ws / apply_edits_z take)."""
        return Directions(components=self.components, stdev=self.stdev, explained_variance=self.eigenvalues,
                          explained_variance_ratio=self.eigenvalue_ratio, mean=self.mean, space=self.space,
                          arch=self.arch, settings=DirectionSettings(samples=max(100, self.samples),
                                                                     components=self.num_components, seed=self.seed),
                          activation=self.description, seconds=self.seconds)

    @property
    def description(self) -> str:
        if self.arch == "pggan":
            return "SeFa: first-layer weights"
        return f"SeFa: style weights of ws {self.layers[0]}-{self.layers[1] - 1}"


def _layer_range(G, start: int, end: int | None) -> tuple[int, int]:
    end = G.num_ws if end is None else end
    for name, v in (("start", start), ("end", end)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ExplorerError(f"SeFa layer {name} must be an integer, got {v!r}")
    if not 0 <= start < end <= G.num_ws:
        raise ExplorerError(f"SeFa layer range {start}:{end} is outside the model's 0:{G.num_ws} "
                            f"(start < end <= {G.num_ws})")
    return start, end


def affine_weights(G, start: int = 0, end: int | None = None, include_torgb: bool = False) -> torch.Tensor:
    """The weights that turn the latent into styles, stacked [rows, D] with their run-time gains: StyleGAN2's
    affines reading ws[start:end] (see the module docstring); PGGAN's first dense layer."""
    start, end = _layer_range(G, start, end)
    if G.arch == "pggan":
        dense = getattr(G, f"b{G.resolutions[0]}").dense
        return dense.weight.detach() * dense.scale
    rows, idx = [], 0
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        for layer in ([block.conv1] if block.in_channels == 0 else [block.conv0, block.conv1]):
            if start <= idx < end:
                rows.append(layer.affine.weight.detach() * layer.affine.weight_gain)
            idx += 1
        # this toRGB reads the index after its block's convs (the next block's conv0, or the last index)
        if start <= idx < end and (include_torgb or idx == G.num_ws - 1):
            torgb = block.torgb
            rows.append(torgb.affine.weight.detach() * (torgb.affine.weight_gain * torgb.weight_gain))
    return torch.cat(rows)


@torch.no_grad()
def _spread(G, components: torch.Tensor, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(stdev [K], mean [D]) of sampled latents projected on each component (see the module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    z = torch.randn(samples, G.z_dim, generator=gen)
    if G.arch == "pggan":
        x = z.double()
    else:
        c_dim = getattr(G.mapping, "c_dim", 0)
        c = None
        if c_dim:   # conditional: a uniformly random class per sample, as the PCA samples
            c = torch.nn.functional.one_hot(torch.randint(c_dim, (samples,), generator=gen), c_dim).float().to(device)
        x = G.mapping.to_w(z.to(device), c).double().cpu()
    proj = (x - x.mean(dim=0)) @ components.t()
    return proj.std(dim=0).float().numpy(), x.mean(dim=0).float().numpy()


def compute_sefa(G, start: int = 0, end: int | None = None, components: int = 80, samples: int = DEFAULT_SAMPLES,
                 seed: int = 0, include_torgb: bool = False) -> SefaDirections:
    """SeFa directions of G from the affines of ws[start:end] (default: all layers); the top `components`
    (at most D). samples: latents drawn to measure one sigma per direction (0: skip, stdev = 1)."""
    if isinstance(components, bool) or not isinstance(components, int) or components < 1:
        raise ExplorerError(f"SeFa components must be a positive integer, got {components!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0 or samples == 1:
        raise ExplorerError(f"SeFa samples must be 0 or an integer >= 2, got {samples!r}")
    t0 = time.perf_counter()
    start, end = (0, 1) if G.arch == "pggan" else _layer_range(G, start, end)
    a = affine_weights(G, start, end, include_torgb).to("cpu", torch.float64)
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    evals, evecs = torch.linalg.eigh(a.t() @ a)           # ascending
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    k = min(components, a.shape[1])
    comps = _sign_fix(evecs[:, :k].t().contiguous())
    if samples:
        stdev, mean = _spread(G, comps, samples, seed)
    else:
        stdev, mean = np.ones(k, np.float32), np.zeros(a.shape[1], np.float32)
    return SefaDirections(components=comps.float().numpy(), eigenvalues=evals[:k].float().numpy(),
                          eigenvalue_ratio=(evals[:k] / evals.sum().clamp_min(1e-30)).float().numpy(),
                          stdev=stdev, mean=mean, layers=(start, end), space="z" if G.arch == "pggan" else "w",
                          arch=G.arch, samples=samples, seed=seed, seconds=time.perf_counter() - t0)
