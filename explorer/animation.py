"""Interpolation paths and their animations (mixed into Engine): the ws of every frame through the
keyframes, the frames rendered, a GIF or MP4 written."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from gan.io.images import to_uint8

from . import keyframes
from .checks import check_out_path, check_seeds, check_size
from .directions import ProgressCallback
from .keyframes import Keys, check_keyframes
from .session import ExplorerError, ExplorerState


class Animation:
    """Mixed into Engine (which renders the frames)."""

    def check_path(self, seeds, frames_per_segment: int, space: str = "z", loop: bool = False,
                   easing: str = "linear", state: ExplorerState | None = None) -> int:
        """Validate an interpolation path (cheap; the keyframes `seeds` as in keyframes.py, and with `state`, that each
        has a z when space is 'z'); returns its frame count."""
        from .interpolate import EASINGS, MAX_FRAMES, count_frames
        seeds = check_keyframes(seeds, check_seeds)
        if state is not None:
            keyframes.check_space(state, seeds, space)
        if isinstance(frames_per_segment, bool) or not isinstance(frames_per_segment, int) \
                or not 1 <= frames_per_segment <= MAX_FRAMES:
            raise ExplorerError(f"frames per seed must be an integer from 1 to {MAX_FRAMES}, got {frames_per_segment!r}")
        if space not in ("z", "w"):
            raise ExplorerError(f"unknown latent space {space!r}: use z (slerp) or w (lerp)")
        if easing not in EASINGS:
            raise ExplorerError(f"unknown easing {easing!r}: use one of {', '.join(EASINGS)}")
        n = count_frames(len(seeds), frames_per_segment, loop)
        if n > MAX_FRAMES:
            raise ExplorerError(f"the animation would have {n} frames, over the limit of {MAX_FRAMES}: "
                                f"use fewer seeds or frames per seed")
        return n

    @torch.inference_mode()
    def path(self, state: ExplorerState, seeds, frames_per_segment: int, space: str = "z", loop: bool = False,
             easing: str = "linear") -> tuple[torch.Tensor, Keys]:
        """(ws of every frame [F, num_ws, w_dim], the resolved keyframes `seeds`): slerp between their z
        (space 'z') or lerp between their ws (space 'w'), with the state's truncation, mixing and edits
        applied to every frame. Keyframes are seeds, THIS (the state's image) or projection files."""
        from .interpolate import latent_path
        keys = check_keyframes(seeds, check_seeds)
        self.check_path(keys, frames_per_segment, space, loop, easing)
        self.check_state(state)
        resolved = keyframes.resolve(self, state, keys, space)
        path = latent_path(resolved.latents, frames_per_segment, space, loop, easing)
        if space == "z":
            path = torch.cat([self.ws_from_z(path[i:i + 256], state) for i in range(0, path.shape[0], 256)])
        return path, resolved

    def path_ws(self, state: ExplorerState, seeds, frames_per_segment: int, space: str = "z", loop: bool = False,
                easing: str = "linear") -> torch.Tensor:
        """ws of every frame [F, num_ws, w_dim] (see path)."""
        return self.path(state, seeds, frames_per_segment, space, loop, easing)[0]

    def frames(self, state: ExplorerState, seeds, frames_per_segment: int, space: str = "z", loop: bool = False,
               easing: str = "linear", batch: int | None = None) -> Iterator[np.ndarray]:
        """The animation's frames as np.uint8 [H, W, C], rendered `batch` at a time; frames whose noise maps
        are not the model's own (a projected keyframe's, or a blend of them: keyframes.py) one at a time,
        by a private copy of the synthesis network whose const maps are rewritten for each frame."""
        ws, keys = self.path(state, seeds, frames_per_segment, space, loop, easing)
        batch = batch or self.render_batch
        if len(keys.noise_sets) == 1:   # the model's own maps throughout
            for i in range(0, ws.shape[0], batch):
                imgs = self.render_ws(ws[i:i + batch], state.noise_mode, noise_seed=state.seed + i, batch=batch)
                yield from to_uint8(imgs)
            return
        from .project import noise_buffers, synthesis_with_noise
        own = noise_buffers(self.G)
        private = synthesis_with_noise(self.G, {k: v.clone() for k, v in own.items()})
        maps = {name: buf for name, buf in private.named_buffers() if name in own}   # its own maps, rewritten
        weights = keyframes.frame_weights(len(keys.key_set), frames_per_segment, loop, easing)
        for i in range(ws.shape[0]):
            noise = keys.frame_noise(weights[i], own)
            synthesis = self.G.synthesis
            if noise is not None:
                with torch.no_grad():
                    for name, buf in maps.items():
                        buf.copy_(noise[name])
                synthesis = private
            yield from to_uint8(self.render_ws(ws[i:i + 1], state.noise_mode, synthesis=synthesis))

    def export(self, state: ExplorerState, seeds, out: str | Path, frames_per_segment: int = 24, space: str = "z",
               loop: bool = False, fps: float = 24, size: int | None = None, easing: str = "linear",
               progress: ProgressCallback | None = None, resample: str | None = None) -> Path:
        """Write the interpolation through the keyframes `seeds` (seeds, THIS, projection files: keyframes.py) to a GIF
        (looping forever) or an MP4, frames scaled to `size` px (default: the model's resolution). Everything
        is validated before any work; progress(fraction, text) is called per frame (and, when edits need
        them, while the directions are computed). Returns the path."""
        from .export import FORMATS, GIF_MAX_FPS
        out = check_out_path(out, tuple(FORMATS))
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
            raise ExplorerError(f"fps must be a number in (0, 240], got {fps!r}")
        if out.suffix.lower() == ".gif" and fps > GIF_MAX_FPS:
            raise ExplorerError(f"GIF plays at most {GIF_MAX_FPS} fps: lower --fps or write an .mp4")
        check_size(size)
        n = self.check_path(seeds, frames_per_segment, space, loop, easing, self.check_state(state))
        if any(e.strength != 0 for e in state.edits):   # compute them now, with progress
            self.directions(state.directions, progress=progress)
        from .export import export_frames
        hook = None if progress is None else (lambda done, total: progress(done / n, f"frame {done}/{n}"))
        return export_frames(self.frames(state, seeds, frames_per_segment, space, loop, easing), out, fps=fps,
                             size=size, num_frames=n, progress=hook, resample=resample, loop=True)
