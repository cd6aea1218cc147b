"""Interpretable latent directions by PCA, as in GANSpace (Härkönen et al. 2020), cached per model.

StyleGAN2: PCA of `samples` w vectors, w = mapping(z) without truncation, z ~ N(0, I) drawn
from a torch generator seeded with `settings.seed`; a conditional model's w are sampled over all its
classes (each sample's class uniform, drawn from the same generator), so one set of directions
serves every class, as an edit means the same offset in w whatever the class. The mapping runs in batches; the mean and
covariance are accumulated batch by batch (float32 batches, float64 running sums) and the
[w_dim, w_dim] covariance is diagonalised with torch.linalg.eigh. Components come out unit
length, mutually orthogonal and sorted by explained variance; `stdev` is the square root of
each eigenvalue, so an edit of strength s moves ws by s standard deviations:
    ws[:, start:end] += s * stdev[c] * components[c]

PGGAN has no w space (its "ws" is just the normalised z), so, as GANSpace does for
non-StyleGAN models, the PCA is of an early activation, the flattened output of the 4x4 block
[N, C * 16], and each principal direction is transferred to z by linear regression: with x the
activations' PCA coordinates [N, K] and z the sampled latents [N, z_dim], U = lstsq(x, z) [K, z_dim]
and component c is U[c] / |U[c]|: the z direction along which activation coordinate c grows.
These z directions are unit length but not orthogonal; `stdev` is the spread of the sampled z
along each one (about 1), and `explained_variance` is that of the activations. Edits act on z
before the mapping (which re-normalises z onto the sphere and applies truncation):
    ws = mapping(z + sum(s * stdev[c] * components[c]), psi)
To bound memory, the activations of at most ACTIVATION_BUDGET / (C * 16) samples are kept; up to
EIGH_MAX_DIM dimensions the covariance is diagonalised exactly, above that a randomised SVD (seeded,
so deterministic) finds the top components. At most min(components, z_dim) components are kept.

Results are cached as `<model>/directions/directions-<key>.npz` (numpy arrays plus a JSON
metadata string; loaded with allow_pickle=False). The key hashes the bytes of G.safetensors and
the settings, so a changed model never reuses stale directions. A read-only model folder falls
back to the user cache folder (gan.io.cache: $GAN_CACHE_DIR, default ~/.cache/gan-latent-explorer); if neither
can be written the directions are still returned, with a warning.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gan.io.cache import user_cache_dir
from gan.io.checkpoint import G_NAME

from .session import DirectionSettings, ExplorerError

log = logging.getLogger(__name__)

METHOD_VERSION = 1              # bump when the computation changes: old cache files are then ignored
DEFAULT_BATCH = 5000            # latents per mapping pass (fastest on CPU for w_dim 512)
ACTIVATION_BUDGET = 1 << 26     # PGGAN: at most this many activation floats (256 MB) are kept
EIGH_MAX_DIM = 512              # PGGAN: exact covariance eigendecomposition up to this many dims
CACHE_SUBDIR = "directions"

ProgressCallback = Callable[[float, str], None]   # progress(fraction in [0, 1], text)


@dataclass(frozen=True)
class Directions:
    """Principal directions of one model.

    components [K, D] float32, unit rows; D = w_dim (space "w") or z_dim (space "z", PGGAN)
    stdev [K]: standard deviation of the sampled latents along each component (one "sigma")
    explained_variance [K], explained_variance_ratio [K]: of w (StyleGAN2) or of the activations (PGGAN)
    mean [D]: mean sampled latent
    """
    components: np.ndarray
    stdev: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray
    space: str                      # "w": edits add to ws; "z": edits add to z before the mapping
    arch: str
    settings: DirectionSettings
    weights_hash: str = ""
    activation: str = ""            # PGGAN: the layer whose activations were analysed
    seconds: float = 0.0            # time the computation took
    source: str = ""                # cache file it was loaded from / written to ("" = not cached)

    @property
    def num_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    def offset(self, component: int, strength: float) -> torch.Tensor:
        """strength * stdev[c] * components[c], float32 [D]."""
        if not 0 <= component < self.num_components:
            raise ExplorerError(f"unknown component {component}: this model has components "
                                f"0..{self.num_components - 1}")
        return torch.from_numpy(self.components[component] * np.float32(self.stdev[component] * strength))

    def table(self, limit: int | None = None, labels: dict[int, str] | None = None) -> str:
        """Plain-text table of explained variance (what `python -m explorer directions` prints), with
        each direction's label when it has one."""
        if self.settings.method == "sefa":
            head = f"{self.arch} directions: {self.activation} (closed form; sigma from sampled latents)"
        else:
            what = "w" if self.space == "w" else f"{self.activation} activations"
            head = f"{self.arch} directions: PCA of {self.settings.samples} samples ({what})"
        lines = [f"{head}, {self.num_components} components of {self.dim}-d {self.space}",
                 f"{'component':>9}  {'sigma':>9}  {'variance':>10}  {'ratio %':>8}  {'cumul. %':>8}"]
        cum = 0.0
        n = self.num_components if limit is None else min(limit, self.num_components)
        for c in range(n):
            cum += float(self.explained_variance_ratio[c])
            label = (labels or {}).get(c, "")
            lines.append(f"{c:>9d}  {self.stdev[c]:>9.4f}  {self.explained_variance[c]:>10.4g}  "
                         f"{100 * self.explained_variance_ratio[c]:>8.2f}  {100 * cum:>8.2f}" + (f"  {label}" if label else ""))
        return "\n".join(lines)

    # ---- npz (no pickles) --------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"method_version": METHOD_VERSION, "space": self.space, "arch": self.arch,
                "settings": self.settings.to_dict(), "weights_hash": self.weights_hash,
                "activation": self.activation, "seconds": self.seconds}

    def save(self, path: str | Path) -> Path:
        from gan.io.fileio import atomic_write

        def write(tmp):
            with open(tmp, "wb") as fh:
                np.savez(fh, components=self.components, stdev=self.stdev,
                         explained_variance=self.explained_variance,
                         explained_variance_ratio=self.explained_variance_ratio, mean=self.mean,
                         metadata=np.array(json.dumps(self.metadata())))
        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> "Directions":
        """Raises ValueError/OSError for an unreadable or foreign file."""
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["metadata"]))
            arrays = {k: np.asarray(f[k], dtype=np.float32) for k in
                      ("components", "stdev", "explained_variance", "explained_variance_ratio", "mean")}
        if meta.get("method_version") != METHOD_VERSION:
            raise ValueError(f"method version {meta.get('method_version')} != {METHOD_VERSION}")
        k, d = arrays["components"].shape
        if any(arrays[n].shape != (k,) for n in ("stdev", "explained_variance", "explained_variance_ratio")) \
                or arrays["mean"].shape != (d,):
            raise ValueError("inconsistent array shapes")
        return cls(**arrays, space=meta["space"], arch=meta["arch"],
                   settings=DirectionSettings.from_dict(meta["settings"]), weights_hash=meta["weights_hash"],
                   activation=meta.get("activation", ""), seconds=float(meta.get("seconds", 0.0)),
                   source=str(path))


# ---- applying edits --------------------------------------------------------------------------

def apply_edits_ws(ws: torch.Tensor, edits, directions: Directions) -> torch.Tensor:
    """ws [N, num_ws, w_dim] + each edit's offset on its layer range. Returns a new tensor;
    strength-0 edits are skipped, so no edits (or only zero ones) return ws bit-identical."""
    if directions.space != "w":
        raise ExplorerError("these directions act in z (PGGAN): use apply_edits_z")
    if ws.ndim != 3 or ws.shape[2] != directions.dim:
        raise ValueError(f"ws must be [N, num_ws, {directions.dim}], got {list(ws.shape)}")
    out = ws.clone()
    for e in edits:
        start, end = e.layer_range(ws.shape[1])
        if e.strength != 0:
            out[:, start:end] += directions.offset(e.component, e.strength).to(ws.device, ws.dtype)
    return out


def apply_edits_z(z: torch.Tensor, edits, directions: Directions, num_ws: int = 1) -> torch.Tensor:
    """z [N, z_dim] + each edit's offset (PGGAN; its single layer range must cover layer 0)."""
    if directions.space != "z":
        raise ExplorerError("these directions act in w (StyleGAN2): use apply_edits_ws")
    if z.ndim != 2 or z.shape[1] != directions.dim:
        raise ValueError(f"z must be [N, {directions.dim}], got {list(z.shape)}")
    out = z.clone()
    for e in edits:
        e.layer_range(num_ws)
        if e.strength != 0:
            out += directions.offset(e.component, e.strength).to(z.device, z.dtype)
    return out


# ---- computing -------------------------------------------------------------------------------

def max_components(G, settings: DirectionSettings) -> int:
    """How many components `compute_directions` returns for this model (no computation)."""
    if settings.method == "sefa":
        return min(settings.components, G.z_dim if G.arch == "pggan" else G.w_dim)
    if G.arch == "pggan":
        dim = _activation_dim(G)
        kept = min(settings.samples, max(1, ACTIVATION_BUDGET // dim))
        # Beyond z_dim components the regressed z directions are linearly dependent: no use.
        return max(1, min(settings.components, dim, G.z_dim, kept - 1))
    return min(settings.components, G.w_dim)


def _first_block(G):
    return getattr(G, f"b{G.resolutions[0]}")


@torch.inference_mode()
def _activation_dim(G) -> int:
    device = next(G.parameters()).device
    out = _first_block(G)(torch.ones(1, G.z_dim, device=device))
    return int(np.prod(out.shape[1:]))


def _sign_fix(vectors: torch.Tensor) -> torch.Tensor:
    """Rows with their largest-magnitude entry positive: eigenvectors' signs are arbitrary."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    return vectors * torch.sign(vectors.gather(1, idx))


def _report(progress: ProgressCallback | None, bar, fraction: float, text: str, step: int = 0) -> None:
    if bar is not None and step:
        bar.update(step)
    if progress is not None:
        progress(min(1.0, max(0.0, fraction)), text)


@torch.inference_mode()
def compute_directions(G, settings: DirectionSettings = DirectionSettings(), progress: ProgressCallback | None = None,
                       batch: int = DEFAULT_BATCH, show_bar: bool = True, weights_hash: str = "") -> Directions:
    """The directions of a generator: PCA (see the module docstring), or SeFa when settings.method is
    "sefa" (explorer/sefa.py; well under a second, no bar). Shows a tqdm bar (unless show_bar is False)
    and calls progress(fraction, text) as the batches go."""
    settings.validate()
    if settings.method == "sefa":
        return _sefa_directions(G, settings, weights_hash)
    from tqdm.auto import tqdm
    t0 = time.perf_counter()
    bar = tqdm(total=settings.samples, unit="latent", desc="PCA directions", disable=not show_bar, leave=False)
    try:
        if G.arch == "pggan":
            out = _pggan_directions(G, settings, progress, bar, batch)
        else:
            out = _w_directions(G, settings, progress, bar, batch)
    finally:
        bar.close()
    _report(progress, None, 1.0, "directions ready")
    return Directions(**out, arch=G.arch, settings=settings, weights_hash=weights_hash,
                      seconds=time.perf_counter() - t0)


SEFA_SIGMA_SAMPLES = 10_000    # latents that measure one SeFa sigma (more changes it by < 1%)


def _sefa_directions(G, settings: DirectionSettings, weights_hash: str) -> Directions:
    from .sefa import compute_sefa
    start, end = settings.sefa_start, settings.sefa_end
    if G.arch != "pggan" and (end if end is not None else G.num_ws) > G.num_ws:
        raise ExplorerError(f"SeFa layer range {start}:{end} is outside the model's 0:{G.num_ws}")
    d = compute_sefa(G, start, end, components=settings.components,
                     samples=min(settings.samples, SEFA_SIGMA_SAMPLES), seed=settings.seed).to_directions()
    return dataclasses.replace(d, settings=settings, weights_hash=weights_hash)


def _w_directions(G, settings, progress, bar, batch) -> dict:
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(settings.seed)
    sample_w = G.mapping.to_w  # z [N, z_dim] -> w [N, w_dim], untruncated
    n_total, dim = settings.samples, G.w_dim
    shift = None                                        # first batch's mean: keeps float32 sums accurate
    total = torch.zeros(dim, dtype=torch.float64)
    cov = torch.zeros(dim, dim, dtype=torch.float64)
    done = 0
    while done < n_total:
        n = min(batch, n_total - done)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        c = None
        if G.mapping.c_dim:   # conditional: a uniformly random class per sample, one-hot [n, c_dim]
            classes = torch.randint(G.mapping.c_dim, (n,), generator=gen)
            c = torch.nn.functional.one_hot(classes, G.mapping.c_dim).to(device, torch.float32)
        w = sample_w(z, c).to(torch.float32)
        if shift is None:
            shift = w.mean(dim=0)
        d = w - shift
        total += d.sum(dim=0).double().cpu()
        cov += (d.t() @ d).double().cpu()
        done += n
        _report(progress, bar, 0.95 * done / n_total, f"mapping {done}/{n_total} latents", n)
    mean_d = total / n_total
    cov = (cov - n_total * torch.outer(mean_d, mean_d)) / max(1, n_total - 1)
    evals, evecs = torch.linalg.eigh(cov)               # ascending
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    k = min(settings.components, dim)
    comps = _sign_fix(evecs[:, :k].t())
    return dict(components=comps.float().numpy(), stdev=evals[:k].sqrt().float().numpy(),
                explained_variance=evals[:k].float().numpy(),
                explained_variance_ratio=(evals[:k] / evals.sum().clamp_min(1e-30)).float().numpy(),
                mean=(shift.double().cpu() + mean_d).float().numpy(), space="w")


def _pggan_directions(G, settings, progress, bar, batch) -> dict:
    device = next(G.parameters()).device
    block = _first_block(G)
    dim = _activation_dim(G)
    n_total = min(settings.samples, max(2, ACTIVATION_BUDGET // dim))
    k = max_components(G, settings)
    gen = torch.Generator().manual_seed(settings.seed)
    zs, acts = [], []
    done = 0
    while done < n_total:
        n = min(batch, n_total - done)
        z = torch.randn(n, G.z_dim, generator=gen)
        ws = G.mapping(z.to(device))                   # normalised z, no truncation
        acts.append(block(ws[:, 0]).flatten(1).to(torch.float32).cpu())
        zs.append(z)
        done += n
        _report(progress, bar, 0.8 * done / n_total, f"activations {done}/{n_total} latents", n)
    bar.update(settings.samples - n_total)             # samples beyond the memory budget are not drawn
    z, y = torch.cat(zs).double(), torch.cat(acts).double()
    mean = y.mean(dim=0)
    y -= mean
    total_var = y.square().sum() / max(1, n_total - 1)
    _report(progress, None, 0.85, f"PCA of {dim}-d activations")
    if dim <= EIGH_MAX_DIM:
        evals, evecs = torch.linalg.eigh(y.t() @ y / max(1, n_total - 1))
        evals, evecs = evals.flip(0)[:k].clamp_min(0), evecs.flip(1)[:, :k]
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            _, s, v = torch.svd_lowrank(y, q=min(k + 16, dim, n_total), niter=6)
        evals, evecs = (s[:k].square() / max(1, n_total - 1)), v[:, :k]
    evecs = _sign_fix(evecs.t()).t()                  # [dim, k]
    coords = y @ evecs                                 # [n, k] PCA coordinates
    _report(progress, None, 0.95, "regressing to z")
    u = torch.linalg.lstsq(coords, z).solution         # [k, z_dim]: z ~ coords @ u
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-12)
    stdev = (z @ u.t()).std(dim=0)
    return dict(components=u.float().numpy(), stdev=stdev.float().numpy(),
                explained_variance=evals.float().numpy(),
                explained_variance_ratio=(evals / total_var.clamp_min(1e-30)).float().numpy(),
                mean=z.mean(dim=0).float().numpy(), space="z",
                activation=f"b{G.resolutions[0]} output [{dim}]")


# ---- cache -----------------------------------------------------------------------------------

_HASH_MEMO: dict[tuple, str] = {}


def weights_hash(model_folder: str | Path) -> str:
    """sha256 of the folder's G.safetensors bytes (memoised by path, size and mtime)."""
    path = Path(model_folder) / G_NAME
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def cache_key(whash: str, settings: DirectionSettings) -> str:
    blob = json.dumps({"weights": whash, "settings": settings.to_dict(), "method": METHOD_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_paths(model_folder: str | Path, key: str, cache_dir: str | Path | None = None) -> list[Path]:
    """Where a cache file is looked for, in order: next to the model, then the user cache."""
    name = f"directions-{key}.npz"
    user = Path(cache_dir) if cache_dir is not None else user_cache_dir()
    return [Path(model_folder) / CACHE_SUBDIR / name, user / CACHE_SUBDIR / name]


def find_cached(model_folder: str | Path, G, settings: DirectionSettings,
                cache_dir: str | Path | None = None) -> Directions | None:
    """The cached directions of this model's current weights and these settings, or None."""
    whash = weights_hash(model_folder)
    for path in cache_paths(model_folder, cache_key(whash, settings), cache_dir):
        if not path.is_file():
            continue
        try:
            d = Directions.load(path)
        except (ValueError, OSError, KeyError) as e:
            log.warning("ignoring unreadable directions cache %s (%s)", path, e)
            continue
        if d.weights_hash == whash and d.settings == settings and d.arch == G.arch:
            return d
        log.warning("ignoring directions cache %s: it belongs to other weights or settings", path)
    return None


def store(directions: Directions, model_folder: str | Path, cache_dir: str | Path | None = None,
          beside_model: bool = True) -> Directions:
    """Cache directions next to the model (unless beside_model is False: a folder that is not ours
    to write, e.g. a public server's uploaded model), else in the user cache; returns them with
    `source` set (left "" with a warning when no place is writable)."""
    paths = cache_paths(model_folder, cache_key(directions.weights_hash, directions.settings), cache_dir)
    paths = paths if beside_model else paths[1:]
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            directions.save(path)
        except OSError as e:
            log.info("cannot write directions cache %s (%s)", path, e.strerror or e)
            continue
        return dataclasses.replace(directions, source=str(path))
    log.warning("directions not cached: %s not writable", " nor ".join(str(p.parent) for p in paths))
    return directions


# ---- direction labels ----------------------------------------------------------------------------
# {component: label} in `labels-<key>.json` beside the directions cache file of the same key (so a model's
# author ships named directions by committing that file); the user cache's copy wins, as it holds what
# this user saved over a folder that is not theirs to write.

def labels_paths(model_folder: str | Path, settings: DirectionSettings, cache_dir: str | Path | None = None):
    key = cache_key(weights_hash(model_folder), settings)
    return [p.with_name(f"labels-{key}.json") for p in cache_paths(model_folder, key, cache_dir)]


def load_labels(model_folder: str | Path, settings: DirectionSettings,
                cache_dir: str | Path | None = None) -> dict[int, str]:
    from .session import labels_from_json
    labels: dict[int, str] = {}
    for path in labels_paths(model_folder, settings, cache_dir):   # the model's first, the user's over it
        if not path.is_file():
            continue
        try:
            labels.update(labels_from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as e:   # ExplorerError and JSON errors are ValueErrors
            log.warning("ignoring unreadable direction labels %s (%s)", path, e)
    return labels


def save_labels(model_folder: str | Path, settings: DirectionSettings, labels: dict[int, str],
                cache_dir: str | Path | None = None, beside_model: bool = True) -> str:
    """Write {component: label} where store() would write the directions; returns the path ("" when no
    place was writable, with a warning)."""
    from gan.io.fileio import atomic_write_json

    from .session import check_label
    clean = {str(int(c)): check_label(t) for c, t in sorted(labels.items()) if check_label(t)}
    paths = labels_paths(model_folder, settings, cache_dir)
    for path in paths if beside_model else paths[1:]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, clean)
        except OSError as e:
            log.info("cannot write direction labels %s (%s)", path, e.strerror or e)
            continue
        return str(path)
    log.warning("direction labels not saved: no writable place")
    return ""


def load_or_compute(model_folder: str | Path, G, settings: DirectionSettings = DirectionSettings(),
                    progress: ProgressCallback | None = None, cache_dir: str | Path | None = None,
                    show_bar: bool = True, beside_model: bool = True) -> Directions:
    """Cached directions for this model and settings, computing (and caching) them when missing
    (beside_model: see store)."""
    settings.validate()
    cached = find_cached(model_folder, G, settings, cache_dir)
    if cached is not None:
        if progress is not None:
            progress(1.0, "directions loaded from cache")
        return cached
    d = compute_directions(G, settings, progress=progress, show_bar=show_bar, weights_hash=weights_hash(model_folder))
    return store(d, model_folder, cache_dir, beside_model)
