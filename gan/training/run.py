"""The run folder: what a training run writes (config, log, sample grids, stage models) and how an
existing run folder is recognised and checked before a resume.

    <out>/config.json        resolved options, model config, dataset summary (written before step 0)
    <out>/log.jsonl          one JSON object per line: start/resume, dataset, tick, stage, snapshot, done
    <out>/samples/           reals.png, and fakes-<kimg>.png: G EMA at fixed seeds at every tick
    <out>/snapshots/         training state for exact resume (gan/training/state.py)
    <out>/stages/<r>x<r>/    PGGAN: a model folder at the end of every resolution stage
    <out>/final/             the trained model (G EMA as G.safetensors, plus D)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..io.checkpoint import CheckpointError, module_tensors, save_model
from ..io.fileio import atomic_write_text
from ..models.config import FORMAT_VERSION
from .distributed import Dist
from ..io.images import save_image_grid
from .config import TrainConfig, TrainConfigError
from .state import load_latest_snapshot

RUN_CONFIG = "config.json"
LOG_NAME = "log.jsonl"
RUN_KIND = "gan-training-run"
NETS = ("G", "D", "G_ema")


# ---- recognising a run folder and checking a resume -------------------------------------------------

def stored_run_config(path: str | Path) -> dict | None:
    """The training options in a run folder's config.json (None when there is none)."""
    cfg_path = Path(path) / RUN_CONFIG
    if not cfg_path.is_file():
        return None
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainConfigError(f"{cfg_path}: unreadable ({e}); remove it or choose another --out") from None
    if not isinstance(raw, dict) or raw.get("kind") != RUN_KIND:
        raise TrainConfigError(f"{path} holds a config.json that is not a training run's; choose another --out")
    return raw.get("train")


@dataclass(frozen=True)
class ResumePoint:
    """Where a run continues from, and the options it runs with."""
    cfg: TrainConfig                 # given options over the stored run's; options left at auto take its values
    snapshot: Path | None = None     # the snapshot to continue from; None = a fresh start
    notes: tuple[str, ...] = ()      # what was skipped on the way there (a broken pointer or snapshot)
    loaded: tuple[dict, dict] | None = field(default=None, repr=False, compare=False)  # (tensors, state)

    def without_tensors(self) -> "ResumePoint":
        return dataclasses.replace(self, loaded=None)


def resolve_resume(options: TrainConfig | Mapping[str, Any], load: bool = True) -> ResumePoint:
    """Find where the run described by `options` resumes, check that it may, and merge the stored options.

    `options` is either a whole TrainConfig (the Python API: its values are used, only options left
    at auto take the stored run's values) or the options given on a command line (a mapping of
    TrainConfig field names: they override the stored run's options, as if the first command were
    repeated with them changed; --resume without --out continues in the snapshot's run folder).
    load=False reads snapshot headers only (for --dry-run and the merge before training).
    Raises TrainConfigError, before anything is written, for a resume that cannot work.
    """
    given = None if isinstance(options, TrainConfig) else dict(options)
    resume = (options.resume if given is None else given.get("resume")) or ""
    out = (options.out if given is None else given.get("out")) or ""
    if resume and not Path(resume).exists():
        raise TrainConfigError(f"--resume {resume}: no such run folder or snapshot")
    if given is not None and resume and not out:
        res = Path(resume)
        out = given["out"] = str(res.parent.parent if res.is_file() else res)
    if out:
        _check_run_folder(Path(out), Path(resume) if resume else None)
    source = Path(resume or out) if (resume or out) else None
    try:
        path, tensors, state, notes = (load_latest_snapshot(source, tensors=load) if source and source.exists()
                                       else (None, {}, {}, []))
        folder_options = stored_run_config(source) if source and source.is_dir() else None
    except CheckpointError as e:
        raise TrainConfigError(str(e)) from None
    if resume and path is None:
        raise TrainConfigError(f"--resume {resume}: no readable snapshot there" + (f" ({notes[-1]})" if notes else ""))
    snapshot_options = state.get("train") if path is not None else None

    cfg = options
    if given is not None:
        # The merge starts from the last session's options (config.json), which a crash before its first
        # snapshot would otherwise lose; a snapshot file given alone brings its own.
        base = folder_options if folder_options is not None else snapshot_options
        merged = {**(base or {}), **given}
        if base is not None:  # where to resume from and whether to draw a bar are this session's choices
            merged["resume"] = given.get("resume", "")
            merged["progress"] = given.get("progress", True)
        cfg = TrainConfig.from_dict(merged)
    cfg.validate()

    # What is being continued: the snapshot's options (they made its weights), else config.json's.
    stored = snapshot_options if snapshot_options is not None else folder_options
    if stored is not None:
        stored_cfg = TrainConfig.from_dict(stored)
        cfg = cfg.inherit_auto(stored_cfg)
        mismatch = cfg.resolve().identity_mismatch(stored_cfg.resolve())
        if mismatch:
            raise TrainConfigError(f"cannot resume {source}: it trains a different model or data ({mismatch}); "
                                   "use the same options or another --out")
    return ResumePoint(cfg, path, tuple(notes), (tensors, state) if path is not None and load else None)


def _check_run_folder(out: Path, resume: Path | None) -> None:
    """--out must be a new or empty folder, or this run's own folder."""
    if out.is_file():
        raise TrainConfigError(f"--out {out} is a file: give a folder for the run")
    source = resume or out
    same_run = out.resolve() in (source.resolve(), source.resolve().parent.parent)  # the folder or its snapshot
    if not same_run and out.is_dir() and (out / RUN_CONFIG).exists():
        raise TrainConfigError(f"--out {out} already holds a run: resume it with --out alone, or choose an "
                               "empty folder to continue --resume there")
    if out.is_dir() and not (out / RUN_CONFIG).exists() and any(out.iterdir()):
        raise TrainConfigError(f"--out {out} is not empty and is not a training run: choose a new folder")


# ---- what a run writes ---------------------------------------------------------------------------------

def run_description(cfg: TrainConfig, model_cfg, ds, dist: Dist | None) -> dict:
    """The run folder's config.json (also what --dry-run prints)."""
    return {"format_version": FORMAT_VERSION, "kind": RUN_KIND, "train": cfg.to_dict(), "model": model_cfg.to_dict(),
            "dataset": ds.summary(), "world_size": dist.world if dist else 1,
            "device": str(dist.device) if dist else "", "torch": torch.__version__}


class RunLog:
    """log.jsonl: one JSON object per line, flushed at once (rank 0 only)."""

    def __init__(self, out: Path, enabled: bool):
        self.path, self.enabled = out / LOG_NAME, enabled

    def write(self, **record) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def truncate_after(self, cur_nimg: int) -> None:
        """Drop lines from after the snapshot being resumed (they will be written again) and any line cut
        short by a crash."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("kimg", 0) * 1000 <= cur_nimg + 1e-6:
                keep.append(json.dumps(rec))
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))


@torch.no_grad()
def save_fakes(G_ema, grid_z: torch.Tensor, resolution: int, out: Path, cur_nimg: int) -> Path:
    """G EMA at the fixed grid seeds (constant noise), upscaled to the final resolution for PGGAN stages."""
    imgs = []
    for z in grid_z.split(16):
        img = G_ema.synthesis(G_ema.mapping(z), noise_mode="const").float()
        if img.shape[-1] != resolution:
            img = F.interpolate(img, size=(resolution, resolution), mode="nearest")
        imgs.append(img.cpu())
    return save_image_grid(torch.cat(imgs), out / "samples" / f"fakes-{cur_nimg / 1000:010.3f}.png")


def save_stage(out: Path, G_ema, model_cfg, cfg: TrainConfig, ds, depth: int, counters: dict) -> Path:
    """PGGAN: G EMA as it is at the end of stage `depth` (its progress buffer says which)."""
    res = G_ema.resolutions[depth]
    folder = out / "stages" / f"{res:03d}x{res:03d}"
    summary = training_summary(cfg, counters, ds)
    summary.update(stage_resolution=res, stage_depth=depth, stage_alpha=G_ema.alpha)
    return save_model(folder, G_ema, model_cfg, training=summary, dataset=ds.summary())


def training_summary(cfg: TrainConfig, counters: dict, ds) -> dict:
    return {"kimg": kimg_of(counters), "steps": counters["step"], "seconds": round(counters["seconds"], 3),
            "arch": cfg.arch, "config": cfg.to_dict(), "skipped_files": len(ds.skipped)}


def kimg_of(counters: dict) -> float:
    return round(counters["cur_nimg"] / 1000, 3)


def weights_checksum(nets: dict) -> str:
    """sha256 over every tensor of G, D and G EMA: equal on all processes when they agree bit for bit."""
    h = hashlib.sha256()
    for name in NETS:
        for k, v in module_tensors(nets[name]).items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def progress_bar(cfg: TrainConfig, counters: dict, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=cfg.kimg, initial=counters["cur_nimg"] / 1000, unit="kimg", file=sys.stderr,
                desc=f"train {cfg.arch}", dynamic_ncols=True, mininterval=0.5,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} kimg "
                           "[{elapsed}<{remaining}{postfix}]")
