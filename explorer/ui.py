"""The explorer's web UI: a gradio Blocks layout and thin callbacks into `explorer.engine`.

Each user's `ExplorerState` (the engine's per-user state) lives in a gr.State; every event sends
only its own widgets, updates the state and makes one engine call. User errors (ValueError and
OSError from the engine) become a one-line gr.Error, never a traceback. Everything that changes
the state shares one queue slot ("render"), so one user's events are applied in order.

Speed (gradio 6.31): the frontend's work per event grows with the number of components that are
the output of any event (it refreshes each one's loading status several times per event, walking
the whole subtree of a layout block). So the hot events have few outputs, no layout block is ever
an output, and the panels that change with the model or a loaded session (direction sliders,
mixing layers) are rebuilt with @gr.render when their key state changes, instead of being updated.

    python app.py [--model NAME|DIR]            # see app.py; ExplorerUI(model).launch(...) here
"""
from __future__ import annotations

import functools
import html
import itertools
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr

from gan.io.checkpoint import CONFIG_NAME, G_NAME, read_config
from gan.seeds import parse_seeds

from .engine import Engine, open_engine
from .export import GIF_MAX_FPS
from .session import MAX_SEED, NOISE_MODES, ExplorerError, ExplorerState

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"
DEFAULT_FILE = "DEFAULT"           # assets/models/DEFAULT names the folder to open first
DISPLAY_SIZE = 512                 # px: the main image (small models are upscaled, nearest)
THUMB_SIZE = 160                   # px: A / B / mixed thumbnails
STAGE_SIZE = 128                   # px: each resolution-stage preview
MAX_DIRECTIONS = 32                # direction sliders at most
DIRECTIONS_STEP = 8                # shown at first, and added per "more directions" click
STRENGTH_RANGE = 5.0               # sigmas
DEFAULT_PSI = 0.7
LIVE_RENDER_S = 0.1                # render while a slider is dragged when one render takes less
EXPORT_KEEP_S = 3600               # exported files are deleted after an hour
NO_MODEL = ("### No model loaded\nNo model is shipped in `assets/models/` yet. Train one "
            f"(`python -m gan train ...`), or type the path of a model folder ({CONFIG_NAME} + "
            f"{G_NAME}) above and press **Load**.")
NO_MIXING = "Style mixing needs a StyleGAN2 model: a PGGAN feeds one latent to every layer."
SHOW_EXPLORER = "() => { document.getElementById('explorer')?.classList.remove('gle-hidden'); }"
CSS = """
.gle-hidden { display: none !important; }
#image img, #mix_a img, #mix_b img, #mix_out img, #grid_image img, #stages img, #snapshots img,
#export_preview img { image-rendering: pixelated; }
#image_col { position: sticky; top: 8px; align-self: flex-start; }
#image { max-width: 540px; margin: 0 auto; }
.dir-row { align-items: flex-end; gap: 6px; }
.dir-row .layer input { text-align: center; }
#howto { opacity: 0.8; margin-top: -8px; }
#model_load { align-self: center; }
#stages .grid-wrap, #snapshots .grid-wrap { height: auto !important; min-height: 0 !important; }
#stages .grid-container { padding-top: 0 !important; }
footer { display: none !important; }
"""


# ---- models on disk ----------------------------------------------------------------------------

def list_models(models_dir: str | Path = MODELS_DIR) -> list[Path]:
    """Model folders (those with a config.json) directly under models_dir, sorted by name."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / CONFIG_NAME).is_file()), key=lambda p: p.name)


def default_model(models_dir: str | Path = MODELS_DIR) -> Path | None:
    """The folder named in models_dir/DEFAULT when that is a model, else the first model by name."""
    models = list_models(models_dir)
    named = Path(models_dir) / DEFAULT_FILE
    if named.is_file():
        name = named.read_text().strip()
        chosen = [p for p in models if p.name == name]
        if chosen:
            return chosen[0]
        log.warning("%s names %r, which is not a model folder there; using the first model", named, name)
    return models[0] if models else None


def resolve_model(text: str | Path, models_dir: str | Path = MODELS_DIR) -> Path:
    """A model given as a folder name in models_dir or as a path; raises ExplorerError if neither."""
    text = str(text or "").strip()
    if not text:
        raise ExplorerError(f"no model given: type a model folder path ({CONFIG_NAME} + {G_NAME})")
    shipped = Path(models_dir) / text
    if "/" not in text and (shipped / CONFIG_NAME).is_file():
        return shipped
    path = Path(text).expanduser()
    if (path / CONFIG_NAME).is_file() or path.is_file():
        return path
    names = ", ".join(p.name for p in list_models(models_dir)) or "none shipped"
    raise ExplorerError(f"no model folder at {text} (models in {models_dir}: {names})")


# ---- callback plumbing -------------------------------------------------------------------------

def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def user_errors(fn):
    """Callbacks raise gr.Error with a one-line message for anything a user can cause."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, OSError) as e:  # ExplorerError, CheckpointError, parse errors, files
            raise gr.Error(html.escape(one_line(e)), print_exception=False) from None
        except Exception as e:  # a bug: the user gets one line, the log gets the traceback
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            raise gr.Error(html.escape(f"unexpected error ({type(e).__name__}: {one_line(e)}); "
                                       f"details are in the server log"), print_exception=False) from None
        finally:
            log.debug("%s: %.1f ms", getattr(fn, "__name__", fn), 1000 * (time.perf_counter() - t0))
    return wrapper


def bind(fn, *args, **kwargs):
    """A callback: fn with leading arguments bound; an empty dict result leaves every output as it
    is; errors become a one-line gr.Error (see user_errors)."""
    call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn

    @functools.wraps(call)
    def callback(*a, **kw):
        out = call(*a, **kw)
        return gr.skip() if isinstance(out, dict) and not out else out
    callback.__name__ = getattr(fn, "__name__", "callback")
    return user_errors(callback)


def model_label(engine: Engine) -> str:
    kind = {"stylegan2": "StyleGAN2", "pggan": "PGGAN"}.get(engine.arch, engine.arch)
    colour = "RGB" if engine.img_channels == 3 else "greyscale"
    layers = f"{engine.num_ws} style layers" if engine.num_ws > 1 else "one latent for all layers"
    return (f"**{html.escape(engine.model_path.name)}** · {kind} · {engine.img_resolution}×{engine.img_resolution} "
            f"{colour} · {layers} · z {engine.z_dim}")


def auto_keyframes(seed: int) -> str:
    return ",".join(str(min(MAX_SEED, seed + i)) for i in range(4))


class ExplorerUI:
    """The Blocks app. Holds components and configuration only; per-user state is in gr.State."""

    def __init__(self, model: str | Path | None = None, models_dir: str | Path = MODELS_DIR):
        self.models_dir = Path(models_dir)
        self.initial_model = str(model) if model else None
        self.export_root = Path(tempfile.gettempdir()) / "gle-exports"
        self._render_s: dict[str, float] = {}     # model path -> seconds of one uncached render
        self._versions = itertools.count(1)       # makes every panel key new, so it re-renders
        self.fast = dict(trigger_mode="always_last", show_progress="hidden", concurrency_id="render",
                         api_visibility="private")
        self.demo = self.build()

    def model_choices(self, extra: str | None = None) -> list[tuple[str, str]]:
        choices = [(p.name, str(p)) for p in list_models(self.models_dir)]
        for model in (self.initial_model, extra):
            if model and model not in [v for _, v in choices]:
                choices.append((Path(model).name or model, model))
        return choices

    # ---- layout --------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        with gr.Blocks(title="GAN Latent Explorer", delete_cache=(EXPORT_KEEP_S, EXPORT_KEEP_S)) as demo:
            self.state = gr.State(None)             # ExplorerState, or None: no model
            self.view = gr.State("directions")      # the open tab
            self.dirs_key = gr.State(None)          # (model, sliders shown, version): rebuilds the sliders
            self.mix_key = gr.State(None)           # (model, version): rebuilds the mixing controls
            gr.Markdown("# GAN Latent Explorer")
            gr.Markdown("Pick a seed, then drag the direction sliders. Mix styles from a second seed, look at "
                        "every resolution stage, and export an interpolation as a GIF or MP4.", elem_id="howto")
            with gr.Row(equal_height=False):
                choices = self.model_choices()
                where = f"{self.models_dir.parent.name}/{self.models_dir.name}/"
                self.model_dd = gr.Dropdown(choices, value=self.initial_model, label="Model", scale=2,
                                            info=f"shipped in {where}" if choices else "no models shipped yet",
                                            elem_id="model_dropdown")
                self.model_path = gr.Textbox(label="…or a model folder path", placeholder="runs/x/final",
                                             scale=3, elem_id="model_path")
                self.model_load = gr.Button("Load", scale=0, min_width=80, elem_id="model_load")
            self.model_info = gr.Markdown("", elem_id="model_info")
            self.placeholder = gr.Markdown(NO_MODEL, visible=self.initial_model is None, elem_id="placeholder")
            hidden = [] if self.initial_model else ["gle-hidden"]   # shown by SHOW_EXPLORER, not an update
            with gr.Row(equal_height=False, elem_id="explorer", elem_classes=hidden):
                with gr.Column(scale=5, min_width=420):
                    self.build_generate()
                    with gr.Tabs(elem_id="tabs"):
                        self.tabs = {}
                        for name, label, build in (("directions", "Directions", self.build_directions),
                                                   ("mixing", "Style mixing", self.build_mixing),
                                                   ("stages", "Resolution stages", self.build_stages),
                                                   ("export", "Export", self.build_export),
                                                   ("session", "Session", self.build_session)):
                            with gr.Tab(label, id=name, elem_id=f"tab_{name}") as tab:
                                build()
                            self.tabs[name] = tab
                with gr.Column(scale=6, min_width=420, elem_id="image_col"):
                    self.image = gr.Image(type="pil", format="png", show_label=False, interactive=False,
                                          buttons=["download", "fullscreen"], elem_id="image")
            self.wire(demo)
        demo.queue(default_concurrency_limit=1, max_size=64)
        return demo

    def build_generate(self) -> None:
        with gr.Group():
            with gr.Row(equal_height=True):
                self.seed = gr.Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, scale=3,
                                      elem_id="seed")
                self.seed_random = gr.Button("🎲 Random", scale=1, min_width=90, elem_id="seed_random")
            with gr.Row(equal_height=True):
                self.psi = gr.Slider(0, 1.5, DEFAULT_PSI, step=0.05, label="Truncation ψ", scale=3,
                                     info="1 = none; lower = closer to the average image", elem_id="psi")
                self.noise = gr.Radio(list(NOISE_MODES), value="const", label="Noise", scale=2, elem_id="noise")

    def build_directions(self) -> None:
        gr.Markdown("PCA directions (GANSpace), in standard deviations; each applies to style layers "
                    "*from*…*to* (inclusive).", elem_id="dirs_help")
        gr.render(inputs=[self.dirs_key, self.state], triggers=[self.dirs_key.change],
                  show_progress="hidden")(self.directions_panel)

    def directions_panel(self, key, state) -> None:
        """The sliders of the first key[1] PCA directions, set from the state's edits."""
        if key is None or state is None:
            return
        engine = open_engine(state.model)
        dirs = engine.directions(state.directions)
        limit = min(MAX_DIRECTIONS, dirs.num_components)
        shown = min(key[1], limit)
        edits = {e.component: e for e in state.edits}
        last = engine.num_ws - 1
        live = self._render_s.get(str(engine.model_path), 1.0) <= LIVE_RENDER_S
        for i in range(shown):
            e = edits.get(i)
            lo, hi = e.layer_range(engine.num_ws) if e else (0, engine.num_ws)
            variance = f"{100 * dirs.explained_variance_ratio[i]:.1f}% of variance"
            with gr.Row(equal_height=False, elem_classes="dir-row"):
                strength = gr.Slider(-STRENGTH_RANGE, STRENGTH_RANGE, e.strength if e else 0.0, step=0.1,
                                     label=f"Direction {i}", info=variance, scale=6, min_width=220,
                                     interactive=True, elem_id=f"dir{i}")
                layer = dict(precision=0, minimum=0, maximum=last, scale=1, min_width=64, visible=last > 0,
                             elem_classes="layer", interactive=True)
                start = gr.Number(lo, label="from", elem_id=f"dir{i}_start", **layer)
                end = gr.Number(hi - 1, label="to", elem_id=f"dir{i}_end", **layer)
            row = [self.view, self.state, strength, start, end]
            # A fast model renders on every move (always_last: one in flight, then the latest value);
            # a slow one on release. Both at once would double gradio's frontend work per click.
            (strength.input if live else strength.release)(bind(self.set_direction, i), row, self.out, **self.fast)
            for box in (start, end):
                box.input(bind(self.set_direction, i), row, self.out, **self.fast)
        with gr.Row():
            more = gr.Button(f"More directions ({shown} of {limit} shown)", size="sm", interactive=shown < limit,
                             elem_id="dirs_more")
            reset = gr.Button("Reset directions", size="sm", elem_id="dirs_reset")
        more.click(self.more_directions, self.dirs_key, self.dirs_key, **self.fast)
        reset.click(bind(self.reset_directions), [self.view, self.state, self.dirs_key],
                    [*self.out, self.dirs_key], **self.fast)

    def build_mixing(self) -> None:
        gr.render(inputs=[self.mix_key, self.state], triggers=[self.mix_key.change],
                  show_progress="hidden")(self.mixing_controls)
        with gr.Row():
            thumb = dict(type="pil", format="png", interactive=False, buttons=[], min_width=100)
            self.mix_a = gr.Image(label="A (seed)", elem_id="mix_a", **thumb)
            self.mix_b = gr.Image(label="B (seed B)", elem_id="mix_b", **thumb)
            self.mix_out = gr.Image(label="Mixed", elem_id="mix_out", **thumb)
        gr.render(inputs=[self.mix_key, self.state], triggers=[self.mix_key.change],
                  show_progress="hidden")(self.mixing_grid_panel)

    def mixing_controls(self, key, state) -> None:
        """Seed B, one checkbox per style layer grouped by resolution, presets (StyleGAN2 only)."""
        if key is None or state is None:
            return
        engine = open_engine(state.model)
        if not engine.supports_style_mixing:
            gr.Markdown(NO_MIXING, elem_id="no_mixing")
            return
        gr.Markdown("Take the checked style layers from seed B (coarse = pose and shape, middle = features, "
                    "fine = colour and texture).")
        with gr.Row(equal_height=True):
            mix_seed = gr.Number(state.mix_seed, label="Seed B", precision=0, minimum=0, maximum=MAX_SEED,
                                 scale=3, interactive=True, elem_id="mix_seed")
            mix_random = gr.Button("🎲 Random B", scale=1, min_width=90, elem_id="mix_seed_random")
        info = engine.info()
        groups = [gr.CheckboxGroup([(f"layer {i}", i) for i in ix], value=[i for i in ix if i in state.mix_layers],
                                   label=f"{res}×{res}", interactive=True, elem_id=f"mix_group{k}")
                  for k, (res, ix) in enumerate(info["layer_groups"])]
        presets = {**info["mixing_presets"], "all": list(range(engine.num_ws)), "none": []}
        with gr.Row():
            buttons = {name: gr.Button(name.capitalize(), size="sm", min_width=50, elem_id=f"mix_preset_{name}")
                       for name, layers in presets.items() if layers or name == "none"}
        mix = [self.view, self.state, mix_seed, *groups]
        for c in (mix_seed, *groups):
            c.input(bind(self.set_mixing), mix, self.out, **self.fast)
        mix_random.click(bind(self.random_mix_seed, mix_seed), mix, [mix_seed, *self.out], **self.fast)
        for name, btn in buttons.items():
            btn.click(bind(self.preset, presets[name], groups), [self.view, self.state, mix_seed],
                      [*groups, *self.out], **self.fast)

    def mixing_grid_panel(self, key, state) -> None:
        if key is None or state is None or not open_engine(state.model).supports_style_mixing:
            return
        with gr.Accordion("Mixing grid", open=False):
            with gr.Row():
                rows = gr.Textbox("1-3", label="Row seeds (A)", interactive=True, elem_id="grid_rows")
                cols = gr.Textbox("4-7", label="Column seeds (B)", interactive=True, elem_id="grid_cols")
            make = gr.Button("Make grid (checked layers, or coarse)", elem_id="grid_make")
            grid = gr.Image(type="pil", format="png", show_label=False, interactive=False, elem_id="grid_image")
        make.click(bind(self.check_grid), [rows, cols], None, concurrency_limit=None, api_visibility="private",
                   show_progress="hidden") \
            .success(bind(self.make_grid), [self.state, rows, cols], grid, concurrency_id="grid",
                     api_visibility="private")

    def build_stages(self) -> None:
        gr.Markdown("The image at every resolution stage of the generator, lowest first (each block's own "
                    "RGB output). A PGGAN stops training a stage's RGB output once the next stage has faded "
                    "in, so for a PGGAN run the snapshots below show what each stage really looked like.")
        gallery = dict(columns=5, format="png", allow_preview=False, buttons=[])
        self.stages = gr.Gallery(show_label=False, elem_id="stages", **gallery)
        self.snapshots = gr.Gallery(label="The same seed through each stage snapshot that training kept",
                                    visible=False, elem_id="snapshots", **gallery)

    def build_export(self) -> None:
        self.keyframes = gr.Textbox("0,1,2,3", label="Keyframe seeds", info="e.g. 5,9,12 or 0-3",
                                    elem_id="export_seeds")
        with gr.Row():
            self.frames = gr.Slider(1, 120, 12, step=1, label="Frames per seed", elem_id="export_frames")
            self.fps = gr.Slider(1, 60, 24, step=1, label="fps", info="GIF: at most 50", elem_id="export_fps")
        with gr.Row():
            self.space = gr.Radio([("Z slerp", "z"), ("W lerp", "w")], value="z", label="Path", min_width=150,
                                  elem_id="export_space")
            self.fmt = gr.Radio(["GIF", "MP4"], value="GIF", label="Format", min_width=150, elem_id="export_format")
        with gr.Row(equal_height=True):
            self.size = gr.Dropdown([128, 256, 512], value=256, label="Size (px)", elem_id="export_size")
            self.loop = gr.Checkbox(True, label="Loop back to the first seed", elem_id="export_loop")
        self.export_btn = gr.Button("Export", variant="primary", elem_id="export_button")
        with gr.Row():
            self.preview = gr.Image(type="filepath", label="Preview", interactive=False, elem_id="export_preview")
            self.preview_video = gr.Video(label="Preview", interactive=False, visible=False, elem_id="export_video")
            self.export_file = gr.File(label="Download", interactive=False, elem_id="export_file")

    def build_session(self) -> None:
        gr.Markdown("A session is the whole state (model, seed, truncation, edits, mixing) as JSON: "
                    "it reloads to the same pixels, here or with `python -m explorer render --session`.")
        with gr.Row():
            self.session_save = gr.Button("Save session", elem_id="session_save")
            self.session_upload = gr.UploadButton("Load session…", file_types=[".json"], type="filepath",
                                                  elem_id="session_upload")
        self.session_file = gr.File(label="Session file", interactive=False, elem_id="session_file")

    # ---- wiring ----------------------------------------------------------------------------------
    @property
    def out(self) -> list:
        """What a state change updates: the state, the image and the tabs' images."""
        return [self.state, self.image, self.stages, self.snapshots, self.mix_a, self.mix_b, self.mix_out]

    def wire(self, demo: gr.Blocks) -> None:
        view, state, out, fast = self.view, self.state, self.out, self.fast
        self.seed.input(bind(self.set_seed), [view, state, self.seed, self.keyframes], [*out, self.keyframes],
                        **fast)
        self.seed_random.click(bind(self.random_seed), [view, state, self.keyframes],
                               [self.seed, *out, self.keyframes], **fast)
        self.psi.release(bind(self.set_psi), [view, state, self.psi], out, **fast)
        self.noise.input(bind(self.set_noise), [view, state, self.noise], out, **fast)
        for name, tab in self.tabs.items():
            tab.select(bind(self.select_view, name), state, [view, *out], **fast)

        model_outputs = [*out, self.keyframes, self.seed, self.psi, self.noise, self.model_info, self.model_dd,
                         self.placeholder, self.dirs_key, self.mix_key]
        # Opening a model or a session: a quick check with no outputs first (a bad path or file is a
        # toast, not an error badge on every output), then the work, with its progress over the image.
        slow = dict(concurrency_id="render", api_visibility="private", show_progress="full",
                    show_progress_on=[self.placeholder, self.image])
        quick = dict(concurrency_limit=None, api_visibility="private", show_progress="hidden")
        demo.load(bind(self.on_start), view, model_outputs, **slow)
        for trigger, box in ((self.model_dd.input, self.model_dd), (self.model_load.click, self.model_path),
                             (self.model_path.submit, self.model_path)):
            trigger(bind(self.check_model), box, None, **quick) \
                .success(bind(self.on_model), [box, view, state], model_outputs, **slow) \
                .success(None, js=SHOW_EXPLORER)
        self.session_upload.upload(bind(self.check_session), [self.session_upload, state], None, **quick) \
            .success(bind(self.on_session), [self.session_upload, view, state, self.dirs_key], model_outputs,
                     **slow) \
            .success(None, js=SHOW_EXPLORER)
        self.session_save.click(bind(self.save_session), state, self.session_file, concurrency_id="files",
                                api_visibility="private", show_progress="hidden")
        export = [state, self.keyframes, self.frames, self.space, self.loop, self.fps, self.size, self.fmt]
        self.export_btn.click(bind(self.check_export), export, None, **quick) \
            .success(bind(self.export), export, [self.preview, self.preview_video, self.export_file],
                     concurrency_id="export", api_visibility="private", show_progress="full")

    # ---- rendering ---------------------------------------------------------------------------------
    @staticmethod
    def engine(state: ExplorerState | None) -> Engine:
        if state is None:
            raise ExplorerError("no model loaded: choose one in the Model box, or give a model folder path")
        return open_engine(state.model)

    def panels(self, engine: Engine, state: ExplorerState, view: str) -> dict:
        """The image and the open tab's images (only those: the other tabs' are not computed)."""
        out = {self.image: engine.render(state, size=DISPLAY_SIZE)}
        if view == "stages":
            out[self.stages] = [(s.image, s.label) for s in engine.stage_previews(state, size=STAGE_SIZE)]
            if engine.stage_snapshot_folders():
                out[self.snapshots] = [(s.image, f"{s.label} snapshot")
                                       for s in engine.stage_snapshots(state, size=STAGE_SIZE)]
        elif view == "mixing" and engine.supports_style_mixing:
            plain = state.replace(mix_layers=())
            out[self.mix_a] = engine.render(plain, size=THUMB_SIZE)
            out[self.mix_b] = engine.render(plain.replace(seed=state.mix_seed or 0), size=THUMB_SIZE)
            out[self.mix_out] = engine.render(state, size=THUMB_SIZE)
        return out

    def show(self, view: str, new: ExplorerState) -> dict:
        """The new state and the images it changes."""
        engine = self.engine(new)
        new = engine.check_state(new)
        return {self.state: new, **self.panels(engine, new, view)}

    # ---- callbacks (each returns {component: value}; {} = nothing to do) ----------------------------
    def set_seed(self, view, state, seed, keyframes):
        if state is None or seed is None:          # no model, or the box is being retyped
            return {}
        out = self.show(view, state.replace(seed=int(seed)))
        if (keyframes or "").strip() in ("", auto_keyframes(state.seed)):   # not edited by hand: follow
            out[self.keyframes] = auto_keyframes(int(seed))
        return out

    def random_seed(self, view, state, keyframes):
        seed = random.randint(0, 99_999)
        return {self.seed: seed, **self.set_seed(view, state, seed, keyframes)}

    def set_psi(self, view, state, psi):
        if state is None or psi is None:
            return {}
        return self.show(view, state.replace(truncation_psi=float(psi)))

    def set_noise(self, view, state, noise):
        return self.show(view, state.replace(noise_mode=noise)) if state is not None else {}

    def set_direction(self, i, view, state, strength, start, end):
        """Direction slider i (or its layer range) moved: the one edit of component i."""
        if state is None or strength is None or start is None or end is None:
            return {}
        engine = self.engine(state)
        if engine.num_ws == 1:
            new = state.with_edit(i, float(strength))
        else:
            lo, hi = int(start), int(end)
            if not 0 <= lo <= hi < engine.num_ws:
                raise ExplorerError(f"direction {i}: layers {lo} to {hi} are not a range within 0 to "
                                    f"{engine.num_ws - 1} ('from' must not exceed 'to')")
            new = state.with_edit(i, float(strength), lo, hi + 1)
        return self.show(view, new)

    def reset_directions(self, view, state, key):
        out = self.show(view, self.engine(state).check_state(state.replace(edits=[])))
        return {**out, self.dirs_key: (key[0], key[1], next(self._versions))}

    def more_directions(self, key):
        return None if key is None else (key[0], min(MAX_DIRECTIONS, key[1] + DIRECTIONS_STEP), key[2])

    def set_mixing(self, view, state, mix_seed, *groups):
        if state is None or mix_seed is None:
            return {}
        layers = sorted({int(i) for g in groups for i in (g or [])})
        return self.show(view, state.replace(mix_seed=int(mix_seed), mix_layers=layers))

    def random_mix_seed(self, box, view, state, mix_seed, *groups):
        seed = random.randint(0, 99_999)
        return {box: seed, **self.set_mixing(view, state, seed, *groups)}

    def preset(self, layers, boxes, view, state, mix_seed):
        values = [[v for _, v in box.choices if v in layers] for box in boxes]
        return {**dict(zip(boxes, values)), **self.set_mixing(view, state, mix_seed, *values)}

    def select_view(self, name, state):
        return {self.view: name, **(self.panels(self.engine(state), state, name) if state is not None else {})}

    def on_start(self, view, progress=gr.Progress()):
        """Page load: open the configured model (if any) with fresh settings."""
        if self.initial_model is None:
            return {self.placeholder: gr.update(visible=True)}
        return self.open_model(self.initial_model, None, view, progress)

    def check_model(self, text):
        read_config(resolve_model(text, self.models_dir))

    def on_model(self, text, view, state, progress=gr.Progress()):
        """Another model chosen (dropdown or path): lay the explorer out for it; keep seed, psi, noise."""
        model = str(resolve_model(text, self.models_dir))
        keep = None if state is None else dict(seed=state.seed, truncation_psi=state.truncation_psi,
                                               noise_mode=state.noise_mode, mix_seed=state.mix_seed)
        return self.open_model(model, keep, view, progress)

    def session_model(self, loaded: ExplorerState, state: ExplorerState | None) -> str:
        """The model folder of a loaded session here: as saved, else the shipped folder of that name,
        else (the session names none) the model open now."""
        model = Path(loaded.model) if loaded.model else None
        if model is not None and (model / CONFIG_NAME).is_file():
            return str(model)
        if model is not None and (self.models_dir / model.name / CONFIG_NAME).is_file():
            return str(self.models_dir / model.name)      # saved elsewhere, shipped here
        if model is None and state is not None:
            return state.model
        raise ExplorerError(f"the session's model {loaded.model or '(none)'} is not here: load that model first")

    def check_session(self, path, state):
        self.session_model(ExplorerState.load(path), state)

    def on_session(self, path, view, state, key, progress=gr.Progress()):
        """A session JSON uploaded: its model, seed, edits and mixing, in the widgets."""
        loaded = ExplorerState.load(path)
        model = self.session_model(loaded, state)
        shown = key[1] if key is not None else DIRECTIONS_STEP
        return self.open_model(model, loaded.replace(model=model), view, progress, shown)

    def open_model(self, model: str, loaded: ExplorerState | dict | None, view: str, progress,
                   shown: int = DIRECTIONS_STEP) -> dict:
        """Everything that depends on the model. loaded: a session's state, or fields to keep from the
        last model's state, or None (defaults)."""
        progress(0, desc="loading the model")
        engine = open_engine(model)
        if isinstance(loaded, ExplorerState):
            state = loaded
        else:
            keep = {k: v for k, v in (loaded or {}).items() if v is not None}
            state = engine.default_state(**{"truncation_psi": DEFAULT_PSI, **keep})
        if state.mix_seed is None:
            state = state.replace(mix_seed=1)           # seed B, shown even before a layer is checked
        state = engine.check_state(state)
        dirs = engine.directions(state.directions, progress=lambda f, text: progress(f, desc=text))
        needed = max([shown] + [e.component + 1 for e in state.edits if e.component < MAX_DIRECTIONS])
        shown = min(MAX_DIRECTIONS, -(-needed // DIRECTIONS_STEP) * DIRECTIONS_STEP)
        if str(engine.model_path) not in self._render_s:
            self._render_s[str(engine.model_path)] = min(self.time_render(engine, state) for _ in range(2))
        mixes = engine.supports_style_mixing
        images = self.panels(engine, state, view)
        version = next(self._versions)
        return {self.state: state, self.model_info: model_label(engine), self.placeholder: gr.update(visible=False),
                self.model_dd: gr.update(choices=self.model_choices(model), value=model),
                self.seed: state.seed, self.psi: state.truncation_psi, self.keyframes: auto_keyframes(state.seed),
                self.noise: gr.update(visible=engine.arch != "pggan", value=state.noise_mode),
                self.dirs_key: (model, min(shown, dirs.num_components), version), self.mix_key: (model, version),
                self.image: images[self.image], self.stages: images.get(self.stages),
                self.snapshots: gr.update(visible=bool(engine.stage_snapshot_folders()),
                                          value=images.get(self.snapshots)),
                **{c: gr.update(visible=mixes, value=images.get(c)) for c in (self.mix_a, self.mix_b, self.mix_out)}}

    @staticmethod
    def time_render(engine: Engine, state: ExplorerState) -> float:
        """Seconds to render the state afresh (decides whether sliders render while dragged)."""
        t0 = time.perf_counter()
        engine.render_tensor(state)
        return time.perf_counter() - t0

    def save_session(self, state):
        state = self.engine(state).check_state(state)
        return str(state.save(self.new_export_folder() / f"session-seed{state.seed}.json"))

    def make_grid(self, state, rows, cols):
        engine = self.engine(state)
        layers = list(state.mix_layers) or None
        tile = engine.img_resolution * max(1, 128 // engine.img_resolution)
        return engine.mixing_grid(state, parse_seeds(rows), parse_seeds(cols), layers=layers,
                                  preset=None if layers else "coarse", size=tile)

    @staticmethod
    def check_grid(rows, cols):
        parse_seeds(rows)
        parse_seeds(cols)

    def export_seeds(self, state, keyframes, frames, space, loop, fps, size, fmt) -> list[int]:
        """The keyframe seeds, once everything the export needs is valid (cheap: nothing rendered)."""
        engine = self.engine(state)
        seeds = parse_seeds(keyframes) if keyframes and keyframes.strip() else \
            [int(s) for s in auto_keyframes(state.seed).split(",")]
        if frames is None or fps is None:
            raise ExplorerError("give the frames per seed and the fps")
        if fmt == "GIF" and fps > GIF_MAX_FPS:
            raise ExplorerError(f"GIF plays at most {GIF_MAX_FPS} fps: lower the fps or choose MP4")
        engine.check_path(seeds, int(frames), space, bool(loop))
        return seeds

    def check_export(self, *args) -> None:
        self.export_seeds(*args)

    def export(self, state, keyframes, frames, space, loop, fps, size, fmt, progress=gr.Progress()):
        seeds = self.export_seeds(state, keyframes, frames, space, loop, fps, size, fmt)
        suffix = ".gif" if fmt == "GIF" else ".mp4"
        out = self.new_export_folder() / f"interpolation-{seeds[0]}-{seeds[-1]}{suffix}"
        progress(0, desc="rendering frames")
        path = self.engine(state).export(state, seeds, out, frames_per_segment=int(frames), space=space,
                                         loop=bool(loop), fps=float(fps), size=int(size),
                                         progress=lambda f, text: progress(f, desc=text))
        is_gif = suffix == ".gif"
        return (gr.update(value=str(path) if is_gif else None, visible=is_gif),
                gr.update(value=None if is_gif else str(path), visible=not is_gif), str(path))

    def new_export_folder(self) -> Path:
        """A fresh folder under the export root; folders older than EXPORT_KEEP_S are removed."""
        self.export_root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - EXPORT_KEEP_S
        for old in self.export_root.iterdir():
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.export_root))

    # ---- serving ----------------------------------------------------------------------------------
    def launch(self, host: str = "127.0.0.1", port: int = 7860, **kwargs):
        return self.demo.launch(server_name=host, server_port=port, show_error=False, ssr_mode=False,
                                footer_links=[], css=CSS, theme=gr.themes.Soft(primary_hue="indigo"),
                                allowed_paths=[str(self.export_root)], **kwargs)


def warm_up(model: str | Path) -> None:
    """Load the model and its PCA directions before serving, so the first visitor does not wait."""
    engine = open_engine(model)
    engine.directions()
    engine.render(engine.default_state(truncation_psi=DEFAULT_PSI), size=DISPLAY_SIZE)
