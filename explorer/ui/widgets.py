"""Widgets whose out-of-range or fractional values reach the callback as typed, and output images
that are cheap to leave alone and quick to send.

gr.Slider and gr.Number refuse an out-of-range value with an error (and gr.Number(precision=0)
rounds 3.7 to 4) before any callback runs, while the box keeps showing what was typed. These pass
the value through; the callback clamps or rounds it, shows the result in the widget and says so,
so the widget always shows the value the image was made with.

Gradio writes an output PIL image as a PNG at zlib's default level 6, which for a 512 px photo-like
image takes 60-120 ms on a 2-core CPU (a third of a 256 px model's render, or more); level 1 takes
13-34 ms for 6-17% more bytes (bench/ui.py prints both for the shown image). Image and Gallery here
write PNGs at level 1 into gradio's cache, named as gradio names its own, and hand gradio the path:
still lossless, so the download button gives the pixels the image was made with."""
from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path

import gradio as gr
from gradio.processing_utils import hash_bytes
from PIL import Image as PILImage

from gan.io.fileio import atomic_write_bytes

PNG_COMPRESS_LEVEL = 1   # zlib's fastest level that still compresses (0 stores: 3-4x the bytes)

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


def encode_png(image: PILImage.Image, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    with io.BytesIO() as out:
        image.save(out, "png", compress_level=level)
        return out.getvalue()


def png_to_cache(image: PILImage.Image, cache_dir: str) -> str:
    """The path of `image` written as a PNG (zlib level PNG_COMPRESS_LEVEL) in gradio's cache folder
    `cache_dir`, under <hash of the bytes>/image.png as gradio's own save_pil_to_cache names it (so equal
    images share a file, and gradio serves it and ages it out with the rest of its cache)."""
    data = encode_png(image)
    folder = Path(cache_dir) / hash_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "image.png"
    if not path.exists():   # whole, then renamed: a page fetching an equal image never reads half a file
        atomic_write_bytes(path, data, durable=False)
    return str(path.resolve())


class Image(_SharedSchema, gr.Image):
    def postprocess(self, value):
        if isinstance(value, PILImage.Image) and self.format == "png" and self.watermark.watermark is None:
            value = png_to_cache(value, self.GRADIO_CACHE)
        return super().postprocess(value)

    def get_block_name(self) -> str:
        return "image"


class Gallery(_SharedSchema, gr.Gallery):
    def postprocess(self, value):
        if value and self.format == "png" and not isinstance(value, str):
            value = [self._fast_png(item) for item in value]
        return super().postprocess(value)

    def _fast_png(self, item):
        """A gallery item (an image, or (image, caption)) with a PIL image as the path of its fast PNG."""
        captioned = isinstance(item, (tuple, list))
        image = item[0] if captioned else item
        if not isinstance(image, PILImage.Image):
            return item
        path = png_to_cache(image, self.GRADIO_CACHE)
        return (path, item[1]) if captioned else path

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
