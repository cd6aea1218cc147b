"""Training images for the GANs: an image folder, a zip of images, or a built-in offline dataset.

    ds = load_dataset(spec, resolution, channels=3, xflip=False, max_images=None)

`spec` is one of
- a folder of images, searched recursively (.png .jpg .jpeg .webp .bmp, any case; files and
  folders whose names start with "." are ignored),
- a .zip of such images (``__MACOSX/`` and dot-files inside are ignored),
- a built-in dataset read from files that a package installs (nothing is downloaded):
  "fashion-mnist" (Debian ``dataset-fashion-mnist``, 70k, MIT), "emoji" (Debian
  ``fonts-noto-color-emoji``, about 3.9k, OFL-1.1) or "digits" (scikit-learn, 1,797, BSD-3-Clause).
  A built-in name wins over a folder of the same name: write ``./emoji`` for the folder.

Every image is composited onto white if it has alpha, converted to RGB (``channels=3``) or
greyscale (``channels=1``), its shorter side resized to `resolution` (Lanczos) and the centre
square kept. Files are taken in sorted path order; `max_images` keeps the first N readable ones.

The dataset (a ``torch.utils.data.Dataset``):
- ``ds[i]`` -> torch.uint8 ``[C, R, R]``; ``len(ds)`` is ``2 * ds.num_images`` with ``xflip``,
  the second half being the first half mirrored left-right (StyleGAN2-ADA's ``--mirror``).
- ``ds.get_batch(indices)`` -> torch.uint8 ``[N, C, R, R]`` for indices in ``range(len(ds))``:
  the trainer's way to draw random batches; one vectorised gather when the data is in memory.
- ``ds.in_memory``: True when all images were decoded at load into one array (the usual case);
  datasets whose decoded size would pass ``MAX_IN_MEMORY_BYTES`` (2 GiB) are decoded per item.
- ``ds.as_tensor()`` -> that whole array as torch.uint8 ``[num_images, C, R, R]`` without the
  mirrored copies, sharing memory with the dataset (treat it as read-only); RuntimeError when
  not in memory.
- ``ds.skipped``: list of ``(path, reason)`` for files that could not be read. They are also
  reported in one warning line on stderr. A per-item dataset only checks each file's header at
  load; a file that fails to decode later is reported the same way and the next image is used.
- ``ds.summary()`` -> a JSON-able dict (name, spec, kind, source, licence, counts, shape).

Problems a user can cause (missing path, no images, nothing readable, a built-in whose package
is not installed, bad arguments) raise `DatasetError`, a ValueError with a one-line message
that names the problem and the fix.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from .builtin import BUILTIN_DATASETS, BUILTINS
from .sources import (IMAGE_EXTENSIONS, MAX_IN_MEMORY_BYTES, DatasetError, ImageDataset, _folder_source, _from_source,
                      _Info, _zip_source)

__all__ = ["BUILTIN_DATASETS", "IMAGE_EXTENSIONS", "MAX_IN_MEMORY_BYTES", "DatasetError", "ImageDataset", "load_dataset"]


def load_dataset(spec: str | os.PathLike, resolution: int, channels: int = 3,
                 xflip: bool = False, max_images: int | None = None) -> ImageDataset:
    """Folder / zip / built-in name -> ImageDataset of uint8 [C, resolution, resolution]."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise DatasetError(f"resolution must be a positive integer, got {resolution!r}")
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images < 1):
        raise DatasetError(f"max_images must be a positive integer or None, got {max_images!r}")
    spec_str = os.fspath(spec)
    key = spec_str.strip().lower()
    if key in BUILTINS:
        return BUILTINS[key](spec_str, resolution, channels, bool(xflip), max_images)

    path = Path(spec_str).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset not found: {spec_str!r} is neither an existing folder or "
                           f".zip nor a built-in ({', '.join(BUILTIN_DATASETS)}); check the path")
    if path.is_dir():
        source, kind = _folder_source(path), "folder"
    elif zipfile.is_zipfile(path):
        source, kind = _zip_source(path), "zip"
    else:
        raise DatasetError(f"{path} is neither a folder nor a .zip of images; pass a folder of "
                           f"images, a .zip of them, or one of {', '.join(BUILTIN_DATASETS)}")
    info = _Info(name=path.stem if kind == "zip" else path.resolve().name, spec=spec_str,
                 kind=kind, source=str(path.resolve()), licence=None)
    return _from_source(info, source, resolution, channels, bool(xflip), max_images, "crop")
