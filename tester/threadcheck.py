"""Threads a lab test leaves running after its Config.Cleanup (Go's harness has no such check).

Usage (Config does this; a lab test never calls it):
    before = threadcheck.snapshot()            # at MakeConfig
    ...                                        # the test; Cleanup kills every server
    left = threadcheck.lingering(before, threadcheck.wait_s())
    text = threadcheck.describe(left)          # "2 threads: 'raft1-ticker' (raft.py:120 in ticker), ..."

KUBEKV_THREAD_CHECK chooses what a leftover thread does:
- `warn` (the default): a ThreadLeakWarning, listed in pytest's warnings summary, after a
  WARN_WAIT_S grace. Go solutions often leave goroutines blocked on a channel or in a late RPC
  once Kill() has returned; Go's harness passes them, and so must ours.
- `strict`: fail the test if a thread is still alive STRICT_WAIT_S after cleanup (our reference
  solution is held to this: Kill() stops every thread it started, and closes applyCh).
- `off`: no check.

A thread counts if it was started during the test and its code is not the framework's own
(labrpc's workers, the tester's watchdog, porcupine): a thread started meanwhile, say a
heartbeat sent just after Kill, is waited for like the others.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Iterable

MODE_ENV = "KUBEKV_THREAD_CHECK"
MODES = ("warn", "strict", "off")
# A thread that checks killed() every heartbeat or election timeout ends well within these.
WARN_WAIT_S = 1.0
STRICT_WAIT_S = 10.0
FRAMEWORK_MODULES = ("labrpc", "tester", "porcupine", "threading", "concurrent", "_pytest", "xdist",
                     "execnet")


class ThreadLeakWarning(UserWarning):
    """Threads of the lab's code were still running after the test's cleanup."""


def mode() -> str:
    raw = os.environ.get(MODE_ENV, "warn").strip().lower() or "warn"
    if raw not in MODES:
        raise ValueError(f"{MODE_ENV}={raw!r}: want one of {', '.join(MODES)} (default warn)")
    return raw


def wait_s(check_mode: str | None = None) -> float:
    return STRICT_WAIT_S if (check_mode or mode()) == "strict" else WARN_WAIT_S


def snapshot() -> frozenset[threading.Thread]:
    return frozenset(threading.enumerate())


def _code_module(th: threading.Thread) -> str:
    fn = getattr(th, "_kubekv_fn", None) or getattr(th, "_target", None)
    if fn is not None:
        return getattr(fn, "__module__", None) or ""
    return type(th).__module__


def is_lab_thread(th: threading.Thread) -> bool:
    """Not the framework's own: a thread running a lab module's code, or a test file's."""
    parts = _code_module(th).split(".")
    return parts[0] not in FRAMEWORK_MODULES or parts[-1].startswith("test_")


def lingering(before: Iterable[threading.Thread], wait: float) -> list[threading.Thread]:
    """Lab threads not in before still alive after waiting up to wait seconds for them all."""
    before = frozenset(before)
    deadline = time.monotonic() + wait
    me = threading.current_thread()
    while True:
        left = [th for th in threading.enumerate()
                if th not in before and th is not me and th.is_alive() and is_lab_thread(th)]
        remaining = deadline - time.monotonic()
        if not left or remaining <= 0:
            return left
        left[0].join(remaining)  # then look again: threads may have started meanwhile


def describe(threads: list[threading.Thread], limit: int = 8) -> str:
    """One line: how many threads, each name and where it is (innermost frame)."""
    frames = sys._current_frames()
    parts = []
    for th in threads[:limit]:
        frame = frames.get(th.ident) if th.ident is not None else None
        where = ""
        if frame is not None:
            code = frame.f_code
            where = f" ({os.path.basename(code.co_filename)}:{frame.f_lineno} in {code.co_name})"
        parts.append(f"{th.name!r}{where}")
    more = f", and {len(threads) - limit} more" if len(threads) > limit else ""
    noun = "thread" if len(threads) == 1 else "threads"
    return f"{len(threads)} {noun}: " + ", ".join(parts) + more


__all__ = ["MODE_ENV", "ThreadLeakWarning", "describe", "is_lab_thread", "lingering", "mode", "snapshot",
           "wait_s"]
