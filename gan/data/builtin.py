"""Built-in offline datasets, read from files that packages install (nothing is downloaded):
fashion-mnist (Debian dataset-fashion-mnist), emoji (Debian fonts-noto-color-emoji, via fontTools)
and digits (scikit-learn)."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .sources import DatasetError, ImageDataset, _BytesSource, _from_array, _from_source, _Info, _reason

BUILTIN_DATASETS = ("fashion-mnist", "emoji", "digits")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
NOTO_EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")




def _read_idx_images(path: Path, limit: int | None = None) -> np.ndarray:
    """A gzipped idx3-ubyte file -> uint8 [N, rows, cols]; only the first `limit` images."""
    fix = "reinstall it with `sudo apt-get install --reinstall -y dataset-fashion-mnist`"
    try:
        with gzip.open(path, "rb") as f:
            magic = f.read(4)
            if len(magic) != 4 or magic[:3] != b"\x00\x00\x08" or magic[3] != 3:
                raise DatasetError(f"{path} is not an idx file of uint8 images; {fix}")
            dims = struct.unpack(">III", f.read(12))
            if limit is not None:
                dims = (min(dims[0], limit),) + dims[1:]
            data = f.read(int(np.prod(dims)))
    except (OSError, EOFError, zlib.error, struct.error) as err:
        raise DatasetError(f"cannot read {path} ({_reason(err)}); {fix}") from err
    if len(data) != int(np.prod(dims)):
        raise DatasetError(f"{path} holds {len(data)} bytes of pixels, expected "
                           f"{int(np.prod(dims))}; {fix}")
    return np.frombuffer(data, np.uint8).reshape(dims)


def _load_fashion_mnist(spec: str, resolution: int, channels: int, xflip: bool,
                        max_images: int | None) -> ImageDataset:
    files = [FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz",
             FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz"]
    if not all(f.is_file() for f in files):
        raise DatasetError(f"Fashion-MNIST is not installed (no {files[0]}); install it with "
                           f"`sudo apt-get install -y dataset-fashion-mnist`")
    parts, have = [], 0
    for f in files:  # train (60k) then test (10k)
        if max_images is None or have < max_images:
            parts.append(_read_idx_images(f, None if max_images is None else max_images - have))
            have += len(parts[-1])
    base = np.concatenate(parts)[:max_images, None]  # [N, 1, 28, 28]
    base = np.pad(base, ((0, 0), (0, 0), (2, 2), (2, 2)))  # 28 -> 32 on the black background
    info = _Info("fashion-mnist", spec, "builtin",
                 f"Debian package dataset-fashion-mnist ({FASHION_MNIST_DIR})", "MIT")
    return _from_array(info, base, resolution, channels, xflip, max_images)


def _load_digits(spec: str, resolution: int, channels: int, xflip: bool,
                 max_images: int | None) -> ImageDataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise DatasetError("the digits dataset needs scikit-learn; install it with "
                           "`pip install scikit-learn`") from err
    raw = load_digits().images  # float [1797, 8, 8], ink 0..16 (white digits on black)
    base = np.round(np.clip(raw, 0, 16) * (255 / 16)).astype(np.uint8)[:, None]
    info = _Info("digits", spec, "builtin", "scikit-learn sklearn.datasets.load_digits "
                 "(UCI optical recognition of handwritten digits)", "BSD-3-Clause")
    return _from_array(info, base, resolution, channels, xflip, max_images)


def _load_emoji(spec: str, resolution: int, channels: int, xflip: bool,
                max_images: int | None) -> ImageDataset:
    install = "install it with `sudo apt-get install -y fonts-noto-color-emoji`"
    if not NOTO_EMOJI_FONT.is_file():
        raise DatasetError(f"Noto Color Emoji is not installed (no {NOTO_EMOJI_FONT}); {install}")
    try:
        from fontTools.ttLib import TTFont
    except ImportError as err:
        raise DatasetError("the emoji dataset needs fontTools; install it with "
                           "`pip install fonttools`") from err
    try:
        font = TTFont(NOTO_EMOJI_FONT, lazy=True)
        if "CBDT" not in font or "CBLC" not in font:
            raise DatasetError(f"{NOTO_EMOJI_FONT} has no colour bitmaps (CBDT table); {install}")
        strikes = font["CBLC"].strikes
        best = max(range(len(strikes)), key=lambda s: strikes[s].bitmapSizeTable.ppemY)
        labels, blobs, seen = [], [], set()
        for glyph, bitmap in font["CBDT"].strikeData[best].items():
            png = bitmap.imageData
            if png and png not in seen:  # many glyphs share one picture
                seen.add(png)
                labels.append(f"{NOTO_EMOJI_FONT}:{glyph}")
                blobs.append(png)
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, struct.error, AttributeError) as err:
        raise DatasetError(f"cannot read {NOTO_EMOJI_FONT} ({_reason(err)}); reinstall it with "
                           f"`sudo apt-get install --reinstall -y fonts-noto-color-emoji`") from err
    info = _Info("emoji", spec, "builtin",
                 f"Debian package fonts-noto-color-emoji ({NOTO_EMOJI_FONT})", "OFL-1.1")
    return _from_source(info, _BytesSource(labels, blobs), resolution, channels, xflip,
                        max_images, "pad")


BUILTINS = {"fashion-mnist": _load_fashion_mnist, "emoji": _load_emoji, "digits": _load_digits}
