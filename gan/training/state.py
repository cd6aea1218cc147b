"""Resumable training state: the data sampler, RNG states, optimizers, and snapshot files.

A snapshot is ONE safetensors file (`<run>/snapshots/snapshot-<images>.safetensors`) holding
every tensor a run needs to continue exactly where it stopped:
- `G.*`, `D.*`, `G_ema.*`: the networks' state dicts
- `opt_G.<param index>.<key>`, `opt_D....`: Adam's per-parameter state (step, exp_avg, exp_avg_sq)
- `rng.<rank>.torch`, `rng.<rank>.cuda`, `rng.<rank>.numpy`, `rng.<rank>.python`: RNG states
- `sampler.perm`, `sampler.generator`: the data order and its generator
- `extra.*`: loop state such as the path-length mean
and, in the header's metadata, one JSON object (`state`) with the counters (images shown,
step, tick), the resolved configs, optimizer scalars, augmentation state and the non-tensor parts
of the RNG states. Nothing is pickled: loading reads tensors and JSON only.

Writing is crash-safe: the file is written under a temporary name, fsynced and renamed, and
only then does the small pointer `<run>/snapshots/latest.json` move to it (also atomically);
older snapshots are deleted after that, keeping the newest `keep`. A process killed at any
moment leaves the pointer on a complete snapshot. Resuming follows the pointer, falling back
to the newest readable snapshot file if the pointer is missing or names a broken file.
"""
from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .augment import AdaptiveAugment
from ..io.checkpoint import CheckpointError, module_tensors
from ..io.fileio import atomic_write, atomic_write_json
from .distributed import Dist

SNAPSHOT_DIR = "snapshots"
POINTER_NAME = "latest.json"
SNAPSHOT_KIND = "gan-training-snapshot"
SNAPSHOT_VERSION = 1
_SNAPSHOT_RE = re.compile(r"^snapshot-(\d{12})\.safetensors$")


# ---- data order ------------------------------------------------------------------------------------

class InfiniteSampler:
    """An endless shuffled stream of dataset indices from a seeded generator; its state is saved.

    Every process draws the same global batch of indices and takes its own slice, so the data
    order depends only on the seed and the number of images shown, not on the process count.
    """

    def __init__(self, num_items: int, seed: int):
        if num_items < 1:
            raise ValueError("the sampler needs at least one item")
        self.num_items = num_items
        self.generator = torch.Generator().manual_seed(int(seed))
        self.perm = torch.randperm(num_items, generator=self.generator)
        self.pos = 0
        self.epoch = 0

    def take(self, count: int) -> torch.Tensor:
        """The next `count` indices, int64 [count]; reshuffles after each pass over the data."""
        parts = []
        while count > 0:
            if self.pos == self.num_items:
                self.perm = torch.randperm(self.num_items, generator=self.generator)
                self.pos, self.epoch = 0, self.epoch + 1
            k = min(count, self.num_items - self.pos)
            parts.append(self.perm[self.pos:self.pos + k])
            self.pos += k
            count -= k
        return torch.cat(parts)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        return ({"sampler.perm": self.perm.clone(), "sampler.generator": self.generator.get_state()},
                {"num_items": self.num_items, "pos": self.pos, "epoch": self.epoch})

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if meta["num_items"] != self.num_items:
            raise CheckpointError(f"the snapshot's data order covers {meta['num_items']} images but the dataset "
                                  f"now has {self.num_items}: resume with the same data")
        self.perm = tensors["sampler.perm"].clone()
        self.generator.set_state(tensors["sampler.generator"].clone())
        self.pos, self.epoch = int(meta["pos"]), int(meta["epoch"])


# ---- RNG states --------------------------------------------------------------------------------------

def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """This process's torch (CPU and CUDA), numpy and python RNG states as tensors + JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()  # this process's current device only
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["python"] = torch.tensor(internal, dtype=torch.int64)
    meta = {"numpy": [name, int(pos), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss_next = meta["python"]
    random.setstate((version, tuple(int(v) for v in tensors["python"].tolist()), gauss_next))


# ---- optimizers ------------------------------------------------------------------------------------

def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam's per-parameter state flattened to `prefix.<index>.<key>` tensors + JSON scalars."""
    tensors, scalars = {}, {}
    for idx, st in opt.state_dict()["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"scalars": scalars, "num_params": sum(len(g["params"]) for g in opt.param_groups)}


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict,
                         prefix: str) -> None:
    """Restore the per-parameter state; learning rates and betas stay those of the current config."""
    num_params = sum(len(g["params"]) for g in opt.param_groups)
    if meta["num_params"] != num_params:
        raise CheckpointError(f"optimizer {prefix} in the snapshot has {meta['num_params']} parameters, the "
                              f"network now has {num_params}: resume with the same model config")
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value.clone()
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)


# ---- snapshot files --------------------------------------------------------------------------------

def snapshot_name(cur_nimg: int) -> str:
    return f"snapshot-{cur_nimg:012d}.safetensors"


def save_snapshot(run_dir: str | Path, tensors: dict[str, torch.Tensor], state: dict, keep: int = 2) -> Path:
    """Write a snapshot file, then point latest.json at it, then prune old snapshots (see module doc)."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = snapshot_name(int(state["cur_nimg"]))
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"format_version": str(SNAPSHOT_VERSION), "kind": SNAPSHOT_KIND, "state": json.dumps(state)}

    path = atomic_write(folder / name, lambda tmp: save_file(clean, tmp, metadata=meta))
    atomic_write_json(folder / POINTER_NAME, {"file": name, "cur_nimg": state["cur_nimg"],
                                              "kimg": state["cur_nimg"] / 1000, "step": state["step"],
                                              "written": time.strftime("%Y-%m-%dT%H:%M:%S")})
    prune_snapshots(folder, keep, current=name)
    return path


def prune_snapshots(folder: Path, keep: int, current: str) -> None:
    """Delete all but the newest `keep` snapshots up to `current`, later ones (left by a run that
    was resumed from an earlier snapshot) and temporary files of interrupted writes."""
    current_nimg = int(_SNAPSHOT_RE.match(current).group(1))
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _SNAPSHOT_RE.match(p.name)))
    older = [p for n, p in found if n <= current_nimg]
    for p in older[:-keep] + [p for n, p in found if n > current_nimg]:
        p.unlink(missing_ok=True)
    for p in folder.glob(".snapshot-*.tmp"):
        p.unlink(missing_ok=True)


def read_snapshot(path: str | Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, state) of one snapshot file; CheckpointError if it is not a complete snapshot.

    tensors=False reads the header only (tensors {}): enough for the options a run was written with,
    though a file cut short after its header then passes as readable.
    """
    path = Path(path)
    load_tensors = tensors
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("kind") != SNAPSHOT_KIND:
                raise CheckpointError(f"{path}: not a training snapshot (no '{SNAPSHOT_KIND}' header)")
            if int(meta.get("format_version", "0")) > SNAPSHOT_VERSION:
                raise CheckpointError(f"{path}: snapshot format {meta['format_version']} is newer than this "
                                      f"tool reads ({SNAPSHOT_VERSION}); upgrade the tool")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()} if load_tensors else {}
        return tensors, json.loads(meta["state"])
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: unreadable snapshot ({type(e).__name__}: {e})") from None


def load_latest_snapshot(path: str | Path, tensors: bool = True) -> tuple[Path | None, dict, dict, list[str]]:
    """The snapshot to resume from, loaded: a snapshot file itself, or a run folder's latest.json
    target, or failing that its newest readable snapshot. tensors=False: headers only (see read_snapshot).

    Returns (path or None, tensors, state, notes on what was skipped and why).
    """
    path = Path(path)
    if path.is_file():
        return (path, *read_snapshot(path, tensors), [])
    folder = path / SNAPSHOT_DIR
    if not folder.is_dir():
        return None, {}, {}, []
    notes = []
    pointer = folder / POINTER_NAME
    if pointer.is_file():
        try:
            target = folder / json.loads(pointer.read_text())["file"]
            return (target, *read_snapshot(target, tensors), notes)
        except (OSError, ValueError, KeyError, TypeError) as e:
            notes.append(f"{pointer} is unusable ({e}); using the newest readable snapshot")
    found = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := _SNAPSHOT_RE.match(p.name))),
                   reverse=True)
    for _, p in found:
        try:
            return (p, *read_snapshot(p, tensors), notes)
        except CheckpointError as e:
            notes.append(f"skipped {e}")
    return None, {}, {}, notes


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """{'G.a.b': t} -> {'a.b': t} for prefix 'G'."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


# ---- a whole run's state <-> one snapshot ------------------------------------------------------------

def save_training_snapshot(out: Path, cfg, model_cfg, nets: dict, trainer, augment: AdaptiveAugment,
                           sampler: InfiniteSampler, counters: dict, dist: Dist) -> Path | None:
    """Gather every process's RNG state, then rank 0 writes one snapshot file (see the module doc)."""
    rng_tensors, rng_meta = capture_rng()
    gathered = dist.all_gather_object((rng_tensors, rng_meta))
    if not dist.is_main:
        return None
    tensors, state = {}, {"optimizers": {}, "rng": {}}
    for name, net in nets.items():
        tensors.update(with_prefix(module_tensors(net), name))
    for name, opt in trainer.optimizers().items():
        t, meta = optimizer_state(opt, name)
        tensors.update(t)
        state["optimizers"][name] = meta
    for r, (t, meta) in enumerate(gathered):
        tensors.update(with_prefix(t, f"rng.{r}"))
        state["rng"][str(r)] = meta
    tensors.update(with_prefix(trainer.extra_tensors(), "extra"))
    sampler_tensors, state["sampler"] = sampler.state()
    tensors.update(sampler_tensors)
    state.update(counters, augment=augment.state(), world_size=dist.world, train=cfg.to_dict(),
                 model=model_cfg.to_dict(), kimg=round(counters["cur_nimg"] / 1000, 3))
    return save_snapshot(out, tensors, state, keep=cfg.keep_snapshots)


def restore_training_state(tensors: dict, state: dict, nets: dict, trainer, augment: AdaptiveAugment,
                           sampler: InfiniteSampler, counters: dict, dist: Dist) -> None:
    """Put a snapshot's state back (every process; each restores its own RNG streams)."""
    for name, net in nets.items():
        net.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v
                             for k, v in split_prefix(tensors, name).items()}, strict=True)
    for name, opt in trainer.optimizers().items():
        load_optimizer_state(opt, tensors, state["optimizers"][name], name)
    trainer.load_extra_tensors(split_prefix(tensors, "extra"))
    augment.load_state(state["augment"])
    sampler.load_state(tensors, state["sampler"])
    counters.update({k: state[k] for k in counters})
    rank = str(dist.rank)
    if state["world_size"] == dist.world and rank in state["rng"]:
        restore_rng(split_prefix(tensors, f"rng.{rank}"), state["rng"][rank])
    else:  # a different process count cannot continue the same random streams
        seed_everything(int(state["cur_nimg"]) * 7919 + dist.rank + 1)
        if dist.is_main:
            print(f"warning: the snapshot was written by {state['world_size']} process(es), this run has "
                  f"{dist.world}: random streams restart, so the result differs from an uninterrupted run",
                  file=sys.stderr)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)
