"""Incremental synthesis: re-render only the blocks an edit reaches.

A StyleGAN2 block reads ws[:, w0:w0 + num_conv] in its convs and ws[:, w0 + num_conv] in its toRGB
(the w the next block's first conv reads too). So its features x depend on ws[:, :w0 + num_conv] and
the noise inputs only, and its skip image on one w more. After a render both are kept per block,
keyed by (synthesis, noise, ws prefix); the next render of the same image with ws changed from index
k on (a direction on layers k..., fine-style mixing) resumes from the latest point nothing from k on
has reached: after a block, or between a block's convs and its toRGB (an edit from the toRGB's w on
re-runs only that 1x1 conv of the block, not its two 3x3 convs: at 256 px, layers 7-13 re-run three
blocks and a toRGB instead of four blocks). The blocks run through the very calls of the generator's
own inference path (SynthesisBlock.features_fast and skip_fast, which its forward_fast is), so the
result is bitwise that of a full render.

The last block's outputs are not kept: no render resumes after them, and at 1024 px they are half of
all the bytes (140 of 270 MB), which pushed the small early blocks a fine edit needs out of the default
budget (a fine edit then cost a full render and more). The cache is bounded in bytes (the tensors
kept), least recently used first out; an entry is found only by the exact bytes of its ws prefix, so
any earlier change (seed, truncation, an edit on early layers) misses and recomputes from the first
block that differs. Only single images under the fast path are rendered this way (batch 1, CPU, fp32,
no autograd; not PGGAN, whose one latent feeds every layer); anything else falls back to a full render.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import torch

from gan.models.layers import fast_path_applies

DEFAULT_BYTES = 256 << 20
PREVIEW_SHARE = 1 / 3   # of a render's conv MACs, at most, before its early preview (preview_block)


def _nbytes(*tensors: torch.Tensor | None) -> int:
    return sum(t.element_size() * t.nelement() for t in tensors if t is not None)


class BlockCache:
    """Block outputs of recent renders, at most `max_bytes` of tensors. Thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES):
        self.max_bytes, self.bytes = max_bytes, 0
        self._entries: OrderedDict = OrderedDict()    # key -> tensor (a block's features or skip image)
        self._lock = threading.Lock()
        # For tests and benchmarks: blocks whose convs ran, and toRGBs (skip images) computed.
        self.features_run = self.skips_run = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def _get(self, key) -> torch.Tensor | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def _put(self, key, t: torch.Tensor) -> None:
        size = _nbytes(t)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = t
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self.bytes -= _nbytes(old)

    @staticmethod
    def applies(synthesis, ws: torch.Tensor) -> bool:
        return (ws.shape[0] == 1 and hasattr(synthesis, "block_resolutions") and hasattr(synthesis, "noise_inputs")
                and fast_path_applies(ws, synthesis.b4.const))

    def _restart(self, features_keys: list, skip_keys: list):
        """The latest point a render can resume from, as (first block to run, whether only its toRGB
        runs, features, skip image): after block i (its features and skip image kept), or between
        block i's convs and its toRGB (its features and block i-1's skip image kept). The last block
        keeps nothing."""
        for i in range(len(features_keys) - 2, -1, -1):
            x = self._get(features_keys[i])
            if x is None:
                continue
            img = self._get(skip_keys[i])
            if img is not None:
                return i + 1, False, x, img
            img = self._get(skip_keys[i - 1]) if i > 0 else None
            if i == 0 or img is not None:
                return i, True, x, img
        return 0, False, None, None

    @staticmethod
    def preview_block(synthesis, share: float = PREVIEW_SHARE) -> int | None:
        """Index of the block whose skip image is the early preview of a render: the last one (never the
        final block) that the render reaches within `share` of its convolution MACs (weights x the pixels
        each conv reads: an up-conv reads its input's). None when no block but the last fits."""
        costs = []
        for res in synthesis.block_resolutions:
            block = getattr(synthesis, f"b{res}")
            costs.append(sum(layer.weight.numel() * (res // layer.up) ** 2 for layer in block.layers())
                         + block.torgb.weight.numel() * res ** 2)
        total, reached, found = sum(costs), 0, None
        for i, cost in enumerate(costs[:-1]):
            reached += cost
            if reached > share * total:
                break
            found = i
        return found

    @torch.inference_mode()
    def render(self, synthesis, ws: torch.Tensor, noise_mode: str, noise_key,
               until: int | None = None) -> torch.Tensor | None:
        """The image [1, C, R, R] of ws [1, num_ws, w_dim], as synthesis(ws, noise_mode) gives it.
        noise_key: what the noise inputs depend on besides the mode (the seed that draws 'random' noise
        and the synthesis object, whose const maps a projection may replace). The caller seeds torch's
        generator for 'random' noise, as for a full render.

        until: stop after block `until` and return its skip image [1, C, r, r] (a lower stage of the
        image, kept like the rest: the render of the same ws resumes after it), or None when the render
        would resume past that block (the edit does not change that stage)."""
        ws = ws.to(torch.float32)
        noises = iter(synthesis.noise_inputs(noise_mode, 1, ws.device))
        # Per block: (block, index of its first w, its noise inputs). Its features read
        # ws[:, w0:w0 + num_conv], its toRGB ws[:, w0 + num_conv] (the next block's first w).
        plan, w_idx = [], 0
        for res in synthesis.block_resolutions:
            block = getattr(synthesis, f"b{res}")
            plan.append((block, w_idx, [next(noises) for _ in range(block.num_conv)]))
            w_idx += block.num_conv
        # Keys of what block i leaves: its features depend on ws[:, :w0 + num_conv], its skip image on
        # one w more (the prefixes grow along the network, so one running digest serves them all).
        base = (id(synthesis), noise_mode, noise_key)
        digest, done = hashlib.sha256(), 0
        features_keys, skip_keys = [], []
        for block, w0, _ in plan:
            ends = (("x", w0 + block.num_conv, features_keys), ("img", w0 + block.num_conv + 1, skip_keys))
            for kind, end, keys in ends:
                digest.update(ws[:, done:end].contiguous().numpy().tobytes())
                done = end
                keys.append((base, kind, digest.copy().hexdigest()))
        first, skip_only, x, img = self._restart(features_keys, skip_keys)
        if until is not None and first > until:
            return None
        for i in range(first, len(plan) if until is None else until + 1):
            block, w0, block_noise = plan[i]
            last = i == len(plan) - 1   # its outputs are the image: nothing restarts after them
            if not (skip_only and i == first):
                x = block.features_fast(x, ws[:, w0:w0 + block.num_conv], block_noise)
                self.features_run += 1
                if not last:
                    self._put(features_keys[i], x)
            img = block.skip_fast(x, img, ws[:, w0 + block.num_conv])
            self.skips_run += 1
            if not last:
                self._put(skip_keys[i], img)
        return img.contiguous()
