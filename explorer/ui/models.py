"""Which models the explorer may open, and how it names them.

Two trust modes. Local (the default, a laptop): a model is a folder name in the models folder or
any model folder path or network .pkl. Public (`--public`, automatic where SPACE_ID is set): only
the models found in the allowed roots; a name is looked up in that list, never joined to a path, so
no request can make the server read outside the roots, and a wrong name gets one answer whatever
exists on disk (no probing).

The roots: the models folder (listed in the Model box) and the imports folder, where the safe
importer puts every .pkl opened or uploaded and every uploaded zipped model folder, each under its
content's sha256 (`imports/<sha256>`, `imports/zip-<sha256>`). Imported models are not listed: a
user reaches one by opening or uploading the file (or by a session naming it), so nobody browses
another visitor's uploads, and a ref is unguessable without the file itself.

Everywhere a user sees a model (messages, sessions, the page's config, API answers) it is named
by its `ref`: the path relative to the root it came from ("tiny-sg2", "imported/<sha256>"), never
an absolute path.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from gan.io.cache import user_cache_dir
from gan.io.checkpoint import CONFIG_NAME, G_NAME

from ..session import ExplorerError

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "models"
DEFAULT_FILE = "DEFAULT"           # assets/models/DEFAULT names the folder to open first
IMPORTED = "imported"              # ref prefix of a model in the imports folder: "imported/<sha256>"
_IMPORT_NAME = re.compile(r"(?:zip-)?[0-9a-f]{64}")   # the importers' folder names; nothing else resolves


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
        raise ExplorerError(f"no model given: type a model folder path ({CONFIG_NAME} + {G_NAME}) or a .pkl")
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
    # Imported and uploaded models (default: the importer's user cache folder, $GAN_CACHE_DIR/imports).
    imports_dir: Path | None = None
    roots: list[Path] = field(init=False)

    def __post_init__(self):
        self.models_dir = Path(self.models_dir)
        self.imports_dir = Path(self.imports_dir) if self.imports_dir is not None else user_cache_dir("imports")
        self.roots = [self.models_dir, self.imports_dir]

    def available(self) -> dict[str, Path]:
        """ref -> folder of every listed model: those in the models folder whose files all resolve
        inside it (a symlink out of the models folder is not a model here)."""
        root = self.models_dir
        return {folder.name: folder for folder in list_models(root)
                if all(inside(p, root) for p in (folder, folder / CONFIG_NAME, folder / G_NAME))}

    def imported(self, ref: str) -> Path | None:
        """The folder of an "imported/<name>" ref when it is a complete model in the imports folder."""
        head, _, name = ref.partition("/")
        if head != IMPORTED or not _IMPORT_NAME.fullmatch(name):
            return None
        folder = self.imports_dir / name
        if all(inside(p, self.imports_dir) for p in (folder, folder / CONFIG_NAME, folder / G_NAME)) \
                and (folder / CONFIG_NAME).is_file():
            return folder
        return None

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
        if (folder := self.imported(ref)) is not None:
            return folder
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
                    rel = folder.resolve().relative_to(root.resolve()).as_posix()
                except (ValueError, OSError):
                    continue
                return f"{IMPORTED}/{rel}" if root == self.imports_dir else rel
        if not folder.is_absolute():
            return folder.as_posix()
        return Path(os.path.relpath(folder.resolve(), Path.cwd())).as_posix()

    def engine_kwargs(self, folder: Path) -> dict:
        """Where the engine of `folder` may cache directions: beside the model only when it is ours
        (a shipped model, an imported one, any folder in local mode), else the user cache folder."""
        ours = not self.public or inside(folder, self.models_dir) or inside(folder, self.imports_dir)
        return dict(cache_dir=user_cache_dir(), cache_beside_model=ours)
