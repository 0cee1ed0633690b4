"""One timer thread serving many delayed callbacks (Go's time.AfterFunc, without a thread per timer).

Usage:
    s = Scheduler("raft-timers")
    h = s.AfterFunc(0.150, fn, arg)   # fn(arg) runs on the scheduler thread in ~150 ms
    h.Stop()                          # True if it had not fired yet
    s.Close()                         # pending callbacks are dropped; the thread exits

Callbacks run on the scheduler thread one after another, so they must be short
and must never block (hand longer work to another thread).  The thread starts
with the first AfterFunc and exits at Close().
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
import traceback
from typing import Any, Callable


class Timer:
    """Handle of one scheduled callback."""

    __slots__ = ("_sched", "deadline", "fn", "arg", "cancelled", "fired")

    def __init__(self, sched: "Scheduler", deadline: float, fn: Callable[[Any], None], arg: Any):
        self._sched = sched
        self.deadline = deadline
        self.fn = fn
        self.arg = arg
        self.cancelled = False
        self.fired = False

    def Stop(self) -> bool:
        """Cancel; True if the callback had not run yet (Go's Timer.Stop)."""
        with self._sched._lock:
            if self.fired or self.cancelled:
                return False
            self.cancelled = True
            return True


class Scheduler:
    """A heap of deadlines served by one daemon thread; see the module docstring."""

    def __init__(self, name: str = "scheduler"):
        self._name = name
        self._lock = threading.Lock()
        # Notified when an earlier deadline is pushed or at Close().
        self._changed = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._closed = False
        self._thread: threading.Thread | None = None

    def AfterFunc(self, delay_s: float, fn: Callable[[Any], None], arg: Any = None) -> Timer:
        """Run fn(arg) on the scheduler thread after delay_s seconds."""
        deadline = time.monotonic() + max(0.0, delay_s)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"scheduler {self._name} is closed")
            t = Timer(self, deadline, fn, arg)
            heapq.heappush(self._heap, (deadline, next(self._seq), t))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is t:
                self._changed.notify()
        return t

    def _run(self) -> None:
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            t = heapq.heappop(self._heap)[2]
                            if t.cancelled:
                                continue
                            t.fired = True
                            break
                        self._changed.wait(wait)
                    else:
                        self._changed.wait()
            try:
                t.fn(t.arg)
            except BaseException:
                traceback.print_exc(file=sys.stderr)

    def Close(self, wait_s: float = 1.0) -> None:
        """Drop pending callbacks and stop the thread (joined for up to wait_s)."""
        with self._lock:
            self._closed = True
            self._heap.clear()
            self._changed.notify_all()
            th = self._thread
        if th is not None and th is not threading.current_thread():
            th.join(wait_s)

    def Len(self) -> int:
        """Pending (not yet fired, possibly cancelled) callbacks."""
        with self._lock:
            return len(self._heap)
