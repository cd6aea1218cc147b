"""The explorer engine: one object per loaded model, shared by all users; per-user state is an
`ExplorerState` passed into every call. Plain Python (numpy/torch in, PIL images out), no gradio.
The Engine is every action the explorer offers on one model; what it shows of the resolution stages
(stages.py) and its animations (animation.py) are mixed in from their own files, and the input checks
every entry point shares are in checks.py.

    engine = open_engine("assets/models/x")          # loads once, reused across calls
    state = engine.default_state(seed=42, truncation_psi=0.7)
    image = engine.render(state)                      # PIL image, from an LRU cache when seen before
    state = state.with_edit(component=0, strength=2.0, start=0, end=4)
    strip = engine.stage_strip(state)                 # labelled previews of every resolution stage
    engine.export(state, seeds=[1, 2, 3], out="walk.gif", frames_per_segment=30, loop=True)

Seeds -> z as the official tools (gan.seeds.z_from_seeds); z -> ws through the mapping with
truncation (a conditional model's mapping also takes the state's class as a one-hot label c, as the
official generate.py's --class); StyleGAN2: style mixing replaces ws[:, mix_layers] by the mix seed's ws, then the
edits add their offsets in w; PGGAN: the edits add to z before the mapping (see directions.py).
Everything runs under torch.inference_mode(). With noise_mode "random" the noise is drawn from
torch's generator seeded with the state's seed, so every state renders reproducibly.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan.io.checkpoint import G_NAME, load_model, resolve_model_folder
from gan.io.images import image_grid, to_pil, to_uint8, uint8_to_pil
from gan.commands import class_labels
from gan.seeds import z_from_seeds

from . import mixing
from .animation import Animation
from .checks import check_out_path, check_seeds, check_size
from .directions import Directions, ProgressCallback, apply_edits_ws, apply_edits_z, load_or_compute, max_components
from .images import labelled_strip, resize
from .incremental import DEFAULT_BYTES, BlockCache
from .session import DirectionSettings, ExplorerError, ExplorerState
from .stages import Stages

MAX_GRID_SEEDS = 64              # per mixing-grid axis
MAX_PROJECTIONS = 16             # projections (ws and noise maps, their synthesis copies) kept in memory
RENDER_BATCH_PIXELS = 1 << 20   # output pixels per synthesis call when rendering many (<= 32 images)


class Engine(Stages, Animation):
    """A loaded model and everything the explorer does with it. Thread-safe; shared by users.

    model: a model folder (config.json + G.safetensors). cache_size: rendered images kept (LRU,
    keyed by the full state and display options); block_cache_bytes: block outputs kept for
    incremental synthesis (incremental.py). cache_dir: where directions go when the model
    folder is read-only (default ~/.cache/gan-latent-explorer); cache_beside_model False: always
    there, never into the model folder (one that is not ours to write).
    """

    def __init__(self, model: str | Path, device: str | torch.device = "cpu", cache_size: int = 64,
                 cache_dir: str | Path | None = None, show_bars: bool = True, cache_beside_model: bool = True,
                 block_cache_bytes: int = DEFAULT_BYTES):
        self.model_path = resolve_model_folder(model)
        self.G, self.cfg = load_model(self.model_path, device=device)
        self.device = torch.device(device)
        self.cache_size, self.cache_dir, self.show_bars = cache_size, cache_dir, show_bars
        self.cache_beside_model = cache_beside_model
        G = self.G
        self.arch, self.z_dim, self.w_dim, self.num_ws = G.arch, G.z_dim, G.w_dim, G.num_ws
        self.c_dim = int(getattr(G, "c_dim", 0))   # classes of a conditional model; 0: unconditional
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels
        self.stage_resolutions = list(G.stage_resolutions)
        self.supports_style_mixing = bool(G.supports_style_mixing)
        # Images per synthesis call for animations and grids: bigger batches are cheaper per image
        # on CPU (32 at 32 px), bounded by memory at high resolution (4 at 512 px, 1 at 1024 px).
        self.render_batch = max(1, min(32, RENDER_BATCH_PIXELS // self.img_resolution ** 2))
        self._renders: OrderedDict = OrderedDict()
        self._directions: dict[DirectionSettings, Directions] = {}
        self._snapshots: dict[Path, tuple] = {}
        self._projections: OrderedDict = OrderedDict()    # (path, mtime) -> (ws, noise), MAX_PROJECTIONS kept
        self._blocks = BlockCache(block_cache_bytes)      # incremental synthesis (incremental.py)
        self._projected_synthesis: OrderedDict = OrderedDict()   # path -> synthesis copy, MAX_PROJECTIONS kept
        self._lock = threading.RLock()          # render/snapshot caches and torch's global RNG
        self._directions_lock = threading.Lock()  # a long PCA must not block other users' renders

    # ---- description ---------------------------------------------------------------------------
    def info(self) -> dict:
        """JSON-able facts a UI lays itself out from."""
        return {
            "model": str(self.model_path), "arch": self.arch, "img_resolution": self.img_resolution,
            "img_channels": self.img_channels, "z_dim": self.z_dim, "w_dim": self.w_dim, "num_ws": self.num_ws,
            "c_dim": self.c_dim,
            "stage_resolutions": self.stage_resolutions, "supports_style_mixing": self.supports_style_mixing,
            "layer_groups": [[r, ix] for r, ix in mixing.layer_groups(self.G)],
            "mixing_presets": mixing.presets(self.G) if self.supports_style_mixing else {},
            "max_components": max_components(self.G, DirectionSettings()),
            "stage_snapshots": [p.name for p in self.stage_snapshot_folders()],
        }

    def default_state(self, **changes) -> ExplorerState:
        """A state of this model (class 0 of a conditional one unless `class_idx` is given)."""
        changes.setdefault("class_idx", 0 if self.c_dim else None)
        return self.check_state(ExplorerState(model=str(self.model_path)).replace(**changes))

    def num_components(self, settings: DirectionSettings | None = None) -> int:
        return max_components(self.G, settings or DirectionSettings())

    def check_state(self, state: ExplorerState) -> ExplorerState:
        """Validate a state against this model (cheap; nothing computed). Returns it."""
        if not isinstance(state, ExplorerState):
            raise ExplorerError(f"expected an ExplorerState, got {type(state).__name__}")
        state.validate()
        if self.c_dim and state.class_idx is None:
            raise ExplorerError(f"this model is conditional ({self.c_dim} classes): choose a class "
                                f"0..{self.c_dim - 1} (--class on the command line)")
        if not self.c_dim and state.class_idx is not None:
            raise ExplorerError(f"class {state.class_idx} given, but this model is unconditional: drop the class")
        if self.c_dim and state.class_idx >= self.c_dim:
            raise ExplorerError(f"class {state.class_idx} is out of range: this model has classes 0..{self.c_dim - 1}")
        k = self.num_components(state.directions)
        for e in state.edits:
            if e.component >= k:
                raise ExplorerError(f"unknown component {e.component}: this model has components 0..{k - 1} "
                                    f"(with {state.directions.components} requested)")
            e.layer_range(self.num_ws)
        if state.mix_layers:
            mixing.require_style_mixing(self.G)
            bad = [i for i in state.mix_layers if i >= self.num_ws]
            if bad:
                raise ExplorerError(f"mixing layer {bad[0]} is outside this model's layers 0-{self.num_ws - 1}")
        return state

    # ---- latents -------------------------------------------------------------------------------
    def z(self, seeds) -> torch.Tensor:
        """[N, z_dim] float32 on the engine's device, as the official tools make them."""
        return z_from_seeds(check_seeds(seeds), self.z_dim).to(self.device)

    def directions(self, settings: DirectionSettings | None = None,
                   progress: ProgressCallback | None = None) -> Directions:
        """PCA directions for these settings: from memory, the cache file, or computed (slow; shows
        progress through tqdm and progress(fraction, text))."""
        settings = (settings or DirectionSettings()).validate()
        with self._directions_lock:
            if settings not in self._directions:
                self._directions[settings] = load_or_compute(self.model_path, self.G, settings, progress=progress,
                                                             cache_dir=self.cache_dir, show_bar=self.show_bars,
                                                             beside_model=self.cache_beside_model)
            elif progress is not None:
                progress(1.0, "directions ready")
            return self._directions[settings]

    def mapping(self, G, z: torch.Tensor, state: ExplorerState) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] through G's mapping with the state's truncation and,
        for a conditional G, the state's class as its label (the state is already checked)."""
        c = class_labels(G, state.class_idx, z.shape[0])
        label = {} if c is None else {"c": c.to(z.device)}   # PGGAN's mapping takes no label
        return G.mapping(z, **label, truncation_psi=state.truncation_psi)

    @torch.inference_mode()
    def ws_from_z(self, z: torch.Tensor, state: ExplorerState) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] with the state's class, truncation, mixing and edits."""
        dirs = self.directions(state.directions) if any(e.strength != 0 for e in state.edits) else None
        if self.arch == "pggan":
            if dirs is not None:
                z = apply_edits_z(z, state.edits, dirs, self.num_ws)
            return self.mapping(self.G, z, state)
        return self.styled(self.mapping(self.G, z, state), state, dirs)

    @torch.inference_mode()
    def styled(self, ws: torch.Tensor, state: ExplorerState, dirs: Directions | None = None) -> torch.Tensor:
        """StyleGAN2: ws [N, num_ws, w_dim] with the state's style mixing and edits applied."""
        if dirs is None and any(e.strength != 0 for e in state.edits):
            dirs = self.directions(state.directions)
        if state.is_mixed:
            ws_b = self.mapping(self.G, self.z([state.mix_seed]), state)
            ws = mixing.mix_ws(ws, ws_b, state.mix_layers)
        if dirs is not None:
            ws = apply_edits_ws(ws, state.edits, dirs)
        return ws

    # ---- projected images ----------------------------------------------------------------------
    def projection(self, path: str | Path) -> tuple[torch.Tensor, dict]:
        """(ws [1, num_ws, w_dim], noise maps) of a projection file, checked against this model and
        memoised by path and modification time."""
        from .project import load_projection
        path = Path(path)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise ExplorerError(f"projection file {path.name} is missing (it belongs beside its session)") from None
        key = (str(path.resolve()), stamp)
        with self._lock:
            if key not in self._projections:
                self._projections[key] = load_projection(path, self.G)
                self._projected_synthesis.pop(str(path.resolve()), None)
                while len(self._projections) > MAX_PROJECTIONS:   # a public server sees many users' projections
                    self._projections.popitem(last=False)
            self._projections.move_to_end(key)
            return self._projections[key]

    def project(self, target, out: str | Path, state: ExplorerState | None = None, space: str = "w+",
                steps: int = 500, seed: int = 0, use_discriminator: bool = True,
                progress: ProgressCallback | None = None, name: str | None = None, lpips=None):
        """Project an image (a path or encoded bytes; loaded as training images are: centre crop, resize,
        channels) into this model: the projection file is written to `out` (.safetensors) and the state
        returned shows it (`state`'s settings kept; seed, blend and edits no longer shape the image).
        Uses the model's discriminator features when the folder has a D, and LPIPS when `lpips` is given
        (an explorer.lpips.LPIPS, or the path of its VGG16 weights file). Returns (state, ProjectionResult,
        the loaded Target)."""
        from .project import load_discriminator, project, save_projection
        from .targets import target_for
        out = check_out_path(out, (".safetensors",))
        target = target_for(self.G, target, name)
        D = load_discriminator(self.model_path) if use_discriminator else None
        result = project(self.G, target.image, space=space, steps=steps, seed=seed, D=D, progress=progress,
                         vgg16=lpips)
        save_projection(result, out)
        state = (state or self.default_state()).replace(projection=str(out), edits=(), blend=0.0)
        return self.check_state(state), result, target

    def own_ws(self, state: ExplorerState) -> torch.Tensor:
        """ws [1, num_ws, w_dim] of the state's own image, unblended: its seed's, or its projection's
        (with mixing and edits; a PGGAN projection is its normalised z, edited as a seed's z is)."""
        if state.projection is None:
            return self.ws_from_z(self.z([state.seed]), state)
        ws, _ = self.projection(state.projection)
        if self.arch == "pggan":   # its latent is the projected z itself: no truncation moves it away
            return self.ws_from_z(ws[:, 0].to(self.device), state.replace(truncation_psi=1.0))
        return self.styled(ws.to(self.device), state)

    def synthesis_for(self, state: ExplorerState):
        """What renders the state's image: the generator's synthesis, or (a projection rendered with
        noise mode const) a copy sharing its weights whose const noise maps are the projection's."""
        if state.projection is None or state.noise_mode != "const" or self.arch == "pggan":
            return self.G.synthesis
        _, noise = self.projection(state.projection)
        key = str(Path(state.projection).resolve())
        with self._lock:
            if key not in self._projected_synthesis:
                from .project import synthesis_with_noise
                self._projected_synthesis[key] = synthesis_with_noise(self.G, noise)
                while len(self._projected_synthesis) > MAX_PROJECTIONS:
                    self._projected_synthesis.popitem(last=False)
            self._projected_synthesis.move_to_end(key)
            return self._projected_synthesis[key]

    def ws(self, state: ExplorerState, seeds=None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] of `seeds` (default: the state's own image, blended with its blend seed
        when it has one) under the state's settings."""
        self.check_state(state)
        if seeds is not None:
            return self.ws_from_z(self.z(seeds), state)
        return self.blended_ws(state) if state.is_blended else self.own_ws(state)

    @torch.inference_mode()
    def blended_ws(self, state: ExplorerState) -> torch.Tensor:
        """The state's image blended into its blend seed's by state.blend, as the StyleGAN3 visualizer's
        latent widget: space "w" lerps the two images' ws (each with the state's class, truncation,
        mixing and edits), "z" slerps the two z before the mapping. blend 1 is the blend seed's image
        exactly (and 0, the state's own)."""
        from .interpolate import lerp, slerp
        t = state.blend
        if t == 1:
            return self.ws_from_z(self.z([state.blend_seed]), state)
        if state.blend_space == "z":
            if state.projection is not None:
                raise ExplorerError("a projected image has no z to slerp: blend it in W")
            z = self.z([state.seed, state.blend_seed])
            return self.ws_from_z(slerp(z[:1], z[1:], t), state)
        return lerp(self.own_ws(state), self.ws_from_z(self.z([state.blend_seed]), state), t)

    # ---- rendering -----------------------------------------------------------------------------
    @torch.inference_mode()
    def render_ws(self, ws: torch.Tensor, noise_mode: str = "const", noise_seed: int = 0,
                  return_stages: bool = False, batch: int | None = None, synthesis=None):
        """ws [N, num_ws, w_dim] -> images [N, C, H, W] float in about [-1, 1] on the CPU (and, with
        return_stages, a list of [N, C, r, r] per stage). Rendered `batch` at a time (default: the
        engine's `render_batch`) by `synthesis` (default: the generator's; see synthesis_for)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        batch = batch or self.render_batch
        imgs, stages = [], []
        for i in range(0, ws.shape[0], batch):
            chunk = ws[i:i + batch].to(self.device)
            kw = dict(noise_mode=noise_mode, return_stages=return_stages)
            if noise_mode == "random":  # reproducible: seeded per call from the state
                with self._lock, torch.random.fork_rng(devices=[]):
                    torch.manual_seed(noise_seed + i)
                    out = (synthesis or self.G.synthesis)(chunk, **kw)
            else:
                out = (synthesis or self.G.synthesis)(chunk, **kw)
            img, st = out if return_stages else (out, None)
            imgs.append(img.cpu())
            if st is not None:
                stages.append([s.cpu() for s in st])
        img = torch.cat(imgs)
        if not return_stages:
            return img
        return img, [torch.cat([b[k] for b in stages]) for k in range(len(stages[0]))]

    @torch.inference_mode()
    def render_tensor(self, state: ExplorerState) -> torch.Tensor:
        """The state's image, [1, C, H, W] float in about [-1, 1] (the image itself is not cached; the
        blocks are: a change of ws from layer k on re-runs only the blocks from the first that reads
        ws[k], see incremental.py, bitwise the same as a full render)."""
        ws = self.ws(state)
        synthesis = self.synthesis_for(state)
        if self.arch == "pggan" or not BlockCache.applies(synthesis, ws):
            return self.render_ws(ws, state.noise_mode, noise_seed=state.seed, synthesis=synthesis)
        return self._block_render(synthesis, ws, state)

    def _block_render(self, synthesis, ws: torch.Tensor, state: ExplorerState, until: int | None = None):
        """BlockCache.render of the state's ws, its 'random' noise seeded as render_ws seeds it."""
        if state.noise_mode != "random":
            return self._blocks.render(synthesis, ws, state.noise_mode, None, until=until)
        with self._lock, torch.random.fork_rng(devices=[]):
            torch.manual_seed(state.seed)
            return self._blocks.render(synthesis, ws, "random", state.seed, until=until)

    @staticmethod
    def _render_key(state: ExplorerState, size: int | None = None, resample: str | None = None) -> tuple:
        """The render cache's key of the state's image at `size` (None, None: at the model's size)."""
        return ("render", state, size, resample)

    def render(self, state: ExplorerState, size: int | None = None, resample: str | None = None) -> Image.Image:
        """The state's image as PIL ('RGB' or 'L'), optionally scaled to `size` px. LRU-cached by the
        full state and display options, and the model-size image by the state alone, so one state
        shown at several sizes (the main image and a thumbnail) costs one synthesis; each call returns a copy.

        Every image of a state comes from a batch-1 synthesis of that state alone: a batch of several
        states would round differently in the convolutions (by up to one grey level in 8 bits), and a
        saved session must reload to exactly the pixels shown. (On a CPU, batching does not pay at
        128 px and up anyway: per image, batch 16 is slower than batch 1 there.)"""
        check_size(size)
        key = self._render_key(state, size, resample)
        with self._lock:
            if key in self._renders:
                self._renders.move_to_end(key)
                return self._renders[key].copy()
        image = resize(self._base(state), size, resample)
        self._remember(key, image)
        return image.copy()

    def _base(self, state: ExplorerState, tensor: torch.Tensor | None = None) -> Image.Image:
        """The state's image at the model's size (cached; rendered unless `tensor`, its synthesis
        output [1, C, H, W], is given)."""
        key = self._render_key(state)
        with self._lock:
            if key in self._renders:
                self._renders.move_to_end(key)
                return self._renders[key]
        image = uint8_to_pil(to_uint8(self.render_tensor(state) if tensor is None else tensor)[0])
        self._remember(key, image)
        return image

    def render_array(self, state: ExplorerState) -> np.ndarray:
        """The state's image as np.uint8 [H, W, C] (C = 1 or 3)."""
        return np.asarray(self.render(state)).reshape(self.img_resolution, self.img_resolution, -1)

    def _remember(self, key, image: Image.Image) -> None:
        with self._lock:
            self._renders[key] = image
            self._renders.move_to_end(key)
            while len(self._renders) > self.cache_size:
                self._renders.popitem(last=False)

    def clear_cache(self) -> None:
        with self._lock:
            self._renders.clear()
        self._blocks.clear()

    # ---- what a direction does ---------------------------------------------------------------------
    @torch.inference_mode()
    def direction_preview(self, state: ExplorerState, component: int, sigmas=(-3, -2, -1, 0, 1, 2, 3),
                          size: int | None = None, resample: str | None = None) -> Image.Image:
        """The state's image with direction `component` set to each strength in `sigmas` (its other edits
        kept; on the layers of its current edit, else all), side by side, each labelled "-3σ" ... "+3σ".
        One batched synthesis call: a preview, so its tiles may differ from render() by a rounding level."""
        check_size(size)
        if not sigmas or len(sigmas) > 16:
            raise ExplorerError("a direction preview shows 1 to 16 strengths")
        self.check_state(state)
        old = next((e for e in state.edits if e.component == component), None)
        start, end = old.layer_range(self.num_ws) if old else (0, self.num_ws)
        states = [self.check_state(state.with_edit(component, float(s), start, None if end == self.num_ws else end))
                  for s in sigmas]
        ws = torch.cat([self.ws(st) for st in states])
        images = to_pil(self.render_ws(ws, state.noise_mode, noise_seed=state.seed, synthesis=self.synthesis_for(state)))
        return labelled_strip([(resize(img, size, resample), f"{s:+g}σ" if s else "0")
                               for img, s in zip(images, sigmas)])

    def direction_labels(self, settings: DirectionSettings | None = None) -> dict[int, str]:
        """{component: label} shipped with (or saved for) this model's directions of these settings."""
        from .directions import load_labels
        return load_labels(self.model_path, settings or DirectionSettings(), cache_dir=self.cache_dir)

    def name_direction(self, component: int, label: str, settings: DirectionSettings | None = None) -> str:
        """Give direction `component` the stored name `label` ("" removes it), keeping the others; returns
        where the names were saved ("" when nowhere was writable). See save_direction_labels."""
        from .session import check_label
        label = check_label(label)
        labels = self.direction_labels(settings)
        labels.pop(component, None)
        if label:
            labels[component] = label
        return self.save_direction_labels(labels, settings)

    def save_direction_labels(self, labels: dict[int, str], settings: DirectionSettings | None = None) -> str:
        """Store {component: label} beside the model's direction cache (or in the user cache when the
        folder is not ours to write); returns where."""
        from .directions import save_labels
        return save_labels(self.model_path, settings or DirectionSettings(), labels, cache_dir=self.cache_dir,
                           beside_model=self.cache_beside_model)

    # ---- style mixing ----------------------------------------------------------------------------
    def mixing_grid(self, state: ExplorerState, row_seeds, col_seeds, layers=None, preset: str | None = None,
                    size: int | None = None) -> Image.Image:
        """The StyleGAN paper's mixing figure: rows = seeds A, columns = seeds B, cell (a, b) = A's ws
        with `layers` (ws indices, or a preset coarse|middle|fine) taken from B; the sources along the
        top row and down the first column, top-left blank. Truncation, noise mode and edits of the state
        apply to every image (its own seed and mixing do not). Each tile is `size` px (default: the
        model's resolution); the image is (len(cols) + 1) * size wide and (len(rows) + 1) * size high."""
        mixing.require_style_mixing(self.G, "a mixing grid")
        rows = check_seeds(row_seeds, "row seeds", MAX_GRID_SEEDS)
        cols = check_seeds(col_seeds, "column seeds", MAX_GRID_SEEDS)
        layers = mixing.resolve_layers(self.G, layers, preset)
        check_size(size, "tile size")
        state = self.check_state(state.replace(mix_seed=None, mix_layers=()))
        ws_rows, ws_cols = self.ws(state, rows), self.ws(state, cols)
        ws_cells = mixing.grid_ws(ws_rows, ws_cols, layers)
        render = lambda ws: self.render_ws(ws, state.noise_mode, noise_seed=state.seed)  # noqa: E731
        row_tiles, col_tiles, cells = (to_pil(render(ws)) for ws in (ws_rows, ws_cols, ws_cells))
        tiles = [None] + col_tiles  # top row: blank corner, then the column sources
        for i, row_tile in enumerate(row_tiles):
            tiles += [row_tile] + cells[i * len(cols):(i + 1) * len(cols)]
        image = image_grid(tiles, cols=len(cols) + 1, gap=0)
        if size is None or size == self.img_resolution:
            return image
        method = Image.Resampling.NEAREST if size % self.img_resolution == 0 else Image.Resampling.LANCZOS
        return image.resize(((len(cols) + 1) * size, (len(rows) + 1) * size), method)

# ---- shared engines --------------------------------------------------------------------------

MAX_ENGINES = 2
_ENGINES: OrderedDict = OrderedDict()
_ENGINES_LOCK = threading.Lock()


def open_engine(model: str | Path, device: str = "cpu", **kwargs) -> Engine:
    """The shared Engine of a model folder (loaded once; reloaded when G.safetensors changes;
    at most MAX_ENGINES kept). A UI calls open_engine(state.model) in each callback."""
    folder = resolve_model_folder(model).resolve()
    g = folder / G_NAME
    stamp = g.stat().st_mtime_ns if g.exists() else 0
    key = (str(folder), str(device), stamp)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            _ENGINES.move_to_end(key)
            return _ENGINES[key]
    engine = Engine(folder, device=device, **kwargs)
    with _ENGINES_LOCK:
        _ENGINES[key] = engine
        while len(_ENGINES) > MAX_ENGINES:
            _ENGINES.popitem(last=False)
    return engine


def load_session(path: str | Path, device: str = "cpu") -> tuple[Engine, ExplorerState]:
    """A saved session's engine and state, checked against the model."""
    state = ExplorerState.load(path)
    if not state.model:
        raise ExplorerError(f"{path}: the session names no model")
    engine = open_engine(state.model, device)
    return engine, engine.check_state(state)

