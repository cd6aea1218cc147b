"""Target images for projection: a user's file, prepared as the trainer prepares training images
(gan.data: composited onto white when it has alpha, RGB or greyscale to match the model, the centre
square kept and resized with Lanczos), as a float tensor [C, R, R] in [-1, 1].

    target = load_target("photo.jpg", G.img_resolution, G.img_channels)
    target.image        # torch.float32 [C, R, R]
    target.notes        # what was done that the user may not expect ("first of 12 frames", ...)

Hostile input is refused with one ExplorerError line, never a traceback: a missing, empty, oversized or
non-image file, a format other than PNG / JPEG / GIF / WebP / BMP / TIFF, a truncated or corrupt file, a
colour mode that cannot be converted, and an image whose pixel count would be a decompression bomb.
Pixel limits: PIL's own check refuses more than 2 * Image.MAX_IMAGE_PIXELS (about 179 MP) while reading
the header (its warning between 89 and 179 MP is replaced by our check); a JPEG is decoded at a reduced
size by its DCT (`draft`, 1/2 to 1/8), so only what is decoded counts: at most MAX_DECODED_PIXELS
(40 MP) after that reduction. A 100 MP JPEG is therefore loaded (decoded at 1250x1250 for a small
model), a 100 MP PNG refused before any pixel is decoded. Animated images use their first frame;
CMYK is converted to RGB, 16-bit greyscale (PNG mode I;16) is scaled by 255 / 65535 whatever its
values (a dark 16-bit image stays dark), EXIF orientation is applied: gan.data.sources.prepare_image,
the one preparation of every image this project reads, does all of that and the crop and resize.
"""
from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gan.data.sources import UnsupportedModeError, prepare_image

from .session import ExplorerError

FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
MAX_FILE_BYTES = 128 * 1024 ** 2
MAX_DECODED_PIXELS = 40_000_000
# What a broken file can raise while PIL reads and decodes it.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, IndexError,
                  Image.DecompressionBombError)


@dataclass(frozen=True)
class Target:
    """image [C, R, R] float32 in [-1, 1]; source_size (w, h) of the file's image; notes: one-line remarks."""
    image: torch.Tensor
    source_size: tuple[int, int]
    notes: tuple[str, ...] = ()


def _read(source, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ExplorerError(f"target {name}: no such file" if not path.exists() else
                                f"target {name} is not a file: give an image file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ExplorerError(f"target {name} is {path.stat().st_size / 2 ** 20:.0f} MiB, over the "
                                f"{MAX_FILE_BYTES // 2 ** 20} MiB limit: give a smaller image")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ExplorerError(f"cannot read target {name}: {e.strerror or e}") from None
    if not data:
        raise ExplorerError(f"target {name} is empty: give an image file")
    if len(data) > MAX_FILE_BYTES:
        raise ExplorerError(f"target {name} is over the {MAX_FILE_BYTES // 2 ** 20} MiB limit: give a smaller image")
    return data


def load_target(source, resolution: int, channels: int, name: str | None = None) -> Target:
    """A file path or encoded bytes -> Target (see the module docstring). name: how messages call it
    (default: the path's file name, or 'image' for bytes); never a server path unless given."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ExplorerError(f"resolution must be a positive integer, got {resolution!r}")
    if channels not in (1, 3):
        raise ExplorerError(f"channels must be 1 or 3, got {channels!r}")
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "image")
    data = _read(source, name)
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)   # the check below decides
            im = Image.open(io.BytesIO(data), formats=FORMATS)
        size = im.size
        frames = getattr(im, "n_frames", 1)
        if im.format in ("JPEG", "MPO"):
            im.draft(im.mode if im.mode in ("L", "RGB") else None, (resolution, resolution))
        if im.size[0] * im.size[1] > MAX_DECODED_PIXELS:
            raise ExplorerError(f"target {name} is {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP), over the "
                                f"{MAX_DECODED_PIXELS // 10 ** 6} MP limit for {im.format}: downscale it first "
                                "(JPEG files are decoded at reduced size, so larger ones load)")
        im.load()                                            # the first frame of an animation
        if frames > 1:
            notes.append(f"used the first of {frames} frames")
        if im.size != size:
            notes.append(f"decoded at {im.size[0]}x{im.size[1]} (JPEG reduction) from {size[0]}x{size[1]}")
        arr = prepare_image(im, resolution, channels)       # uint8 [C, R, R], as training images
    except UnsupportedModeError as e:
        raise ExplorerError(f"target {name}: {e}") from None
    except UnidentifiedImageError:
        raise ExplorerError(f"target {name} is not an image this tool reads ({', '.join(FORMATS[:-1])} "
                            f"or {FORMATS[-1]})") from None
    except Image.DecompressionBombError:
        raise ExplorerError(f"target {name} has too many pixels (over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} MP; "
                            "a decompression bomb?): downscale it first") from None
    except ExplorerError:
        raise
    except _DECODE_ERRORS as e:
        raise ExplorerError(f"target {name} is corrupt or truncated ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:120]}): re-save or re-download it") from None
    image = torch.from_numpy(arr.astype(np.float32)) / 127.5 - 1.0
    return Target(image=image, source_size=size, notes=tuple(notes))


def target_for(G, source, name: str | None = None) -> Target:
    """load_target at G's resolution and channel count."""
    return load_target(source, G.img_resolution, G.img_channels, name)
