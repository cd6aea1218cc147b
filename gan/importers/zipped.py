"""A zipped model folder (config.json + G.safetensors [+ D.safetensors], at the top of the archive or in
one folder inside it), as a visitor uploads one: unpacked safely into the user cache (`imports/zip-<sha256>`,
keyed by the archive's bytes) and checked by loading it before it is kept.

Hostile archives are refused before anything is written under the final name: member names that are
absolute or climb out with "..", symbolic links, more than one model folder, declared sizes over the
caller's limit (a zip bomb declares what it will expand to; members are also read with a byte count
that stops at the declared size). Only the model's own files are extracted; anything else in the
archive (pictures, a README, cached directions) is left out.
"""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..io.checkpoint import CONFIG_NAME, D_NAME, G_NAME, CheckpointError, load_model
from .importer import Progress, _Progress, install_in_cache, sha256_file

MODEL_FILES = (CONFIG_NAME, G_NAME, D_NAME)
MAX_CONFIG_BYTES = 1 << 20       # a config.json is a few kB


class ZipImportError(CheckpointError):
    """A zip that is not a model folder we can open safely (one line naming the problem)."""


def _model_members(zf: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """file name -> member, for the one folder of the archive holding config.json and G.safetensors."""
    folders: dict[PurePosixPath, dict[str, zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        path = PurePosixPath(info.filename)
        if info.filename.startswith("/") or "\\" in info.filename or ".." in path.parts or ":" in info.filename:
            raise ZipImportError(f"{name}: unsafe member name {info.filename!r} in the zip: refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ZipImportError(f"{name}: the zip holds a symbolic link ({info.filename}): refused")
        if not info.is_dir() and path.name in MODEL_FILES:
            folders.setdefault(path.parent, {})[path.name] = info
    found = {d: m for d, m in folders.items() if CONFIG_NAME in m and G_NAME in m}
    if not found:
        raise ZipImportError(f"{name}: no model folder in the zip (zip a folder holding {CONFIG_NAME} and {G_NAME})")
    if len(found) > 1:
        raise ZipImportError(f"{name}: the zip holds {len(found)} model folders: zip one model folder")
    return next(iter(found.values()))


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: Path, name: str) -> None:
    left = info.file_size
    with zf.open(info) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 22):
            left -= len(chunk)
            if left < 0:   # zipfile stops at the declared size; this makes sure of it
                raise ZipImportError(f"{name}: {info.filename} is larger than the zip declares: refused")
            dst.write(chunk)


def import_zipped_folder(src: str | os.PathLike, max_bytes: int, progress: Progress = True) -> Path:
    """The cache folder of the model zipped in `src`, unpacked (once) and loaded to check it.
    max_bytes: the most the model's files may expand to. Raises ZipImportError / CheckpointError."""
    src = Path(src)
    name = src.name
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise ZipImportError(f"{name}: not a readable zip ({e})") from None
    with zf:
        members = _model_members(zf, name)
        total = sum(i.file_size for i in members.values())
        if total > max_bytes or members[CONFIG_NAME].file_size > MAX_CONFIG_BYTES:
            raise ZipImportError(f"{name}: the model would unpack to {total / 2**20:.0f} MB, over the limit of "
                                 f"{max_bytes / 2**20:.0f} MB")
        sha = sha256_file(src, progress)

        def write(tmp: Path) -> None:
            bar = _Progress(progress, total, f"unpack {name}")
            try:
                for file, info in members.items():
                    _extract(zf, info, tmp / file, name)
                    bar(info.file_size)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # CRC errors, truncation
                raise ZipImportError(f"{name}: damaged zip ({e})") from None
            finally:
                bar.close()
            try:
                load_model(tmp)    # config, save ids and weights must all agree before the folder is kept
            except CheckpointError as e:
                raise ZipImportError(f"{name}: {str(e).replace(str(tmp) + '/', '')}") from None

        return install_in_cache(f"zip-{sha}", write, complete=lambda folder: (folder / CONFIG_NAME).is_file())


__all__ = ["ZipImportError", "import_zipped_folder"]
