"""The public API: named endpoints (gradio_client, "Use via API"), version API_VERSION.

    /models                                                  -> {"api_version", "models": [...]}
    /render    (model, seed, psi, noise, edits, mixing, size) -> PNG
    /directions(model)                                       -> {"model", "components": [...]}
    /mix_grid  (model, rows, cols, layers, preset, psi, noise, size) -> PNG
    /stages    (model, seed, psi, noise, edits, mixing)      -> gallery of PNGs, labelled "RxR"
    /export    (model, seeds, frames, space, loop, fps, size, fmt, psi, noise, edits, mixing) -> GIF/MP4

model is a name from /models; edits a list of {"component", "strength", "start", "end"} (end
exclusive, optional); mixing {"seed", "layers"} or {}. Each endpoint builds an ExplorerState and
makes the same engine calls as the page, in the same queue lanes; a bad request is refused with a
one-line message (no value is silently rounded or clamped).
"""
from __future__ import annotations

import gradio as gr

from gan.io.checkpoint import read_config
from gan.seeds import parse_seeds

from ..session import MAX_SEED, Edit, ExplorerError, ExplorerState
from .callbacks import DEFAULT_PSI
from .errors import bind
from .widgets import Gallery, Image

API_VERSION = 1


def as_int(value, what: str, lo: int, hi: int) -> int:
    """An integer from lo to hi; 3.0 is 3, but 3.7, "3", True and None are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
            or not lo <= value <= hi:
        raise ExplorerError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def as_float(value, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ExplorerError(f"{what} must be a number from {lo} to {hi}, got {value!r}")
    return float(value)


class Api:
    """The endpoint functions (plain arguments in, images/JSON/files out)."""

    def __init__(self, ui):
        self.ui = ui

    def state(self, model, seed, psi, noise, edits, mixing):
        """(engine, ExplorerState) of a request, checked against the model."""
        engine = self.ui.engine_of(self.ui.roots.resolve(model))
        edits = edits or []
        if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
            raise ExplorerError('edits must be a list of {"component", "strength", "start", "end"}')
        try:
            parsed = [Edit(**e) for e in edits]
        except TypeError as e:
            raise ExplorerError(f"bad edit: {e}") from None
        mixing = mixing or {}
        if not isinstance(mixing, dict) or set(mixing) - {"seed", "layers"}:
            raise ExplorerError('mixing must be {"seed": int, "layers": [int, ...]} or {}')
        mix_seed = mixing.get("seed")
        state = ExplorerState(model=str(engine.model_path), seed=as_int(seed, "seed", 0, MAX_SEED),
                              truncation_psi=as_float(psi, "psi", -2.0, 2.0), noise_mode=noise or "const",
                              edits=tuple(parsed), mix_seed=None if mix_seed is None else
                              as_int(mix_seed, "mixing seed", 0, MAX_SEED),
                              mix_layers=tuple(sorted(mixing.get("layers") or [])),
                              class_idx=0 if engine.c_dim else None)   # API v1 has no class: class 0
        return engine, engine.check_state(state.validate())

    @staticmethod
    def size(size, engine) -> int | None:
        return None if size in (None, 0) else as_int(size, "size", 1, 4096)

    def models(self) -> dict:
        rows = []
        for ref, folder in self.ui.roots.available().items():
            cfg, _ = read_config(folder)
            rows.append({"name": ref, "arch": cfg.arch, "img_resolution": cfg.img_resolution,
                         "img_channels": cfg.img_channels, "z_dim": cfg.z_dim})
        return {"api_version": API_VERSION, "models": rows}

    def render(self, model, seed, psi, noise, edits, mixing, size):
        engine, state = self.state(model, seed, psi, noise, edits, mixing)
        return engine.render(state, size=self.size(size, engine))

    def directions(self, model, progress=gr.Progress()):
        engine = self.ui.engine_of(self.ui.roots.resolve(model))
        d = engine.directions(progress=lambda f, text: progress(f, desc=text))
        return {"model": self.ui.roots.ref_of(engine.model_path), "space": d.space,
                "components": [{"component": i, "variance_ratio": float(r)}
                               for i, r in enumerate(d.explained_variance_ratio)]}

    def mix_grid(self, model, rows, cols, layers, preset, psi, noise, size):
        """layers: ws indices taken from the column seeds; none given: the preset (default coarse)."""
        engine, state = self.state(model, 0, psi, noise, [], {})
        return engine.mixing_grid(state, parse_seeds(str(rows)), parse_seeds(str(cols)), layers=layers or None,
                                  preset=None if layers else (preset or "coarse"), size=self.size(size, engine))

    def stages(self, model, seed, psi, noise, edits, mixing):
        engine, state = self.state(model, seed, psi, noise, edits, mixing)
        return [(s.image, s.label) for s in engine.stage_previews(state)]

    def export(self, model, seeds, frames, space, loop, fps, size, fmt, psi, noise, edits, mixing,
               progress=gr.Progress()):
        engine, state = self.state(model, 0, psi, noise, edits, mixing)
        if fmt not in ("GIF", "MP4"):
            raise ExplorerError(f"format must be GIF or MP4, got {fmt!r}")
        return str(self.ui.write_export(state, parse_seeds(str(seeds)), as_int(frames, "frames", 1, 100_000),
                                       space or "z", bool(loop), as_float(fps, "fps", 0.01, 240.0),
                                       self.size(size, engine), fmt, progress))


def register_api(ui) -> Api:
    """The endpoints, on hidden components (a gr.api endpoint cannot return a file)."""
    api = Api(ui)
    lane = dict(api_visibility="public", show_progress="hidden")
    render = dict(concurrency_id="render", concurrency_limit=ui.render_workers, **lane)
    with gr.Column(visible=False, elem_id="api"):
        model = gr.Textbox(label="model")
        seed, psi = gr.Number(0, label="seed"), gr.Number(DEFAULT_PSI, label="psi")
        noise = gr.Textbox("const", label="noise")
        edits, mixing = gr.JSON([], label="edits"), gr.JSON({}, label="mixing")
        size = gr.Number(0, label="size (px, 0 = the model's)")
        rows, cols, seeds = gr.Textbox("1-3", label="rows"), gr.Textbox("4-7", label="cols"), \
            gr.Textbox("0-3", label="seeds")
        layers, preset = gr.JSON([], label="layers"), gr.Textbox("coarse", label="preset (coarse|middle|fine)")
        frames, fps = gr.Number(12, label="frames per seed"), gr.Number(24, label="fps")
        space, fmt, loop = gr.Textbox("z", label="space"), gr.Textbox("GIF", label="format"), \
            gr.Checkbox(True, label="loop")
        image, table = Image(type="pil", format="png", label="image"), gr.JSON(label="table")
        gallery, file = Gallery(format="png", label="stages"), gr.File(label="file")
        trigger = gr.Button("api")   # never shown: the endpoints are called by name
    trigger.click(bind(api.models), None, table, api_name="models", concurrency_limit=None, **lane)
    trigger.click(bind(api.render), [model, seed, psi, noise, edits, mixing, size], image, api_name="render",
                  **render)
    trigger.click(bind(api.stages), [model, seed, psi, noise, edits, mixing], gallery, api_name="stages", **render)
    trigger.click(bind(api.directions), model, table, api_name="directions", concurrency_id="load",
                  concurrency_limit=1, **lane)
    trigger.click(bind(api.mix_grid), [model, rows, cols, layers, preset, psi, noise, size], image, api_name="mix_grid",
                  concurrency_id="grid", concurrency_limit=1, **lane)
    trigger.click(bind(api.export), [model, seeds, frames, space, loop, fps, size, fmt, psi, noise, edits, mixing],
                  file, api_name="export", concurrency_id="export", concurrency_limit=1, **lane)
    return api
