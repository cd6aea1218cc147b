"""What every command line of the project shares: one-line errors (no traceback), argument types, and malloc
keeping freed memory (gan/allocator.py)."""
from __future__ import annotations

import argparse
import os
import sys

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
