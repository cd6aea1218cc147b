"""Widgets whose out-of-range or fractional values reach the callback as typed, and output images
that are cheap to leave alone.

gr.Slider and gr.Number refuse an out-of-range value with an error (and gr.Number(precision=0)
rounds 3.7 to 4) before any callback runs, while the box keeps showing what was typed. These pass
the value through; the callback clamps or rounds it, shows the result in the widget and says so,
so the widget always shows the value the image was made with."""
from __future__ import annotations

import contextlib
import threading

import gradio as gr

_SCHEMAS: dict[type, dict] = {}


class _SharedSchema:
    """An output component whose API schema is computed once per class. Gradio rebuilds an output
    component for every update it is sent, gr.skip() included (every event sends one to each output it
    leaves alone), and the rebuilt one starts with an empty per-instance api_info cache: each skipped
    Image or Gallery regenerated its pydantic JSON schema, ~6 ms each, ~30 ms of a 45 ms slider event
    on the default model. The schema is that of the class's data model, the same for every instance."""

    def api_info(self):
        if type(self) not in _SCHEMAS:
            _SCHEMAS[type(self)] = super().api_info()
        return _SCHEMAS[type(self)]


class Image(_SharedSchema, gr.Image):
    def get_block_name(self) -> str:
        return "image"


class Gallery(_SharedSchema, gr.Gallery):
    def get_block_name(self) -> str:
        return "gallery"


class Slider(gr.Slider):
    def preprocess(self, payload):
        return None if payload is None else float(payload)

    def get_block_name(self) -> str:
        return "slider"


class Number(gr.Number):
    def preprocess(self, payload):
        return None if payload is None else float(payload)

    def get_block_name(self) -> str:
        return "number"


_NOTES = threading.local()


def notify(message: str) -> None:
    """Tell the user one line about what was done with their input. During an image event (they skip
    gradio's queue, and the queue is what carries gr.Warning toasts) the line is collected for the note
    under the image (collecting_notes); elsewhere it is a gr.Warning toast."""
    notes = getattr(_NOTES, "current", None)
    if notes is None:
        gr.Warning(message)
    else:
        notes.append(message)


@contextlib.contextmanager
def collecting_notes():
    """notify() calls in this thread, inside the block, go to the yielded list."""
    _NOTES.current = notes = []
    try:
        yield notes
    finally:
        _NOTES.current = None


def clamp(value: float, lo: float, hi: float, what: str, integer: bool = False, warn: bool = True) -> float:
    """value within [lo, hi] (rounded when integer), with a one-line notice (notify) when it changed."""
    v = min(hi, max(lo, round(value) if integer else value))
    if integer:
        v = int(v)
    if v != value and warn:
        notify(adjusted(value, v, lo, hi, what))
    return v


def adjusted(value: float, used: float, lo: float, hi: float, what: str) -> str:
    why = "not a whole number" if lo <= value <= hi else "out of range"
    return f"{what} {value:g} is {why}: using {used:g} ({what} goes from {lo:g} to {hi:g})"
