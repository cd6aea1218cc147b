"""GAN Latent Explorer: PCA directions, style mixing, stage previews and interpolation export.

The engine (explorer.engine) is plain Python and never imports gradio; explorer/ui/ is a thin
face on it. Names below are imported lazily so `import explorer.interpolate` stays light.
"""
from __future__ import annotations

_EXPORTS = {
    "Engine": "engine", "open_engine": "engine", "load_session": "engine", "StageImage": "stages",
    "ExplorerState": "session", "Edit": "session", "DirectionSettings": "session",
    "ExplorerError": "session", "StyleMixingUnsupported": "session", "parse_edit": "session",
    "Directions": "directions", "compute_directions": "directions", "load_or_compute": "directions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
