"""The explorer's web UI: a gradio Blocks app over `explorer.engine`, as a small package.

    models.py     which models may be opened (trust modes, allowed roots) and how they are named
    errors.py     one-line user errors that name no server path
    callbacks.py  the callbacks (each: widgets + the user's session -> engine calls -> outputs)
    panels.py     the tabs' layouts; layout.py the page, its wiring and its queue lanes
    api.py        the public named endpoints (/render, /directions, ...), the same engine calls

    python app.py [--model NAME|DIR|FILE.pkl] [--public]       # see app.py; ExplorerUI(model).launch(...) here
"""
from __future__ import annotations

from pathlib import Path

from ..engine import open_engine
from .api import API_VERSION
from .callbacks import DEFAULT_PSI, DISPLAY_SIZE, MAX_UPLOAD_MB
from .layout import PREVIEW_AFTER_S, ExplorerUI
from .models import MODELS_DIR, ModelRoots, default_model, list_models, resolve_model

__all__ = ["API_VERSION", "DEFAULT_PSI", "DISPLAY_SIZE", "ExplorerUI", "MAX_UPLOAD_MB", "MODELS_DIR", "PREVIEW_AFTER_S",
           "ModelRoots", "default_model", "list_models", "resolve_model", "warm_up"]


def warm_up(model: str | Path, **engine_kwargs) -> None:
    """Load the model and its PCA directions before serving, so the first visitor does not wait."""
    engine = open_engine(model, **engine_kwargs)
    engine.directions()
    engine.render(engine.default_state(truncation_psi=DEFAULT_PSI), size=DISPLAY_SIZE)
