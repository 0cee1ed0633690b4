"""The simulator: one thread at a time, a seeded choice at every scheduling point, virtual time.

Usage (labsim/__init__.py re-exports these; the pytest plugin drives them per test):
    core.install()                 # patch threading, time, random, os.urandom, queue (once)
    sim = core.begin(seed=42)      # the calling thread becomes simulated thread 0
    ...                            # threads it starts, their locks, waits and sleeps are simulated
    stats = core.end()             # unwind the threads still alive; {"seed", "trace", ...}

How it works. Every simulated thread is a real thread that runs only while it holds its
own baton (a raw lock); exactly one baton is free at a time. The patched primitives
call into the Simulator at scheduling points -- a lock acquire, a thread start, a sleep,
a wait, a join -- and there the simulator picks, with its seeded generator, which
runnable thread goes on (the same one, often). A thread that blocks hands its baton on;
when no thread can run, virtual time jumps to the earliest timer. Each point also
charges TICK_S of virtual time, since real code is not free: without it a loop of
requests that never sleeps would do unbounded work in no time.

The primitives are hybrids: in a simulated thread they go through the simulator, in any
other thread (pytest's, a test outside the simulation) they behave as the originals.
"""

from __future__ import annotations

import _thread
import bisect
import collections
import ctypes
import faulthandler
import heapq
import operator
import os
import queue
import random
import sys
import sysconfig
import threading
import time
import traceback
from typing import Any, Callable

# Virtual seconds charged at each scheduling point: about what CPython spends between
# two of them in the labs, so timed client loops do as much work as in real time.
TICK_S = 20e-6
# Go's scheduler leaves a started or woken goroutine in a run queue for a while; races
# that need "the thread I just woke has not run yet" live in that gap. A started thread
# becomes runnable LATE_MAX_S * u**LATE_SKEW virtual seconds later (u uniform in [0, 1):
# mean 1 ms, a long tail), and so does one woken thread in WAKE_LATE_EVERY.
LATE_MAX_S = 4e-3
LATE_SKEW = 3
WAKE_LATE_EVERY = 10
# Real seconds a simulated thread may run without a scheduling point before it is
# reported (a busy loop, or a blocking call the simulator does not know).
STALL_S = float(os.environ.get("LABSIM_STALL_S", "20"))
# Clock reads without a scheduling point that make a thread a busy loop.
CLOCK_READS_LIMIT = 100_000
# How often a thread killed at the end of a test may swallow SimExit before it is abandoned.
KILL_RETRIES = 100
# Virtual clocks start here: time.monotonic() and time.time() at virtual zero.
MONOTONIC_BASE_S = 10_000.0
EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z

RUNNABLE, BLOCKED, DONE = 0, 1, 2

# Scheduling point kinds (they enter the trace hash).
P_ACQUIRE, P_START, P_SLEEP, P_JOIN, P_EXIT, P_WAKE = 1, 2, 3, 4, 5, 6

_real_lock = _thread.allocate_lock
_get_ident = _thread.get_ident
_real_monotonic = time.monotonic
_real_monotonic_ns = time.monotonic_ns
_real_time = time.time
_real_time_ns = time.time_ns
_real_perf_counter = time.perf_counter
_real_perf_counter_ns = time.perf_counter_ns
_real_sleep = time.sleep
_real_urandom = os.urandom
_orig_start = threading.Thread.start
_orig_join = threading.Thread.join
_orig_is_alive = threading.Thread.is_alive
_orig_enumerate = threading.enumerate
_orig_active_count = threading.active_count
_OrigCondition = threading.Condition
_orig_rlock = threading.RLock
_OrigSimpleQueue = queue.SimpleQueue

_by_id = operator.attrgetter("id")
_HASH_MASK = (1 << 61) - 1


class SimError(RuntimeError):
    """Something the simulator cannot control or a run it cannot go on with."""


class SimDeadlock(SimError):
    """Every simulated thread is blocked and no timer is pending (Go: all goroutines are asleep)."""


class SimExit(BaseException):
    """Raised in a thread still alive when its simulation ends, to unwind it."""


class SimStall(SimError):
    """Raised asynchronously in a thread that ran STALL_S real seconds without a scheduling point."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(args or (_stall_message,)))


_stall_message = "stalled"


class SimThread:
    """The simulator's record of one thread."""

    __slots__ = ("sim", "id", "name", "thread", "ident", "baton", "state", "waitq", "woken",
                 "timer_seq", "pending", "interrupt", "masked", "killed", "kill_raises",
                 "clock_reads", "real_clock", "joiners", "what")

    def __init__(self, sim: "Simulator", sid: int, thread: threading.Thread | None) -> None:
        self.sim = sim
        self.id = sid
        self.thread = thread
        self.name = thread.name if thread is not None else "?"
        self.ident: int | None = None
        self.baton = _real_lock()
        self.baton.acquire()
        self.state = RUNNABLE
        self.waitq: Any = None        # the deque this thread waits in, if any
        self.woken = False            # woken by a notify/release (not by its timer)
        self.timer_seq = 0            # its live timer's sequence number; 0 = none
        self.pending: BaseException | None = None   # raised where it resumes (deadlock, Ctrl-C)
        self.interrupt: Callable[[], Any] | None = None  # run where it resumes (a test failure)
        self.masked = 0               # >0: pending/interrupt wait (a wait re-taking its lock)
        self.killed = False
        self.kill_raises = 0
        self.clock_reads = 0
        self.real_clock = 0           # >0: time functions are real here (porcupine's budget)
        self.joiners: collections.deque = collections.deque()
        self.what = ""                # what it is blocked in, for deadlock reports

    def __repr__(self) -> str:
        return f"<SimThread {self.id} {self.name!r} state={self.state}>"


class Simulator:
    """One simulation: its threads, its virtual clock, its seeded choices and its trace."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(f"labsim/{seed}/schedule")
        self._rand = self._rng.random
        self._bytes = random.Random(f"labsim/{seed}/urandom")
        self.now = 0.0
        self.threads: list[SimThread] = []
        self.runnable: list[SimThread] = []   # sorted by id, so wake-up order does not matter
        self._timers: list[tuple[float, int, SimThread]] = []
        self._seq = 0
        self.by_ident: dict[int, SimThread] = {}
        self.current: SimThread | None = None
        self.points = 0
        self.switches = 0
        self.jumps = 0
        self._h = 0
        self.killing = False
        self.abandoned: list[SimThread] = []

    # ---- the core ---------------------------------------------------------------------------

    def point(self, st: SimThread, kind: int) -> None:
        """A scheduling point in the running thread st: maybe let another thread run."""
        if st.killed:
            self._raise_killed(st)
        self.points += 1
        now = self.now = self.now + TICK_S
        st.clock_reads = 0
        self._h = (self._h * 1000003 + st.id * 8 + kind) & _HASH_MASK
        timers = self._timers
        if timers and timers[0][0] <= now:
            self._fire_timers()
        run = self.runnable
        n = len(run)
        if n > 1:
            nxt = run[int(self._rand() * n)]
            if nxt is not st:
                self.switches += 1
                self.current = nxt
                nxt.baton.release()
                self._await_baton(st)
        if (st.interrupt is not None or st.pending is not None) and not st.masked:
            self.deliver(st)

    def block(self, st: SimThread, waitq: Any, timeout: float | None, what: str) -> bool:
        """Block the running thread st (the caller put it in waitq) until woken or timeout
        virtual seconds pass; True if woken. Raises SimExit if it is being killed."""
        if st.killed:
            if waitq is not None:
                _discard(waitq, st)
            self._raise_killed(st)
        st.state = BLOCKED
        st.waitq = waitq
        st.woken = False
        st.what = what
        self.runnable.remove(st)
        if timeout is not None:
            self._seq += 1
            st.timer_seq = self._seq
            heapq.heappush(self._timers, (self.now + max(timeout, 0.0), self._seq, st))
        nxt = self._next()
        if nxt is not st:
            self.switches += 1
            self.current = nxt
            nxt.baton.release()
            self._await_baton(st)
        if st.killed:
            self._raise_killed(st)
        return st.woken

    def wake(self, st: SimThread) -> None:
        """Make st (already taken out of its wait queue) runnable, as woken: now, or (one
        in WAKE_LATE_EVERY) a moment later."""
        if st.state != BLOCKED or st.sim is not self:
            return
        st.woken = True
        st.waitq = None
        if self._rand() * WAKE_LATE_EVERY < 1:
            self.later(st, "waking up")
            return
        st.timer_seq = 0
        st.state = RUNNABLE
        bisect.insort(self.runnable, st, key=_by_id)

    def later(self, st: SimThread, what: str) -> None:
        """Make the not-yet-runnable st runnable after a run-queue delay (a timer)."""
        st.state = BLOCKED
        st.what = what
        self._seq += 1
        st.timer_seq = self._seq
        delay = LATE_MAX_S * self._rand() ** LATE_SKEW
        heapq.heappush(self._timers, (self.now + delay, self._seq, st))

    def deliver(self, st: SimThread) -> None:
        """Raise what is pending for st (a deadlock, Ctrl-C) or run its interrupt."""
        if st.masked:
            return
        exc = st.pending
        if exc is not None:
            st.pending = None
            raise exc
        fn = st.interrupt
        if fn is not None:
            st.interrupt = None
            fn()

    def _await_baton(self, st: SimThread) -> None:
        while True:
            try:
                st.baton.acquire()
                return
            except BaseException as e:  # a signal handler raised (Ctrl-C): keep it for later
                if st.pending is None:
                    st.pending = e

    def _next(self) -> SimThread:
        run = self.runnable
        while not run:
            if self._timers:
                deadline = self._timers[0][0]
                if deadline > self.now:
                    self.now = deadline
                    self.jumps += 1
                    self._h = (self._h * 1000003 + int(deadline * 1e6)) & _HASH_MASK
                self._fire_timers()
            else:
                self._deadlock()
        n = len(run)
        return run[int(self._rand() * n)] if n > 1 else run[0]

    def _fire_timers(self) -> None:
        timers, now = self._timers, self.now
        while timers and timers[0][0] <= now:
            _, seq, st = heapq.heappop(timers)
            if st.timer_seq == seq and st.state == BLOCKED:
                st.timer_seq = 0
                if st.waitq is not None:
                    _discard(st.waitq, st)
                    st.waitq = None
                st.state = RUNNABLE
                bisect.insort(self.runnable, st, key=_by_id)

    def _unblock(self, st: SimThread) -> None:
        """Take a blocked st out of its wait and make it runnable (not woken)."""
        if st.state != BLOCKED:
            return
        if st.waitq is not None:
            _discard(st.waitq, st)
            st.waitq = None
        st.timer_seq = 0
        st.state = RUNNABLE
        bisect.insort(self.runnable, st, key=_by_id)

    def _deadlock(self) -> None:
        main = self.threads[0]
        if main.state == BLOCKED and not self.killing:
            main.pending = SimDeadlock(self.describe(
                f"deadlock at virtual time {self.now:.6f} s: every thread is blocked and no "
                f"timer is pending (Go: \"all goroutines are asleep\")"))
            self._unblock(main)
            return
        raise SimError(self.describe("internal error: no thread can run"))

    def describe(self, headline: str) -> str:
        """headline, then each live thread: what it is blocked in and where."""
        frames = sys._current_frames()
        lines = [headline]
        for st in self.threads:
            if st.state == DONE:
                continue
            state = "runnable" if st.state == RUNNABLE else f"blocked in {st.what}"
            lines.append(f"  thread {st.name!r} ({state}) at:")
            lines.extend("    " + ln for ln in _where(frames.get(st.ident)))
        return "\n".join(lines)

    # ---- threads ----------------------------------------------------------------------------

    def add_thread(self, thread: threading.Thread | None) -> SimThread:
        st = SimThread(self, len(self.threads), thread)
        self.threads.append(st)
        return st

    def exit(self, st: SimThread) -> None:
        """The running thread st ends: wake its joiners and hand the baton on, not waiting."""
        self.points += 1
        self._h = (self._h * 1000003 + st.id * 8 + P_EXIT) & _HASH_MASK
        st.state = DONE
        self.runnable.remove(st)
        while st.joiners:
            self.wake(st.joiners.popleft())
        self.by_ident.pop(st.ident, None)
        nxt = self._next()
        self.switches += 1
        self.current = nxt
        nxt.baton.release()

    def _raise_killed(self, st: SimThread) -> None:
        st.kill_raises += 1
        if st.kill_raises > KILL_RETRIES:
            self._abandon(st)
        raise SimExit()

    def _abandon(self, st: SimThread) -> None:
        """st keeps swallowing SimExit: leave its thread parked on its baton for good."""
        print(f"labsim: thread {st.name!r} caught SimExit {KILL_RETRIES} times at the end of its "
              f"simulation; it is left parked (its code catches BaseException)", file=sys.stderr)
        self.abandoned.append(st)
        if st.thread is not None:
            st.thread._daemonic = True  # do not let interpreter exit wait for it
        self.exit(st)
        _real_lock().acquire()
        _real_lock().acquire()   # never returns (a fresh lock acquired twice)

    def finish(self, main: SimThread) -> None:
        """Kill every other thread (SimExit where it resumes) and wait until all are done."""
        self.killing = True
        for st in self.threads[1:]:
            if st.state != DONE:
                st.killed = True
                self._unblock(st)
        for st in self.threads[1:]:
            while st.state != DONE:
                st.joiners.append(main)
                self.block(main, st.joiners, None, "the end of the simulation")

    # ---- trace ------------------------------------------------------------------------------

    def trace(self) -> str:
        """A hash of every scheduling decision so far: equal traces, equal runs."""
        return format(hash((self._h, self.points, self.switches, self.jumps))
                      & 0xFFFFFFFFFFFF, "012x")


def _discard(q: Any, st: SimThread) -> None:
    try:
        q.remove(st)
    except ValueError:
        pass


_HERE = os.path.dirname(os.path.abspath(__file__))


def _where(frame: Any, limit: int = 4) -> list[str]:
    if frame is None:
        return ["(no frame)"]
    out = []
    for fs in reversed(traceback.extract_stack(frame)):
        if os.path.dirname(os.path.abspath(fs.filename)) == _HERE or \
                fs.filename.endswith(("threading.py", "queue.py")):
            continue
        out.append(f'{fs.filename}:{fs.lineno} in {fs.name}: {fs.line or ""}'.rstrip())
        if len(out) >= limit:
            break
    return out or ["(in the simulator)"]


# ---- process-wide state ------------------------------------------------------------------------

_sim: Simulator | None = None


def current_sim() -> Simulator | None:
    return _sim


def _me() -> SimThread | None:
    sim = _sim
    if sim is None:
        return None
    return sim.by_ident.get(_get_ident())


def begin(seed: int) -> Simulator:
    """Start a simulation; the calling thread becomes its thread 0 and goes on running."""
    global _sim
    if not _installed:
        raise SimError("labsim.begin: call labsim.install() first (KUBEKV_SIM=1 does it at start)")
    if _sim is not None:
        raise SimError("labsim.begin: a simulation is already running in this process")
    sim = Simulator(seed)
    st = sim.add_thread(threading.current_thread())
    st.ident = _get_ident()
    sim.by_ident[st.ident] = st
    sim.runnable.append(st)
    sim.current = st
    _sim = sim
    _start_watcher()
    return sim


def end() -> dict[str, Any]:
    """End the simulation begun in this thread: unwind the other threads, return its figures."""
    global _sim
    sim = _sim
    st = _me()
    if sim is None or st is None or st.id != 0:
        raise SimError("labsim.end: no simulation was begun in this thread")
    st.masked += 1
    try:
        sim.finish(st)
    finally:
        st.masked -= 1
        _sim = None
    for other in sim.threads[1:]:
        if other.thread is not None and other not in sim.abandoned:
            _orig_join(other.thread, 5.0)
    return {"seed": sim.seed, "trace": sim.trace(), "points": sim.points,
            "switches": sim.switches, "jumps": sim.jumps, "virtual_s": sim.now,
            "threads": len(sim.threads)}


def interrupt(ident: int, fn: Callable[[], Any]) -> bool:
    """Have the simulated thread `ident` run fn() where it next resumes or reaches a point
    (waking it if blocked): the simulator's stand-in for a signal. False if not simulated."""
    sim = _sim
    st = sim.by_ident.get(ident) if sim is not None else None
    if st is None:
        return False
    st.interrupt = fn
    if st.state == BLOCKED and not st.masked:
        sim._unblock(st)
    return True


class real_clock:
    """Context manager: in this block the time functions read the real clock (a CPU budget,
    such as porcupine's timeout, is not simulated time)."""

    def __enter__(self) -> "real_clock":
        st = _me()
        self._st = st
        if st is not None:
            st.real_clock += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._st is not None:
            self._st.real_clock -= 1


# ---- the stall watcher -------------------------------------------------------------------------

_watcher_started = False


def _start_watcher() -> None:
    global _watcher_started
    if not _watcher_started:
        _watcher_started = True
        _thread.start_new_thread(_watch, ())


def _watch() -> None:
    """A raw thread (not simulated): reports a simulated thread that holds the baton for
    STALL_S real seconds without reaching a scheduling point, and raises SimStall in it."""
    global _stall_message
    last: tuple[Any, int] = (None, -1)
    since = _real_monotonic()
    reported = None
    while True:
        _real_sleep(1.0)
        sim = _sim
        key = (sim, sim.points if sim is not None else -1)
        now = _real_monotonic()
        if sim is None or key != last or (sim.current is not None and sim.current.real_clock):
            last, since = key, now
            continue
        if now - since < STALL_S:
            continue
        if reported == key:
            if now - since >= 2 * STALL_S:  # SimStall did not land: a blocking C call
                print(f"labsim: thread {sim.current.name!r} is still stuck {2 * STALL_S:g} real "
                      f"seconds on; the simulation cannot go on, so this process ends now "
                      f"(stacks of all threads follow)", file=sys.__stderr__, flush=True)
                faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
                os._exit(70)
            continue
        st = sim.current
        if st is None or st.ident is None:
            continue
        reported = key
        frame = sys._current_frames().get(st.ident)
        where = "\n".join("    " + ln for ln in _where(frame, limit=6))
        _stall_message = (
            f"labsim: thread {st.name!r} ran {STALL_S:g} real seconds without reaching a "
            f"scheduling point (a lock, a wait, a sleep, a thread start): a busy loop, or a "
            f"blocking call the simulator cannot see (real I/O, a lock made before "
            f"labsim.install()). Wait on a threading primitive instead. It is at:\n{where}")
        print(_stall_message, file=sys.__stderr__, flush=True)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(st.ident),
                                                   ctypes.py_object(SimStall))


# ---- hybrid primitives -------------------------------------------------------------------------


class Lock:
    """threading.Lock: simulated in a simulated thread, a plain lock elsewhere."""

    __slots__ = ("_real", "_waiters", "__weakref__")

    def __init__(self) -> None:
        self._real = _real_lock()
        self._waiters: collections.deque = collections.deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        sim = _sim
        if sim is not None:
            st = sim.by_ident.get(_get_ident())
            if st is not None:
                return _sim_acquire(sim, st, self, blocking, timeout)
        return self._real.acquire(blocking, timeout)

    def __enter__(self) -> bool:
        sim = _sim
        if sim is not None:
            st = sim.by_ident.get(_get_ident())
            if st is not None:
                sim.point(st, P_ACQUIRE)
                return self._real.acquire(False) or _sim_acquire(sim, st, self, True, -1, False)
        return self._real.acquire()

    def release(self) -> None:
        self._real.release()
        if self._waiters:
            sim = _sim
            if sim is not None:
                sim.wake(self._waiters.popleft())

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def locked(self) -> bool:
        return self._real.locked()

    def _at_fork_reinit(self) -> None:
        self._real = _real_lock()
        self._waiters.clear()

    def __repr__(self) -> str:
        return f"<labsim.Lock {'locked' if self._real.locked() else 'unlocked'}>"


def _sim_acquire(sim: Simulator, st: SimThread, lock: Lock, blocking: bool, timeout: float,
                 point: bool = True) -> bool:
    real = lock._real
    if point:
        if not blocking and timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout < 0 and timeout != -1:
            raise ValueError("timeout value must be a non-negative number")
        sim.point(st, P_ACQUIRE)
        if real.acquire(False):
            return True
    if not blocking:
        return False
    deadline = None if timeout == -1 else sim.now + timeout
    while True:
        lock._waiters.append(st)
        woken = sim.block(st, lock._waiters, None if deadline is None else deadline - sim.now,
                          "Lock.acquire")
        if not st.masked and (st.pending is not None or st.interrupt is not None):
            sim.deliver(st)
        if real.acquire(False):
            return True
        if not woken and deadline is not None and sim.now >= deadline:
            return False


class RLock:
    """threading.RLock on the hybrid Lock."""

    __slots__ = ("_block", "_owner", "_count", "__weakref__")

    def __init__(self) -> None:
        self._block = Lock()
        self._owner: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _get_ident()
        if self._owner == me:
            self._count += 1
            return True
        if self._block.acquire(blocking, timeout):
            self._owner = me
            self._count = 1
            return True
        return False

    __enter__ = acquire

    def release(self) -> None:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._block.release()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> tuple[int, int | None]:
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        self._block.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        self._block.acquire()
        self._count, self._owner = state

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        return f"<labsim.RLock owner={self._owner} count={self._count}>"


class Condition:
    """threading.Condition: simulated waits in simulated threads, real ones elsewhere."""

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = RLock()
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release
        self._sim_waiters: collections.deque = collections.deque()
        self._real_waiters: collections.deque = collections.deque()
        if hasattr(lock, "_release_save"):
            self._release_save = lock._release_save
            self._acquire_restore = lock._acquire_restore
        if hasattr(lock, "_is_owned"):
            self._is_owned = lock._is_owned

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._lock.__exit__(*exc)

    def __repr__(self) -> str:
        return f"<labsim.Condition({self._lock!r}, {len(self._sim_waiters)} waiting)>"

    def _release_save(self) -> Any:
        self._lock.release()

    def _acquire_restore(self, state: Any) -> None:
        self._lock.acquire()

    def _is_owned(self) -> bool:
        locked = getattr(self._lock, "locked", None)
        if locked is not None:
            return locked()
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        sim = _sim
        st = sim.by_ident.get(_get_ident()) if sim is not None else None
        if st is None:
            return self._real_wait(timeout)
        saved = self._release_save()
        self._sim_waiters.append(st)
        woken = False
        try:
            woken = sim.block(st, self._sim_waiters, timeout, "Condition.wait")
        finally:
            st.masked += 1  # an interrupt waits until the lock is held again
            try:
                self._acquire_restore(saved)
            finally:
                st.masked -= 1
        if st.pending is not None or st.interrupt is not None:
            sim.deliver(st)
        return woken

    def _real_wait(self, timeout: float | None) -> bool:
        waiter = _real_lock()
        waiter.acquire()
        self._real_waiters.append(waiter)
        saved = self._release_save()
        gotit = False
        try:
            if timeout is None:
                waiter.acquire()
                gotit = True
            elif timeout > 0:
                gotit = waiter.acquire(True, timeout)
            else:
                gotit = waiter.acquire(False)
            return gotit
        finally:
            self._acquire_restore(saved)
            if not gotit:
                try:
                    self._real_waiters.remove(waiter)
                except ValueError:
                    pass

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        endtime = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = monotonic() + waittime
                else:
                    waittime = endtime - monotonic()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        sw = self._sim_waiters
        if sw:
            sim = _sim
            while sw and n > 0:
                st = sw.popleft()
                if sim is not None:
                    sim.wake(st)
                n -= 1
        rw = self._real_waiters
        while rw and n > 0:
            rw.popleft().release()
            n -= 1

    def notify_all(self) -> None:
        self.notify(len(self._sim_waiters) + len(self._real_waiters))

    notifyAll = notify_all


class SimpleQueue:
    """queue.SimpleQueue on the hybrid primitives (the original is C and blocks for real)."""

    def __init__(self) -> None:
        self._items: collections.deque = collections.deque()
        self._cond = Condition(Lock())

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    def put_nowait(self, item: Any) -> None:
        self.put(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._cond:
            if not block:
                if not self._items:
                    raise queue.Empty
                return self._items.popleft()
            if timeout is not None:
                if timeout < 0:
                    raise ValueError("'timeout' must be a non-negative number")
                deadline = monotonic() + timeout
            while not self._items:
                if timeout is None:
                    self._cond.wait()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        raise queue.Empty
                    self._cond.wait(remaining)
            return self._items.popleft()

    def get_nowait(self) -> Any:
        return self.get(False)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    __class_getitem__ = classmethod(lambda cls, item: cls)


# ---- threads -----------------------------------------------------------------------------------


def _batch() -> None:
    # A woken simulated thread should not preempt the one that handed it the baton (which
    # still holds the GIL for a moment); SCHED_BATCH says so to Linux.
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def _sim_start(self: threading.Thread) -> None:
    sim = _sim
    cur = sim.by_ident.get(_get_ident()) if sim is not None else None
    if cur is None or sim.killing:
        if cur is not None:
            sim._raise_killed(cur)
        return _orig_start(self)
    st = sim.add_thread(self)
    self._labsim = st
    inner = self.run

    def run() -> None:
        st.ident = _get_ident()
        sim.by_ident[st.ident] = st
        _batch()
        sim._await_baton(st)
        try:
            if st.killed:
                raise SimExit()
            inner()
        except SimExit:
            pass
        except BaseException:
            if not st.killed:
                _excepthook(self)
        finally:
            sim.exit(st)

    self.run = run
    del sim.by_ident[cur.ident]   # the start itself is real: it waits for the thread to exist
    try:
        _orig_start(self)
    finally:
        sim.by_ident[cur.ident] = cur
    sim.later(st, "starting")
    sim.point(cur, P_START)


def _excepthook(thread: threading.Thread) -> None:
    exc_type, exc_value, exc_tb = sys.exc_info()
    try:
        threading.excepthook(threading.ExceptHookArgs([exc_type, exc_value, exc_tb, thread]))
    except BaseException:
        traceback.print_exc(file=sys.stderr)
    finally:
        exc_type = exc_value = exc_tb = None


def _sim_join(self: threading.Thread, timeout: float | None = None) -> None:
    st = getattr(self, "_labsim", None)
    sim = _sim
    cur = sim.by_ident.get(_get_ident()) if sim is not None else None
    if cur is None or st is None or st.sim is not sim:
        return _orig_join(self, timeout)
    if st is cur:
        raise RuntimeError("cannot join current thread")
    sim.point(cur, P_JOIN)
    if st.state != DONE:
        st.joiners.append(cur)
        sim.block(cur, st.joiners, timeout, f"Thread.join({self.name!r})")
        sim.deliver(cur)
    if st.state == DONE:
        del sim.by_ident[cur.ident]  # the thread is past its last simulated step: wait for real
        try:
            _orig_join(self, 5.0)
        finally:
            sim.by_ident[cur.ident] = cur


def _sim_is_alive(self: threading.Thread) -> bool:
    st = getattr(self, "_labsim", None)
    if st is not None and st.state == DONE:
        return False
    return _orig_is_alive(self)


def _sim_enumerate() -> list[threading.Thread]:
    return [t for t in _orig_enumerate()
            if getattr(t, "_labsim", None) is None or t._labsim.state != DONE]


def _sim_active_count() -> int:
    return len(_sim_enumerate())


# ---- time, randomness --------------------------------------------------------------------------


def _virtual(st: SimThread) -> bool:
    if st.real_clock:
        return False
    st.clock_reads += 1
    if st.clock_reads > CLOCK_READS_LIMIT:
        st.clock_reads = 0
        raise SimError(
            f"labsim: thread {st.name!r} read the clock {CLOCK_READS_LIMIT} times without "
            f"reaching a scheduling point: a busy-wait loop. In simulation time only moves "
            f"when threads wait, so it would spin forever; sleep or wait on a Condition instead.")
    return True


def _clock(real: Callable[[], Any], base_s: float, ns: bool) -> Callable[[], Any]:
    """A time function: virtual (base_s + the simulation's now) in a simulated thread, else real."""
    def clock() -> Any:
        sim = _sim
        if sim is not None:
            st = sim.by_ident.get(_get_ident())
            if st is not None and _virtual(st):
                return int((base_s + sim.now) * 1e9) if ns else base_s + sim.now
        return real()
    clock.__name__ = real.__name__
    clock.__doc__ = real.__doc__
    return clock


monotonic = _clock(_real_monotonic, MONOTONIC_BASE_S, False)
monotonic_ns = _clock(_real_monotonic_ns, MONOTONIC_BASE_S, True)
perf_counter = _clock(_real_perf_counter, MONOTONIC_BASE_S, False)
perf_counter_ns = _clock(_real_perf_counter_ns, MONOTONIC_BASE_S, True)
time_ = _clock(_real_time, EPOCH_S, False)
time_ns = _clock(_real_time_ns, EPOCH_S, True)


def sleep(secs: float) -> None:
    sim = _sim
    st = sim.by_ident.get(_get_ident()) if sim is not None else None
    if st is None:
        return _real_sleep(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    sim.point(st, P_SLEEP)
    if secs > 0:
        sim.block(st, None, secs, "time.sleep")
        sim.deliver(st)


def urandom(n: int) -> bytes:
    sim = _sim
    if sim is not None and sim.by_ident.get(_get_ident()) is not None:
        return sim._bytes.randbytes(n)
    return _real_urandom(n)


def _refuse(what: str) -> Callable[..., Any]:
    def check(*args: Any, **kwargs: Any) -> None:
        if _me() is not None:
            raise SimError(f"labsim: {what} in a simulated thread: the simulator cannot schedule "
                           f"real I/O, so a run would neither be deterministic nor end. Lab code "
                           f"talks through labrpc; run this test without KUBEKV_SIM.")
    return check


# ---- install -----------------------------------------------------------------------------------

_installed = False
_REAL_TO_SIM: dict[int, tuple[Any, Any]] = {}


def installed() -> bool:
    return _installed


def install() -> None:
    """Patch the process for simulation (idempotent). Hybrids behave as the originals
    outside a simulation, but cost more: install only in a process that simulates."""
    global _installed
    if _installed:
        return
    _installed = True
    pairs = [
        (time, "sleep", _real_sleep, sleep), (time, "monotonic", _real_monotonic, monotonic),
        (time, "monotonic_ns", _real_monotonic_ns, monotonic_ns), (time, "time", _real_time, time_),
        (time, "time_ns", _real_time_ns, time_ns),
        (time, "perf_counter", _real_perf_counter, perf_counter),
        (time, "perf_counter_ns", _real_perf_counter_ns, perf_counter_ns),
        (os, "urandom", _real_urandom, urandom),
        (threading, "Lock", _real_lock, Lock), (threading, "RLock", _orig_rlock, RLock),
        (threading, "Condition", _OrigCondition, Condition),
        (threading, "enumerate", _orig_enumerate, _sim_enumerate),
        (threading, "active_count", _orig_active_count, _sim_active_count),
        (queue, "SimpleQueue", _OrigSimpleQueue, SimpleQueue),
    ]
    for mod, name, orig, new in pairs:
        setattr(mod, name, new)
        _REAL_TO_SIM[id(orig)] = (orig, new)
    threading._time = monotonic          # Semaphore, Barrier, Thread.join's deadlines
    queue.time = monotonic               # queue.Queue's timeouts
    random._urandom = urandom            # secrets, SystemRandom
    threading.Thread.start = _sim_start
    threading.Thread.join = _sim_join
    threading.Thread.is_alive = _sim_is_alive
    import socket
    import subprocess
    _orig_socket_init = socket.socket.__init__
    _refuse_socket = _refuse("a socket")

    def socket_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _refuse_socket()
        _orig_socket_init(self, *args, **kwargs)

    socket.socket.__init__ = socket_init
    _orig_popen_init = subprocess.Popen.__init__
    _refuse_popen = _refuse("a subprocess")

    def popen_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _refuse_popen()
        _orig_popen_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = popen_init
    rebind_imported()


# Modules whose bindings stay real: pytest and its plugins time and run the tests
# themselves, importlib's locks guard imports, and this package is the simulator.
_KEEP_REAL = ("_pytest", "pytest", "pluggy", "xdist", "execnet", "importlib", "labsim",
              "threading", "_thread", "queue", "time", "os", "random", "faulthandler", "coverage")


def rebind_imported() -> int:
    """Point names bound before install() (`from time import sleep`) in the project's
    modules at the simulated functions; return how many were rebound."""
    paths = sysconfig.get_paths()
    outside = tuple(os.path.abspath(paths[k]) + os.sep
                    for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    n = 0
    for name, mod in list(sys.modules.items()):
        if mod is None or name.split(".", 1)[0] in _KEEP_REAL:
            continue
        f = getattr(mod, "__file__", None)
        if not f or os.path.abspath(f).startswith(outside):
            continue
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for k, v in list(d.items()):
            hit = _REAL_TO_SIM.get(id(v))
            if hit is not None and hit[0] is v:
                d[k] = hit[1]
                n += 1
    return n
