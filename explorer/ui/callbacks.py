"""The explorer's callbacks: each reads its widgets and the user's session, makes engine calls and
returns {component: value} ({} = nothing to do). No model logic here: that is explorer.engine."""
from __future__ import annotations

import dataclasses
import random
import threading
import time
from pathlib import Path

import gradio as gr
from PIL import Image

from gan.importers import import_zipped_folder
from gan.io.checkpoint import NETWORK_PICKLE_SUFFIX, read_config, resolve_model_folder
from gan.io.images import to_pil

from ..engine import Engine, open_engine
from ..keyframes import THIS
from ..session import MAX_SEED, ExplorerError, ExplorerState
from .models import ModelRoots
from .widgets import clamp, notify

DISPLAY_SIZE = 512                 # px: the main image (small models are upscaled, nearest)
THUMB_SIZE = 160                   # px: A / B / mixed thumbnails
STAGE_SIZE = 128                   # px: each resolution-stage preview
MAX_DIRECTIONS = 32                # direction sliders at most
DIRECTIONS_STEP = 8                # shown at first, and added per "more directions" click
DEFAULT_PSI = 0.7
PSI_RANGE = (0.0, 1.5)
STRENGTH_RANGE = 5.0               # sigmas
EXPORT_KEEP_S = 3600               # exported files are deleted after an hour
FRAMES_RANGE, FPS_RANGE = (1, 120), (1, 60)     # the export sliders
MAX_UPLOAD_MB = 1024               # default size limit of an uploaded model (--max-upload-mb)
UPLOAD_SUFFIXES = (NETWORK_PICKLE_SUFFIX, ".zip")


class UserSession:
    """One user's ExplorerState behind a lock. Gradio hands a gr.State's value to callbacks by
    reference and renders run several at a time, so two events of one user must not interleave:
    the later one would start from the older state, and its image could arrive first."""

    def __init__(self, state: ExplorerState):
        self.state = state
        self.lock = threading.RLock()
        # When the image shown is an early preview of state's: the tab it was made for (Callbacks.finish
        # renders the rest), and the asyncio task doing so (layout.hot).
        self.previewed: str | None = None
        self.rest = None


def corrected(widget, used, typed) -> dict:
    """{widget: used} when the value used differs from the one typed, else {}: a widget is set only
    to correct it, never to the value it already shows (that would pull a slider back from where
    it is being dragged to, while the newer value's render is queued)."""
    return {widget: used} if used != typed else {}


def auto_keyframes(seed: int) -> str:
    return ",".join(str(min(MAX_SEED, seed + i)) for i in range(4))


def model_label(engine: Engine, name: str, render_s: float | None = None) -> str:
    import html
    kind = {"stylegan2": "StyleGAN2", "pggan": "PGGAN"}.get(engine.arch, engine.arch)
    colour = "RGB" if engine.img_channels == 3 else "greyscale"
    layers = f"{engine.num_ws} style layers" if engine.num_ws > 1 else "one latent for all layers"
    classes = f" · {engine.c_dim} classes" if engine.c_dim else ""
    speed = "" if render_s is None else f" · renders in {render_s * 1000:.0f} ms on this server"
    return (f"**{html.escape(name)}** · {kind} · {engine.img_resolution}×{engine.img_resolution} "
            f"{colour} · {layers} · z {engine.z_dim}{classes}{speed}")


def display_name(folder: str | Path, ref: str) -> str:
    """What the page calls a model: its ref, an imported one by the file it came from."""
    if not ref.startswith("imported/"):
        return ref
    source = read_config(folder)[1].get("source")
    if isinstance(source, dict) and isinstance(source.get("file"), str):
        return f"{source['file']} (imported)"
    return ref


class Callbacks:
    """Mixed into ExplorerUI, which provides the components (self.image, ...) and self.roots."""
    roots: ModelRoots

    # ---- engines and images ------------------------------------------------------------------
    def engine_of(self, folder: str | Path) -> Engine:
        return open_engine(folder, **self.roots.engine_kwargs(Path(folder)))

    def engine(self, state: ExplorerState | None) -> Engine:
        if state is None:
            raise ExplorerError("no model loaded: choose one in the Model box")
        return self.engine_of(state.model)

    def panels(self, engine: Engine, state: ExplorerState, view: str) -> dict:
        """The image and the open tab's images (only those: the other tabs' are not computed). One
        synthesis per distinct state: the stages' pass also gives the image, and the main image and the
        'Mixed' thumbnail are one state at two sizes (see Engine.render)."""
        out = {}
        if view == "stages":    # first: its forward pass leaves the image in the render cache
            out[self.stages] = [(s.image, s.label) for s in engine.stage_previews(state, size=STAGE_SIZE)]
        out[self.image] = engine.render(state, size=DISPLAY_SIZE)
        if view == "stages":
            if engine.stage_snapshot_folders():
                out[self.snapshots] = [(s.image, s.label)
                                       for s in engine.stage_snapshots(state, size=STAGE_SIZE)]
        elif view == "mixing" and engine.supports_style_mixing:
            plain = state.replace(mix_layers=())
            out[self.mix_a] = engine.render(plain, size=THUMB_SIZE)
            seed_b = plain.replace(seed=state.mix_seed or 0, projection=None, blend=0.0)  # B is a seed's image
            out[self.mix_b] = engine.render(seed_b, size=THUMB_SIZE)
            out[self.mix_out] = engine.render(state, size=THUMB_SIZE)
        return out

    def change(self, user: UserSession | None, view: str, make) -> dict:
        """make(state, engine) -> the new state, under the user's lock; the images it changes ({} when
        the state is the one shown)."""
        if user is None:
            return {}
        with user.lock:   # the render lane is held by the event (layout.hot)
            engine = self.engine(user.state)
            new = engine.check_state(make(user.state, engine))
            if new == user.state:   # e.g. the .change a widget's own correction fires: shown already
                return {}
            # (Not on the stages tab: its strip takes a forward pass of its own, which gives the image too.)
            preview = self.early_preview(engine, new) if view != "stages" else None
            if preview is not None:   # the rest of the forward pass starts at once (finish, layout.hot)
                user.state, user.previewed = new, view
                return {self.image: preview.image}
            out = self.panels(engine, new, view)
            user.state, user.previewed = new, None
        return out

    def early_preview(self, engine: Engine, state: ExplorerState):
        """A slow model's image at a lower stage first (Engine.early_preview), when its renders take
        preview_after_s or more (measured when it opened)."""
        render_s = self._render_s.get(str(engine.model_path))
        if render_s is None or render_s < self.preview_after_s:
            return None
        # Nearest: a 512 px PNG of a bilinear upscale takes ~5x as long to encode (up to 100 ms).
        return engine.early_preview(state, size=DISPLAY_SIZE)

    def finish(self, user: UserSession) -> dict:
        """After an early preview (change), the full images of the user's latest state, for the tab
        the preview was made in; {} when the image shown is final. The render resumes from the
        preview's blocks (the block cache)."""
        with user.lock:
            if user.previewed is None:
                return {}
            out = self.panels(self.engine(user.state), user.state, user.previewed)
            user.previewed = None
        return out

    # ---- the hot events ----------------------------------------------------------------------
    def set_seed(self, view, user, seed, keyframes):
        if user is None or seed is None:          # no model, or the box is being retyped
            return {}
        old, typed = user.state.seed, seed
        seed = clamp(typed, 0, MAX_SEED, "seed", integer=True)
        # a seed chosen: back to seeds from a projected image
        out = {**corrected(self.seed, seed, typed),
               **self.change(user, view, lambda s, e: s.replace(seed=seed, projection=None))}
        if (keyframes or "").strip() in ("", auto_keyframes(old)):   # not edited by hand: follow
            out[self.keyframes] = auto_keyframes(seed)
        return out

    def random_seed(self, view, user, keyframes):
        seed = random.randint(0, 99_999)
        return {self.seed: seed, **self.set_seed(view, user, seed, keyframes)}

    def set_psi(self, view, user, psi):
        if user is None or psi is None:
            return {}
        typed, psi = psi, clamp(psi, *PSI_RANGE, "truncation ψ")
        return {**corrected(self.psi, psi, typed), **self.change(user, view, lambda s, e: s.replace(truncation_psi=psi))}

    def set_noise(self, view, user, noise):
        return self.change(user, view, lambda s, e: s.replace(noise_mode=noise))

    def set_class(self, view, user, class_idx):
        if user is None or class_idx is None:
            return {}
        engine = self.engine(user.state)
        if not engine.c_dim:
            return {}
        typed, class_idx = class_idx, clamp(class_idx, 0, engine.c_dim - 1, "class", integer=True)
        return {**corrected(self.class_box, class_idx, typed),
                **self.change(user, view, lambda s, e: s.replace(class_idx=class_idx))}

    def set_blend(self, view, user, blend_seed, blend, space):
        if user is None or blend_seed is None or blend is None:
            return {}
        typed_seed, typed_blend = blend_seed, blend
        blend_seed = clamp(blend_seed, 0, MAX_SEED, "blend seed", integer=True)
        blend = clamp(blend, 0.0, 1.0, "blend")
        return {**corrected(self.blend_seed, blend_seed, typed_seed), **corrected(self.blend, blend, typed_blend),
                **self.change(user, view, lambda s, e: s.replace(blend_seed=blend_seed, blend=blend,
                                                                 blend_space=space or "w"))}

    def set_method(self, view, user, method, key, progress=gr.Progress()):
        """PCA or SeFa directions (the load lane: a PCA may have to be computed). The edits are of the
        other method's components, so they go; the sliders are rebuilt."""
        if user is None or method is None:
            return {}
        with user.lock:
            engine = self.engine(user.state)
            settings = dataclasses.replace(user.state.directions, method=method, sefa_start=0, sefa_end=None)
            dirs = engine.directions(settings, progress=lambda f, text: progress(f, desc=text))
            user.state = engine.check_state(user.state.replace(directions=settings, edits=[]))
            out = self.panels(engine, user.state, view)
        shown = key[1] if key is not None else DIRECTIONS_STEP
        return {**out, self.dirs_key: (str(engine.model_path), min(shown, dirs.num_components), next(self._versions)),
                self.preview_dir: self.preview_choices(user.state, dirs.num_components), self.preview_strip: None}

    @staticmethod
    def preview_choices(state: ExplorerState, num_components: int):
        return gr.update(choices=[(f"Direction {i}" + (f" · {state.label_of(i)}" if state.label_of(i) else ""), i)
                                  for i in range(min(MAX_DIRECTIONS, num_components))], value=0)

    # ---- your own image ----------------------------------------------------------------------------
    def check_project(self, view, user, path, steps, space, key):
        if user is None:
            raise ExplorerError("no model loaded: choose one in the Model box first")
        if not path:
            raise ExplorerError("no image uploaded")
        if steps is None or not 10 <= steps <= 1000:
            raise ExplorerError("steps go from 10 to 1000")

    def project(self, view, user, path, steps, space, key, progress=gr.Progress()):
        """Project the uploaded image; the result becomes this user's image (before/after shown)."""
        self.check_project(view, user, path, steps, space, key)
        path = Path(path)
        folder = self.new_export_folder()
        progress(0, desc="projecting")
        try:
            with user.lock:
                engine = self.engine(user.state)
                state, result, target = engine.project(path.read_bytes(), folder / "projection.safetensors",
                                                       user.state, space=space or "w+", steps=int(steps),
                                                       progress=lambda f, text: progress(f, desc=text),
                                                       name=path.name, lpips=self.lpips)
                user.state = state
                out = self.panels(engine, state, view)
        finally:
            path.unlink(missing_ok=True)     # the upload itself is not kept
        before = to_pil(target.image[None])[0].resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.NEAREST)
        after = engine.render(state, size=THUMB_SIZE)
        notes = "".join(f"; {n}" for n in target.notes)
        note = (f"PSNR {result.psnr:.1f} dB after {result.steps} steps ({result.space.upper()}, loss: "
                f"{result.loss_words}, {result.seconds:.0f} s){notes}. The image is now your projection: try the "
                "direction sliders.")
        return {**out, self.project_before: before, self.project_after: after, self.project_note: note,
                self.keyframes: f"{THIS},{auto_keyframes(state.seed)}", self.space: "w",   # export: from your image
                **({self.dirs_key: (key[0], key[1], next(self._versions))} if key is not None else {})}

    # ---- what a direction does ------------------------------------------------------------------
    def choose_preview(self, user, component):
        """Another direction picked in the preview row: its name in the box, the old strip gone."""
        if user is None or component is None:
            return {}
        return {self.label_box: user.state.label_of(int(component)), self.preview_strip: None}

    def preview_direction(self, user, component):
        if user is None or component is None:
            return {}
        state, component = user.state, int(component)
        engine = self.engine(state)
        name = state.label_of(component)
        strip = engine.direction_preview(state, component, size=THUMB_SIZE // 2 if engine.img_resolution < 80 else None)
        return {self.preview_strip: gr.update(value=strip, label=f"Direction {component}"
                                              + (f" ({name})" if name else "") + " from −3σ to +3σ, on this image")}

    def set_label(self, user, component, text, key):
        """Name a direction: in this user's session, and (local mode) beside the model's direction cache,
        so it is there next time; the sliders are redrawn with the name."""
        if user is None or component is None:
            return {}
        component = int(component)
        with user.lock:
            user.state = user.state.with_label(component, text or "")
            state = user.state
        if not self.public:
            self.engine(state).name_direction(component, state.label_of(component), state.directions)
        out = {self.label_box: state.label_of(component)}
        if key is not None:
            out[self.dirs_key] = (key[0], key[1], next(self._versions))
        return out

    def set_direction(self, i, boxes, view, user, strength, start, end):
        """Direction slider i (or its layer range) moved: the one edit of component i. boxes: the
        (strength, from, to) widgets, which are set to what was applied."""
        if user is None or strength is None or start is None or end is None:
            return {}
        typed = (strength, start, end)
        strength = clamp(strength, -STRENGTH_RANGE, STRENGTH_RANGE, f"direction {i}")
        engine = self.engine(user.state)
        if engine.num_ws > 1 and int(start) > int(end):       # refused: the boxes go back
            old = next((e for e in user.state.edits if e.component == i), None)
            lo, hi = old.layer_range(engine.num_ws) if old else (0, engine.num_ws)
            notify(f"direction {i}: 'from' layer {int(start)} is after 'to' layer {int(end)}; kept {lo} to {hi - 1}")
            strength, start, end = (old.strength if old else 0.0), lo, hi - 1

        def edit(state, engine):
            if engine.num_ws == 1:
                return state.with_edit(i, strength)
            return state.with_edit(i, strength, int(start), int(end) + 1)
        fixes = {k: v for box, used, raw in zip(boxes, (strength, int(start), int(end)), typed)
                 for k, v in corrected(box, used, raw).items()}
        return {**fixes, **self.change(user, view, edit)}

    def reset_directions(self, view, user, key):
        out = self.change(user, view, lambda s, e: s.replace(edits=[]))
        return {**out, self.dirs_key: (key[0], key[1], next(self._versions))} if out else out

    def more_directions(self, key):
        return None if key is None else (key[0], min(MAX_DIRECTIONS, key[1] + DIRECTIONS_STEP), key[2])

    def set_mixing(self, box, view, user, mix_seed, *groups):
        """Seed B (the widget `box`) or a layer box changed."""
        if user is None or mix_seed is None:
            return {}
        layers = sorted({int(i) for g in groups for i in (g or [])})
        typed, mix_seed = mix_seed, clamp(mix_seed, 0, MAX_SEED, "seed B", integer=True)
        return {**corrected(box, mix_seed, typed),
                **self.change(user, view, lambda s, e: s.replace(mix_seed=mix_seed, mix_layers=layers))}

    def random_mix_seed(self, box, view, user, mix_seed, *groups):
        seed = random.randint(0, 99_999)
        return {box: seed, **self.set_mixing(box, view, user, seed, *groups)}

    def preset(self, layers, groups, box, view, user, mix_seed):
        values = [[v for _, v in g.choices if v in layers] for g in groups]
        return {**dict(zip(groups, values)), **self.set_mixing(box, view, user, mix_seed, *values)}

    def select_view(self, name, user):
        """A tab opened: its images, for the state shown."""
        if user is None:
            return {self.view: name}
        with user.lock:
            return {self.view: name, **self.panels(self.engine(user.state), user.state, name)}

    # ---- models and sessions (the load lane) ---------------------------------------------------
    def on_start(self, view, progress=gr.Progress()):
        """Page load: open the configured model (if any) with fresh settings."""
        if self.initial_model is None:
            return {self.placeholder: gr.update(visible=True)}
        return self.open_model(self.initial_model, None, None, view, progress)

    def check_model(self, ref):
        folder = self.roots.resolve(ref)
        if folder.suffix.lower() != NETWORK_PICKLE_SUFFIX:   # a .pkl is checked while it imports
            read_config(folder)

    def on_model(self, ref, view, user, progress=gr.Progress()):
        """Another model chosen (dropdown, or a folder or .pkl path): lay the explorer out for it; keep
        seed, psi, noise (and the class, when the new model has it)."""
        folder = self.roots.resolve(ref)
        if folder.suffix.lower() == NETWORK_PICKLE_SUFFIX:
            folder = resolve_model_folder(folder, progress=lambda f, text: progress(f, desc=text))
        return self.open_model(folder, self.kept(user), user, view, progress)

    @staticmethod
    def kept(user: UserSession | None) -> dict | None:
        s = None if user is None else user.state
        return None if s is None else dict(seed=s.seed, truncation_psi=s.truncation_psi, noise_mode=s.noise_mode,
                                           mix_seed=s.mix_seed, class_idx=s.class_idx)

    def check_upload(self, path):
        """Cheap checks of an uploaded model file before it is imported: its kind and size."""
        if not path:
            raise ExplorerError("no file uploaded")
        path = Path(path)
        if path.suffix.lower() not in UPLOAD_SUFFIXES:
            raise ExplorerError(f"{path.name}: upload a network .pkl or a zipped model folder (.zip)")
        size = path.stat().st_size
        if size > self.max_upload_mb << 20:
            raise ExplorerError(f"{path.name} is {size / 2**20:.0f} MB, over this server's upload limit of "
                                f"{self.max_upload_mb} MB")

    def on_upload(self, path, view, user, progress=gr.Progress()):
        """An uploaded .pkl or zipped model folder: imported safely into the imports folder, opened for
        this user (not listed for others). The upload itself is deleted once imported."""
        self.check_upload(path)
        path = Path(path)
        report = lambda f, text: progress(f, desc=text.replace(str(path.parent) + "/", ""))  # noqa: E731
        try:
            if path.suffix.lower() == NETWORK_PICKLE_SUFFIX:
                folder = resolve_model_folder(path, progress=report)
            else:
                folder = import_zipped_folder(path, self.max_upload_mb << 20, progress=report)
        finally:
            path.unlink(missing_ok=True)
        return self.open_model(folder, self.kept(user), user, view, progress)

    def check_session(self, path, user):
        if Path(path).suffix.lower() != ".zip":    # a .zip is checked as it is unpacked
            self.roots.resolve_saved(ExplorerState.load(path).model)

    def on_session(self, path, view, user, key, progress=gr.Progress()):
        """A session JSON (or a projected session's .zip) uploaded: its model, seed, edits and mixing,
        in the widgets."""
        loaded = ExplorerState.load(self.unpack_session(path))
        folder = self.roots.resolve_saved(loaded.model)
        shown = key[1] if key is not None else DIRECTIONS_STEP
        return self.open_model(folder, loaded.replace(model=str(folder)), user, view, progress, shown)

    def open_model(self, folder: str | Path, loaded: ExplorerState | dict | None, user: UserSession | None,
                   view: str, progress, shown: int = DIRECTIONS_STEP) -> dict:
        """Everything that depends on the model. loaded: a session's state, or fields to keep from the
        last model's state, or None (defaults)."""
        progress(0, desc="loading the model")
        engine = self.engine_of(folder)
        if isinstance(loaded, ExplorerState):
            state = loaded
        else:
            keep = {k: v for k, v in (loaded or {}).items() if v is not None}
            if not engine.c_dim or keep.get("class_idx", engine.c_dim) >= engine.c_dim:
                keep.pop("class_idx", None)      # the last model's class means nothing to this one
            state = engine.default_state(**{"truncation_psi": DEFAULT_PSI, **keep})
        if state.mix_seed is None:
            state = state.replace(mix_seed=1)           # seed B, shown even before a layer is checked
        if state.blend_seed is None:
            state = state.replace(blend_seed=1)         # the blend seed is shown at blend 0 too
        state = engine.check_state(state)
        dirs = engine.directions(state.directions, progress=lambda f, text: progress(f, desc=text))
        # The model's named directions, with the session's own names over them.
        state = state.replace(labels=sorted({**engine.direction_labels(state.directions), **dict(state.labels)}.items()))
        needed = max([shown] + [e.component + 1 for e in state.edits if e.component < MAX_DIRECTIONS])
        shown = min(MAX_DIRECTIONS, -(-needed // DIRECTIONS_STEP) * DIRECTIONS_STEP)
        self.measure(engine, state)
        images = self.panels(engine, state, view)
        if user is None:
            user = UserSession(state)
        with user.lock:
            user.state = state
        ref, version, mixes = self.roots.ref_of(engine.model_path), next(self._versions), engine.supports_style_mixing
        name = display_name(engine.model_path, ref)
        render_s = self._render_s.get(str(engine.model_path))
        return {self.state: user, self.model_info: model_label(engine, name, render_s),
                self.placeholder: gr.update(visible=False),
                self.model_dd: gr.update(choices=self.model_choices(ref, name), value=ref),
                self.seed: state.seed, self.psi: state.truncation_psi, self.keyframes: auto_keyframes(state.seed),
                self.noise: gr.update(visible=engine.arch != "pggan", value=state.noise_mode),
                self.blend_seed: state.blend_seed, self.blend: state.blend, self.blend_space: state.blend_space,
                self.preview_dir: self.preview_choices(state, dirs.num_components),
                self.method: state.directions.method,
                self.label_box: state.label_of(0), self.preview_strip: None,
                self.class_box: gr.update(visible=engine.c_dim > 0, value=state.class_idx or 0,
                                          maximum=max(0, engine.c_dim - 1),
                                          info=f"0 to {engine.c_dim - 1}" if engine.c_dim else None),
                self.dirs_key: (str(folder), min(shown, dirs.num_components), version),
                self.mix_key: (str(folder), version),
                self.image: images[self.image], self.stages: images.get(self.stages),
                self.snapshots: gr.update(visible=bool(engine.stage_snapshot_folders()),
                                          value=images.get(self.snapshots)),
                **{c: gr.update(visible=mixes, value=images.get(c)) for c in (self.mix_a, self.mix_b, self.mix_out)}}

    def measure(self, engine: Engine, state: ExplorerState) -> None:
        """Seconds to render a state afresh, measured once per model (the model line states it)."""
        key = str(engine.model_path)
        if key not in self._render_s:
            times = []
            ws = engine.ws(state)
            for _ in range(2):   # a full synthesis pass (render_tensor would reuse the cached blocks)
                t0 = time.perf_counter()
                engine.render_ws(ws, state.noise_mode, noise_seed=state.seed, synthesis=engine.synthesis_for(state))
                times.append(time.perf_counter() - t0)
            self._render_s[key] = min(times)
