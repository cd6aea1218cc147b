"""A `torch.save`d state dict (a flat name -> tensor dict) read as data: no code from the file runs.

    tensors = read_state_dict("vgg16-397923af.pth")       # {"features.0.weight": tensor [64, 3, 3, 3], ...}

torch.save writes two formats, both read here through the restricted unpickler of unpickler.py (its
allow-list, opcode table, nesting bounds and tensor checks all apply):

- the zip format (torch >= 1.6, the default): `<prefix>/data.pkl` plus one member `<prefix>/data/<key>`
  per storage, stored uncompressed. The pickle refers to a storage by a persistent id ('storage',
  storage type, key, location, numel); the member must be stored (not compressed: torch never compresses,
  and a compressed member could expand past what the archive holds) and hold exactly numel elements.
- the legacy format (`_use_new_zipfile_serialization=False`, and files from torch 0.1.10-1.5 such as
  torchvision's vgg16-397923af.pth and lpips' weights/v0.1/vgg.pth): five pickles in a row (magic number,
  protocol 1001, system info, the object, the list of storage keys), then each storage's raw bytes after
  an 8-byte element count. A storage is allocated when the object pickle names it, only if the bytes
  still left in the file can hold it (and every storage named before it).

What this adds to the restricted unpickler, and nothing else: BINPERSID for exactly those storage ids
(views of storages, a pre-0.4 feature, are refused); the globals `torch.<Type>Storage` as inert markers
of a dtype; `torch._utils._rebuild_tensor` (torch 0.2-0.3's tensors, with the same checks as
`_rebuild_tensor_v2`); and BUILD on an OrderedDict only to drop the `_metadata` a state dict carries.
The oldest format (tar, torch < 0.1.10) is refused, as is anything that is not a flat dict of tensors.
Errors are PickleImportError (UnsafePickleError for refused content), one line naming the file.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import sys
import zipfile
from pathlib import Path

import torch

from .errors import PickleImportError, UnsafePickleError
from .unpickler import RestrictedUnpickler, _ordered_dict, _Reader, brief, check_header, one_line, run_unpickler

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C     # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001                    # torch.serialization.PROTOCOL_VERSION
MAX_PICKLE_BYTES = 64 << 20               # the zip format's data.pkl (a state dict's is a few kB)
MAX_TENSORS = 100_000
TORCH_SAVE = "torch.save file"           # what messages call these files
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}\Z")   # a storage key: '0' (zip) or a pointer value (legacy)

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class StorageType:
    """What `torch.FloatStorage` and its kin resolve to: a marker of the storage's dtype, never called."""

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


def _malformed(what: str) -> PickleImportError:
    return PickleImportError(f"malformed torch.save file: {what}")


def _typed_storage(data: torch.Tensor) -> torch.storage.TypedStorage:
    return torch.storage.TypedStorage(wrap_storage=data.untyped_storage(), dtype=data.dtype, _internal=True)


class TorchSaveUnpickler(RestrictedUnpickler):
    """RestrictedUnpickler plus torch.save's storage ids (module docstring). storage(key, dtype, numel)
    returns the TypedStorage for a key, called once per key."""

    dispatch = dict(RestrictedUnpickler.dispatch)

    def __init__(self, file, storage):
        super().__init__(file)
        self._storage = storage
        self._by_key: dict[str, torch.storage.TypedStorage] = {}
        self._ordered: dict[int, dict] = {}     # id -> the dicts OrderedDict() built (kept alive: ids stay valid)
        self._allowed.update({("torch", name): StorageType(name) for name in _STORAGE_DTYPES})
        self._allowed[("collections", "OrderedDict")] = self._ordered_dict
        self._allowed[("torch._utils", "_rebuild_tensor")] = self._rebuild_tensor
        # REDUCE calls only these objects (the ones find_class hands out), the base's OrderedDict swapped for ours
        self._callables = {k: f for k, f in self._callables.items() if f is not _ordered_dict}
        for f in (self._allowed[("collections", "OrderedDict")], self._allowed[("torch._utils", "_rebuild_tensor")]):
            self._callables[id(f)] = f

    def _ordered_dict(self, items=()) -> dict:
        out = _ordered_dict(items)
        self._ordered[id(out)] = out
        return out

    def _rebuild_tensor(self, storage, storage_offset, size, stride) -> torch.Tensor:
        """torch 0.2-0.3's tensors: _rebuild_tensor_v2 without requires_grad and hooks."""
        return self._rebuild_tensor_v2(storage, storage_offset, size, stride, False, {})

    def persistent_load(self, pid):
        if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"):
            raise UnsafePickleError(f"refusing persistent id {brief(pid, 60)}: not a tensor storage")
        _, kind, key, location, numel, *view = pid
        if not (isinstance(kind, StorageType) and isinstance(key, str) and _KEY.match(key)
                and isinstance(location, str) and len(location) <= 40
                and isinstance(numel, int) and not isinstance(numel, bool) and numel >= 0):
            raise _malformed(f"a storage id {brief(pid, 80)}")
        if view and view[0] is not None:
            raise PickleImportError("a storage view (a torch < 0.4 feature): not supported; load and torch.save "
                                    "the state dict again with a recent torch")
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._storage(key, kind.dtype, numel)
            self._storages[id(found)] = found
        elif found.dtype != kind.dtype or found.size() != numel:
            raise _malformed(f"storage {brief(key)} named with two dtypes or sizes")
        return found

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if id(inst) in self._ordered and self._ordered[id(inst)] is inst and type(state) is dict \
                and set(state) <= {"_metadata"}:
            self.stack.pop()     # a state dict's _metadata (module versions): not needed, dropped
            return
        RestrictedUnpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.BINPERSID[0]] = pickle._Unpickler.dispatch[pickle.BINPERSID[0]]


def _state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict):
        raise PickleImportError(f"{path}: holds a {type(obj).__name__}, not a state dict (name -> tensor)")
    if len(obj) > MAX_TENSORS:
        raise PickleImportError(f"{path}: a state dict of {len(obj)} entries (at most {MAX_TENSORS})")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise PickleImportError(f"{path}: entry {brief(k)} is a {type(v).__name__}, not a tensor: give a flat "
                                    "state dict (torch.save(model.state_dict(), ...))")
    return {k: v.detach() for k, v in obj.items()}


# ---- the zip format ------------------------------------------------------------------------------

def _read_zip(path: Path, size: int) -> dict[str, torch.Tensor]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise PickleImportError(f"{path}: not a readable zip archive ({one_line(e)})") from None
    with zf:
        members = {info.filename: info for info in zf.infolist()}
        pickles = [n for n in members if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise PickleImportError(f"{path}: a zip archive, but not a torch.save file (no one <name>/data.pkl in it)")
        prefix = pickles[0][:-len("data.pkl")]
        order = members.get(prefix + "byteorder")
        if order is not None and (order.file_size > 16 or zf.read(order).strip() != sys.byteorder.encode()):
            raise PickleImportError(f"{path}: written on a machine of the other byte order: not supported")

        def member(name: str, nbytes: int) -> bytes:
            info = members.get(name)
            if info is None:
                raise _malformed(f"the storage member {one_line(name, 80)} is missing")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != nbytes or nbytes > size:
                raise _malformed(f"{one_line(name, 80)} is not {nbytes} stored (uncompressed) bytes")
            with zf.open(info) as fh:
                data = fh.read(nbytes + 1)
            if len(data) != nbytes:
                raise _malformed(f"{one_line(name, 80)} holds {len(data)} bytes, not {nbytes}")
            return data

        def storage(key: str, dtype: torch.dtype, numel: int):
            nbytes = numel * torch.empty((), dtype=dtype).element_size()
            raw = member(f"{prefix}data/{key}", nbytes)
            data = torch.frombuffer(bytearray(raw), dtype=dtype).clone() if numel else torch.empty(0, dtype=dtype)
            return _typed_storage(data)

        info = members[pickles[0]]
        if info.file_size > MAX_PICKLE_BYTES:
            raise PickleImportError(f"{path}: its data.pkl is {info.file_size} bytes (a state dict's is a few kB)")
        try:
            raw = member(pickles[0], info.file_size)
        except PickleImportError as e:
            raise type(e)(f"{path}: {e}") from None
        reader = _Reader(_BytesFile(raw), len(raw), None)
        check_header(path, raw[:64])
        return _state_dict(run_unpickler(TorchSaveUnpickler(reader, storage), path, lambda: reader.pos, len(raw), TORCH_SAVE), path)


class _BytesFile:
    """Just enough of a file over bytes for _Reader."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def readline(self, limit: int) -> bytes:
        end = self.data.find(b"\n", self.pos, self.pos + limit)
        end = self.pos + limit if end < 0 else end + 1
        out = self.data[self.pos:end]
        self.pos += len(out)
        return out


# ---- the legacy format ---------------------------------------------------------------------------

def _read_legacy(path: Path, size: int) -> dict[str, torch.Tensor]:
    with open(path, "rb") as fh:
        check_header(path, fh.read(64))
        fh.seek(0)
        reader = _Reader(fh, size, None)

        def plain():
            return run_unpickler(RestrictedUnpickler(reader), path, lambda: reader.pos, size, TORCH_SAVE)

        if plain() != LEGACY_MAGIC:
            raise PickleImportError(f"{path}: a pickle, but not a torch.save file (no torch magic number)")
        if plain() != LEGACY_PROTOCOL:
            raise PickleImportError(f"{path}: a torch.save file of an unknown legacy protocol")
        info = plain()
        if not isinstance(info, dict) or info.get("little_endian", True) != (sys.byteorder == "little"):
            raise PickleImportError(f"{path}: written on a machine of the other byte order: not supported")

        pending: dict[str, torch.Tensor] = {}
        claimed = [0]       # bytes the storages named so far take after the pickles (8-byte counts included)

        def storage(key: str, dtype: torch.dtype, numel: int):
            # The bytes come after the pickles: allocate only what the rest of the file can hold.
            claimed[0] += 8 + numel * torch.empty((), dtype=dtype).element_size()
            need = claimed[0]
            if need > size - reader.pos:
                raise _malformed(f"storages of {need} bytes in all, more than the {size - reader.pos} bytes left "
                                 "in the file (truncated, or sizes that lie)")
            pending[key] = data = torch.zeros(numel, dtype=dtype)
            return _typed_storage(data)

        obj = run_unpickler(TorchSaveUnpickler(reader, storage), path, lambda: reader.pos, size, TORCH_SAVE)
        keys = plain()
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and sorted(keys) == sorted(pending)):
            raise PickleImportError(f"{path}: corrupt torch.save file: its storage key list does not match its tensors")
        for key in keys:
            data = pending[key]
            count = reader.read(8)
            nbytes = data.numel() * data.element_size()
            if len(count) != 8 or struct.unpack("<q" if sys.byteorder == "little" else ">q", count)[0] != data.numel():
                raise PickleImportError(f"{path}: corrupt torch.save file: storage {brief(key)} does not hold "
                                        f"{data.numel()} elements")
            raw = reader.read(nbytes)
            if len(raw) != nbytes:
                raise PickleImportError(f"{path}: truncated torch.save file: it ends ({size} bytes) inside the "
                                        "tensor data (an interrupted download or copy?)")
            if nbytes:
                data.copy_(torch.frombuffer(bytearray(raw), dtype=data.dtype))
        return _state_dict(obj, path)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The name -> tensor dict in a torch.save file (zip or legacy format), read as data (module docstring).
    Raises PickleImportError (UnsafePickleError for content that is not plain data), one line."""
    path = Path(path)
    if not path.is_file():
        raise PickleImportError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PK"):
        return _read_zip(path, size)
    if head[257:262] == b"ustar":
        raise PickleImportError(f"{path}: a tar-format torch.save file (torch < 0.1.10): not supported; load and "
                                "torch.save it again with a recent torch")
    return _read_legacy(path, size)
