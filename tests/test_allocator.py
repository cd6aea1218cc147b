"""gan.allocator.keep_freed_memory: a big tensor comes from the heap, not from a fresh mmap, in the main thread
and in a thread started afterwards, and its memory stays with the process once freed (the next big
activation reuses those pages instead of faulting on new ones); without it, glibc maps each one afresh and
unmaps it when freed. Each case runs in a fresh interpreter, since the setting is process-wide."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting is glibc's malloc's")
SIZE = 256 * 1024 * 1024

# glibc's malloc statistics (mallinfo2, glibc >= 2.33): hblkhd is the bytes in mmapped blocks, fordblks the
# free bytes the main arena keeps. Reported while a 256 MB tensor lives and after it is freed, in the main
# thread and in a thread started after the setting; then whether turning it on is refused while a thread runs.
PROBE = f"""
import ctypes, json, threading, torch
from gan.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
                                               "fordblks keepcost").split()]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = Info
out = {{"on": keep_freed_memory()}}
def probe(where):
    t = torch.empty({SIZE // 4}).fill_(1.0)
    live = libc.mallinfo2()
    del t
    freed = libc.mallinfo2()
    out[where] = {{"mmapped_live": live.hblkhd, "mmapped_freed": freed.hblkhd, "kept_free": freed.fordblks}}
probe("main")
t = threading.Thread(target=probe, args=("thread",)); t.start(); t.join()
gate = threading.Event(); t = threading.Thread(target=gate.wait); t.start()
out["while_threads"] = keep_freed_memory(); gate.set(); t.join()
print(json.dumps(out))
"""


def probe(keep: str) -> dict:
    env = {**os.environ, "GAN_KEEP_FREED_MEMORY": keep}
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_big_tensors_come_from_the_heap_and_stay_there_when_freed():
    out = probe("1")
    assert out["on"] is True
    for where in ("main", "thread"):    # the thread was started afterwards: it shares the main arena
        assert out[where]["mmapped_live"] < SIZE, out
        assert out[where]["kept_free"] >= SIZE, out
    assert out["while_threads"] is False


def test_off_glibc_maps_big_tensors_and_unmaps_them_when_freed():
    out = probe("0")
    assert out["on"] is False
    for where in ("main", "thread"):
        assert out[where]["mmapped_live"] >= SIZE, out
        assert out[where]["mmapped_freed"] < SIZE, out
        assert out[where]["kept_free"] < SIZE, out
