"""Keep freed memory in the process, so that big tensors do not page-fault on every allocation (glibc).

glibc's malloc serves a request of more than 32 MB (the most its adaptive threshold reaches) with a fresh
mmap, and gives it back to the kernel when it is freed. A 1024 px synthesis allocates and frees dozens of
such activations per image ([1, 32, 1024, 1024] fp32 is 128 MB), and each one then costs a page fault for
every 4 KB page at its first write: on this 2-core machine, writing a fresh 128 MB tensor took 63 ms
against 21 ms for one already in use. keep_freed_memory() tells malloc never to mmap, never to trim its
heap and to serve every thread from one arena, so a freed activation's pages go to the next one.
bench/allocation.py measures it (1024 px synthesis 1.38x; PyTorch's own THP_MEM_ALLOC_ENABLE, which
maps huge pages instead, gave 1.17x there and slowed PGGAN training by a fifth).

The cost: the process keeps the largest heap it has had instead of giving memory back (measured: peak RSS
+0-12% for synthesis, +19-46% for training at 64 px), and one arena serves all threads (this project's threads allocate few, big blocks). It is a
process-wide setting, so the programs (app.py, `python -m gan`, `python -m explorer`, the benchmarks)
make it first thing, before other threads start: a thread that already has an arena of its own keeps it,
and with mmap off its big blocks would go through that arena's 64 MB heaps, which measured slower than
glibc's default. So a call while other Python threads run changes nothing. Python users of the library
can call it themselves, first thing. GAN_KEEP_FREED_MEMORY=0 turns it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import threading

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_TRIM_NEVER = 2 ** 31 - 1        # mallopt takes an int: keep up to 2 GB free at the top of the heap


def _glibc():
    """The C library when it is glibc (with mallopt), else None (macOS, musl, Windows)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Make the malloc settings above; True when they are in force. Changes nothing and returns False with
    GAN_KEEP_FREED_MEMORY=0, where malloc is not glibc's, or while other Python threads run."""
    if os.environ.get("GAN_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    libc = _glibc()
    if libc is None or threading.active_count() > 1:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, 1) and libc.mallopt(_M_MMAP_MAX, 0)
                and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER))
