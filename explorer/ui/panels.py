"""The tabs' layouts. The direction sliders and mixing controls depend on the model (and a loaded
session), so they are @gr.render panels rebuilt when their key state changes."""
from __future__ import annotations

import gradio as gr

from ..session import MAX_LABEL, MAX_SEED
from .callbacks import DIRECTIONS_STEP, FPS_RANGE, FRAMES_RANGE, MAX_DIRECTIONS, STRENGTH_RANGE
from .errors import bind
from .widgets import Gallery, Image, Number, Slider
# The panels run one at a time, across all sessions. Gradio's renders of one session share its
# config: one render adding components while another's reply lists them fails with "dictionary
# changed size during iteration", and that panel shows "Error" instead of its sliders (gradio issue
# #9991; 1 page load in ~25 here, dirs_key and mix_key are set by the same load). A panel takes
# tens of milliseconds, so the lane costs a crowd of visitors little.
PANEL_RENDER = dict(concurrency_id="panels", concurrency_limit=1, show_progress="hidden")
NO_MIXING = "Style mixing needs a StyleGAN2 model: a PGGAN feeds one latent to every layer."

__all__ = ["Panels", "DIRECTIONS_STEP"]


class Panels:
    """Mixed into ExplorerUI: the layout of each tab."""

    def build_directions(self) -> None:
        with gr.Row(equal_height=True):
            gr.Markdown("Directions in standard deviations; each applies to style layers *from*…*to* "
                        "(inclusive).", elem_id="dirs_help")
            self.method = gr.Radio([("PCA (GANSpace)", "pca"), ("SeFa (closed form)", "sefa")], value="pca",
                                   label="Directions from", min_width=240, elem_id="dirs_method")
        gr.render(inputs=[self.dirs_key, self.state], triggers=[self.dirs_key.change],
                  **PANEL_RENDER)(self.directions_panel)
        with gr.Accordion("What does a direction do? Preview it, name it", open=False, elem_id="dir_tools"):
            with gr.Row(equal_height=True):
                self.preview_dir = gr.Dropdown([(f"Direction {i}", i) for i in range(DIRECTIONS_STEP)], value=0,
                                               label="Direction", scale=2, min_width=140, filterable=False,
                                               elem_id="preview_dir")
                self.label_box = gr.Textbox(label="Its name (Enter saves)", placeholder="e.g. sleeve length",
                                            max_length=MAX_LABEL, scale=3, elem_id="dir_label")
                self.preview_btn = gr.Button("Preview −3…+3σ", scale=1, min_width=120, elem_id="dir_preview_btn")
            self.preview_strip = Image(type="pil", format="png", interactive=False, buttons=[],
                                       label="the current image along the direction", elem_id="dir_preview")

    def directions_panel(self, key, user) -> None:
        """The sliders of the first key[1] PCA directions, set from the state's edits."""
        if key is None or user is None:
            return
        state = user.state
        engine = self.engine(state)
        dirs = engine.directions(state.directions)
        limit = min(MAX_DIRECTIONS, dirs.num_components)
        shown = min(key[1], limit)
        edits = {e.component: e for e in state.edits}
        last = engine.num_ws - 1
        # Each layer box names the resolution its ws index feeds: "5 · 32px" (short: the boxes are narrow).
        feeds = {i: res for res, ix in engine.info()["layer_groups"] for i in ix}
        layer_choices = [(f"{i} · {feeds.get(i, '?')}px", i) for i in range(engine.num_ws)]
        for i in range(shown):
            e = edits.get(i)
            lo, hi = e.layer_range(engine.num_ws) if e else (0, engine.num_ws)
            variance = f"{100 * dirs.explained_variance_ratio[i]:.1f}% of variance"
            name = state.label_of(i)
            with gr.Row(equal_height=False, elem_classes="dir-row"):
                strength = Slider(-STRENGTH_RANGE, STRENGTH_RANGE, e.strength if e else 0.0, step=0.1,
                                     label=f"Direction {i}" + (f" · {name}" if name else ""), info=variance,
                                     scale=6, min_width=220,
                                     interactive=True, elem_id=f"dir{i}")
                layer = dict(choices=layer_choices, scale=2, min_width=96, visible=last > 0, elem_classes="layer",
                             interactive=True, filterable=False)
                start = gr.Dropdown(value=lo, label="from", elem_id=f"dir{i}_start", **layer)
                end = gr.Dropdown(value=hi - 1, label="to", elem_id=f"dir{i}_end", **layer)
            row, boxes = [self.view, self.state, strength, start, end], (strength, start, end)
            # .change, not .input or .release: it is the one event that a drag (always_last: one
            # render in flight, then the latest value), the keyboard, the number box and the reset
            # icon all fire. Setting the slider to the value already shown fires nothing.
            # Only the image: these live in the Directions tab, so no other tab's images are showing
            # (and every output an event leaves alone costs gradio a rebuilt component).
            self.hot(strength.change, bind(self.set_direction, i, boxes), row, [*boxes, self.image])
            for box in (start, end):
                self.hot(box.input, bind(self.set_direction, i, boxes), row, [*boxes, self.image])
        with gr.Row():
            more = gr.Button(f"More directions ({shown} of {limit} shown)", size="sm", interactive=shown < limit,
                             elem_id="dirs_more")
            reset = gr.Button("Reset directions", size="sm", elem_id="dirs_reset")
        more.click(self.more_directions, self.dirs_key, self.dirs_key, **self.fast)
        self.hot(reset.click, bind(self.reset_directions), [self.view, self.state, self.dirs_key],
                 [*self.out, self.dirs_key])

    def build_mixing(self) -> None:
        gr.render(inputs=[self.mix_key, self.state], triggers=[self.mix_key.change],
                  **PANEL_RENDER)(self.mixing_controls)
        with gr.Row():
            thumb = dict(type="pil", format="png", interactive=False, buttons=[], min_width=100)
            self.mix_a = Image(label="A (seed)", elem_id="mix_a", **thumb)
            self.mix_b = Image(label="B (seed B)", elem_id="mix_b", **thumb)
            self.mix_out = Image(label="Mixed", elem_id="mix_out", **thumb)
        gr.render(inputs=[self.mix_key, self.state], triggers=[self.mix_key.change],
                  **PANEL_RENDER)(self.mixing_grid_panel)

    def mixing_controls(self, key, user) -> None:
        """Seed B, one checkbox per style layer grouped by resolution, presets (StyleGAN2 only)."""
        if key is None or user is None:
            return
        state = user.state
        engine = self.engine(state)
        if not engine.supports_style_mixing:
            gr.Markdown(NO_MIXING, elem_id="no_mixing")
            return
        gr.Markdown("Take the checked style layers from seed B (coarse = pose and shape, middle = features, "
                    "fine = colour and texture).")
        with gr.Row(equal_height=True):
            mix_seed = Number(state.mix_seed, label="Seed B", precision=0, minimum=0, maximum=MAX_SEED,
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
            self.hot(c.input, bind(self.set_mixing, mix_seed), mix, [mix_seed, *self.out])
        self.hot(mix_random.click, bind(self.random_mix_seed, mix_seed), mix, [mix_seed, *self.out])
        for name, btn in buttons.items():
            self.hot(btn.click, bind(self.preset, presets[name], groups, mix_seed), [self.view, self.state, mix_seed],
                      [*groups, mix_seed, *self.out])

    def mixing_grid_panel(self, key, user) -> None:
        if key is None or user is None or not self.engine(user.state).supports_style_mixing:
            return
        with gr.Accordion("Mixing grid", open=False):
            with gr.Row():
                rows = gr.Textbox("1-3", label="Row seeds (A)", interactive=True, elem_id="grid_rows")
                cols = gr.Textbox("4-7", label="Column seeds (B)", interactive=True, elem_id="grid_cols")
            make = gr.Button("Make grid (checked layers, or coarse)", elem_id="grid_make")
            grid = Image(type="pil", format="png", label="rows: seeds A · columns: seeds B", interactive=False,
                         elem_id="grid_image")
        # Everything that can be wrong is checked first, with no outputs: a refused grid leaves the
        # last one in place, with no error badge.
        make.click(bind(self.check_grid), [rows, cols], None, concurrency_limit=None, api_visibility="private",
                   show_progress="hidden") \
            .success(bind(self.make_grid), [self.state, rows, cols], grid, concurrency_id="grid",
                     concurrency_limit=1, api_visibility="private")

    def build_stages(self) -> None:
        gr.Markdown("The image at every resolution stage of the generator, lowest first (each block's own "
                    "RGB output). A PGGAN stops training a stage's RGB output once the next stage has faded "
                    "in, so for a PGGAN run the snapshots below show what each stage really looked like.")
        gallery = dict(columns=5, format="png", allow_preview=False, buttons=[])
        self.stages = Gallery(show_label=False, elem_id="stages", **gallery)
        self.snapshots = Gallery(label="The same seed through each stage snapshot that training kept",
                                    visible=False, elem_id="snapshots", **gallery)

    def build_export(self) -> None:
        self.keyframes = gr.Textbox("0,1,2,3", label="Keyframes", info="seeds, and 'this' for the image shown (your projected "
                                    "image too; projected images need the W path): e.g. this,5,9 or 0-3",
                                    elem_id="export_seeds")
        with gr.Row():
            self.frames = Slider(*FRAMES_RANGE, 12, step=1, label="Frames per seed", elem_id="export_frames")
            self.fps = Slider(*FPS_RANGE, 24, step=1, label="fps", info="GIF: at most 50", elem_id="export_fps")
        with gr.Row():
            self.space = gr.Radio([("Z slerp", "z"), ("W lerp", "w")], value="z", label="Path", min_width=150,
                                  elem_id="export_space")
            self.fmt = gr.Radio(["GIF", "MP4"], value="GIF", label="Format", min_width=150, elem_id="export_format")
        with gr.Row(equal_height=True):
            self.size = gr.Dropdown([128, 256, 512], value=256, label="Size (px)", elem_id="export_size")
            self.loop = gr.Checkbox(True, label="Loop back to the first seed", elem_id="export_loop")
        self.export_btn = gr.Button("Export", variant="primary", elem_id="export_button")
        self.export_note = gr.Markdown("", elem_id="export_note")
        with gr.Row():
            self.preview = gr.Image(type="filepath", label="Preview", interactive=False, elem_id="export_preview")
            self.preview_video = gr.Video(label="Preview", interactive=False, visible=False, elem_id="export_video")
            self.export_file = gr.File(label="Download", interactive=False, elem_id="export_file")

    def build_project(self) -> None:
        gr.Markdown("Bring your own picture: it is centre-cropped and resized to the model's size, then the "
                    "latent whose image matches it is searched for (as NVIDIA's projector). The result "
                    "becomes the image here: move the direction sliders, mix it, export it. Pick a seed to "
                    "go back to seeds.", elem_id="project_help")
        with gr.Row(equal_height=True):
            self.project_upload = gr.UploadButton("⬆ Upload image", file_types=["image"], type="filepath",
                                                  min_width=140, elem_id="project_upload")
            self.project_steps = Slider(10, 1000, 200, step=10, label="Steps", info="more: closer, slower",
                                        min_width=200, elem_id="project_steps")
            self.project_space = gr.Radio([("W+ (closer)", "w+"), ("W (more editable)", "w")], value="w+",
                                          label="Latent", min_width=160, elem_id="project_space")
        with gr.Row():
            thumb = dict(type="pil", format="png", interactive=False, buttons=[], min_width=120)
            self.project_before = Image(label="Your image (as the model sees it)", elem_id="project_before",
                                        **thumb)
            self.project_after = Image(label="Projected", elem_id="project_after", **thumb)
        self.project_note = gr.Markdown("", elem_id="project_note")

    def build_session(self) -> None:
        gr.Markdown("A session is the whole state (model, seed, truncation, edits, mixing) as JSON: "
                    "it reloads to the same pixels, here or with `python -m explorer render --session`.")
        with gr.Row():
            self.session_save = gr.Button("Save session", elem_id="session_save")
            self.session_upload = gr.UploadButton("Load session…", file_types=[".json", ".zip"], type="filepath",
                                                  elem_id="session_upload")
        self.session_file = gr.File(label="Session file", interactive=False, elem_id="session_file")
