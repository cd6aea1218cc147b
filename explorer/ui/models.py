"""Which models the explorer may open, and how it names them.

Two trust modes. Local (the default, a laptop): a model is a folder name in the models folder or
any model folder path. Public (`--public`, automatic where SPACE_ID is set): only the models found
in the allowed roots (the models folder, and the uploads folder once the safe importer provides
one); a name is looked up in that list, never joined to a path, so no request can make the server
read outside the roots, and a wrong name gets one answer whatever exists on disk (no probing).

Everywhere a user sees a model (messages, sessions, the page's config, API answers) it is named
by its `ref`: the path relative to the root it came from ("tiny-sg2"), never an absolute path.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from gan.io.cache import user_cache_dir
from gan.io.checkpoint import CONFIG_NAME, G_NAME

from ..session import ExplorerError

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "models"
DEFAULT_FILE = "DEFAULT"           # assets/models/DEFAULT names the folder to open first


def list_models(models_dir: str | Path = MODELS_DIR) -> list[Path]:
    """Model folders (those with a config.json) directly under models_dir, sorted by name."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / CONFIG_NAME).is_file()), key=lambda p: p.name)


def default_model(models_dir: str | Path = MODELS_DIR) -> Path | None:
    """The folder named in models_dir/DEFAULT when that is a model, else the first model by name."""
    models = list_models(models_dir)
    named = Path(models_dir) / DEFAULT_FILE
    if named.is_file():
        name = named.read_text().strip()
        chosen = [p for p in models if p.name == name]
        if chosen:
            return chosen[0]
        log.warning("%s names %r, which is not a model folder there; using the first model", named, name)
    return models[0] if models else None


def resolve_model(text: str | Path, models_dir: str | Path = MODELS_DIR) -> Path:
    """Local mode: a model given as a folder name in models_dir or as a path; raises ExplorerError if
    neither."""
    text = str(text or "").strip()
    if not text:
        raise ExplorerError(f"no model given: type a model folder path ({CONFIG_NAME} + {G_NAME})")
    shipped = Path(models_dir) / text
    if "/" not in text and (shipped / CONFIG_NAME).is_file():
        return shipped
    path = Path(text).expanduser()
    if (path / CONFIG_NAME).is_file() or path.is_file():
        return path
    names = ", ".join(p.name for p in list_models(models_dir)) or "none shipped"
    raise ExplorerError(f"no model folder at {text} (models here: {names})")


def inside(path: Path, root: Path) -> bool:
    """path, with every symlink followed, lies in root (also resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


@dataclass
class ModelRoots:
    """The allow-list of model roots and the trust mode; resolves refs to folders and back."""
    models_dir: Path
    public: bool = False
    # Where uploaded models land once the safe .pkl importer exists (a second public root; its
    # models are never ours to write into, so their caches go to the user cache).
    uploads_dir: Path | None = None
    roots: list[Path] = field(init=False)

    def __post_init__(self):
        self.models_dir = Path(self.models_dir)
        self.roots = [r for r in (self.models_dir, self.uploads_dir) if r is not None]

    def available(self) -> dict[str, Path]:
        """ref -> folder of every model in the roots whose files all resolve inside that root
        (a symlink out of the models folder is not a model here)."""
        found = {}
        for root in self.roots:
            for folder in list_models(root):
                if all(inside(p, root) for p in (folder, folder / CONFIG_NAME, folder / G_NAME)):
                    found.setdefault(folder.name, folder)
        return found

    def names(self) -> list[str]:
        return list(self.available())

    def resolve(self, ref: str | Path | None) -> Path:
        """The folder of a model ref (public: only a name from `available()`; local: also a path)."""
        ref = str(ref or "").strip()
        if not ref:
            raise ExplorerError("no model given: choose one in the Model box")
        known = self.available()
        if ref in known:
            return known[ref]
        if self.public:   # the answer must not depend on what exists on disk: no echo, no probing
            raise ExplorerError(f"unknown model: choose one of {', '.join(known) or '(none installed)'}")
        return resolve_model(ref, self.models_dir)

    def resolve_saved(self, ref: str) -> Path:
        """A model named by a saved session, maybe saved on another machine: the same ref here, else
        (an older session that stored a path) a model of the same folder name in the roots."""
        try:
            return self.resolve(ref)
        except ExplorerError:
            name = Path(str(ref)).name
            if name and name in self.available():
                return self.available()[name]
            raise ExplorerError(f"the session's model {self.ref_of(ref)!r} is not here: "
                                f"available: {', '.join(self.names()) or 'none'}") from None

    def ref_of(self, folder: str | Path) -> str:
        """The name users see for a model folder: relative to its root; a local path outside the
        roots, relative to the working folder (so a session reloads on this machine)."""
        folder = Path(folder)
        for root in self.roots:
            if folder.is_absolute() or folder.exists():
                try:
                    return folder.resolve().relative_to(root.resolve()).as_posix()
                except (ValueError, OSError):
                    continue
        if not folder.is_absolute():
            return folder.as_posix()
        return Path(os.path.relpath(folder.resolve(), Path.cwd())).as_posix()

    def engine_kwargs(self, folder: Path) -> dict:
        """Where the engine of `folder` may cache directions: beside the model only when it is ours
        (a shipped model; any folder in local mode), else the user cache folder."""
        ours = not self.public or inside(folder, self.models_dir)
        return dict(cache_dir=user_cache_dir(), cache_beside_model=ours)
