"""Evaluate a generator against real data: one pass over each image set, the metrics from the
registry, a JSONL record per run. The library function under `python -m gan metrics`.

Generated images: seeds 0..num-1 (z as the official tools make it), truncation 1, constant
noise, quantised to uint8 as a saved PNG would be; real images: `num` drawn at random (without
replacement, seeded) from the dataset, or all of it when it is smaller. Both sets go through the
same uint8 path. The real images' Inception features are cached in `cache_dir` as an .npz keyed
by the dataset summary, resolution, channels, sample size, seed and Inception file; SWD and
MS-SSIM read the real images again (cheap next to Inception), so they are not cached. IS needs the
Inception class probabilities of the generated images only.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..io.cache import user_cache_dir
from ..io.fileio import append_line, atomic_write
from ..io.images import quantise
from ..seeds import z_from_seeds
from .inception import InceptionFeatures, load_inception
from .registry import (DEFAULT_METRICS, DEFAULT_NUM, METRICS, MetricInputs, SampleSet, check_num, needs_inception,
                       parse_metric_names)
from .swd import image_descriptors

RESULTS_NAME = "metrics.jsonl"


def default_cache_dir() -> Path:
    """Real-image feature caches: the user cache folder's metrics/ (see gan.io.cache)."""
    return user_cache_dir("metrics")


def real_sample_indices(dataset_len: int, num: int, seed: int = 0) -> np.ndarray:
    """Which dataset images are the real sample: min(num, len) distinct indices in random (seeded) order."""
    if dataset_len < 1:
        raise ValueError("the dataset is empty: point --data at a folder or zip with images")
    return np.random.RandomState(seed).permutation(dataset_len)[:min(num, dataset_len)]


# ---- the real-feature cache (.npz, no pickles) ---------------------------------------------------

def _cache_path(cache_dir, dataset, resolution: int, channels: int, n_real: int, seed: int,
                detector: InceptionFeatures) -> tuple[Path, str] | None:
    summary = getattr(dataset, "summary", None)
    if cache_dir is None or not callable(summary):
        return None
    meta = json.dumps({"dataset": summary(), "resolution": resolution, "channels": channels, "num": n_real,
                       "seed": seed, "inception": detector.identity()}, sort_keys=True, default=str)
    key = hashlib.sha256(meta.encode()).hexdigest()[:20]
    return Path(cache_dir) / f"real-inception-{key}.npz", meta


def _load_cached_features(path: Path, meta: str, n_real: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["meta"]) != meta or data["features"].shape[0] != n_real:
                return None
            return data["features"].astype(np.float64)
    except (OSError, ValueError, KeyError) as e:  # a damaged cache is recomputed, not fatal
        print(f"warning: ignoring unreadable cache {path} ({e})", file=sys.stderr)
        return None


def _save_cached_features(path: Path, meta: str, features: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: given a name, np.savez would append '.npz'
            np.savez(fh, features=features.astype(np.float32), meta=np.array(meta))

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


# ---- one pass over each image set ------------------------------------------------------------------

class _Gatherer:
    """Feeds uint8 batches into a SampleSet, collecting only what the chosen metrics need."""

    def __init__(self, needs: set, seed: int, stream: int, pool_size: int, detector: InceptionFeatures | None):
        self.needs, self.pool_size, self.detector = needs, pool_size, detector
        self.generator = torch.Generator().manual_seed(int(seed) * 2 + stream)  # SWD patch positions
        self.out = SampleSet()

    def add(self, batch: torch.Tensor) -> None:  # uint8 [B, C, R, R]
        if "swd" in self.needs:
            self.out.swd_levels.append(image_descriptors(batch.cpu(), self.generator))
        pooled = sum(len(b) for b in self.out.images)
        if "images" in self.needs and pooled < self.pool_size:
            self.out.images.append(batch[:self.pool_size - pooled].cpu().clone())
        if "inception" in self.needs:
            self.out.features.append(self.detector(batch))
        if "probs" in self.needs:
            self.out.probs.append(self.detector.probabilities(batch))
        self.out.count += len(batch)


def _real_batches(dataset, indices: np.ndarray, batch: int, channels: int, resolution: int, progress: bool):
    expected = (channels, resolution, resolution)
    for start in tqdm(range(0, len(indices), batch), desc="real images", unit="batch", file=sys.stderr,
                      disable=not progress, leave=False):
        items = [torch.as_tensor(dataset[int(i)]) for i in indices[start:start + batch]]
        for item in items:
            if tuple(item.shape) != expected or item.dtype != torch.uint8:
                raise ValueError(f"dataset images are {item.dtype} {list(item.shape)} but the model makes uint8 "
                                 f"{list(expected)}: load the data with resolution={resolution}, channels={channels}")
        yield torch.stack(items)


@torch.inference_mode()
def _fake_batches(G, num: int, batch: int, progress: bool):
    device = next(G.parameters()).device
    for start in tqdm(range(0, num, batch), desc="generated images", unit="batch", file=sys.stderr,
                      disable=not progress, leave=False):
        seeds = list(range(start, min(start + batch, num)))
        z = z_from_seeds(seeds, G.z_dim).to(device)
        c_dim = getattr(G, "c_dim", 0)
        # a conditional model's fakes cover its classes evenly: image i is of class i mod c_dim
        label = {"c": torch.nn.functional.one_hot(torch.tensor(seeds) % c_dim, c_dim).float().to(device)} if c_dim else {}
        ws = G.mapping(z, **label, truncation_psi=1.0)
        yield quantise(G.synthesis(ws, noise_mode="const")).cpu()


def evaluate(G, real_dataset, names: list[str], num: int, detector: InceptionFeatures | None = None,
             batch: int = 64, seed: int = 0, cache_dir=None, progress: bool = True,
             msssim_pairs: int = 1000) -> dict[str, float]:
    """compute_metrics with validated names and an already loaded detector (see compute_metrics)."""
    if num < 2:
        raise ValueError(f"--num must be at least 2, got {num}")
    check_num(names, num)
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    needs = set().union(*(METRICS[n].needs for n in names))
    if needs_inception(names) and detector is None:
        raise ValueError("FID/KID/PR/IS need an Inception feature extractor: pass inception_path")
    if not needs_inception(names):
        detector = None
    resolution, channels = int(G.img_resolution), int(G.img_channels)
    indices = real_sample_indices(len(real_dataset), num, seed)
    pool_size = 2 * msssim_pairs

    # Real images: Inception features from the cache when they are there.
    cached, cache = None, None
    if "inception" in needs:
        cache = _cache_path(cache_dir, real_dataset, resolution, channels, len(indices), seed, detector)
        cached = _load_cached_features(*cache, len(indices)) if cache else None
    # IS scores generated images alone: the real ones never need class probabilities.
    real_needs = needs - {"probs"} - ({"inception"} if cached is not None else set())
    real = _Gatherer(real_needs, seed, 0, pool_size, detector)
    if real_needs:
        for images in _real_batches(real_dataset, indices, batch, channels, resolution, progress):
            real.add(images)
    if cached is not None:
        real.out.features = [cached]
    elif "inception" in needs and cache:
        _save_cached_features(*cache, real.out.feature_matrix())

    fake = _Gatherer(needs, seed, 1, pool_size, detector)
    for images in _fake_batches(G, num, batch, progress):
        fake.add(images)

    inputs = MetricInputs(real=real.out, fake=fake.out, resolution=resolution, seed=seed, msssim_pairs=msssim_pairs)
    results: dict[str, float] = {}
    for name in names:
        results.update(METRICS[name].compute(inputs))
    return results


def compute_metrics(G, real_dataset, metrics, num: int, inception_path=None, batch: int = 64, seed: int = 0,
                    cache_dir=None, progress: bool = True, msssim_pairs: int = 1000) -> dict[str, float]:
    """Metric values (a flat dict of floats) for generator G against `real_dataset`.

    G: the common generator interface (z_dim, img_resolution, img_channels, mapping, synthesis);
    real_dataset: len() and ds[i] -> uint8 [C, R, R] matching G; metrics: names from METRICS (a list
    or 'swd,fid'); num: generated images (and real ones, at most len(real_dataset)); inception_path:
    the TorchScript Inception file, needed by fid/kid/pr/is; cache_dir: where real Inception features
    are cached (None: no cache). Keys: swd, swd_<res>..., msssim, msssim_real, fid, kid, is, is_std,
    precision, recall.
    """
    names = parse_metric_names(metrics)
    check_num(names, num)
    detector = None
    if needs_inception(names):  # before any slow work: a missing file fails at once
        detector = load_inception(inception_path, device=next(G.parameters()).device)
    return evaluate(G, real_dataset, names, num, detector, batch=batch, seed=seed, cache_dir=cache_dir,
                    progress=progress, msssim_pairs=msssim_pairs)


# ---- results file ------------------------------------------------------------------------------

def _jsonable(obj):
    """NaN/inf -> None (JSON has no such numbers); numpy scalars -> Python; recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def append_jsonl(path: str | Path, record: dict) -> Path:
    """Append one JSON object as one line (the file and its folder are created when missing; fsynced).
    NaN and infinities are written as null."""
    return append_line(path, json.dumps(_jsonable(record), allow_nan=False))


def metrics_main(model_dir, data_spec, metrics=DEFAULT_METRICS, num: int = DEFAULT_NUM, inception_path=None, *,
                 batch: int = 64, seed: int = 0, cache_dir="auto", device: str = "cpu",
                 progress: bool = True) -> dict:
    """Evaluate a model folder against a dataset spec; print one JSON line; append it to <model>/metrics.jsonl.

    cache_dir: "auto" = default_cache_dir(), None = no cache, or a folder. Returns the record.
    """
    from ..io.checkpoint import load_model, resolve_model_folder
    from ..data import load_dataset

    names = parse_metric_names(metrics)
    if num < 2:
        raise ValueError(f"--num must be at least 2, got {num}")
    check_num(names, num)
    detector = None
    if needs_inception(names):  # fail before loading anything else
        detector = load_inception(inception_path, device=device)
    folder = resolve_model_folder(model_dir)
    G, _ = load_model(folder, device=device)
    dataset = load_dataset(data_spec, resolution=G.img_resolution, channels=G.img_channels)
    start = time.time()
    results = evaluate(G, dataset, names, num, detector, batch=batch, seed=seed,
                       cache_dir=default_cache_dir() if cache_dir == "auto" else cache_dir, progress=progress)
    record = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(folder),
        "data": str(data_spec),
        "num": num,
        "num_real": min(num, len(dataset)),
        "seed": seed,
        "metrics": names,
        "results": results,
        "seconds": round(time.time() - start, 2),
    }
    if detector is not None:
        record["inception"] = detector.path
    record = _jsonable(record)
    print(json.dumps(record, allow_nan=False), flush=True)
    append_jsonl(folder / RESULTS_NAME, record)
    return record
