"""Callback plumbing: user errors become one-line gr.Error messages that name no server path."""
from __future__ import annotations

import functools
import html
import logging
import re
import tempfile
import time
from pathlib import Path

import gradio as gr

log = logging.getLogger(__name__)

# Roots whose absolute prefix is cut from messages (a model then reads as its ref, "tiny-sg2/...");
# set once at start-up by ExplorerUI. Configuration, not per-user state.
SCRUB_ROOTS: list[Path] = []
# An absolute path in running text: "/" at the start or after a space, quote, bracket or "=".
_ABS_PATH = re.compile(r"(?:(?<=^)|(?<=[\s'\"(\[=]))(?:~)?/[^\s'\"()\[\],;]*")


def scrub(text: str) -> str:
    """text with every absolute path replaced by its part below a known root, else its last
    component: messages never show the server's file system."""
    def short(m: re.Match) -> str:
        raw = m.group(0).rstrip(".:")
        tail = m.group(0)[len(raw):]
        path = Path(raw)
        for root in [*SCRUB_ROOTS, Path(tempfile.gettempdir()), Path.home()]:
            for r in {root, root.resolve()}:
                try:
                    rel = path.relative_to(r)
                except ValueError:
                    continue
                if str(rel) != ".":
                    return (rel.as_posix() if root in SCRUB_ROOTS else rel.name) + tail
        return (path.name or "(a folder)") + tail
    return _ABS_PATH.sub(short, text)


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return scrub(text[0] if text else type(err).__name__)


def user_errors(fn):
    """Callbacks raise gr.Error with a one-line message for anything a user can cause."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except gr.Error as e:
            raise gr.Error(scrub(str(e.message)), print_exception=False) from None
        except (ValueError, OSError) as e:  # ExplorerError, CheckpointError, parse errors, files
            raise gr.Error(html.escape(one_line(e)), print_exception=False) from None
        except Exception as e:  # a bug: the user gets one line, the log gets the traceback
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            raise gr.Error(html.escape(f"unexpected error ({type(e).__name__}: {one_line(e)}); "
                                       f"details are in the server log"), print_exception=False) from None
        finally:
            log.debug("%s: %.1f ms", getattr(fn, "__name__", fn), 1000 * (time.perf_counter() - t0))
    return wrapper


def bind(fn, *args, **kwargs):
    """A callback: fn with leading arguments bound; an empty dict result leaves every output as it
    is; errors become a one-line gr.Error (see user_errors)."""
    call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn

    @functools.wraps(call)
    def callback(*a, **kw):
        out = call(*a, **kw)
        return gr.skip() if isinstance(out, dict) and not out else out
    callback.__name__ = getattr(fn, "__name__", "callback")
    return user_errors(callback)
