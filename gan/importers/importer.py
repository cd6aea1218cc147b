"""Import a network pickle into a model folder: `python -m gan import SRC.pkl --out DIR`, and the cache
that lets every command open a .pkl path directly.

The whole file is parsed and converted in memory before anything is written; the folder is then written
by save_model (tensor files first, config.json last) with a "source" section: the file's name, size and
sha256, the detected format, the generator's original kwargs and what was (not) imported.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Union

from ..io.cache import user_cache_dir
from ..io.checkpoint import CONFIG_NAME, D_NAME, G_NAME, CheckpointError, save_model
from .errors import PickleImportError, UnsupportedNetworkError
from .model import ImportedModel
from .pytorch_format import read_pytorch_pickle
from .tensorflow_format import read_tensorflow_pickle
from .unpickler import TFNetwork, load_pickle, one_line

Progress = Union[bool, Callable[[float, str], None], None]
BAR_MIN_BYTES = 32 << 20      # files smaller than this import in well under a second: no bar
_SHA_CACHE: dict[tuple, str] = {}


class _Progress:
    """progress=True: a tqdm bar on stderr for large files; a callable: progress(fraction, text)."""

    def __init__(self, progress: Progress, total: int, text: str):
        self.fn = progress if callable(progress) else None
        self.total, self.done, self.text, self.bar = max(total, 1), 0, text, None
        if progress is True and total >= BAR_MIN_BYTES:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=text, leave=False)

    def __call__(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.fn is not None:
            self.fn(min(self.done / self.total, 1.0), self.text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def sha256_file(path: str | os.PathLike, progress: Progress = None) -> str:
    """Hex sha256 of a file (remembered per path, size and mtime for this process)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        bar = _Progress(progress, st.st_size, f"sha256 {path.name}")
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
                    bar(len(chunk))
        finally:
            bar.close()
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def read_network_pickle(path: str | os.PathLike, progress: Progress = None) -> ImportedModel:
    """Parse and convert a network pickle (nothing is written). Raises PickleImportError, one line."""
    path = Path(path)
    if not path.is_file():
        raise PickleImportError(f"{path}: no such file")
    bar = _Progress(progress, path.stat().st_size, f"import {path.name}")
    try:
        data = load_pickle(path, progress=bar)
    finally:
        bar.close()
    tf = isinstance(data, TFNetwork) or (isinstance(data, (tuple, list)) and any(isinstance(n, TFNetwork) for n in data))
    box = [data]
    del data  # the readers free what they do not import as they go
    try:
        return read_tensorflow_pickle(box) if tf else read_pytorch_pickle(box)
    except PickleImportError as e:
        raise type(e)(f"{path}: {e}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError, RecursionError) as e:
        # content of an unexpected shape (NumpyDtype state etc. are checked; attributes are whatever the file holds)
        raise UnsupportedNetworkError(f"{path}: unexpected network content ({type(e).__name__}: {one_line(str(e))}); "
                                      "not a network this importer supports yet") from None


def _source_sha(folder: Path) -> str | None:
    """The sha256 recorded by an import in folder/config.json ('' for a model not imported from a pickle),
    None when the folder holds no complete model."""
    try:
        raw = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or not (folder / G_NAME).is_file():
        return None
    source = raw.get("source")
    return source.get("sha256", "") if isinstance(source, dict) else ""


def write_model(model: ImportedModel, out: Path, src: Path, sha: str) -> Path:
    G, D = model.networks()
    out.mkdir(parents=True, exist_ok=True)
    if D is None and (out / D_NAME).exists():  # a replaced model's discriminator must not outlive it
        (out / D_NAME).unlink()
    source = {"file": src.name, "sha256": sha, "size": src.stat().st_size, "format": model.format,
              "imported": ["G", "D"] if D is not None else ["G"], "notes": model.notes,
              "init_kwargs": model.init_kwargs}
    training = {"note": f"imported from {src.name} ({model.format}); not trained by this tool"}
    return save_model(out, G, model.cfg, D=D, training=training, dataset=model.dataset, source=source)


def import_pickle(src: str | os.PathLike, out: str | os.PathLike, force: bool = False,
                  progress: Progress = True) -> tuple[Path, ImportedModel | None]:
    """Import `src` into the model folder `out`. Returns (out, the model), or (out, None) when `out` already
    holds this very file's import. A different model in `out` is refused unless force."""
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise PickleImportError(f"{src}: no such file")
    sha = sha256_file(src, progress)
    if (out / CONFIG_NAME).exists():
        existing = _source_sha(out)
        if existing == sha:
            return out, None
        if not force:
            what = "a different import" if existing else "a model"
            raise CheckpointError(f"{out} already holds {what}: choose another --out (or pass --force to replace it)")
    model = read_network_pickle(src, progress)
    return write_model(model, out, src, sha), model


def cached_import(src: str | os.PathLike, progress: Progress = True) -> Path:
    """The model folder of a network pickle in the user cache (`imports/<sha256>`), importing it the first
    time. Keyed by content, so a renamed or copied file reuses it, and so do the direction caches kept in it."""
    src = Path(src)
    if not src.is_file():
        raise PickleImportError(f"{src}: no such file (give a model folder or an NVIDIA network .pkl)")
    sha = sha256_file(src, progress)
    return install_in_cache(sha, lambda tmp: write_model(read_network_pickle(src, progress), tmp, src, sha),
                            complete=lambda folder: _source_sha(folder) == sha)


def install_in_cache(name: str, write: Callable[[Path], object], complete: Callable[[Path], bool]) -> Path:
    """`imports/<name>` in the user cache: returned as it is when complete(folder), else written anew by
    write(tmp) into a temporary folder beside it that is then renamed into place (atomic: a folder under
    its final name is always whole; two processes importing the same file both end with the same folder)."""
    root = user_cache_dir("imports")
    folder = root / name
    if complete(folder):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name[:20]}-", dir=root))
    try:
        write(tmp)
        if folder.exists() and not complete(folder):
            shutil.rmtree(folder)  # an incomplete entry for this very file
        try:
            os.rename(tmp, folder)
        except OSError:
            if not complete(folder):  # not "another process finished the same import first"
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
