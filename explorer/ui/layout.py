"""The explorer's gradio Blocks: layout and wiring; the callbacks are in callbacks.py.

Speed (gradio 6.31): the frontend's work per event grows with the number of components that are
the output of any event (it refreshes each one's loading status several times per event, walking
the whole subtree of a layout block). So the hot events have few outputs, no layout block is ever
an output, and the panels that change with the model or a loaded session (direction sliders,
mixing layers) are rebuilt with @gr.render when their key state changes, instead of being updated.

Lanes: the image events (hot()) skip gradio's queue, one HTTP round trip instead of a queue join and
an event stream (60-90 ms less per slider move, bench/ui.py); at most render_workers of them run at
once (an asyncio semaphore, hot(): one waiting for its turn holds none of the worker threads that
every event's callback and pre/postprocessing share), and since the queue is what carries gr.Warning and gr.Error
toasts, what they say of their input, or why they refuse it, goes to the note under the image. Model loads and session loads (which may compute
PCA directions) run in the queue's "load" lane, exports in "export" and mixing grids in "grid", one at
a time each, so slow work never holds a render slot. One user's events are kept in order by that
user's lock (callbacks.UserSession). A slow model's image events show an early preview, then the
image from the rest of the same forward pass (hot(), PREVIEW_AFTER_S).
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import tempfile
from pathlib import Path

import gradio as gr

from gan.io.checkpoint import CONFIG_NAME, G_NAME

from ..session import MAX_SEED, NOISE_MODES
from . import errors
from .api import register_api
from .callbacks import (DEFAULT_PSI, DIRECTIONS_STEP, EXPORT_KEEP_S, MAX_UPLOAD_MB, PSI_RANGE, UPLOAD_SUFFIXES,
                        Callbacks, UserSession, display_name)
from .errors import bind
from .files import Files
from .models import MODELS_DIR, ModelRoots
from .panels import Panels
from .widgets import Image, Number, Slider, collecting_notes

NO_MODEL = ("### No model loaded\nNo model is shipped in `assets/models/` yet. Train one "
            f"(`python -m gan train ...`), type the path of a model folder ({CONFIG_NAME} + "
            f"{G_NAME}) or of an NVIDIA network .pkl above and press **Load**, or upload one.")
NO_MODEL_PUBLIC = ("### No model installed\nThis server has no model in its models folder yet: upload a "
                   "network .pkl or a zipped model folder above.")
SHOW_EXPLORER = "() => { document.getElementById('explorer')?.classList.remove('gle-hidden'); }"
BUSY_DELAY_MS = 150
# A model whose renders take this long (measured when it opens) shows an early preview first: the image
# at a lower stage of the same forward pass (Callbacks.change), then the image (Callbacks.finish).
# bench/preview.py (the browser on the same 2 cores, two runs): at 1024 px the preview comes at
# 0.53-0.57 s and the image at 2.16-2.20 s (2.16-2.26 s without); at 256 px (renders of ~0.25 s) at
# 0.25 s and the image at 0.59 s against 0.48 s without: for a model that fast, a blocky flash and a
# later image.
PREVIEW_AFTER_S = 0.5
# Run in the browser before an image event is sent: mark the image busy, pass the inputs through.
MARK_BUSY = ("(...args) => { document.getElementById('image')?.classList.add('gle-busy'); "
             "return args.length === 1 ? args[0] : args; }")
CLEAR_BUSY = "() => { document.getElementById('image')?.classList.remove('gle-busy'); }"
# After an image event, given the rest ticket (hot): a new ticket means an early preview is shown and the
# rest is coming (its event clears the mark); the same ticket, that the event is done.
CLEAR_BUSY_UNLESS_PREVIEW = ("(ticket) => { const seen = window.gleRestTicket ?? 0; window.gleRestTicket = ticket; "
                             "if (ticket === seen) document.getElementById('image')?.classList.remove('gle-busy'); }")
CSS_TEMPLATE = """
.gle-hidden { display: none !important; }
#image img, #mix_a img, #mix_b img, #mix_out img, #grid_image img, #stages img, #snapshots img,
#export_preview img { image-rendering: pixelated; }
#image_col { position: sticky; top: 8px; align-self: flex-start; }
#image { max-width: 540px; margin: 0 auto; position: relative; }
#image_note { max-width: 540px; margin: 0 auto; min-height: 1.4em; font-size: 0.95em; }
#image_note * { color: #b45309 !important; }
/* Busy: dimmed, with a spinner, only once a render has taken BUSY_DELAY_MS (transition delays). */
#image img { transition: opacity 0s; }
#image.gle-busy img { opacity: 0.55; transition: opacity 0.1s linear BUSY_DELAY_MSms; }
#image.gle-busy::after { content: ""; position: absolute; top: 50%; left: 50%; width: 36px; height: 36px;
  margin: -18px 0 0 -18px; border: 4px solid rgba(255, 255, 255, 0.8); border-top-color: #4f46e5;
  border-radius: 50%; opacity: 0; animation: gle-spin 0.8s linear infinite, gle-show 0s BUSY_DELAY_MSms forwards;
  pointer-events: none; z-index: 10; }
@keyframes gle-spin { to { transform: rotate(360deg); } }
@keyframes gle-show { to { opacity: 1; } }
.dir-row { align-items: flex-end; gap: 6px; }
/* The layer boxes are narrow: room for "13 · 256px" beside the dropdown's arrow (drawn over the text
   otherwise), and an ellipsis rather than overlap if a label ("17 · 1024px") still does not fit. */
.dir-row .layer { padding-left: 6px !important; padding-right: 6px !important; }
.dir-row .layer .wrap-inner { padding-left: 6px; padding-right: 2px; }
.dir-row .layer input { padding-right: 18px !important; text-overflow: ellipsis; }
#howto { opacity: 0.8; margin-top: -8px; }
#model_load, #model_upload { align-self: center; }
#upload_note { align-self: center; font-size: 0.85em; opacity: 0.8; }
#stages .grid-wrap, #snapshots .grid-wrap { height: auto !important; min-height: 0 !important; }
#stages .grid-container { padding-top: 0 !important; }
footer { display: none !important; }
/* gradio's container hides overflow, which makes it the scroll box of every sticky element inside
   (one that never scrolls, so nothing sticks): clip instead, which is not a scroll box. */
.gradio-container { overflow: clip !important; }
/* A phone: one column, the image first and pinned at the top while the sliders scroll under it. */
@media (max-width: 760px) {
  #explorer { flex-direction: column !important; flex-wrap: nowrap !important; }
  #explorer > .column { min-width: 0 !important; width: 100% !important; flex: none !important; }
  #image_col { order: -1; position: sticky; top: 0; z-index: 1000; align-self: stretch;
               background: var(--body-background-fill); padding: 4px 0; }
  #image img { max-height: 38vh; object-fit: contain; }
  #image { max-width: 38vh; }
  .dir-row { flex-wrap: wrap !important; }
  .dir-row > div:first-child { flex: 1 1 100% !important; }
  .dir-row .layer { flex: 1 1 40% !important; min-width: 0 !important; }
}
"""
CSS = CSS_TEMPLATE.replace("BUSY_DELAY_MS", str(BUSY_DELAY_MS))


def _retrieve(task: asyncio.Task) -> None:
    """Mark a task's outcome as seen (asyncio logs an exception nobody retrieved)."""
    if not task.cancelled():
        task.exception()


class ExplorerUI(Panels, Files, Callbacks):
    """The Blocks app. Holds components and configuration only; per-user state is in gr.State.

    public: the trust mode (see models.py). render_workers: renders run at once. max_upload_mb: the
    largest model file a user may upload. lpips: an explorer.lpips.LPIPS that projections add to their
    loss (the operator's weights file, loaded once; None: pixels and D features only). preview_after_s:
    a model whose renders take this many seconds or more shows an early preview first (see hot())."""

    def __init__(self, model: str | Path | None = None, models_dir: str | Path = MODELS_DIR,
                 public: bool = False, render_workers: int = 1, max_upload_mb: int = MAX_UPLOAD_MB, lpips=None,
                 preview_after_s: float = PREVIEW_AFTER_S):
        self.roots = ModelRoots(Path(models_dir), public=public)
        self.lpips = lpips
        self.max_upload_mb = max(1, int(max_upload_mb))
        errors.SCRUB_ROOTS[:] = self.roots.roots
        self.public = public
        self.initial_model = str(model) if model else None
        self.render_workers = max(1, int(render_workers))
        self.export_root = Path(tempfile.gettempdir()) / "gle-exports"
        self._render_s: dict[str, float] = {}     # model path -> seconds of one uncached render
        self.preview_after_s = preview_after_s    # renders this slow show an early preview first
        self._versions = itertools.count(1)       # makes every panel key new, so it re-renders
        self._tickets = itertools.count(1)        # rest tickets (hot): each new one asks a page for the rest
        self.fast = dict(trigger_mode="always_last", show_progress="hidden", concurrency_id="render",
                         concurrency_limit=self.render_workers, api_visibility="private")
        # The image events skip gradio's queue (module docstring; bench/ui.py, one run: slider release ->
        # image shown, p50 192-230 ms through the queue, 124-138 without). Their lane is render_lane.
        self.hot_options = dict(trigger_mode="always_last", show_progress="hidden", queue=False,
                                api_visibility="private")
        self.render_lane = asyncio.Semaphore(self.render_workers)
        self.demo = self.build()

    def model_choices(self, extra: str | None = None, extra_label: str | None = None) -> list:
        """The dropdown's (label, ref) choices: names, never server paths (they go to every browser).
        The listed models, the page's first model and `extra` (the user's own, e.g. an upload)."""
        choices = [(name, name) for name in self.roots.names()]
        initial = self.roots.ref_of(self.initial_model) if self.initial_model else None
        for ref, label in ((initial, self.initial_label), (extra, extra_label)):
            if ref and ref not in [r for _, r in choices]:
                choices.append((label or ref, ref))
        return choices

    @property
    def initial_label(self) -> str | None:
        return display_name(self.initial_model, self.roots.ref_of(self.initial_model)) if self.initial_model else None

    # ---- layout --------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        with gr.Blocks(title="GAN Latent Explorer", delete_cache=(EXPORT_KEEP_S, EXPORT_KEEP_S)) as demo:
            self.state = gr.State(None)             # UserSession, or None: no model yet
            self.view = gr.State("directions")      # the open tab
            self.dirs_key = gr.State(None)          # (model, sliders shown, version): rebuilds the sliders
            self.mix_key = gr.State(None)           # (model, version): rebuilds the mixing controls
            gr.Markdown("# GAN Latent Explorer")
            gr.Markdown("Pick a seed, then drag the direction sliders. Mix styles from a second seed, look at "
                        "every resolution stage, and export an interpolation as a GIF or MP4.", elem_id="howto")
            with gr.Row(equal_height=False):
                choices = self.model_choices()
                initial = self.roots.ref_of(self.initial_model) if self.initial_model else None
                self.model_dd = gr.Dropdown(choices, value=initial, label="Model", scale=2,
                                            info="in the models folder" if choices else "no models installed",
                                            elem_id="model_dropdown")
                # Public mode has no path box: models come only from the roots and from uploads.
                self.model_path = self.model_load = None
                if not self.public:
                    self.model_path = gr.Textbox(label="…or a model folder or .pkl path", placeholder="runs/x/final",
                                                 scale=3, elem_id="model_path")
                    self.model_load = gr.Button("Load", scale=0, min_width=80, elem_id="model_load")
                self.model_upload = gr.UploadButton("⬆ Upload model", file_types=list(UPLOAD_SUFFIXES),
                                                    type="filepath", scale=0, min_width=150, elem_id="model_upload")
                gr.Markdown(f".pkl or zipped model folder, up to {self.max_upload_mb:,} MB", elem_id="upload_note")
            self.model_info = gr.Markdown("", elem_id="model_info")
            self.placeholder = gr.Markdown(NO_MODEL_PUBLIC if self.public else NO_MODEL,
                                           visible=self.initial_model is None, elem_id="placeholder")
            hidden = [] if self.initial_model else ["gle-hidden"]   # shown by SHOW_EXPLORER, not an update
            with gr.Row(equal_height=False, elem_id="explorer", elem_classes=hidden):
                with gr.Column(scale=5, min_width=420):
                    self.build_generate()
                    with gr.Accordion("Edit your own image", open=False, elem_id="project_box"):
                        self.build_project()
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
                    self.image = Image(type="pil", format="png", show_label=False, interactive=False,
                                       buttons=["download", "fullscreen"], elem_id="image")
                    self.image_note = gr.Markdown("", elem_id="image_note")
                    # Set by an image event that showed an early preview: its change asks for the rest.
                    self.rest_ticket = gr.Number(0, visible=False, elem_id="rest_ticket")
            self.wire(demo)
            register_api(self)
        demo.queue(default_concurrency_limit=1, max_size=256)
        return demo

    def build_generate(self) -> None:
        with gr.Group():
            with gr.Row(equal_height=True):
                self.seed = Number(0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED, scale=3,
                                      elem_id="seed")
                self.seed_random = gr.Button("🎲 Random", scale=1, min_width=90, elem_id="seed_random")
            with gr.Row(equal_height=True):
                self.psi = Slider(*PSI_RANGE, DEFAULT_PSI, step=0.05, label="Truncation ψ", scale=3,
                                     info="1 = none; lower = closer to the average image", elem_id="psi")
                self.noise = gr.Radio(list(NOISE_MODES), value="const", label="Noise", scale=2, elem_id="noise")
            # A conditional model's class (its one-hot label), as the official generate.py's --class.
            self.class_box = Number(0, label="Class", precision=0, minimum=0, visible=False, elem_id="class_idx")
            # Blending towards a second seed, as the StyleGAN3 visualizer's latent widget.
            with gr.Row(equal_height=True):
                self.blend_seed = Number(1, label="Blend with seed", precision=0, minimum=0, maximum=MAX_SEED,
                                         scale=2, elem_id="blend_seed")
                self.blend = Slider(0.0, 1.0, 0.0, step=0.01, label="Blend", info="0 = this seed, 1 = the other",
                                    scale=3, elem_id="blend")
                self.blend_space = gr.Radio([("W lerp", "w"), ("Z slerp", "z")], value="w", label="In", scale=2,
                                            elem_id="blend_space")

    # ---- wiring ----------------------------------------------------------------------------------
    def hot(self, listener, fn, inputs, outputs, **options):
        """Register an event that renders the image, in the render lane. The page marks the image
        busy when the event starts and clears the mark when it ends; the mark's CSS shows only after
        BUSY_DELAY_MS, so a fast model never flickers and a slow one is never a frozen page. What the
        callback says of the input (widgets.notify: "truncation 5 is out of range: using 1.5"), and an
        input it refuses (gr.Error, in bold), go to the note under the image, which each such event
        rewrites (these events skip the queue, which is what carries gr.Warning and gr.Error toasts).

        After an early preview of a slow model (Callbacks.change) the rest of the render goes on at
        once, holding the render lane, and the event hands the page a new rest ticket, whose change
        fetches the rest (collect_rest). An event without a preview has no second step (an always-run
        .then step with the image outputs cost 30-40 ms per slider move on the default model)."""
        def run(*args, step=fn, notes_too=True):
            with collecting_notes() as notes:
                try:
                    out = step(*args)
                except gr.Error as e:   # outside the queue gr.Error shows nothing: the note says it
                    return {self.image_note: f"**{e.message}**"}
            changed = out if isinstance(out, dict) and "__type__" not in out else {}   # not gr.skip()
            if not changed and not (notes and notes_too):   # nothing new (a widget's echo of its own correction)
                return gr.skip()
            # The second step keeps the first's note: it is about the input, which it does not see.
            return {**changed, self.image_note: " · ".join(notes)} if notes_too else changed

        # Async, so that an event waits for its turn in the render lane on the event loop, then renders
        # in a thread of asyncio's own pool. A sync callback would wait in one of gradio's worker
        # threads, a pool of 40 that every event's callback and pre/postprocessing share: a crowd of
        # slider moves blocked there would hold up everyone's exports and model loads.
        lane = self.render_lane
        listed = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        at = next((i for i, c in enumerate(listed) if c is self.state), None)   # where the UserSession is

        @functools.wraps(fn)
        async def with_note(*args):
            await lane.acquire()
            try:
                out = await asyncio.to_thread(run, *args)
            except BaseException:
                lane.release()
                raise
            user = args[at] if at is not None else None
            if isinstance(user, UserSession) and user.previewed is not None and isinstance(out, dict):
                # An early preview: the rest of its forward pass goes on now, while the preview travels
                # to the page, which then asks for the rest (the ticket's change: collect_rest).
                if user.rest is not None:   # a rest the page never asked for (its ticket superseded): its
                    user.rest.add_done_callback(_retrieve)   # error, if any, is not news ("never retrieved")
                user.rest = asyncio.create_task(self.finishing(user, run))
                return {**out, self.rest_ticket: next(self._tickets)}
            lane.release()
            return out
        event = listener(with_note, inputs, [*outputs, self.image_note, self.rest_ticket], js=MARK_BUSY,
                         **{**self.hot_options, **options})
        # .then: after success and after an error alike; after a preview, the busy mark stays till the rest.
        event.then(None, self.rest_ticket, js=CLEAR_BUSY_UNLESS_PREVIEW)
        return event

    async def finishing(self, user: UserSession, run):
        """The rest of a previewed render (Callbacks.finish), in the render lane that its event holds."""
        try:
            return await asyncio.to_thread(run, user, step=bind(self.finish), notes_too=False)
        finally:
            self.render_lane.release()

    async def collect_rest(self, user):
        """The rest of the render an image event previewed (its task: hot), when it is done."""
        if not isinstance(user, UserSession) or user.rest is None:
            return gr.skip()
        rest, user.rest = user.rest, None
        return await rest

    @property
    def out(self) -> list:
        """What a state change updates: the image and the tabs' images (the state is changed in place)."""
        return [self.image, self.stages, self.snapshots, self.mix_a, self.mix_b, self.mix_out]

    def wire(self, demo: gr.Blocks) -> None:
        view, state, out, fast = self.view, self.state, self.out, self.fast
        self.rest_ticket.change(self.collect_rest, state, [*out, self.image_note], **self.hot_options) \
            .then(None, js=CLEAR_BUSY)
        # Each control is an output of its own event: it shows the value used (clamped, rounded).
        self.hot(self.seed.input, bind(self.set_seed), [view, state, self.seed, self.keyframes],
                 [self.seed, *out, self.keyframes])
        self.hot(self.seed_random.click, bind(self.random_seed), [view, state, self.keyframes],
                 [self.seed, *out, self.keyframes])
        # .change: a drag, the keyboard, the number box and the reset icon all fire it (see panels.py).
        self.hot(self.psi.change, bind(self.set_psi), [view, state, self.psi], [self.psi, *out])
        self.hot(self.noise.input, bind(self.set_noise), [view, state, self.noise], out)
        self.hot(self.class_box.input, bind(self.set_class), [view, state, self.class_box], [self.class_box, *out])
        blend = [view, state, self.blend_seed, self.blend, self.blend_space]
        self.hot(self.blend.change, bind(self.set_blend), blend, [self.blend_seed, self.blend, *out])
        for box in (self.blend_seed, self.blend_space):
            self.hot(box.input, bind(self.set_blend), blend, [self.blend_seed, self.blend, *out])
        self.preview_dir.input(bind(self.choose_preview), [state, self.preview_dir], [self.label_box, self.preview_strip],
                               **fast)
        self.preview_btn.click(bind(self.preview_direction), [state, self.preview_dir], self.preview_strip,
                               **{**fast, "trigger_mode": "once"})
        self.label_box.submit(bind(self.set_label), [state, self.preview_dir, self.label_box, self.dirs_key],
                              [self.label_box, self.dirs_key], **fast)
        for name, tab in self.tabs.items():
            self.hot(tab.select, bind(self.select_view, name), state, [view, *out])

        model_outputs = [state, *out, self.keyframes, self.seed, self.psi, self.noise, self.class_box,
                         self.blend_seed, self.blend, self.blend_space, self.preview_dir, self.label_box,
                         self.preview_strip, self.method, self.model_info, self.model_dd, self.placeholder, self.dirs_key,
                         self.mix_key]
        # Opening a model or a session: a quick check with no outputs first (a bad name or file is a
        # toast, not an error badge on every output), then the work in the load lane, with its
        # progress over the image. The page's first model is warm (app.py loads it before serving): it opens
        # in a "start" lane as wide as the render lane, so a new visitor does not wait behind
        # another's model load.
        load = dict(concurrency_id="load", concurrency_limit=1, api_visibility="private", show_progress="full",
                    show_progress_on=[self.placeholder, self.image])
        quick = dict(concurrency_limit=None, api_visibility="private", show_progress="hidden")
        demo.load(bind(self.on_start), view, model_outputs, **{**load, "concurrency_id": "start",
                                                               "concurrency_limit": self.render_workers})
        triggers = [(self.model_dd.input, self.model_dd)]
        if self.model_path is not None:
            triggers += [(self.model_load.click, self.model_path), (self.model_path.submit, self.model_path)]
        for trigger, box in triggers:
            trigger(bind(self.check_model), box, None, **quick) \
                .success(bind(self.on_model), [box, view, state], model_outputs, **load) \
                .success(None, js=SHOW_EXPLORER)
        self.model_upload.upload(bind(self.check_upload), self.model_upload, None, **quick) \
            .success(bind(self.on_upload), [self.model_upload, view, state], model_outputs, **load) \
            .success(None, js=SHOW_EXPLORER)
        self.method.input(bind(self.set_method), [view, state, self.method, self.dirs_key],
                          [*out, self.dirs_key, self.preview_dir, self.preview_strip], **load)
        project = [view, state, self.project_upload, self.project_steps, self.project_space, self.dirs_key]
        self.project_upload.upload(bind(self.check_project), project, None, **quick) \
            .success(bind(self.project), project,
                     [*out, self.project_before, self.project_after, self.project_note, self.dirs_key,
                      self.keyframes, self.space],
                     **{**load, "concurrency_id": "project", "show_progress_on": [self.project_after, self.image]})
        self.session_upload.upload(bind(self.check_session), [self.session_upload, state], None, **quick) \
            .success(bind(self.on_session), [self.session_upload, view, state, self.dirs_key], model_outputs,
                     **load) \
            .success(None, js=SHOW_EXPLORER)
        self.session_save.click(bind(self.save_session), state, self.session_file, concurrency_id="files",
                                api_visibility="private", show_progress="hidden")
        export = [state, self.keyframes, self.frames, self.space, self.loop, self.fps, self.size, self.fmt]
        self.export_btn.click(bind(self.check_export), export, None, **quick) \
            .success(bind(self.adjust_export), export, [self.frames, self.fps, self.export_note], **quick) \
            .success(bind(self.export), export, [self.preview, self.preview_video, self.export_file],
                     concurrency_id="export", concurrency_limit=1, api_visibility="private", show_progress="full",
                     api_name="ui_export")   # "/export" is the public endpoint's name

    # ---- serving ----------------------------------------------------------------------------------
    def launch(self, host: str = "127.0.0.1", port: int = 7860, **kwargs):
        # No allowed_paths: gradio serves an output file from its own cache, under a name of its own,
        # and the export folder itself is not reachable by URL.
        # max_file_size: gradio refuses a larger upload before storing it (check_upload says so again).
        return self.demo.launch(server_name=host, server_port=port, show_error=False, ssr_mode=False,
                                max_file_size=f"{self.max_upload_mb}mb",
                                footer_links=[], css=CSS, theme=gr.themes.Soft(primary_hue="indigo"), **kwargs)


__all__ = ["ExplorerUI", "DIRECTIONS_STEP"]
