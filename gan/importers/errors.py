"""What the importer raises: one line each, naming the file and what is wrong with it."""
from __future__ import annotations

from ..io.checkpoint import CheckpointError


class PickleImportError(CheckpointError):
    """A pickle that cannot be imported: unreadable, truncated, or not a network pickle."""


class UnsafePickleError(PickleImportError):
    """The pickle asks for something that is not plain data (a global we do not allow, code to run)."""


class UnsupportedNetworkError(PickleImportError):
    """A network pickle read safely, but of an architecture the importer does not support yet."""
