"""Widgets whose out-of-range or fractional values reach the callback as typed.

gr.Slider and gr.Number refuse an out-of-range value with an error (and gr.Number(precision=0)
rounds 3.7 to 4) before any callback runs, while the box keeps showing what was typed. These pass
the value through; the callback clamps or rounds it, shows the result in the widget and says so,
so the widget always shows the value the image was made with."""
from __future__ import annotations

import gradio as gr


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


def clamp(value: float, lo: float, hi: float, what: str, integer: bool = False, warn: bool = True) -> float:
    """value within [lo, hi] (rounded when integer), with a one-line warning when it changed."""
    v = min(hi, max(lo, round(value) if integer else value))
    if integer:
        v = int(v)
    if v != value and warn:
        gr.Warning(adjusted(value, v, lo, hi, what))
    return v


def adjusted(value: float, used: float, lo: float, hi: float, what: str) -> str:
    why = "not a whole number" if lo <= value <= hi else "out of range"
    return f"{what} {value:g} is {why}: using {used:g} ({what} goes from {lo:g} to {hi:g})"
