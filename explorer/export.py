"""Frames -> animated GIF or MP4 files.

Frames are np.uint8 [H, W, C] with C = 1 (greyscale) or 3 (RGB); model output is converted at
this edge with gan.io.images.to_uint8. Every writer streams: frames may come from a generator and
only the current frame is held in memory.

- MP4 goes through imageio's FFMPEG plugin (the ffmpeg binary ships with imageio-ffmpeg):
  H.264, yuv420p, with odd sizes padded to even (see `write_mp4`).
- GIF is assembled here from single-frame GIFs that Pillow encodes (quantisation + LZW), rather
  than through imageio's GIF writer (its pillow plugin), for three measured reasons (Pillow 12.3,
  imageio 2.38, this 2-core CPU, 256 px frames of smooth colour like GAN output, 24 fps):
  1. memory: imageio keeps every frame as a PIL image until close() and Pillow's multi-frame
     writer then holds them all again (`_write_multiple_frames` lists every frame before writing):
     peak RSS +25 MiB for 50 frames, +74 MiB for 200, i.e. ~0.33 MiB per 256 px frame, growing
     with the animation: ~0.65 GiB at MAX_FRAMES (2000) at 256 px, ~2.6 GiB at the UI's 512 px,
     ~166 GiB at the CLI's 4096 px. This writer: +1.9 MiB for 100 and for 1000 frames at 256 px,
     +5.4 MiB for 300 frames at 512 px (one frame at a time).
  2. speed: 400-550 ms per frame (Pillow converts each RGB frame with its default quantizer,
     MEDIANCUT, and diffs it against the last; imageio.v2.get_writer, the same plugin underneath:
     ~730 ms) against 5-8 ms here (FASTOCTREE); 2000 frames: ~15 min against ~15 s.
  3. frame count: Pillow merges identical consecutive frames into one longer frame, whatever
     `disposal`/`optimize` say, so a paused stretch of an animation would change the frame count.
  Writing the GIF container here keeps exactly one GIF frame per input frame and lets it stream.
  (Measured with a one-off script: peak ru_maxrss of a fresh process over its baseline.)

`export_frames` is the entry point for the engine: suffix -> format (one table, FORMATS),
optional resize, progress, and an atomic write (gan.io.fileio.atomic_write).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from gan.io.fileio import atomic_write

GIF_MAX_FPS = 50  # GIF delays are in 1/100 s, and browsers slow down delays under 2/100 s
MP4_QUALITY = 8  # imageio's 0..10 scale; for libx264 this is -crf 10 (near-transparent)

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

GIF_QUANTIZERS = {
    # For RGB frames with more than 256 colours (frames with fewer are stored exactly, see
    # `_to_palette`). FASTOCTREE: ~2 ms per 256 px frame; MEDIANCUT: ~100 ms, somewhat smoother
    # gradients.
    "fastoctree": Image.Quantize.FASTOCTREE,
    "mediancut": Image.Quantize.MEDIANCUT,
}

ProgressFn = Callable[[int, "int | None"], None]


# ---------------------------------------------------------------------------------------------
# Conversion and checks
# ---------------------------------------------------------------------------------------------

def _check_frame(frame: np.ndarray, index: int) -> np.ndarray:
    """A frame as a contiguous np.uint8 [H, W, C], C in (1, 3); [H, W] counts as greyscale."""
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (1, 3) or 0 in arr.shape:
        raise ValueError(
            f"frame {index} is {arr.dtype} {arr.shape}: expected np.uint8 [H, W, C] with C = 1 or 3 "
            f"(convert model output with gan.io.images.to_uint8)"
        )
    return np.ascontiguousarray(arr)


def _checked_frames(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Frames checked one at a time, all with the shape of the first."""
    first_shape = None
    for i, frame in enumerate(frames):
        arr = _check_frame(frame, i)
        if first_shape is None:
            first_shape = arr.shape
        elif arr.shape != first_shape:
            raise ValueError(
                f"frame {i} has shape {arr.shape} but frame 0 has {first_shape}: all frames must match"
            )
        yield arr
    if first_shape is None:
        raise ValueError("no frames to write")


def _check_fps(fps: float, max_fps: float | None = None) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if max_fps is not None and fps > max_fps:
        raise ValueError(
            f"GIF supports at most {max_fps} fps (browsers slow faster GIFs down): use MP4 or lower fps"
        )
    return float(fps)


def _to_pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")


def pick_resample(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> str:
    """Default resampling: "nearest" for an exact integer upscale (keeps tiny GAN images crisp,
    pixels become clean squares), otherwise "lanczos" (downscaling or fractional factors)."""
    (sh, sw), (dh, dw) = src_hw, dst_hw
    if dh >= sh and dw >= sw and dh % sh == 0 and dw % sw == 0 and dh // sh == dw // sw:
        return "nearest"
    return "lanczos"


def resize_frame(arr: np.ndarray, size: int, resample: str | None = None) -> np.ndarray:
    """Scale a uint8 [H, W, C] frame so its longer side is `size` (square frames -> size x size).

    resample: a name in RESAMPLE, or None for `pick_resample`'s choice.
    """
    h, w = arr.shape[:2]
    scale = size / max(h, w)
    dst = (max(1, round(h * scale)), max(1, round(w * scale)))
    if dst == (h, w):
        return arr
    method = resample or pick_resample((h, w), dst)
    out = np.asarray(_to_pil(arr).resize((dst[1], dst[0]), RESAMPLE[method]))
    return out[:, :, None] if out.ndim == 2 else out


# ---------------------------------------------------------------------------------------------
# GIF
# ---------------------------------------------------------------------------------------------

def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """Position after a chain of GIF data sub-blocks (each: length byte + bytes; 0 ends)."""
    while data[pos] != 0:
        pos += data[pos] + 1
    return pos + 1


def _to_palette(arr: np.ndarray, method: Image.Quantize) -> Image.Image:
    """RGB uint8 [H, W, 3] -> a 'P' image. A frame with at most 256 colours gets exactly those
    colours as its palette: Pillow's quantizers (either) and its palette mapping can merge close
    colours even then (measured: of 10 random frames, 5 with 128 colours, 1 with 64 came back
    changed). Other frames are quantised with `method`; getcolors gives up at colour 257, so the
    check is ~free for them. The exact mapping (a binary search among <= 256 colours) costs about
    what FASTOCTREE does: 1.4 ms at 256 px, 250 ms at 4096 px."""
    img = Image.fromarray(arr, "RGB")
    found = img.getcolors(256)
    if found is None:
        return img.quantize(256, method=method)
    palette = np.array(sorted(rgb for _, rgb in found), np.uint8)                  # [K, 3], K <= 256
    packed = (arr[..., 0].astype(np.uint32) << 16) | (arr[..., 1].astype(np.uint32) << 8) | arr[..., 2]
    keys = (palette[:, 0].astype(np.uint32) << 16) | (palette[:, 1].astype(np.uint32) << 8) | palette[:, 2]
    out = Image.fromarray(np.searchsorted(keys, packed).astype(np.uint8), "P")  # [H, W] palette indices
    out.putpalette(palette.tobytes())
    return out


def _encode_gif_frame(img: Image.Image) -> tuple[bytes, int, int, bytes]:
    """Encode one image with Pillow as a single-frame GIF and cut out its parts.

    Returns (colour table, table size bits, interlace flag, LZW data incl. min code size).
    """
    buf = io.BytesIO()
    img.save(buf, format="GIF", interlace=False)
    data = buf.getvalue()
    screen_flags = data[10]
    pos = 13
    table, bits = b"", 0
    if screen_flags & 0x80:
        bits = screen_flags & 0x07
        table = data[pos : pos + 3 * 2 ** (bits + 1)]
        pos += len(table)
    while data[pos] == 0x21:  # extensions Pillow may add (comments, transparency): not needed
        pos = _skip_sub_blocks(data, pos + 2)
    if data[pos] != 0x2C:
        raise RuntimeError(f"unexpected GIF block 0x{data[pos]:02x} from Pillow's encoder")
    image_flags = data[pos + 9]
    pos += 10
    if image_flags & 0x80:  # a local table overrides the global one
        bits = image_flags & 0x07
        table = data[pos : pos + 3 * 2 ** (bits + 1)]
        pos += len(table)
    if not table:
        raise RuntimeError("Pillow wrote a GIF frame without a colour table")
    end = _skip_sub_blocks(data, pos + 1)  # +1: the LZW minimum code size byte
    return table, bits, image_flags & 0x40, data[pos:end]


def _gif_delays_cs(fps: float) -> Iterator[int]:
    """Per-frame delays in 1/100 s whose running sum tracks i * 100 / fps (no drift)."""
    i, done = 0, 0
    while True:
        i += 1
        target = round(i * 100 / fps)
        yield target - done
        done = target


def write_gif(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    loop: bool = True,
    quantize: str = "fastoctree",
) -> int:
    """Write an animated GIF, one GIF frame per input frame (identical frames are kept).

    frames: iterable of np.uint8 [H, W, C], C = 1 (exact 256-level grey) or 3 (frames with at
        most 256 colours come out exact; others are quantised to a 256-colour palette per frame
        with `quantize`, a name in GIF_QUANTIZERS).
    fps: <= GIF_MAX_FPS; delays are whole 1/100 s, alternating so the total time is right.
    loop: True -> loops forever (NETSCAPE loop count 0); False -> plays once.
    Writes straight to `path` (not atomic: use export_frames). Returns the number of frames.
    """
    fps = _check_fps(fps, GIF_MAX_FPS)
    if quantize not in GIF_QUANTIZERS:
        raise ValueError(f"unknown GIF quantizer {quantize!r}: choose one of {', '.join(GIF_QUANTIZERS)}")
    method = GIF_QUANTIZERS[quantize]
    delays = _gif_delays_cs(fps)
    count = 0
    fp = None
    try:
        for arr in _checked_frames(frames):
            img = _to_pil(arr) if arr.shape[2] == 1 else _to_palette(arr, method)
            table, bits, interlace, lzw = _encode_gif_frame(img)
            h, w = arr.shape[:2]
            if fp is None:
                fp = open(path, "wb")
                # Header + logical screen (global table = the first frame's, 8-bit colour).
                fp.write(b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80 | 0x70 | bits, 0, 0) + table)
                if loop:  # NETSCAPE2.0 application extension: loop count 0 = forever
                    fp.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00")
            # Graphic control: disposal 1 (leave in place), delay, no transparency.
            fp.write(b"\x21\xf9\x04\x04" + struct.pack("<H", next(delays)) + b"\x00\x00")
            # Image descriptor with its own (local) colour table, then the LZW data.
            fp.write(b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0x80 | interlace | bits) + table + lzw)
            count += 1
        fp.write(b"\x3b")
    finally:
        if fp is not None:
            fp.close()
    return count


# ---------------------------------------------------------------------------------------------
# MP4
# ---------------------------------------------------------------------------------------------

def _even_rgb(arr: np.ndarray) -> np.ndarray:
    """Greyscale -> RGB; odd height/width padded by one edge-replicated row/column (yuv420p
    needs even sizes; padding keeps every pixel where it was, unlike a resize)."""
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    pad_h, pad_w = arr.shape[0] % 2, arr.shape[1] % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return arr


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> int:
    """Write an H.264 MP4 (yuv420p, imageio quality MP4_QUALITY, faststart) through imageio's
    FFMPEG plugin, streaming frames to ffmpeg one at a time.

    frames: iterable of np.uint8 [H, W, C], C = 1 or 3; greyscale becomes RGB, and an odd
    height/width is padded by one edge-replicated pixel to make it even (no resize).
    Writes straight to `path` (not atomic: use export_frames). Returns the number of frames.
    """
    import imageio.v2 as iio2  # imported here: starting ffmpeg support is not free

    fps = _check_fps(fps)
    count = 0
    writer = None
    try:
        for arr in _checked_frames(frames):
            if writer is None:
                writer = iio2.get_writer(
                    os.fspath(path),
                    format="FFMPEG",
                    mode="I",
                    fps=fps,
                    codec="libx264",
                    pixelformat="yuv420p",
                    quality=MP4_QUALITY,
                    macro_block_size=1,  # we make sizes even ourselves; no rescaling by imageio
                    ffmpeg_log_level="error",
                    output_params=["-movflags", "+faststart"],
                )
            writer.append_data(_even_rgb(arr))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Format:
    """An output format: its writer write(frames, path, fps, **options) -> frame count, the
    highest fps it plays, and whether it takes `loop`."""
    write: Callable[..., int]
    max_fps: float | None = None
    loops: bool = False


FORMATS = {  # suffix -> format: the one place export_frames looks a suffix up
    ".gif": Format(write_gif, max_fps=GIF_MAX_FPS, loops=True),
    ".mp4": Format(write_mp4),
}


def export_frames(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    size: int | None = None,
    num_frames: int | None = None,
    progress: ProgressFn | None = None,
    resample: str | None = None,
    loop: bool = True,
) -> Path:
    """Write frames to `path` as GIF or MP4 (chosen by the suffix, see FORMATS) and return the path.

    frames: iterable of np.uint8 [H, W, C], C = 1 or 3 (a generator is consumed lazily).
    fps: frames per second (GIF: at most GIF_MAX_FPS).
    size: if given, frames are scaled so the longer side is `size` (square -> size x size).
    resample: a name in RESAMPLE; None = "nearest" for an exact integer upscale, else "lanczos".
    num_frames: the expected count, for progress; taken from len(frames) when it has one.
    progress: called as progress(frames_done, num_frames) after each frame is handed to the
        encoder; if None and num_frames is known, a tqdm bar is shown instead.
    loop: GIF only: loop forever (True) or play once.
    Everything users can get wrong (suffix, missing folder, fps, size, resample) is checked
    before any work. The file appears only when complete (gan.io.fileio.atomic_write: a
    temporary file in the same folder, with the real suffix so ffmpeg picks the format, renamed
    over `path`); on failure the temporary file is removed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise ValueError(
            f"unsupported output type {suffix or '(no suffix)'!r} for {path.name}: "
            f"use one of {', '.join(FORMATS)}"
        )
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"output folder {folder} does not exist")
    _check_fps(fps, fmt.max_fps)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
    if resample is not None and resample not in RESAMPLE:
        raise ValueError(f"unknown resample {resample!r}: choose one of {', '.join(RESAMPLE)}")
    if num_frames is None and hasattr(frames, "__len__"):
        num_frames = len(frames)
    options = {"loop": loop} if fmt.loops else {}

    bar = None
    if progress is None and num_frames is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_frames, unit="frame", desc=f"export {path.name}")

    def prepared() -> Iterator[np.ndarray]:
        for i, frame in enumerate(frames):
            arr = _check_frame(frame, i)
            yield arr if size is None else resize_frame(arr, size, resample)
            # Resumed: the encoder has taken frame i and asks for the next one.
            if progress is not None:
                progress(i + 1, num_frames)
            elif bar is not None:
                bar.update(1)

    try:
        atomic_write(path, lambda tmp: fmt.write(prepared(), tmp, fps, **options), suffix=suffix)
    finally:
        if bar is not None:
            bar.close()
    return path
