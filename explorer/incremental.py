"""Incremental synthesis: re-render only the blocks an edit reaches.

A StyleGAN2 block at resolution r reads ws[:, a:b] (its convs' and its toRGB's ws); its outputs (the
features x and the skip image img) depend on ws[:, :b] and the noise inputs only. So after a render
the outputs of every block are kept, keyed by (synthesis, noise, ws[:, :b]); the next render of the
same image with ws changed from index k on (a direction on layers k..., fine-style mixing) finds the
outputs of the last block that reads nothing from k on, and runs the blocks after it. The blocks run
through the very calls of the generator's own inference path (SynthesisNetwork.forward_fast with one
image: block.forward_fast in order), so the result is bitwise that of a full render.

The last block's output is not kept: no render restarts after it, and at 1024 px it is half of all the
bytes (140 of 270 MB), which pushed the small early blocks a fine edit needs out of the default budget
(a fine edit then cost a full render and more). The cache is bounded in bytes (the tensors kept), least
recently used first out; an entry is found
only by the exact bytes of its ws prefix, so any earlier change (seed, truncation, an edit on early
layers) misses and recomputes from the first block that differs. Only single images under the fast
path are rendered this way (batch 1, CPU, fp32, no autograd; not PGGAN, whose one latent feeds every
layer); anything else falls back to a full render.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import torch

from gan.models.layers import fast_path_applies

DEFAULT_BYTES = 256 << 20


def _nbytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.element_size() * t.nelement() for t in tensors if t is not None)


class BlockCache:
    """Block outputs of recent renders, at most `max_bytes` of tensors. Thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self._entries: OrderedDict = OrderedDict()    # key -> (x, img)
        self._lock = threading.Lock()
        self.blocks_run = 0                           # for tests and benchmarks: blocks actually computed

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def _get(self, key):
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def _put(self, key, x: torch.Tensor, img: torch.Tensor) -> None:
        size = _nbytes(x, img)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (x, img)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (ox, oimg) = self._entries.popitem(last=False)
                self.bytes -= _nbytes(ox, oimg)

    @staticmethod
    def applies(synthesis, ws: torch.Tensor) -> bool:
        return (ws.shape[0] == 1 and hasattr(synthesis, "block_resolutions") and hasattr(synthesis, "noise_inputs")
                and fast_path_applies(ws, synthesis.b4.const))

    @torch.inference_mode()
    def render(self, synthesis, ws: torch.Tensor, noise_mode: str, noise_key) -> torch.Tensor:
        """The image [1, C, R, R] of ws [1, num_ws, w_dim], as synthesis(ws, noise_mode) gives it.
        noise_key: what the noise inputs depend on besides the mode (the seed that draws 'random' noise
        and the synthesis object, whose const maps a projection may replace). The caller seeds torch's
        generator for 'random' noise, as for a full render."""
        ws = ws.to(torch.float32)
        noises = iter(synthesis.noise_inputs(noise_mode, 1, ws.device))
        plan, w_idx = [], 0
        for res in synthesis.block_resolutions:
            block = getattr(synthesis, f"b{res}")
            plan.append((block, w_idx + block.num_conv + block.num_torgb, [next(noises) for _ in range(block.num_conv)]))
            w_idx += block.num_conv
        base = (id(synthesis), noise_mode, noise_key)
        digest = hashlib.sha256()
        keys, done = [], 0
        for block, w_end, _ in plan:          # key of block i: ws[:, :w_end_i] (prefixes grow with i)
            digest.update(ws[:, done:w_end].contiguous().numpy().tobytes())
            done = w_end
            keys.append((base, digest.copy().hexdigest()))
        start, x, img = 0, None, None
        for i in range(len(plan) - 1, -1, -1):
            hit = self._get(keys[i])
            if hit is not None:
                start, (x, img) = i + 1, hit
                break
        w_idx = sum(b.num_conv for b, _, _ in plan[:start])
        for i in range(start, len(plan)):
            block, w_end, block_noise = plan[i]
            x, img = block.forward_fast(x, img, ws[:, w_idx:w_end], block_noise)
            w_idx += block.num_conv
            self.blocks_run += 1
            if i < len(plan) - 1:   # the last block's output is the image: nothing restarts after it
                self._put(keys[i], x, img)
        return img.contiguous()
