"""A restricted unpickler for NVIDIA's network pickles: the file is parsed as data, no code from it runs.
(One concept, kept in one file on purpose: the opcode table, the allow-list and the validating rebuilds
must be read together to judge what a hostile file can do.)

A pickle may name any importable callable and call it (GLOBAL + REDUCE), and NVIDIA's own loader goes
further: it executes the module source embedded in the file. Here the standard library's pure-Python
unpickler runs with its own opcode table:

- GLOBAL / STACK_GLOBAL resolve only the (module, name) pairs listed in `RestrictedUnpickler._allowed`,
  each mapped to a stand-in written here: an inert record (`PersistentObject`, `TFNetwork`, ...) or a
  rebuild function that validates its arguments. Anything else is refused with one line naming it.
- REDUCE calls only those stand-ins; NEWOBJ builds only our record classes; BUILD sets state only on
  them; list / dict / set opcodes apply only to real lists, dicts and sets.
- INST, OBJ, EXT1/2/4, PERSID / BINPERSID, NEWOBJ_EX and out-of-band buffers are refused.
- Dict keys and set members may only be str, int, float, bool, None or bytes, and tuples (and lists and
  dicts built from items) nest at most 64 deep: hashing a nested tuple recurses in C, and 10**6 levels
  overflow the C stack, a crash no except can catch.
- A tensor's storage is a nested torch.save archive, opened with torch.load(weights_only=True); a
  tensor may only view a storage that came from such an archive, within its bounds, with no hooks, and
  all the tensors of one storage together hold at most its elements (no zero or overlapping strides
  that make a small storage a huge tensor once converted or saved).
- Messages describe the file's objects with `brief` (a repr bounded in depth, items and length: shared
  references make a plain repr exponential in the file's size), on one line of bounded length.
- After loading, traversals refuse a module or TF network reached twice (NVIDIA's files are trees;
  shared references would make a walk exponential) and `plain` stops at 100,000 values.
- `module_src` (the code NVIDIA's loader executes) is kept as a string and never executed or imported;
  only the names of the classes and functions it defines are read (with a regex), for messages.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import re
import reprlib
import struct
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import PickleImportError, UnsafePickleError, UnsupportedNetworkError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}\Z")  # module, class and tensor names
_DEFINITION = re.compile(r"^(?:class|def)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_TENSOR_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
                  torch.int16, torch.int32, torch.int64, torch.bool}
_NUMPY_TYPES = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"}
_MAX_NDIM = 8
_KEY_TYPES = (str, int, float, bool, type(None), bytes)  # what dict keys and set members may be
_PLAIN_BUDGET = 100_000  # values plain() converts at most
_MAX_NESTING = 64  # containers built from items (NVIDIA's nest a few levels)

# Globals we recognise but do not import: a clearer message than "refusing ...".
_UNSUPPORTED_GLOBALS = {
    ("tfutil", "Network"): "a Progressive GAN (TensorFlow, tfutil.Network) pickle: not supported yet",
}


def _malformed(what: str) -> PickleImportError:
    return PickleImportError(f"malformed network pickle: {what}")


def one_line(text, limit: int = 200) -> str:
    """str(text) on one line (runs of white space folded) of at most `limit` characters."""
    text = str(text)
    head = " ".join(text[:4 * limit].split())
    return head if len(head) <= limit and len(text) <= 4 * limit else head[:limit - 3] + "..."


def brief(obj, limit: int = 60) -> str:
    """A file-supplied object described for a message: one line of at most `limit` characters, in bounded
    time whatever the object holds."""
    return one_line(_BRIEF.repr(obj), limit)


def _check_keys(keys, what: str) -> None:
    for key in keys:
        if type(key) not in _KEY_TYPES:
            raise _malformed(f"{what} with a {type(key).__name__} key or member (only str, numbers, None, bytes)")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _empty_dict(x) -> bool:
    return isinstance(x, dict) and not x


# ---- records: what the allowed globals build --------------------------------------------------------

class EasyDict(dict):
    """dnnlib.util.EasyDict (a dict with attribute access in NVIDIA's code): read as a plain dict."""


_CONTAINERS = (tuple, list, dict, set, frozenset, EasyDict)


class PersistentObject:
    """A `torch_utils.persistence` object (an nn.Module of NVIDIA's code) as data: its class name and its
    state, the module's __dict__ (`_parameters`, `_buffers`, `_modules`, `_init_kwargs`, attributes)."""

    def __init__(self, class_name: str, version: int, state: dict, defines: frozenset[str]):
        # Our own copies of the state and its module tables: the file's dicts stay reachable through the
        # unpickler memo, and a later SETITEM into them must not change (or make a cycle in) this object.
        state = dict(state)
        for key in ("_parameters", "_buffers", "_modules"):
            if isinstance(state.get(key), dict):
                state[key] = dict(state[key])
        self.class_name, self.version, self.state, self.defines = class_name, version, state, defines

    def __repr__(self) -> str:
        return f"<{self.class_name}>"

    def _table(self, key: str) -> dict:
        table = self.state.get(key)
        return table if isinstance(table, dict) else {}

    @property
    def modules(self) -> dict[str, "PersistentObject"]:
        return {k: v for k, v in self._table("_modules").items() if v is not None}

    def module(self, name: str) -> "PersistentObject | None":
        return self.modules.get(name)

    def attr(self, name: str, default=None):
        return self.state.get(name, default)

    def own_tensors(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers of this module itself (None entries skipped)."""
        out = {}
        for key in ("_parameters", "_buffers"):
            out.update({k: v for k, v in self._table(key).items() if v is not None})
        return out

    def walk(self, prefix: str = "", _depth: int = 0, _seen: set | None = None):
        """(dotted name, module) for this module and every submodule, depth first. A module reached twice is
        refused: NVIDIA's module trees are trees, and shared submodules would make the walk exponential."""
        seen = set() if _seen is None else _seen
        where = one_line(prefix.rstrip(".") or self.class_name, 120)
        if _depth > 32:
            raise _malformed(f"modules nested more than 32 deep at {where}")
        if id(self) in seen:
            raise _malformed(f"module {where} is also a submodule elsewhere (shared, not a tree)")
        seen.add(id(self))
        yield prefix.rstrip("."), self
        for name, child in self.modules.items():
            yield from child.walk(f"{prefix}{name}.", _depth + 1, seen)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer, named as in a state dict (`synthesis.b4.conv1.weight`)."""
        out = {}
        for name, module in self.walk():
            for key, tensor in module.own_tensors().items():
                out[f"{name}.{key}" if name else key] = tensor
        return out

    def validate(self) -> "PersistentObject":
        """The module tables must be name -> tensor / module maps; checked once, when the object is built."""
        for key, kind in (("_parameters", torch.Tensor), ("_buffers", torch.Tensor), ("_modules", PersistentObject)):
            table = self.state.get(key, {})
            if not isinstance(table, dict):
                raise _malformed(f"{self.class_name}.{key} is a {type(table).__name__}, not a dict")
            for name, value in table.items():
                if not isinstance(name, str) or not _IDENTIFIER.match(name):
                    raise _malformed(f"{self.class_name}.{key} has the name {brief(name)}")
                if value is not None and not isinstance(value, kind):
                    raise _malformed(f"{self.class_name}.{key}[{name!r}] is a {type(value).__name__}")
        return self


class TFNetwork:
    """A `dnnlib.tflib.network.Network` (TensorFlow StyleGAN/StyleGAN2) as data: name, build function
    name, static_kwargs, components (sub-networks) and variables (name -> numpy array)."""

    def __repr__(self) -> str:
        return f"<TF network {one_line(getattr(self, 'name', '?'), 60)}>"

    def __setstate__(self, state) -> None:
        if hasattr(self, "variables"):
            raise _malformed("a TensorFlow network's state is set twice")
        if not isinstance(state, dict):
            raise _malformed(f"a TensorFlow network's state is a {type(state).__name__}")
        version = state.get("version")
        if not _is_int(version):
            raise _malformed("a TensorFlow network without a version")
        self.version = version
        self.name = state.get("name")
        self.build_func_name = state.get("build_func_name")
        if not isinstance(self.name, str) or not isinstance(self.build_func_name, str):
            raise _malformed("a TensorFlow network without a name or build function name")
        what = f"TensorFlow network {one_line(self.name, 60)}"
        self.static_kwargs = state.get("static_kwargs", {})
        self.components = state.get("components", {})
        if not isinstance(self.static_kwargs, dict) or not isinstance(self.components, dict):
            raise _malformed(f"{what}: static_kwargs or components is not a dict")
        self.static_kwargs, self.components = dict(self.static_kwargs), dict(self.components)  # copies: see PersistentObject
        for name, comp in self.components.items():
            if not isinstance(name, str) or not isinstance(comp, TFNetwork):
                raise _malformed(f"{what}: component {brief(name)} is not a network")
        variables = state.get("variables", [])
        if not isinstance(variables, (list, tuple)):
            raise _malformed(f"{what}: variables is not a list")
        self.variables = {}
        for item in variables:
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
                raise _malformed(f"{what}: a variable is not a (name, value) pair")
            name, value = item
            if isinstance(value, NumpyArray):
                self.variables[name] = value.array
            elif type(value) in (float, int, bool):
                # A 0-d variable (noise_strength, lod): TF's session.run returns a numpy scalar for it, which
                # _numpy_scalar reads as a Python number. TF's variables are float32 (exact from f4).
                self.variables[name] = np.asarray(value, dtype=np.float32 if type(value) is float else None)
            else:
                raise _malformed(f"{what}: variable {brief(name)} is a {type(value).__name__}, not an array")
        src = state.get("build_module_src", "")
        self.defines = frozenset(_DEFINITION.findall(src)) if isinstance(src, str) else frozenset()

    def take_variables(self, prefix: str = "", _depth: int = 0, _seen: set | None = None) -> dict[str, np.ndarray]:
        """Own variables and those of every component, named `component/variable` (as legacy.py does), moved
        out of the networks (which keep none), so that each array can be freed once converted. A network
        reached twice is refused (components form a tree in real files)."""
        seen = set() if _seen is None else _seen
        where = one_line(prefix or "the top", 120)
        if _depth > 8 or not hasattr(self, "variables"):
            raise _malformed(f"TensorFlow components nested too deep, or without state, at {where}")
        if id(self) in seen:
            raise _malformed(f"TensorFlow network {where} is also a component elsewhere (shared, not a tree)")
        seen.add(id(self))
        out = {prefix + k: v for k, v in self.variables.items()}
        self.variables = {}
        for name, comp in self.components.items():
            out.update(comp.take_variables(f"{prefix}{name}/", _depth + 1, seen))
        return out


class NumpyDtype:
    """numpy.dtype(name, align, copy) + its pickled state, resolved to a real dtype only for plain numeric
    types (never an object dtype, never a dtype built from arbitrary state)."""

    def __init__(self, name: str):
        self.name, self.byteorder, self._state_set = name, "=", False

    def __setstate__(self, state) -> None:
        if self._state_set:
            raise _malformed("a numpy dtype's state is set twice")
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
                and state[1] in ("<", ">", "|", "=") and state[2] is None and state[3] is None
                and state[4] is None and all(_is_int(x) for x in state[5:8])
                and (len(state) == 8 or state[8] is None or _empty_dict(state[8]))):
            raise _malformed(f"unexpected numpy dtype state {brief(state, 80)}")
        self.byteorder, self._state_set = state[1], True

    def numpy(self) -> np.dtype:
        dtype = np.dtype(self.name)
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


class NumpyArray:
    """numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') + its state: rebuilt here with np.frombuffer
    from the raw bytes, after checking shape, dtype and length."""

    def __setstate__(self, state) -> None:
        if hasattr(self, "array"):
            raise _malformed("a numpy array's state is set twice")
        if isinstance(state, tuple) and len(state) == 5 and _is_int(state[0]):
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise _malformed("unexpected numpy array state")
        shape, dtype, fortran, raw = state
        if not (isinstance(shape, tuple) and len(shape) <= _MAX_NDIM and all(_is_int(s) and s >= 0 for s in shape)):
            raise _malformed(f"a numpy array with shape {brief(shape, 80)}")
        if not isinstance(dtype, NumpyDtype) or not isinstance(fortran, bool) or not isinstance(raw, (bytes, bytearray)):
            raise _malformed("a numpy array that is not plain numeric data")
        np_dtype = dtype.numpy()
        if len(raw) != math.prod(shape) * np_dtype.itemsize:
            raise _malformed(f"a numpy array of shape {brief(list(shape))} with {len(raw)} bytes of data")
        self.array = np.frombuffer(raw, dtype=np_dtype).reshape(shape, order="F" if fortran else "C")


class _NDArrayClass:
    """What `numpy.ndarray` resolves to: only a marker for _reconstruct's first argument."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


NDARRAY = _NDArrayClass()


# ---- stand-ins that need no unpickler state -----------------------------------------------------------

def _ordered_dict(items=()) -> dict:
    """collections.OrderedDict(): a plain dict (insertion-ordered) from () or a list of pairs."""
    if isinstance(items, dict):
        return dict(items)
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in items):
        raise _malformed("OrderedDict() of something other than (key, value) pairs")
    _check_keys((p[0] for p in items), "an OrderedDict")
    return dict(items)


def _container(kind: type) -> Callable:
    def build(items=()):
        if not isinstance(items, (list, tuple)):
            raise _malformed(f"{kind.__name__}() of a {type(items).__name__}")
        _check_keys(items, f"a {kind.__name__}")
        return kind(items)
    return build


def _flag(x) -> bool:
    return type(x) in (bool, int) and x in (0, 1)


def _numpy_dtype(name, align=False, copy=True) -> NumpyDtype:
    if not isinstance(name, str) or name not in _NUMPY_TYPES or not _flag(align) or not _flag(copy):
        raise UnsafePickleError(f"refusing numpy dtype {brief(name, 40)}: not a plain numeric type")
    return NumpyDtype(name)


def _numpy_scalar(dtype, data=None):
    """numpy.core.multiarray.scalar(dtype, bytes) -> the Python number (float, int, bool)."""
    if not isinstance(dtype, NumpyDtype) or not isinstance(data, bytes):
        raise _malformed("a numpy scalar that is not plain numeric data")
    np_dtype = dtype.numpy()
    if len(data) != np_dtype.itemsize:
        raise _malformed(f"a numpy {dtype.name} scalar with {len(data)} bytes")
    return np.frombuffer(data, dtype=np_dtype)[0].item()


def _numpy_reconstruct(cls, shape, typecode) -> NumpyArray:
    if cls is not NDARRAY or type(shape) is not tuple or shape != (0,) or type(typecode) not in (bytes, str):
        raise _malformed("numpy _reconstruct of something other than an empty ndarray")
    return NumpyArray()


class _Brief(reprlib.Repr):
    """The repr behind `brief`: containers to 3 levels and 4 items, strings and bytes cut short, large ints
    by their size, our records by their (bounded) repr, anything else by its type name."""

    def __init__(self):
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxdict = self.maxset = self.maxfrozenset = 4
        self.maxstring = self.maxother = 40

    def repr1(self, x, level) -> str:
        kind = type(x)
        if kind in (tuple, list, dict, set, frozenset, str):
            return super().repr1(x, level)
        if kind is EasyDict:
            return self.repr_dict(x, level)
        if kind is int:
            return repr(x) if x.bit_length() <= 64 else f"<{x.bit_length()}-bit int>"
        if kind in (bytes, bytearray):
            return repr(bytes(x[:20])) + ("..." if len(x) > 20 else "")
        if x is None or kind in (bool, float, PersistentObject, TFNetwork, _NDArrayClass):
            return repr(x)
        return f"<{kind.__name__}>"


_BRIEF = _Brief()


# ---- the unpickler -------------------------------------------------------------------------------------

_LARGE_BYTES = 1 << 16


class _Released:
    def __repr__(self) -> str:
        return "<large bytes object, not kept in the pickle memo>"


_RELEASED = _Released()


def _holds_large_bytes(obj) -> bool:
    if type(obj) in (bytes, bytearray):
        return len(obj) >= _LARGE_BYTES
    return type(obj) is tuple and any(type(x) in (bytes, bytearray) and len(x) >= _LARGE_BYTES for x in obj)


class _Memo(dict):
    """The unpickler memo, minus large bytes objects and the argument tuples holding them: a storage archive
    would otherwise stay in memory, next to the tensor made from it, until the whole file is read (2x the
    file). NVIDIA's pickles never refer back to them; a file that does gets a placeholder, which every
    stand-in refuses as malformed."""

    def __setitem__(self, key, value) -> None:
        dict.__setitem__(self, key, _RELEASED if _holds_large_bytes(value) else value)

_BASE = pickle._Unpickler.dispatch
_PLAIN_OPCODES = [  # opcodes that only push data, frame the stream, or use the memo
    pickle.PROTO, pickle.FRAME, pickle.STOP, pickle.MARK, pickle.POP, pickle.POP_MARK, pickle.DUP,
    pickle.INT, pickle.BININT, pickle.BININT1, pickle.BININT2, pickle.LONG, pickle.LONG1, pickle.LONG4,
    pickle.NONE, pickle.NEWTRUE, pickle.NEWFALSE, pickle.FLOAT, pickle.BINFLOAT,
    pickle.STRING, pickle.BINSTRING, pickle.SHORT_BINSTRING, pickle.UNICODE, pickle.BINUNICODE,
    pickle.SHORT_BINUNICODE, pickle.BINUNICODE8, pickle.BINBYTES, pickle.SHORT_BINBYTES, pickle.BINBYTES8,
    pickle.EMPTY_LIST, pickle.EMPTY_TUPLE, pickle.EMPTY_DICT, pickle.EMPTY_SET,
    pickle.GET, pickle.BINGET, pickle.LONG_BINGET, pickle.PUT, pickle.BINPUT, pickle.LONG_BINPUT,
    pickle.MEMOIZE, pickle.GLOBAL, pickle.STACK_GLOBAL,  # these two go through find_class
]


def _refuser(code: int) -> Callable:
    op = pickletools.code2op.get(chr(code))

    def refuse(self) -> None:
        if op is None:
            raise PickleImportError(f"corrupt pickle: unknown opcode 0x{code:02x}")
        raise UnsafePickleError(f"refusing pickle opcode {op.name}: not plain data")
    return refuse


class RestrictedUnpickler(pickle._Unpickler):
    """pickle._Unpickler with an opcode table that builds only data and our records (module docstring)."""

    def __init__(self, file):
        super().__init__(file, fix_imports=False)
        self.memo = _Memo()
        self._storages: dict[int, object] = {}   # id -> storage from a nested archive
        self._tensors: dict[int, torch.Tensor] = {}
        self._claimed: dict[int, int] = {}      # id(storage) -> elements its tensors hold
        self._nesting: dict[int, tuple] = {}    # id -> (container, depth) past 1 deep, kept alive so ids stay valid
        self._allowed = {
            ("torch_utils.persistence", "_reconstruct_persistent_obj"): self._reconstruct_persistent_obj,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch.storage", "_load_from_bytes"): self._load_from_bytes,
            ("collections", "OrderedDict"): _ordered_dict,
            ("builtins", "set"): _container(set),
            ("builtins", "frozenset"): _container(frozenset),
            ("numpy", "dtype"): _numpy_dtype,
            ("numpy.core.multiarray", "scalar"): _numpy_scalar,
            ("numpy._core.multiarray", "scalar"): _numpy_scalar,
            ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
            ("numpy", "ndarray"): NDARRAY,
            ("dnnlib.util", "EasyDict"): EasyDict,
            ("dnnlib.tflib.network", "Network"): TFNetwork,
        }
        self._callables = {id(f): f for f in self._allowed.values()
                           if f is not NDARRAY and f is not EasyDict and f is not TFNetwork}
        self._classes = (EasyDict, TFNetwork)  # NEWOBJ only

    # -- globals
    def find_class(self, module: str, name: str):
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        if (module, name) in _UNSUPPORTED_GLOBALS:
            raise UnsupportedNetworkError(_UNSUPPORTED_GLOBALS[(module, name)])
        raise UnsafePickleError(f"refusing {one_line(f'{module}.{name}', 120)}: not a tensor or container")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing persistent id {brief(pid, 60)}: not a tensor or container")

    # -- opcodes that act on objects
    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if self._callables.get(id(func)) is not func:
            raise UnsafePickleError(f"refusing a call of {brief(func, 60)}: not a tensor or container rebuild")
        if type(args) is not tuple:
            raise _malformed("REDUCE arguments are not a tuple")
        self.stack[-1] = func(*args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if not any(cls is c for c in self._classes) or type(args) is not tuple or args:
            raise UnsafePickleError(f"refusing to construct {brief(cls, 60)}: not a container")
        self.append(cls.__new__(cls))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) in (NumpyDtype, NumpyArray, TFNetwork):
            inst.__setstate__(state)
        elif not (type(inst) is EasyDict and (state is None or _empty_dict(state))):
            raise UnsafePickleError(f"refusing to set the state of a {type(inst).__name__}: not a container")

    def _target(self, kinds: tuple, opcode: str):
        target = self.stack[-1]
        if type(target) not in kinds:
            raise UnsafePickleError(f"refusing {opcode} on a {type(target).__name__}: not a container")
        return target

    def load_append(self) -> None:
        value = self.stack.pop()
        self._target((list,), "APPEND").append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._target((list,), "APPENDS").extend(items)

    # -- containers built from items: nesting bounded (and dict keys / set members plain, see _check_keys)
    def _nested(self, container, items):
        depth = 1
        for item in items:
            if type(item) in _CONTAINERS:
                known = self._nesting.get(id(item))
                depth = max(depth, 1 + (known[1] if known is not None else 1))
        if depth > _MAX_NESTING:
            raise _malformed(f"containers nested more than {_MAX_NESTING} deep")
        if depth > 1:
            self._nesting[id(container)] = (container, depth)
        return container

    def load_tuple(self) -> None:
        items = self.pop_mark()
        self.append(self._nested(tuple(items), items))

    def load_tuple1(self) -> None:
        self.stack[-1] = self._nested((self.stack[-1],), self.stack[-1:])

    def load_tuple2(self) -> None:
        items = (self.stack[-2], self.stack[-1])  # IndexError (a corrupt pickle) on a short stack
        self.stack[-2:] = [self._nested(items, items)]

    def load_tuple3(self) -> None:
        items = (self.stack[-3], self.stack[-2], self.stack[-1])
        self.stack[-3:] = [self._nested(items, items)]

    def load_list(self) -> None:
        items = self.pop_mark()
        self.append(self._nested(items, items))

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        target = self._target((dict, EasyDict), "SETITEM")
        _check_keys((key,), "a dict")
        target[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target((dict, EasyDict), "SETITEMS")
        if len(items) % 2:
            raise _malformed("SETITEMS with an odd number of items")
        _check_keys(items[::2], "a dict")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise _malformed("DICT with an odd number of items")
        _check_keys(items[::2], "a dict")
        self.append(self._nested(dict(zip(items[::2], items[1::2])), items[1::2]))

    def load_additems(self) -> None:
        items = self.pop_mark()
        target = self._target((set,), "ADDITEMS")
        _check_keys(items, "a set")
        target.update(items)

    def load_frozenset(self) -> None:
        items = self.pop_mark()
        _check_keys(items, "a frozenset")
        self.append(frozenset(items))  # of plain members only: one level

    # -- the stand-ins that need this unpickler's registries
    def _reconstruct_persistent_obj(self, meta) -> PersistentObject:
        if not isinstance(meta, dict) or meta.get("type") != "class":
            raise _malformed("a persistent object whose meta is not {type: 'class', ...}")
        class_name, state, version = meta.get("class_name"), meta.get("state"), meta.get("version")
        if not isinstance(class_name, str) or not _IDENTIFIER.match(class_name):
            raise _malformed(f"a persistent object with class name {brief(class_name, 60)}")
        if not isinstance(state, dict) or not _is_int(version):
            raise _malformed(f"persistent {class_name}: no state dict or version")
        src = meta.get("module_src", "")
        defines = frozenset(_DEFINITION.findall(src)) if isinstance(src, str) else frozenset()
        return PersistentObject(class_name, version, state, defines).validate()

    def _load_from_bytes(self, data):
        if type(data) not in (bytes, bytearray):
            raise _malformed("a tensor storage that is not bytes")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            found = re.search(r"GLOBAL ([\w.]+)", str(e))
            if found:
                raise UnsafePickleError(f"refusing {found.group(1)} inside a tensor storage archive: "
                                        "not a tensor or container") from None
            first_line = (str(e).splitlines() or [type(e).__name__])[0]
            raise UnsafePickleError(f"refusing a tensor storage archive: {one_line(first_line)}") from None
        except Exception as e:  # a truncated or corrupt nested archive
            raise PickleImportError(f"unreadable tensor storage archive ({type(e).__name__}: "
                                    f"{one_line(str(e))})") from None
        if not isinstance(storage, torch.storage.TypedStorage):
            raise _malformed(f"a tensor storage archive holds a {type(storage).__name__}, not a storage")
        self._storages[id(storage)] = storage
        return storage

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad, backward_hooks,
                           metadata=None) -> torch.Tensor:
        if self._storages.get(id(storage)) is not storage:
            raise UnsafePickleError("refusing a tensor whose storage does not come from a storage archive")
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= _MAX_NDIM
                and all(_is_int(s) and s >= 0 for s in size + stride) and _is_int(storage_offset)
                and storage_offset >= 0 and isinstance(requires_grad, bool)):
            raise _malformed("a tensor with a non-integer size, stride or offset")
        if not _empty_dict(backward_hooks) or not (metadata is None or _empty_dict(metadata)):
            raise UnsafePickleError("refusing a tensor with backward hooks or metadata: not plain data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dtype, numel = storage.dtype, storage.size()
            untyped = storage._untyped_storage
        if dtype not in _TENSOR_DTYPES:
            raise _malformed(f"a tensor of dtype {dtype}")
        if all(size) and storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) >= numel:
            raise _malformed(f"a tensor of size {brief(list(size))} beyond its storage of {numel} elements")
        # Zero or overlapping strides, or many tensors on one storage, would make a small storage huge tensors
        # once converted or saved: the tensors of a storage hold at most its elements (in any layout).
        elements = math.prod(size)
        if elements > numel - storage_offset:
            raise _malformed(f"a tensor of size {brief(list(size))} and stride {brief(list(stride))} holds more "
                             f"elements than its storage of {numel} has (zero or overlapping strides)")
        claimed = self._claimed.get(id(storage), 0) + elements
        if claimed > numel:
            raise _malformed(f"tensors holding {claimed} elements share a storage of {numel}")
        self._claimed[id(storage)] = claimed
        tensor = torch.empty((0,), dtype=dtype).set_(untyped, storage_offset, size, stride)
        self._tensors[id(tensor)] = tensor
        return tensor

    def _rebuild_parameter(self, data, requires_grad, backward_hooks) -> torch.Tensor:
        if self._tensors.get(id(data)) is not data or not isinstance(requires_grad, bool):
            raise _malformed("a parameter that does not wrap a rebuilt tensor")
        if not _empty_dict(backward_hooks):
            raise UnsafePickleError("refusing a parameter with backward hooks: not plain data")
        return data

    dispatch = {op[0]: _BASE[op[0]] for op in _PLAIN_OPCODES}
    dispatch.update({pickle.REDUCE[0]: load_reduce, pickle.NEWOBJ[0]: load_newobj, pickle.BUILD[0]: load_build,
                     pickle.APPEND[0]: load_append, pickle.APPENDS[0]: load_appends,
                     pickle.SETITEM[0]: load_setitem, pickle.SETITEMS[0]: load_setitems,
                     pickle.ADDITEMS[0]: load_additems, pickle.TUPLE[0]: load_tuple, pickle.TUPLE1[0]: load_tuple1,
                     pickle.TUPLE2[0]: load_tuple2, pickle.TUPLE3[0]: load_tuple3, pickle.LIST[0]: load_list,
                     pickle.DICT[0]: load_dict, pickle.FROZENSET[0]: load_frozenset})
    for _code in range(256):
        if _code not in dispatch:
            dispatch[_code] = _refuser(_code)
    del _code


class _Reader:
    """The file as the unpickler reads it: never asks the OS for more than is left (so a hostile length
    cannot allocate more than the file's size), counts bytes for the progress callback and messages."""

    def __init__(self, fh, size: int, progress: Callable[[int], None] | None):
        self.fh, self.size, self.pos, self.progress = fh, size, 0, progress
        self._reported = 0

    def _advance(self, n: int) -> None:
        self.pos += n
        if self.progress is not None and (self.pos - self._reported >= 1 << 22 or self.pos == self.size):
            self.progress(self.pos - self._reported)
            self._reported = self.pos

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.pos
        data = self.fh.read(left if n is None or n < 0 else min(n, left))
        self._advance(len(data))
        return data

    def readline(self) -> bytes:
        data = self.fh.readline(max(self.size - self.pos, 0))
        self._advance(len(data))
        return data

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def check_header(path: Path, head: bytes) -> None:
    """A one-line refusal for files that are not protocol 2-5 pickles, naming what they look like."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return
    if not head:
        raise PickleImportError(f"{path}: empty file, not a network pickle")
    if head.startswith(b"PK"):
        raise PickleImportError(f"{path}: a zip archive, not a network pickle (a torch.save checkpoint or a zipped "
                                "model folder?)")
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html")):
        raise PickleImportError(f"{path}: an HTML page, not a network pickle (a failed download?)")
    if text.startswith(b"version https://git-lfs"):
        raise PickleImportError(f"{path}: a Git LFS pointer, not the network pickle itself (run git lfs pull)")
    raise PickleImportError(f"{path}: not a pickle (no protocol 2-5 pickle header): is this really a network .pkl?")


def load_pickle(path: str | os.PathLike, progress: Callable[[int], None] | None = None):
    """Unpickle `path` with RestrictedUnpickler. progress(n) is called with each further n bytes read.
    Raises PickleImportError (UnsafePickleError for refused content) with one line naming the file."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        check_header(path, fh.read(64))
        fh.seek(0)
        reader = _Reader(fh, size, progress)
        return run_unpickler(RestrictedUnpickler(reader), path, lambda: reader.pos, size)


def run_unpickler(unpickler: RestrictedUnpickler, path: Path, position: Callable[[], int], size: int,
                  what: str = "pickle"):
    """unpickler.load(), every failure a one-line PickleImportError naming `path` (UnsafePickleError for
    refused content): truncated when the reader got to the end (position() >= size bytes), else corrupt
    at the byte it had reached. `what` names the file kind in messages ("pickle", "torch.save file")."""
    try:
        return unpickler.load()
    except PickleImportError as e:
        raise type(e)(f"{path}: {e}") from None
    except RecursionError:
        raise PickleImportError(f"{path}: corrupt pickle (nested too deeply)") from None
    except MemoryError:
        raise PickleImportError(f"{path}: out of memory reading the pickle at byte {position()} "
                                f"(a {size}-byte {what}): corrupt or hostile") from None
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, TypeError, KeyError, IndexError,
            AttributeError, UnicodeDecodeError, OverflowError, RuntimeError) as e:
        if position() >= size:
            raise PickleImportError(f"{path}: truncated {what}: it ends ({size} bytes) before the pickle "
                                    "does (an interrupted download or copy?)") from None
        raise PickleImportError(f"{path}: corrupt pickle at byte {position()} ({type(e).__name__}: "
                                f"{one_line(e)})") from None
    finally:
        unpickler.memo.clear()  # the file's objects are referenced from the result only
        unpickler._nesting.clear()


def plain(obj):
    """kwargs as JSON-able data (EasyDict -> dict, tuples -> lists, numpy dtypes -> names); anything else
    becomes a short description string, and so do ints past 64 bits and what is nested over 20 deep. More
    than 100,000 values (shared references repeat a value each time they are reached) are refused."""
    budget = [_PLAIN_BUDGET]

    def convert(obj, depth: int):
        budget[0] -= 1
        if budget[0] < 0:
            raise _malformed(f"kwargs of more than {_PLAIN_BUDGET} values (shared references?)")
        if depth > 20:
            return "..."
        if isinstance(obj, int) and not isinstance(obj, bool) and obj.bit_length() > 64:
            return f"<{obj.bit_length()}-bit int>"
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else str(obj)
        if isinstance(obj, dict):
            return {k if isinstance(k, str) else str(convert(k, depth + 1)): convert(v, depth + 1)
                    for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [convert(v, depth + 1) for v in obj]
        if isinstance(obj, NumpyDtype):
            return obj.name
        if isinstance(obj, torch.Tensor):
            return f"<tensor {list(obj.shape)}>"
        return f"<{type(obj).__name__}>"
    return convert(obj, 0)
