"""The explorer's whole per-user state: a small frozen dataclass that round-trips through JSON.

Everything the engine needs to reproduce an image lives here (model path, seed, class of a
conditional model, truncation, noise mode, edits, style mixing, direction settings), so a UI keeps one `ExplorerState` per user
(or its `to_dict()`), every UI action is one engine call that takes a state and returns a new
one or an image, and a saved session reloads to bit-identical pixels.

Layer ranges follow Python slices: an `Edit(start=2, end=6)` changes `ws[:, 2:6]`, i.e. layers
2, 3, 4 and 5; `end=None` means "to the last layer". The command line writes the same range as
inclusive `@2-5`, like the official tools' `--styles 0-6` (see `parse_edit`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from gan.io.json_dataclass import from_json_dict
from gan.models.config import NOISE_MODES
from gan.seeds import parse_int_ranges as _parse_ranges

FORMAT_VERSION = 1
MAX_SEED = 2 ** 32 - 1          # seeds are RandomState seeds
MAX_ABS_STRENGTH = 100.0        # sigmas; anything beyond is a typo
MAX_SAMPLES = 10_000_000
MAX_COMPONENTS = 4096
MAX_LABEL = 60                  # characters in a direction's label
BLEND_SPACES = ("w", "z")       # w: lerp between the two ws; z: slerp between the two z


class ExplorerError(ValueError):
    """Input a user can get wrong (one-line message saying what is wrong and how to fix it)."""


class StyleMixingUnsupported(ExplorerError):
    """Style mixing asked of a model with one latent for all layers (PGGAN)."""


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExplorerError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ExplorerError(f"{name} {value} is outside {lo}..{hi if hi is not None else 'inf'}")
    return value


def _check_float(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ExplorerError(f"{name} must be a finite number, got {value!r}")
    if not lo <= value <= hi:
        raise ExplorerError(f"{name} {value} is outside [{lo}, {hi}]")
    return float(value)


def _json_list(value, name: str) -> list:
    if not isinstance(value, list):
        raise ExplorerError(f"session {name!r} must be a list")
    return value


@dataclass(frozen=True)
class Edit:
    """Move along principal direction `component` by `strength` standard deviations, on ws[:, start:end]."""
    component: int
    strength: float
    start: int = 0
    end: int | None = None           # exclusive; None = num_ws

    def layer_range(self, num_ws: int) -> tuple[int, int]:
        """(start, end) with end resolved; raises ExplorerError when outside 0..num_ws."""
        end = num_ws if self.end is None else self.end
        if not 0 <= self.start < end <= num_ws:
            raise ExplorerError(
                f"edit of component {self.component}: layer range {self.start}:{end} is outside the "
                f"model's 0:{num_ws} (start < end <= {num_ws}; on the command line @START-END is inclusive, "
                f"so the last layer is {num_ws - 1})")
        return self.start, end

    def validate(self, num_ws: int | None = None, num_components: int | None = None) -> "Edit":
        _check_int("edit component", self.component, 0, None if num_components is None else num_components - 1)
        _check_float(f"edit strength of component {self.component}", self.strength,
                     -MAX_ABS_STRENGTH, MAX_ABS_STRENGTH)
        _check_int("edit layer start", self.start, 0)
        if self.end is not None:
            _check_int("edit layer end", self.end, 1)
        if num_ws is not None:
            self.layer_range(num_ws)
        elif self.end is not None and self.end <= self.start:
            raise ExplorerError(f"edit layer range {self.start}:{self.end} is empty: end must be > start")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Edit":
        if isinstance(d, dict) and ("component" not in d or "strength" not in d):
            raise ExplorerError(f"an edit needs 'component' and 'strength', got {sorted(d)}")
        return from_json_dict(cls, d, "edit", ExplorerError).validate()


DIRECTION_METHODS = ("pca", "sefa")


@dataclass(frozen=True)
class DirectionSettings:
    """What the directions are computed from; part of the cache key (with the weights' hash).
    method "pca": GANSpace's PCA of sampled latents; "sefa": closed-form (explorer/sefa.py), from the
    style weights of ws[sefa_start:sefa_end] (end None = all layers), its sigma measured on
    min(samples, SEFA_SIGMA_SAMPLES) latents."""
    samples: int = 100_000           # latents sampled for the PCA
    components: int = 80             # components kept (at most the latent / activation size)
    seed: int = 0                    # seed of the sampled latents
    method: str = "pca"
    sefa_start: int = 0
    sefa_end: int | None = None

    def validate(self) -> "DirectionSettings":
        _check_int("direction samples", self.samples, 100, MAX_SAMPLES)
        _check_int("direction components", self.components, 1, MAX_COMPONENTS)
        _check_int("direction seed", self.seed, 0, MAX_SEED)
        if self.method not in DIRECTION_METHODS:
            raise ExplorerError(f"unknown direction method {self.method!r}: use pca or sefa")
        _check_int("SeFa start layer", self.sefa_start, 0)
        if self.sefa_end is not None and _check_int("SeFa end layer", self.sefa_end, 1) <= self.sefa_start:
            raise ExplorerError(f"SeFa layer range {self.sefa_start}:{self.sefa_end} is empty: end must be > start")
        if self.method == "pca" and (self.sefa_start, self.sefa_end) != (0, None):
            raise ExplorerError("a SeFa layer range is set but the method is pca: use method sefa (or drop the range)")
        return self

    def to_dict(self) -> dict:
        """The fields, leaving out the SeFa ones for PCA: the PCA cache keys (hashes of this dict) and
        saved sessions stay what they were before SeFa existed."""
        d = dataclasses.asdict(self)
        if self.method == "pca":
            for k in ("method", "sefa_start", "sefa_end"):
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DirectionSettings":
        return from_json_dict(cls, d, "direction settings", ExplorerError).validate()


@dataclass(frozen=True)
class ExplorerState:
    """One user's explorer state. Immutable: change it with `replace()` / `with_edit()`."""
    model: str = ""                  # model folder
    seed: int = 0                    # seed of the image (z as the official tools make it)
    truncation_psi: float = 1.0      # 1 = none; 0.7 is typical
    noise_mode: str = "const"        # const | random (seeded by `seed`, so reproducible) | none
    edits: tuple[Edit, ...] = ()     # additive; applied in order
    mix_seed: int | None = None      # StyleGAN2: seed whose ws replace ws[:, mix_layers]
    mix_layers: tuple[int, ...] = ()
    directions: DirectionSettings = field(default_factory=DirectionSettings)
    class_idx: int | None = None     # class of a conditional model (its one-hot label c); None: unconditional
    blend_seed: int | None = None    # seed blended into the image by `blend` (0 = this image, 1 = that seed's)
    blend: float = 0.0
    blend_space: str = "w"           # w: lerp of the two ws (edits and mixing on both); z: slerp of the two z
    # A projected image (explorer/project.py): the path of its projection file (ws and noise maps), which
    # replaces the seed's latent; truncation does not apply to it, everything else does.
    projection: str | None = None
    # Names the user gave directions {component: label}: saved with the session, but not part of the
    # image, so two states that differ only in labels are equal (and share cached renders).
    labels: tuple[tuple[int, str], ...] = field(default=(), compare=False)
    format_version: int = FORMAT_VERSION

    # ---- validation (model-independent; Engine.check_state adds the model's limits) ---------
    def validate(self) -> "ExplorerState":
        if not isinstance(self.model, str):
            raise ExplorerError(f"model must be a path string, got {self.model!r}")
        _check_int("format_version", self.format_version, 1, FORMAT_VERSION)
        _check_int("seed", self.seed, 0, MAX_SEED)
        _check_float("truncation psi", self.truncation_psi, -2.0, 2.0)
        if self.noise_mode not in NOISE_MODES:
            raise ExplorerError(f"unknown noise mode {self.noise_mode!r}: use one of {', '.join(NOISE_MODES)}")
        if not isinstance(self.edits, tuple) or not all(isinstance(e, Edit) for e in self.edits):
            raise ExplorerError("edits must be a tuple of Edit")
        for e in self.edits:
            e.validate()
        if self.mix_seed is not None:
            _check_int("mix seed", self.mix_seed, 0, MAX_SEED)
        if not isinstance(self.mix_layers, tuple):
            raise ExplorerError("mix_layers must be a tuple of layer indices")
        for i in self.mix_layers:
            _check_int("mix layer", i, 0)
        if len(set(self.mix_layers)) != len(self.mix_layers) or list(self.mix_layers) != sorted(self.mix_layers):
            raise ExplorerError(f"mix layers {list(self.mix_layers)} must be sorted and distinct")
        if self.mix_layers and self.mix_seed is None:
            raise ExplorerError("mix layers are set but no mix seed: give a mix seed (or clear the layers)")
        if self.class_idx is not None:
            _check_int("class", self.class_idx, 0)
        if self.blend_seed is not None:
            _check_int("blend seed", self.blend_seed, 0, MAX_SEED)
        _check_float("blend", self.blend, 0.0, 1.0)
        if self.blend and self.blend_seed is None:
            raise ExplorerError("blend is set but no blend seed: give the seed to blend with (or blend 0)")
        if self.blend_space not in BLEND_SPACES:
            raise ExplorerError(f"unknown blend space {self.blend_space!r}: use w (lerp) or z (slerp)")
        if self.projection is not None and not (isinstance(self.projection, str) and self.projection):
            raise ExplorerError(f"projection must be the path of a projection file, got {self.projection!r}")
        if not isinstance(self.labels, tuple):
            raise ExplorerError("labels must be a tuple of (component, label) pairs")
        for pair in self.labels:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ExplorerError("labels must be (component, label) pairs")
            _check_int("labelled component", pair[0], 0, MAX_COMPONENTS - 1)
            check_label(pair[1])
        if not isinstance(self.directions, DirectionSettings):
            raise ExplorerError("directions must be DirectionSettings")
        self.directions.validate()
        return self

    # ---- convenience for UIs -----------------------------------------------------------------
    def replace(self, **changes) -> "ExplorerState":
        """A copy with fields changed (lists become tuples), validated."""
        if "edits" in changes:
            changes["edits"] = tuple(changes["edits"])
        if "mix_layers" in changes:
            changes["mix_layers"] = tuple(sorted(set(int(i) for i in changes["mix_layers"])))
        if "labels" in changes:
            changes["labels"] = tuple((int(c), str(t)) for c, t in changes["labels"])
        return dataclasses.replace(self, **changes).validate()

    def with_label(self, component: int, label: str) -> "ExplorerState":
        """Name direction `component` ("" removes its name)."""
        label = check_label(label)
        labels = dict(self.labels)
        labels.pop(component, None)
        if label:
            labels[component] = label
        return self.replace(labels=sorted(labels.items()))

    def label_of(self, component: int) -> str:
        return dict(self.labels).get(component, "")

    def with_edit(self, component: int, strength: float, start: int = 0, end: int | None = None) -> "ExplorerState":
        """Set the one edit of `component` (a slider): replaces its earlier edits; strength 0 removes it."""
        edits = [e for e in self.edits if e.component != component]
        if strength != 0:
            edits.append(Edit(component, float(strength), start, end))
        return self.replace(edits=edits)

    @property
    def is_mixed(self) -> bool:
        return self.mix_seed is not None and len(self.mix_layers) > 0

    @property
    def is_blended(self) -> bool:
        return self.blend_seed is not None and self.blend > 0

    # ---- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format_version": self.format_version,
            "model": self.model,
            "seed": self.seed,
            "truncation_psi": self.truncation_psi,
            "noise_mode": self.noise_mode,
            "edits": [e.to_dict() for e in self.edits],
            "mix_seed": self.mix_seed,
            "mix_layers": list(self.mix_layers),
            "directions": self.directions.to_dict(),
            "class_idx": self.class_idx,
            "blend_seed": self.blend_seed,
            "blend": self.blend,
            "blend_space": self.blend_space,
            "projection": self.projection,
            "labels": {str(c): t for c, t in self.labels},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ExplorerState":
        """Unknown keys and newer format versions are refused; missing keys get defaults."""
        if isinstance(d, dict):
            version = d.get("format_version", FORMAT_VERSION)
            if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
                raise ExplorerError(f"session format_version {version} is newer than this tool's "
                                    f"{FORMAT_VERSION}: upgrade the tool")
        return from_json_dict(cls, d, "session", ExplorerError, convert={
            "edits": lambda v: tuple(Edit.from_dict(e) for e in _json_list(v, "edits")),
            "mix_layers": lambda v: tuple(_json_list(v, "mix_layers")),
            "directions": DirectionSettings.from_dict,
            "labels": labels_from_json,
        }).validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ExplorerState":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExplorerError(f"session is not valid JSON ({e})") from None
        return cls.from_dict(d)

    def save(self, path: str | Path) -> Path:
        """Write the session as JSON (atomically). The folder must exist. A projection file in the
        session's folder (or below) is named relative to it, so the two move together."""
        from gan.io.fileio import atomic_write_json
        path = Path(path)
        if not path.parent.is_dir():
            raise ExplorerError(f"folder {path.parent} does not exist: create it first")
        d = self.to_dict()
        if self.projection:
            try:
                d["projection"] = Path(self.projection).resolve().relative_to(path.parent.resolve()).as_posix()
            except ValueError:
                d["projection"] = str(Path(self.projection).resolve())
        return atomic_write_json(path, d)

    @classmethod
    def load(cls, path: str | Path) -> "ExplorerState":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ExplorerError(f"cannot read session {path}: {e.strerror or e}") from None
        try:
            state = cls.from_json(text)
        except ExplorerError as e:
            raise ExplorerError(f"{path}: {e}") from None
        if state.projection and not Path(state.projection).is_absolute():   # relative to the session file
            state = state.replace(projection=str(path.parent / state.projection))
        return state


def check_label(label) -> str:
    """A direction's label: one line of at most MAX_LABEL characters (surrounding spaces dropped)."""
    if not isinstance(label, str):
        raise ExplorerError(f"a direction label must be text, got {label!r}")
    label = label.strip()
    if len(label) > MAX_LABEL or not label.isprintable():
        raise ExplorerError(f"direction label {label[:MAX_LABEL]!r}... must be one line of at most {MAX_LABEL} "
                            "characters")
    return label


def labels_from_json(value) -> tuple[tuple[int, str], ...]:
    """{"3": "sleeve length"} -> ((3, "sleeve length"),)."""
    if not isinstance(value, dict):
        raise ExplorerError('session "labels" must be an object {"component": "label"}')
    out = []
    for key, label in value.items():
        if not (isinstance(key, str) and key.isdigit()):
            raise ExplorerError(f"session labels: {key!r} is not a component number")
        out.append((int(key), check_label(label)))
    return tuple(sorted(out))


# ---- command-line syntax ---------------------------------------------------------------------

def parse_int_ranges(text: str, what: str) -> list[int]:
    """'0-3,6' -> [0, 1, 2, 3, 6] (inclusive ranges, as the official tools' --styles)."""
    try:
        return _parse_ranges(text, what, max_count=100_000)
    except ValueError as e:
        raise ExplorerError(str(e)) from None


_EDIT_RE = re.compile(r"(\d+):([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:@(\d+)(?:-(\d+))?)?")


def parse_edit(text: str) -> Edit:
    """'C:STRENGTH[@START-END]' -> Edit. START-END is inclusive: '3:2.5@0-5' = Edit(3, 2.5, 0, 6),
    i.e. ws[:, 0:6]; '@4' alone is layer 4 only; no '@' = all layers."""
    m = _EDIT_RE.fullmatch(str(text).strip())
    if not m:
        raise ExplorerError(f"bad edit {text!r}: write COMPONENT:STRENGTH[@START-END], e.g. 0:2.5 or 3:-1@0-5")
    component, strength = int(m.group(1)), float(m.group(2))
    if m.group(3) is None:
        return Edit(component, strength).validate()
    start = int(m.group(3))
    last = int(m.group(4)) if m.group(4) is not None else start
    if last < start:
        raise ExplorerError(f"bad edit {text!r}: layer range end {last} is before start {start}")
    return Edit(component, strength, start, last + 1).validate()


def format_edit(edit: Edit, num_ws: int | None = None) -> str:
    """Inverse of parse_edit. An edit from `start` to the last layer needs num_ws to be written."""
    s = f"{edit.component}:{edit.strength:g}"
    end = edit.end if edit.end is not None else num_ws
    if edit.start == 0 and (end is None or end == num_ws):
        return s
    if end is None:
        raise ExplorerError(f"edit {edit} runs to the last layer: give num_ws to write it")
    return s + f"@{edit.start}-{end - 1}"
