"""Durable file writes: the one place that writes a file so that a crash never leaves it half-written.

`atomic_write(path, write_fn)` has `write_fn` fill a temporary file in the same folder, flushes it to
disk (fsync), gives it the mode a plain `open()` would (mkstemp's is 0600), renames it over `path`
and fsyncs the folder so that the rename itself survives a power cut. On any failure the temporary
file is removed and `path` is untouched. Checkpoints, snapshots, logs, metrics caches, exports,
direction caches, cards and sessions all write through here; so do the explorer's images in gradio's
cache, with `durable=False` (whole-then-renamed, no fsync: a cache file the next start discards need not
survive a power cut, and the two fsyncs cost ~2 ms an image on a hot path).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def _current_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory file descriptors: the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the data itself is already on disk
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write_fn: Callable[[str], object], suffix: str = ".tmp",
                 durable: bool = True) -> Path:
    """Call write_fn(tmp_path: str), fsync, then rename over `path`. The folder must exist.

    suffix: the temporary file's suffix; writers that choose a format by extension (imageio,
    ffmpeg) need the real one, e.g. suffix=".mp4". durable=False: no fsync of the file or the folder
    (readers still see the old file or the whole new one, but a power cut may lose the write).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_folder(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), durable=durable)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    """`obj` as indented JSON with a final newline."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def append_line(path: str | os.PathLike, line: str) -> Path:
    """Append one line (a newline is added) and fsync; the file and its folder are created when
    missing. For append-only logs (metrics.jsonl), where rewriting the whole file would be wasteful."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path
