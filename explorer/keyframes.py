"""Keyframes of an interpolation export: seeds, the image shown, and projected images.

A keyframe is one of
- a seed (int): that seed's image under the state's class, truncation, mixing and edits;
- THIS ("this"): the state's own image, as the explorer shows it: its seed or its projection, with its
  blend, mixing and edits;
- a projection file (a Path to the .safetensors that `python -m explorer project` writes): that projected
  image under the state's mixing and edits. Files come from the command line and Python only: a public
  app never takes a path from a visitor, so its keyframe box parses with allow_files=False.

Space "z" slerps the keyframes' z, so every keyframe needs one: a projected image has none (and nor has a
blend in W), and is refused there with the fix (animate in W).

Noise maps. A seed's image is rendered with the model's const noise maps and a projected image with its
own optimised maps (noise mode const; other modes ignore a projection's maps, as the explorer does). A
frame between keyframes whose maps differ gets the keyframes' maps weighted as its ws are (the same
eased lerp weights, `frame_weights`), divided by the root of the sum of the squared weights: the maps are
independent unit-variance noise, so this keeps them unit variance (a plain lerp would halve the variance
midway, and the texture would visibly soften there). Where one set of maps has all the weight (every
keyframe's own frame, and every frame between two seeds) those maps are used as they are, so each
keyframe comes out exactly as the explorer shows it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .session import ExplorerError

THIS = "this"
PROJECTION_SUFFIX = ".safetensors"


def parse_keyframes(text: str, allow_files: bool = False) -> list:
    """'3,this,7-9' -> [3, THIS, 7, 8, 9]; with allow_files, a token ending in .safetensors is a projection
    file (a Path). Ranges are inclusive, as in the official --seeds option."""
    from gan.seeds import parse_seeds
    keys: list = []
    for token in str(text).split(","):
        token = token.strip()
        if token.lower() == THIS:
            keys.append(THIS)
        elif token.lower().endswith(PROJECTION_SUFFIX):
            if not allow_files:
                raise ExplorerError(f"keyframe {token[:60]!r}: here keyframes are seeds and 'this' (the image shown)")
            keys.append(Path(token))
        else:
            try:
                keys.extend(parse_seeds(token))
            except ValueError as e:
                raise ExplorerError(f"keyframe {token[:60]!r}: {e}; keyframes are seeds, 'this' (the image shown)"
                                    + (" or projection .safetensors files" if allow_files else "")) from None
    return keys


def describe(key) -> str:
    """A keyframe in words, for file names and messages: '3', 'this', 'me' (a file's stem)."""
    return key.stem if isinstance(key, Path) else str(key)


def check_keyframes(keys, check_seeds) -> list:
    """keys as a list, each a valid seed (checked by the engine's check_seeds), THIS or a Path."""
    keys = list(keys)
    if not keys:
        raise ExplorerError("no keyframes: give at least one seed (or 'this', the image shown)")
    out = []
    for key in keys:
        if isinstance(key, str) and key.lower() == THIS:
            out.append(THIS)
        elif isinstance(key, (str, Path)) and str(key).lower().endswith(PROJECTION_SUFFIX):
            out.append(Path(key))
        else:
            out.extend(check_seeds([key], "keyframe seeds"))
    return out


def frame_weights(num_keys: int, frames_per_segment: int, loop: bool, easing: str) -> torch.Tensor:
    """[F, K] float64: frame f's ws are sum_k weights[f, k] * keyframe k's ws (the eased lerp of latent_path);
    each keyframe's own frame is exactly one-hot."""
    from .interpolate import latent_path
    return latent_path(torch.eye(num_keys, dtype=torch.float64), frames_per_segment, "w", loop, easing)


@dataclass
class Keys:
    """Resolved keyframes. latents: z [K, z_dim] (space "z") or ws [K, num_ws, w_dim] (space "w");
    noise_sets: the distinct noise maps in play, [0] = None (the model's own), then one dict
    (buffer name -> [res, res]) per projected image; key_set[k]: keyframe k's index in noise_sets."""
    latents: torch.Tensor
    noise_sets: list
    key_set: list[int]

    def frame_noise(self, weights: torch.Tensor, own: dict[str, torch.Tensor]):
        """The maps of a frame whose keyframe weights are `weights` [K] (a row of frame_weights): None for the
        model's own, a projection's maps unchanged, or their variance-keeping blend (module docstring)."""
        per_set = torch.zeros(len(self.noise_sets), dtype=torch.float64)
        per_set.index_add_(0, torch.tensor(self.key_set), weights.to(torch.float64))
        used = per_set.nonzero().flatten().tolist()
        if len(used) == 1:
            return self.noise_sets[used[0]]
        norm = per_set.square().sum().sqrt()
        return {name: (sum(per_set[s] * (own if self.noise_sets[s] is None else self.noise_sets[s])[name].double()
                           for s in used) / norm).float()
                for name in own}


def _projection_of(state, key):
    """The projection file a keyframe shows, or None (a seed's image)."""
    return state.projection if key == THIS else (key if isinstance(key, Path) else None)


def check_space(state, keys: list, space: str) -> None:
    """Refuse keyframes that have no z when the path slerps z (cheap)."""
    if space != "z":
        return
    for key in keys:
        if _projection_of(state, key) is not None:
            raise ExplorerError(f"keyframe {describe(key)} is a projected image, which has no z: animate in W "
                                "(the W lerp path, --space w)")
        if key == THIS and state.is_blended and state.blend_space == "w":
            raise ExplorerError("keyframe 'this' is a blend in W, which has no z: animate in W (the W lerp path, "
                                "--space w)")


def resolve(engine, state, keys: list, space: str) -> Keys:
    """The keyframes' latents and noise maps under `state` (see the module docstring)."""
    sets: list = [None]
    key_set, latents = [], []
    check_space(state, keys, space)
    for key in keys:
        projection = _projection_of(state, key)
        if projection is None:
            key_set.append(0)
        else:
            _, noise = engine.projection(projection)
            own_maps = state.noise_mode == "const" and engine.arch != "pggan"
            if own_maps and not any(s is noise for s in sets):
                sets.append(noise)
            key_set.append(next(i for i, s in enumerate(sets) if s is noise) if own_maps else 0)
        if space == "z":
            latents.append(_z_of(engine, state, key))
        elif key == THIS:
            latents.append(engine.ws(state))
        elif isinstance(key, Path):
            latents.append(engine.own_ws(state.replace(projection=str(key), blend_seed=None, blend=0.0)))
        else:
            latents.append(engine.ws(state, [key]))
    return Keys(torch.cat(latents), sets, key_set)


def _z_of(engine, state, key) -> torch.Tensor:
    """z [1, z_dim] of a seed, or of the state's own (unprojected) image: its seed's, or its Z blend's."""
    if key != THIS:
        return engine.z([key])
    if not state.is_blended:
        return engine.z([state.seed])
    from .interpolate import slerp
    z = engine.z([state.seed, state.blend_seed])
    return slerp(z[:1], z[1:], state.blend)
