"""A pool of reusable worker threads that grows on demand (never bounded).

Usage:
    pool = WorkerPool("labrpc-worker")
    pool.submit(fn, arg)       # runs fn(arg) on an idle worker, or on a new one
    pool.shutdown()            # idle workers exit now, busy ones when their task returns

Why not concurrent.futures.ThreadPoolExecutor: it is bounded (an RPC handler
may block for 20 s while hundreds more arrive) and it hands work over through a
queue plus a Future, two wake-ups where one raw lock per worker is enough.
Idle workers that stay unused for IDLE_TIMEOUT_S exit, so a burst of 300
concurrent calls does not leave 300 threads behind for the rest of a test.

Workers run under SCHED_BATCH (labrpc/schedpolicy.py; KUBEKV_NO_BATCH=1 turns
it off): a woken worker then does not preempt the thread that woke it, which
would only find the GIL still held; labrpc TestBenchmark pinned to one core
goes from about 21 to about 15.5 us per RPC.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any, Callable

from .schedpolicy import batch_this_thread

IDLE_TIMEOUT_S = 5.0


class _Worker:
    __slots__ = ("wake", "task", "thread")

    def __init__(self) -> None:
        # Released by submit() (task set) or shutdown() (task None); the worker
        # acquires it to sleep between tasks.
        self.wake = threading.Lock()
        self.wake.acquire()
        self.task: tuple[Callable[[Any], None], Any] | None = None
        self.thread: threading.Thread | None = None


class WorkerPool:
    """Unbounded pool of reusable daemon threads; see the module docstring."""

    def __init__(self, name: str = "worker"):
        self._name = name
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []     # workers asleep on their wake lock
        self._all: set[_Worker] = set()
        self._closed = False
        self._seq = 0

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> None:
        """Run fn(arg) on a worker thread; exceptions are printed, not raised.

        If fn returns a callable, the worker calls it right after putting itself
        back on the idle list: a task that wakes a waiter should do so there, so
        the waiter does not wake only to find this thread still holding the GIL.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name} pool is shut down")
            if self._idle:
                w = self._idle.pop()
                w.task = (fn, arg)
                w.wake.release()
                return
            w = _Worker()
            w.task = (fn, arg)
            self._all.add(w)
            self._seq += 1
            seq = self._seq
        w.thread = threading.Thread(target=self._run, args=(w,), name=f"{self._name}-{seq}",
                                    daemon=True)
        w.thread.start()

    def _run(self, w: _Worker) -> None:
        batch_this_thread()
        while True:
            fn, arg = w.task
            w.task = None
            after = None
            try:
                after = fn(arg)
            except BaseException:  # a task must not kill a reusable worker
                traceback.print_exc(file=sys.stderr)
            fn = arg = None
            with self._lock:
                closed = self._closed
                if closed:
                    self._all.discard(w)
                else:
                    self._idle.append(w)
            if after is not None:
                after()
                after = None
            if closed:
                return
            while not w.wake.acquire(timeout=IDLE_TIMEOUT_S):
                with self._lock:
                    if w in self._idle:   # still unused: retire
                        self._idle.remove(w)
                        self._all.discard(w)
                        return
                # submit() took us meanwhile; its release is on the way
            if w.task is None:  # shutdown
                return

    def threads(self) -> list[threading.Thread]:
        """The live worker threads (for leak checks)."""
        with self._lock:
            return [w.thread for w in self._all if w.thread is not None]

    def shutdown(self, wait_s: float = 1.0) -> None:
        """Stop idle workers now (joined for up to wait_s); busy ones exit after their task."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for w in idle:
                self._all.discard(w)
        for w in idle:
            w.task = None
            w.wake.release()
        for w in idle:
            if w.thread is not None and w.thread is not threading.current_thread():
                w.thread.join(wait_s)
