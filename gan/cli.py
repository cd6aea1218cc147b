"""What every command line of the project shares: one-line errors (no traceback), argument types, options
added only for the command that runs, and malloc keeping freed memory (gan/allocator.py)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from gan.allocator import keep_freed_memory


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse argv and call the chosen command's `func`. User errors (ValueError, OSError: bad
    input, a missing or wrong file) print `error: ...` and return 2; GAN_DEBUG=1 shows the traceback."""
    keep_freed_memory()    # before any thread starts (see gan/allocator.py)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as e:
        if os.environ.get("GAN_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class DeferredOptionsParser(argparse.ArgumentParser):
    """A subcommand parser whose options may come later: `options(parser)` adds them the first time this
    parser parses, i.e. when its command is the one given (its own --help included). For commands whose
    options live in modules that import torch (2-3 s): the top-level list and the other commands' --help
    and usage errors need not wait for it."""

    def __init__(self, *args, options: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending_options = options

    def add_pending_options(self) -> argparse.ArgumentParser:
        """Add the deferred options now (once); returns self."""
        options, self._pending_options = self._pending_options, None
        if options is not None:
            options(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        self.add_pending_options()
        return super().parse_known_args(args, namespace)


def int_at_least(low: int):
    """An argparse type: an integer >= low, else a one-line usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"  # argparse names the type in its messages
    return parse


positive_int = int_at_least(1)
