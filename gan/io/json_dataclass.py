"""Strict dataclass-from-JSON: the one way a config, a run's options or a session is read back.

    from_json_dict(ModelConfig, raw, "model config", ConfigError)

refuses anything but a JSON object, refuses unknown keys (they signal a file from a newer or a
different tool), checks each given value against the field's annotation (an int where an int is
declared, a float or int for a float, None only for Optional fields ...) and builds the object;
missing keys get the field defaults. Every problem raises the caller's error class with one line
that starts with the caller's own wording (`what`).
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Callable, Mapping

_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
          type(None): "null", list: "a list", tuple: "a list"}


@functools.lru_cache(maxsize=None)
def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _accepted(annotation) -> tuple[type, ...] | None:
    """The JSON-level Python types a field annotation allows; None = not checked here (nested
    dataclasses and containers the caller converts)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_accepted(a) for a in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else tuple(t for p in parts for t in p)
    if origin is not None:
        return (origin,) if origin in (dict, list, tuple) else None
    if annotation is float:
        return (float, int)
    if annotation in _NAMES:
        return (annotation,)
    return None


def _type_ok(value, accepted: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false is no number, although bool subclasses int
        return bool in accepted
    return isinstance(value, accepted)


def from_json_dict(cls, data, what: str, error: type[Exception],
                   convert: Mapping[str, Callable[[Any], Any]] | None = None, keys: str | None = None):
    """Build dataclass `cls` from a parsed JSON object (see the module docstring).

    convert: field name -> function applied to that value before the type check (e.g. a list of
    edit objects -> a tuple of Edit); it may raise `error` itself.
    keys: how the message names unknown keys (default "<what> key(s)", e.g. "training option(s)").
    """
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object, got {type(data).__name__}")
    fields = _field_types(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise error(f"unknown {keys or what + ' key(s)'} {', '.join(map(str, unknown))}: "
                    "written by a newer or different tool")
    kwargs = dict(data)
    for name, fn in (convert or {}).items():
        if name in kwargs:
            kwargs[name] = fn(kwargs[name])
    for name, value in kwargs.items():
        accepted = _accepted(fields[name])
        if accepted is not None and not _type_ok(value, accepted):
            # a float field accepts ints too, but says only "a number"
            want = " or ".join(dict.fromkeys(_NAMES[t] for t in accepted if not (t is int and float in accepted)))
            raise error(f"bad {what}: {name!r} must be {want}, got {value!r}")
    if any(fields[n] is float for n in kwargs):  # 1 in JSON means 1.0 for a float field
        kwargs = {n: float(v) if fields[n] is float and not isinstance(v, bool) else v for n, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise error(f"bad {what}: {e}") from None
