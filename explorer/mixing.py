"""Per-layer style mixing (StyleGAN2): ws of seed A with a subset of layers taken from seed B.

Layers are ws indices. `G.block_ws_layers()` groups them by the resolution of the conv that
reads them (ws[0] -> 4x4, ws[1:3] -> 8x8, ...; the final toRGB's index sits with the last
resolution). Presets follow the StyleGAN paper: coarse = the 4-8 px layers (pose, shape),
middle = 16-32 px (features), fine = 64 px and up (colour, micro-structure). A model under 64 px
would have no fine layers, so there the bands shrink with the model: fine = its last resolution,
coarse = 4-8 px below that, middle = what lies between (32 px: coarse 4-8, middle 16, fine 32;
16 px: 4 / 8 / 16).

PGGAN feeds one latent to every layer, so it cannot mix styles: `require_style_mixing` raises
StyleMixingUnsupported with a one-line message.
"""
from __future__ import annotations

import torch

from .session import ExplorerError, StyleMixingUnsupported, parse_int_ranges

PRESETS: dict[str, tuple[int, int | None]] = {   # name -> (lowest, highest or None) resolution, inclusive
    "coarse": (4, 8),
    "middle": (16, 32),
    "fine": (64, None),
}
PAPER_MIN_RESOLUTION = 64      # models this large get the paper's bands as they are


def require_style_mixing(G, what: str = "style mixing") -> None:
    if not getattr(G, "supports_style_mixing", False):
        raise StyleMixingUnsupported(f"{what} needs a StyleGAN2 model: this {G.arch} model feeds one latent "
                                     f"to all layers")


def layer_groups(G) -> list[tuple[int, list[int]]]:
    """(resolution, [ws indices]) for each block; PGGAN: its one ws at the output resolution."""
    if hasattr(G, "block_ws_layers"):
        return [(int(r), list(ix)) for r, ix in G.block_ws_layers()]
    return [(int(G.stage_resolutions[-1]), list(range(G.num_ws)))]


def preset_resolutions(resolutions: list[int]) -> dict[str, list[int]]:
    """Block resolutions (ascending) -> the resolutions of each preset (see the module notes)."""
    top = resolutions[-1]
    if top >= PAPER_MIN_RESOLUTION:
        return {name: [r for r in resolutions if r >= lo and (hi is None or r <= hi)]
                for name, (lo, hi) in PRESETS.items()}
    coarse = [r for r in resolutions[:-1] if r <= PRESETS["coarse"][1]]
    middle = [r for r in resolutions[:-1] if r not in coarse]
    if not middle and len(coarse) > 1:
        middle = [coarse.pop()]
    return {"coarse": coarse, "middle": middle, "fine": [top]}


def preset_layers(G, preset: str) -> list[int]:
    """ws indices of a preset (may be empty, e.g. 'middle' on an 8 px model)."""
    if preset not in PRESETS:
        raise ExplorerError(f"unknown mixing preset {preset!r}: use one of {', '.join(PRESETS)}")
    groups = layer_groups(G)
    chosen = preset_resolutions([res for res, _ in groups])[preset]
    return [i for res, ix in groups if res in chosen for i in ix]


def presets(G) -> dict[str, list[int]]:
    return {name: preset_layers(G, name) for name in PRESETS}


def resolve_layers(G, layers=None, preset: str | None = None) -> list[int]:
    """Mixing layers from a list of ws indices, a CLI string ('0-3,6', inclusive) or a preset name.
    Checks range and non-emptiness; exactly one of layers / preset."""
    require_style_mixing(G)
    if (layers is None) == (preset is None):
        raise ExplorerError("give either mixing layers or a preset (coarse, middle, fine), not both or neither")
    if preset is not None:
        out = preset_layers(G, preset)
        if not out:
            raise ExplorerError(f"this {G.img_resolution}px model has no {preset} layers: "
                                f"choose another preset or explicit layers 0-{G.num_ws - 1}")
        return out
    if isinstance(layers, str):
        layers = parse_int_ranges(layers, "mixing layer")
    out = sorted(set(int(i) for i in layers))
    if not out:
        raise ExplorerError("no mixing layers given")
    bad = [i for i in out if not 0 <= i < G.num_ws]
    if bad:
        raise ExplorerError(f"mixing layer {bad[0]} is outside this model's layers 0-{G.num_ws - 1}")
    return out


def mix_ws(ws_a: torch.Tensor, ws_b: torch.Tensor, layers) -> torch.Tensor:
    """ws_a [N, num_ws, w_dim] with ws_a[:, layers] replaced by ws_b[:, layers] (ws_b [N or 1, ...])."""
    if ws_a.ndim != 3 or ws_b.ndim != 3 or ws_a.shape[1:] != ws_b.shape[1:]:
        raise ValueError(f"ws_a {list(ws_a.shape)} and ws_b {list(ws_b.shape)} must both be [N, num_ws, w_dim]")
    out = ws_a.clone()
    idx = torch.as_tensor(list(layers), dtype=torch.long)
    if len(idx):
        out[:, idx] = ws_b[:, idx].expand(ws_a.shape[0], -1, -1).to(out.dtype)
    return out


def grid_ws(ws_rows: torch.Tensor, ws_cols: torch.Tensor, layers) -> torch.Tensor:
    """Mixed ws for every (row, col) pair, row-major: [R * C, num_ws, w_dim]; cell (r, c) is row
    seed r's ws with `layers` taken from column seed c."""
    r, c = ws_rows.shape[0], ws_cols.shape[0]
    a = ws_rows.repeat_interleave(c, dim=0)
    b = ws_cols.repeat(r, 1, 1)
    return mix_ws(a, b, layers)
