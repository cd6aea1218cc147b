"""A package's public names, imported from their submodules on first use (PEP 562).

gan.training and gan.metrics re-export names from modules that import torch (2-3 s on two cores). Their
command-line options live in modules that do not (gan/training/cli.py, gan/metrics/cli.py); importing one
of those runs its package's __init__ first, so an __init__ that imported everything would make
`python -m gan train --help` wait for torch. With `__getattr__, __dir__, __all__ = lazy_exports(__name__, {...})`
the package imports nothing until a name is asked for, and `from gan.training import train` still works.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]) -> tuple[Callable[[str], object],
                                                                          Callable[[], list], list[str]]:
    """(__getattr__, __dir__, __all__) for `package`, where exports maps a submodule (relative, without the
    dot) to the public names it defines. A name is imported once, then stored in the package's namespace.
    Unknown names raise AttributeError, which is what lets `from package import submodule` fall back
    to importing the submodule."""
    namespace = sys.modules[package].__dict__
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list:
        return sorted(set(namespace) | set(module_of))

    return __getattr__, __dir__, list(module_of)
