"""Decoding training images from a folder, a zip or bytes in memory into an `ImageDataset`
(uint8 [C, R, R] per item; in memory, or decoded per item when too large). `gan.data` is the
front door: `load_dataset` lives in `gan/data/__init__.py`."""
from __future__ import annotations

import io
import os
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_IN_MEMORY_BYTES = 2 * 1024**3  # above this, decode per item instead of all at load
PROGRESS_MIN_FILES = 2000  # show a progress bar when decoding more files than this

# What a broken or unreadable file can raise while it is read and decoded.
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error,
                zipfile.BadZipFile, Image.DecompressionBombError)


class DatasetError(ValueError):
    """A dataset that cannot be used; the message is one line: the problem and the fix."""


@dataclass(frozen=True)
class _Info:
    name: str
    spec: str
    kind: str  # "folder" | "zip" | "builtin"
    source: str
    licence: str | None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _reason(err: BaseException) -> str:
    return _one_line(f"{type(err).__name__}: {err}")


# ---------------------------------------------------------------------------------------------
# Decoding one image


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class UnsupportedModeError(ValueError):
    """An image whose colour mode cannot be converted to 8-bit RGB or greyscale."""


def to_8bit(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 'L', 'RGB' or 'RGBA' with 8 bits per channel (UnsupportedModeError for a mode PIL
    cannot convert). 16-bit greyscale is always scaled by 255 / 65535, so a dark 16-bit image stays dark; 32-bit
    integer or float greyscale (TIFF) carries no range, so its values decide: float at most 1 is taken as
    [0, 1], at most 255 as 8-bit, at most 65535 as 16-bit, anything larger is scaled by its maximum."""
    if im.mode in _SIXTEEN_BIT:
        arr = np.asarray(im, dtype=np.float64) * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64))
        top = float(arr.max()) if arr.size else 0.0
        scale = 255.0 if im.mode == "F" and top <= 1.0 else 255.0 / 65535.0 if 255 < top <= 65535 else \
            255.0 / top if top > 65535 else 1.0
        return Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L")
    if im.has_transparency_data:
        return im.convert("RGBA")
    if im.mode in ("L", "RGB"):
        return im
    try:
        return im.convert("L" if im.mode == "1" else "RGB")
    except ValueError:
        raise UnsupportedModeError(f"colour mode {im.mode} cannot be converted: save it as RGB or greyscale") from None


def prepare_image(im: Image.Image, resolution: int, channels: int, fit: str = "crop") -> np.ndarray:
    """A loaded PIL image -> uint8 [C, R, R], the one way every image this project reads is prepared
    (training images here, projection targets in explorer/targets.py): EXIF orientation applied, 8 bits
    (to_8bit), alpha composited over white, RGB or greyscale to match `channels`; fit="crop" keeps the
    centre square, "pad" centres the whole image on a white square; Lanczos resize."""
    if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation: photos taken sideways
        im = ImageOps.exif_transpose(im)
    im = to_8bit(im)
    if im.mode == "RGBA":
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
    im = im.convert("RGB" if channels == 3 else "L")
    w, h = im.size
    box = None
    if fit == "pad" and w != h:
        side = max(w, h)
        canvas = Image.new(im.mode, (side, side), "white")
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        im = canvas
    elif fit == "crop" and w != h:
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
    if im.size != (resolution, resolution) or box is not None:
        im = im.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    arr = np.asarray(im)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def _decode_image(data: bytes, resolution: int, channels: int, fit: str = "crop") -> np.ndarray:
    """Encoded image bytes -> uint8 [C, R, R] (prepare_image)."""
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            im.draft(im.mode if im.mode in ("L", "RGB") else None, (resolution, resolution))  # cheap DCT downscale
        im.load()
        return prepare_image(im, resolution, channels, fit)


def _resize_array(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [N, C, h, w] -> uint8 [N, C, R, R], antialiased bilinear, in chunks."""
    if images.shape[-2:] == (resolution, resolution):
        return images
    out = np.empty(images.shape[:2] + (resolution, resolution), np.uint8)
    for start in range(0, len(images), 4096):
        chunk = torch.from_numpy(images[start:start + 4096]).float()
        chunk = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear",
                              antialias=True, align_corners=False)
        out[start:start + 4096] = chunk.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


# ---------------------------------------------------------------------------------------------
# Where encoded images come from. Sources pickle cheaply (DataLoader workers reopen the zip).


class _FolderSource:
    def __init__(self, root: Path, names: list[str]) -> None:
        self.root, self.names = root, names

    def __len__(self) -> int:
        return len(self.names)

    def label(self, j: int) -> str:
        return str(self.root / self.names[j])

    def open(self, j: int):
        return open(self.root / self.names[j], "rb")


class _ZipSource:
    def __init__(self, path: Path, names: list[str]) -> None:
        self.path, self.names = path, names
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict:
        return {"path": self.path, "names": self.names, "_zip": None, "_pid": -1}

    def label(self, j: int) -> str:
        return f"{self.path}/{self.names[j]}"

    def open(self, j: int):
        if self._zip is None or self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip.open(self.names[j])


class _BytesSource:
    def __init__(self, labels: list[str], blobs: list[bytes]) -> None:
        self.labels, self.blobs = labels, blobs

    def __len__(self) -> int:
        return len(self.blobs)

    def label(self, j: int) -> str:
        return self.labels[j]

    def open(self, j: int):
        return io.BytesIO(self.blobs[j])


class _LazyDecoder:
    """Decodes item i of a source on demand (datasets too big to hold decoded)."""

    def __init__(self, source, indices: list[int], resolution: int, channels: int, fit: str):
        self.source, self.indices = source, indices
        self.resolution, self.channels, self.fit = resolution, channels, fit

    def label(self, i: int) -> str:
        return self.source.label(self.indices[i])

    def __call__(self, i: int) -> np.ndarray:
        with self.source.open(self.indices[i]) as f:
            data = f.read()
        return _decode_image(data, self.resolution, self.channels, self.fit)


class _LazyResizer:
    """Resizes item i of a small in-memory array on demand (big built-in resolutions)."""

    def __init__(self, base: np.ndarray, resolution: int, channels: int, name: str) -> None:
        self.base, self.resolution, self.channels, self.name = base, resolution, channels, name

    def label(self, i: int) -> str:
        return f"{self.name}[{i}]"

    def __call__(self, i: int) -> np.ndarray:
        img = _resize_array(self.base[i:i + 1], self.resolution)[0]
        return np.repeat(img, self.channels // img.shape[0], axis=0)


# ---------------------------------------------------------------------------------------------
# The dataset


class ImageDataset(torch.utils.data.Dataset):
    """uint8 images [C, R, R]; see the module docstring for the API."""

    def __init__(self, info: _Info, resolution: int, channels: int, xflip: bool,
                 max_images: int | None, skipped: list[tuple[str, str]],
                 images: np.ndarray | None = None,
                 loader: Callable[[int], np.ndarray] | None = None,
                 num_images: int | None = None) -> None:
        if (images is None) == (loader is None):
            raise ValueError("ImageDataset needs exactly one of images and loader")
        self._info = info
        self.name, self.spec, self.kind = info.name, info.spec, info.kind
        self.source, self.licence = info.source, info.licence
        self.resolution, self.channels = resolution, channels
        self.xflip, self.max_images = xflip, max_images
        self.skipped = skipped
        self._images = images  # uint8 [num_images, C, R, R] or None
        self._loader = loader
        self.num_images = len(images) if images is not None else int(num_images)

    @property
    def in_memory(self) -> bool:
        return self._images is not None

    def __len__(self) -> int:
        return self.num_images * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self)
        i = int(index) + n if int(index) < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} images")
        img = self._load(i % self.num_images)
        if i >= self.num_images:
            img = img[:, :, ::-1]
        return torch.from_numpy(np.array(img, copy=True))

    def get_batch(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images at `indices` (in range(len(self))) -> torch.uint8 [N, C, R, R]."""
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices,
                         dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"batch indices must lie in [0, {len(self)}), "
                             f"got {idx.min()}..{idx.max()}")
        if not self.in_memory:
            shape = (0, self.channels, self.resolution, self.resolution)
            if not idx.size:
                return torch.empty(shape, dtype=torch.uint8)
            return torch.stack([self[i] for i in idx])
        batch = torch.from_numpy(self._images[idx % self.num_images])  # fancy indexing copies
        mirrored = torch.from_numpy(idx >= self.num_images)
        if mirrored.any():
            batch[mirrored] = batch[mirrored].flip(-1)
        return batch

    def as_tensor(self) -> torch.Tensor:
        """All images (no mirrored copies) -> torch.uint8 [num_images, C, R, R], shared memory."""
        if self._images is None:
            raise RuntimeError(f"dataset {self.name!r} is decoded per item (over "
                               f"{MAX_IN_MEMORY_BYTES} bytes); use get_batch() or a DataLoader")
        return torch.from_numpy(self._images)

    def summary(self) -> dict:
        return {"name": self.name, "spec": self.spec, "kind": self.kind, "source": self.source,
                "licence": self.licence, "num_images": self.num_images, "length": len(self),
                "resolution": self.resolution, "channels": self.channels, "xflip": self.xflip,
                "max_images": self.max_images, "skipped": len(self.skipped),
                "in_memory": self.in_memory}

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, {self.num_images} images, "
                f"[{self.channels}, {self.resolution}, {self.resolution}], xflip={self.xflip})")

    def _load(self, j: int) -> np.ndarray:
        if self._images is not None:
            return self._images[j]
        for k in range(self.num_images):  # a file that fails now: report it, use the next one
            jj = (j + k) % self.num_images
            try:
                return self._loader(jj)
            except _READ_ERRORS as err:
                path = self._loader.label(jj)
                if all(p != path for p, _ in self.skipped):
                    self.skipped.append((path, _reason(err)))
                    print(f"warning: skipped unreadable image {path} ({_reason(err)})",
                          file=sys.stderr)
        raise DatasetError(f"none of the {self.num_images} images in {self.spec} could be "
                           f"decoded; replace the corrupt files")


# ---------------------------------------------------------------------------------------------
# Loading


def _is_image_name(rel: str) -> bool:
    parts = rel.split("/")
    return (rel.lower().endswith(IMAGE_EXTENSIONS) and parts[0] != "__MACOSX"
            and not any(p.startswith(".") for p in parts))


def _folder_source(root: Path) -> _FolderSource:
    names, others = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fname in filenames:
            rel = Path(dirpath, fname).relative_to(root).as_posix()
            if _is_image_name(rel):
                names.append(rel)
            else:
                others += 1
    if not names:
        exts = "/".join(IMAGE_EXTENSIONS)
        what = "is empty" if others == 0 else f"holds {others} files but no images ({exts})"
        raise DatasetError(f"no training images: {root} {what} (searched recursively); put "
                           f"images in it or pass another folder")
    return _FolderSource(root, sorted(names))


def _zip_source(path: Path) -> _ZipSource:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetError(f"cannot read zip {path} ({_reason(err)}); re-create the zip") from err
    images = sorted(n for n in names if _is_image_name(n))
    if not images:
        raise DatasetError(f"no training images: zip {path} holds {len(names)} files but no "
                           f"images ({'/'.join(IMAGE_EXTENSIONS)}); zip a folder of images")
    return _ZipSource(path, images)


def _from_source(info: _Info, source, resolution: int, channels: int, xflip: bool,
                 max_images: int | None, fit: str) -> ImageDataset:
    """Decode a source's images (all at load, or lazily if too big) into an ImageDataset."""
    want = len(source) if max_images is None else min(len(source), max_images)
    lazy = want * channels * resolution**2 > MAX_IN_MEMORY_BYTES
    images = None if lazy else np.empty((want, channels, resolution, resolution), np.uint8)
    valid: list[int] = []
    skipped: list[tuple[str, str]] = []
    with tqdm(total=want, desc=f"{'checking' if lazy else 'decoding'} {info.name}", unit="img",
              file=sys.stderr, disable=len(source) <= PROGRESS_MIN_FILES, leave=False) as bar:
        for j in range(len(source)):
            if len(valid) == want:
                break
            try:
                with source.open(j) as f:
                    if lazy:  # header only: cheap; full decode happens per item
                        Image.open(f).close()
                    else:
                        images[len(valid)] = _decode_image(f.read(), resolution, channels, fit)
            except _READ_ERRORS as err:
                skipped.append((source.label(j), _reason(err)))
                continue
            valid.append(j)
            bar.update()
    if not valid:
        first = f"{skipped[0][0]}: {skipped[0][1]}"
        raise DatasetError(f"none of the {len(skipped)} images in {info.spec} could be read "
                           f"(first: {first}); replace or remove the corrupt files")
    if skipped:
        shown = "; ".join(f"{p} ({r})" for p, r in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        print(_one_line(f"warning: skipped {len(skipped)} unreadable image(s) in {info.spec}: "
                        f"{shown}{more}"), file=sys.stderr)
    common = dict(info=info, resolution=resolution, channels=channels, xflip=xflip,
                  max_images=max_images, skipped=skipped)
    if lazy:
        loader = _LazyDecoder(source, valid, resolution, channels, fit)
        return ImageDataset(**common, loader=loader, num_images=len(valid))
    return ImageDataset(**common, images=images[:len(valid)])


def _from_array(info: _Info, base: np.ndarray, resolution: int, channels: int, xflip: bool,
                max_images: int | None) -> ImageDataset:
    """Small greyscale uint8 [N, 1, h, w] array -> ImageDataset, resized (lazily if big)."""
    if max_images is not None:
        base = base[:max_images]
    common = dict(info=info, resolution=resolution, channels=channels, xflip=xflip,
                  max_images=max_images, skipped=[])
    if len(base) * channels * resolution**2 > MAX_IN_MEMORY_BYTES:
        return ImageDataset(**common, loader=_LazyResizer(base, resolution, channels, info.name),
                            num_images=len(base))
    images = _resize_array(base, resolution)
    if channels == 3 and images.shape[1] == 1:
        images = np.repeat(images, 3, axis=1)
    return ImageDataset(**common, images=np.ascontiguousarray(images))
