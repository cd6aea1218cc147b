"""What every command line of the project does with an error: one line, no traceback."""
from __future__ import annotations

import argparse
import os
import sys


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse argv and call the chosen command's `func`. User errors (ValueError, OSError: bad
    input, a missing or wrong file) print `error: ...` and return 2; GAN_DEBUG=1 shows the traceback."""
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
