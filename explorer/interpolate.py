"""Latent paths through keyframes: slerp in Z, lerp in W, optional looping and easing.

The explorer engine turns each latent of a path into an image; this module only builds the
latents. A path visits keyframes in order; the frames between two keyframes are a "segment".

Frame count rule (see `count_frames`), with K keyframes and `frames_per_segment` = n:
- K == 1: a single frame, the keyframe itself.
- no loop: segments k -> k+1 for k < K-1, n frames each, then the last keyframe:
  F = (K - 1) * n + 1. The first frame is keys[0] and the last is keys[K-1], exactly.
- loop: the same segments plus K-1 -> 0; the last frame is the one just before keys[0]
  comes round again (keys[0] is not repeated), so a looping GIF has no stutter: F = K * n.
Frame k * n is exactly keys[k] in both cases.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

MAX_FRAMES = 2000  # a path longer than this is almost certainly a typo (and a long render)

# Below this sin(angle) two directions count as parallel (or antiparallel) for slerp.
_SIN_EPS = 1e-6
# Below this norm a vector has no direction; slerp falls back to lerp.
_NORM_EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# Interpolation
# ---------------------------------------------------------------------------------------------

def _as_weight(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(t, dtype=like.dtype, device=like.device)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation `a + t * (b - a)`; exact at t = 0 and t = 1.

    a, b: [..., D] (any matching shapes, e.g. ws [num_ws, w_dim]); t: a float or a tensor
    broadcastable against a (e.g. [F, 1, 1] with ws [num_ws, w_dim] gives [F, num_ws, w_dim]).
    """
    if a.shape != b.shape:
        raise ValueError(f"lerp: a has shape {tuple(a.shape)} but b has shape {tuple(b.shape)}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    w = _as_weight(t, a)
    a, b = torch.broadcast_tensors(a, b, w)[:2]
    return torch.lerp(a, b, w)


def _perpendicular(u: torch.Tensor) -> torch.Tensor:
    """A unit vector perpendicular to each unit vector u [..., D] (D >= 2), chosen deterministically."""
    # The basis vector along u's smallest component is the one furthest from parallel to u.
    j = u.abs().argmin(dim=-1, keepdim=True)
    e = torch.zeros_like(u).scatter_(-1, j, 1.0)
    c = e - (u * e).sum(-1, keepdim=True) * u
    return c / c.norm(dim=-1, keepdim=True).clamp_min(_NORM_EPS)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the last dimension; exact at t = 0 and t = 1.

    a, b: [..., D]; t: a float or a tensor broadcastable against a[..., :1]
    (e.g. t [F, 1] with a, b [D] gives [F, D]). Returns the promoted dtype of a and b.

    Uses the formula of White, "Sampling Generative Networks" (2016):
    sin((1-t)w)/sin(w) * a + sin(tw)/sin(w) * b, with w the angle between a and b. It keeps the
    norm for vectors of equal norm (unit vectors stay unit). Degenerate cases stay finite:
    nearly parallel vectors or a zero vector fall back to lerp; antiparallel vectors (no unique
    great circle) turn through a fixed perpendicular direction while the norm goes linearly
    from |a| to |b|. Computed in float64 internally.
    """
    if a.shape != b.shape:
        raise ValueError(f"slerp: a has shape {tuple(a.shape)} but b has shape {tuple(b.shape)}")
    if a.ndim == 0 or a.shape[-1] < 2:
        raise ValueError(f"slerp needs vectors [..., D] with D >= 2, got shape {tuple(a.shape)}")
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    t64 = _as_weight(t, a64)

    na = a64.norm(dim=-1, keepdim=True)
    nb = b64.norm(dim=-1, keepdim=True)
    ua = a64 / na.clamp_min(_NORM_EPS)
    ub = b64 / nb.clamp_min(_NORM_EPS)
    # The angle via atan2 of chord lengths is accurate everywhere, unlike acos near 0 or pi.
    omega = 2.0 * torch.atan2((ua - ub).norm(dim=-1, keepdim=True), (ua + ub).norm(dim=-1, keepdim=True))
    sin_omega = torch.sin(omega)

    degenerate = sin_omega < _SIN_EPS
    no_direction = (na < _NORM_EPS) | (nb < _NORM_EPS)
    antiparallel = degenerate & (omega > math.pi / 2) & ~no_direction
    use_lerp = (degenerate | no_direction) & ~antiparallel

    safe_sin = torch.where(degenerate, torch.ones_like(sin_omega), sin_omega)
    general = (torch.sin((1.0 - t64) * omega) / safe_sin) * a64 + (torch.sin(t64 * omega) / safe_sin) * b64
    linear = torch.lerp(*torch.broadcast_tensors(a64, b64, t64)[:2], t64)
    radius = torch.lerp(*torch.broadcast_tensors(na, nb, t64)[:2], t64)
    around = radius * (torch.cos(math.pi * t64) * ua + torch.sin(math.pi * t64) * _perpendicular(ua))

    out = torch.where(use_lerp, linear, torch.where(antiparallel, around, general))
    # Keyframes must come out bit-exact whatever branch was taken.
    out = torch.where(t64 == 0, a64, torch.where(t64 == 1, b64, out))
    return out.to(out_dtype)


# ---------------------------------------------------------------------------------------------
# Easing: maps t in [0, 1] to [0, 1], monotonic, with f(0) = 0 and f(1) = 1 exactly
# ---------------------------------------------------------------------------------------------

def ease_linear(t: torch.Tensor) -> torch.Tensor:
    return t


def ease_in_out(t: torch.Tensor) -> torch.Tensor:
    """Smoothstep 3t^2 - 2t^3: slows to a stop at each keyframe (zero speed at both ends)."""
    return t * t * (3.0 - 2.0 * t)


EASINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": ease_linear,
    "ease": ease_in_out,
}


def get_easing(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The easing function registered under `name` (see EASINGS)."""
    try:
        return EASINGS[name]
    except KeyError:
        raise ValueError(f"unknown easing {name!r}: choose one of {', '.join(EASINGS)}") from None


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------

def count_frames(num_keys: int, frames_per_segment: int, loop: bool) -> int:
    """Frames in a path (the rule in the module docstring), for showing length before rendering."""
    if num_keys < 1:
        return 0
    if num_keys == 1:
        return 1
    return num_keys * frames_per_segment if loop else (num_keys - 1) * frames_per_segment + 1


def latent_path(
    keys: torch.Tensor,
    frames_per_segment: int,
    space: str = "z",
    loop: bool = False,
    easing: str = "linear",
) -> torch.Tensor:
    """Latents of an animation through keyframes.

    keys: [K, z_dim] for space "z" (slerp between keyframes), or [K, ...] for space "w"
        (lerp over the whole tensor, e.g. ws [K, num_ws, w_dim]).
    frames_per_segment: frames from one keyframe up to (not including) the next, >= 1.
    loop: also go from the last keyframe back to the first, for a seamless looping GIF.
    easing: a name in EASINGS, applied within each segment.
    Returns [F, ...] in keys' dtype, with F as in the module docstring:
    K == 1 -> 1; no loop -> (K - 1) * frames_per_segment + 1; loop -> K * frames_per_segment.
    Frame k * frames_per_segment is exactly keys[k]; frame 0 is exactly keys[0].
    """
    if not isinstance(keys, torch.Tensor):
        raise ValueError(f"keys must be a torch.Tensor [K, ...], got {type(keys).__name__}")
    if keys.ndim < 2:
        raise ValueError(f"keys must be [K, ...] with one row per keyframe, got shape {tuple(keys.shape)}")
    num_keys = keys.shape[0]
    if num_keys == 0:
        raise ValueError("no keyframes: give at least one seed")
    if space not in ("z", "w"):
        raise ValueError(f"unknown latent space {space!r}: choose 'z' (slerp) or 'w' (lerp)")
    if space == "z" and keys.ndim != 2:
        raise ValueError(
            f"z keyframes must be [K, z_dim], got shape {tuple(keys.shape)}; use space='w' for ws"
        )
    is_int = isinstance(frames_per_segment, int) and not isinstance(frames_per_segment, bool)
    if not is_int or frames_per_segment < 1:
        raise ValueError(f"frames_per_segment must be an integer >= 1, got {frames_per_segment!r}")
    ease = get_easing(easing)
    total = count_frames(num_keys, frames_per_segment, loop)
    if total > MAX_FRAMES:
        raise ValueError(
            f"the path would have {total} frames, over the limit of {MAX_FRAMES}: "
            f"use fewer keyframes or frames per segment"
        )
    if num_keys == 1:
        return keys[:1].clone()

    num_segments = num_keys if loop else num_keys - 1
    seg = torch.arange(num_segments, device=keys.device).repeat_interleave(frames_per_segment)
    step = torch.arange(frames_per_segment, dtype=torch.float64, device=keys.device) / frames_per_segment
    t = ease(step).repeat(num_segments)  # [S * n]; t == 0 exactly at every keyframe
    start, end = keys[seg], keys[(seg + 1) % num_keys]  # [S * n, ...]
    t = t.reshape(-1, *([1] * (keys.ndim - 1)))  # broadcast over the latent dims
    frames = slerp(start, end, t) if space == "z" else lerp(start, end, t)
    if not loop:
        frames = torch.cat([frames, keys[-1:]], dim=0)
    return frames
