"""Schedule noise: small random delays where Go's scheduler would leave a goroutine waiting.

Usage (the root conftest.py loads this module as a pytest plugin, so it is on by default):
    pytest raft1 -k 3D                           # lab threads get 0..KUBEKV_NOISE_MAX_MS delays
    KUBEKV_NOISE=0 pytest raft1 -k 3D            # off: nothing is patched
    KUBEKV_NOISE_MAX_MS=2 pytest ...             # bound on one delay, in ms (default DEFAULT_MAX_MS)
    KUBEKV_NOISE_SEED=1234 pytest ... -k TestX   # the seed a failing test's report named

    from tester import noise                     # outside pytest
    noise.install(max_ms=1.0, seed=7); ...; noise.uninstall()

Why: under the GIL a new thread runs at once and a woken thread soon after, so a race
that needs "the thread I just started has not run yet" almost never happens here, where
Go's run queue makes it routine (a goroutine started or woken waits until a P takes it).
The delays go where Go's scheduler puts them:
  thread start ..... the new thread sleeps before its target runs (the starter goes on);
  Chan.send ........ the sender sleeps before sending; Chan.recv: the receiver sleeps after
                     receiving (a woken goroutine runs late);
  Condition wake ... between being notified (or timing out) and re-acquiring the lock, so
                     no lock is held while sleeping;
  select ........... (raft1.chan's, if it has one) before it and after it.
Lock hand-offs get none: a wrapper around threading.Lock (a C type) would be cheap, but a
lab lock is next to never contended here (the GIL seldom switches inside a short critical
section), so there is no hand-off to delay; a Condition's re-acquire is covered above.

Only lab code is delayed (threads, Chans and Conditions of raft1/rsm/kvraft1 and
tests.mutants, outside the harness modules); labrpc's workers, the tester, porcupine and
pytest run undisturbed.  A thread is lab code if its target (or its class's run) or the
code that starts it is; a Chan operation if its caller is; a Condition if lab code made it.

Each test draws its delays from its own seed (KUBEKV_NOISE_SEED, else random), and a
failing test's report names it next to LABRPC_SEED.  Thread timing still varies between
runs, so a seed makes a race likelier to recur, not certain.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import threading
import time
from typing import Any, Callable

import pytest

import labsim

ENABLE_ENV = "KUBEKV_NOISE"
MAX_MS_ENV = "KUBEKV_NOISE_MAX_MS"
SEED_ENV = "KUBEKV_NOISE_SEED"
DEFAULT_MAX_MS = 4.0
# A delay is max_ms * u**SKEW for u uniform in [0, 1): median max/8, mean max/4, one in five
# above max/2.  Go's run-queue waits are like that: mostly short, sometimes a busy P's time
# slice.  The mean is what the tests pay, the tail is what shows a race.
SKEW = 3
# A thread's start always draws a delay; a send, receive, wake-up or select only this often.
# They lie one after another on every request's path (TestSpeed4B: 1000 Puts in a row), where a
# delay at each cost 40% more time; a race needs only one late hand-off.
HANDOFF_FRACTION = 0.1

# Packages that hold lab code, and the modules in them that belong to the harness.
LAB_PACKAGES = ("raft1", "rsm", "kvraft1", "shardkv1", "tests.mutants")
HARNESS_MODULES = frozenset({
    "raft1.chan", "raft1.harness", "raft1.raftapi", "raft1.server",
    "rsm.harness", "rsm.server", "kvraft1.harness", "kvraft1.rpc",
})

# Delay points, as counted by counts().
THREAD = "thread"
SEND = "send"
RECV = "recv"
WAKE = "wake"
SELECT = "select"
POINTS = (THREAD, SEND, RECV, WAKE, SELECT)

_max_s = 0.0
_seed: int | None = None
_rng = random.Random()
_counts = dict.fromkeys(POINTS, 0)
_lab_cache: dict[str | None, bool] = {}
_saved: dict[str, Any] = {}  # original attributes while installed


def is_lab_module(name: str | None) -> bool:
    """Whether code of module `name` gets noise (lab code, not the harness)."""
    try:
        return _lab_cache[name]
    except KeyError:
        pass
    lab = bool(name) and name not in HARNESS_MODULES \
        and not name.rsplit(".", 1)[-1].startswith(("test_", "conftest")) \
        and any(name == p or name.startswith(p + ".") for p in LAB_PACKAGES)
    _lab_cache[name] = lab
    return lab


def installed() -> bool:
    """Whether install() is in effect."""
    return bool(_saved)


def max_ms() -> float:
    """The bound on one delay, in ms (0 when not installed)."""
    return _max_s * 1000


def seed() -> int | None:
    """The seed of the current delay draws (None before the first reseed)."""
    return _seed


def reseed(new_seed: int | None = None) -> int:
    """Start a new stream of delay draws from new_seed (random if None); returns the seed."""
    global _rng, _seed
    if new_seed is None:
        new_seed = int.from_bytes(os.urandom(4), "little")
    _seed = new_seed
    _rng = random.Random(new_seed)
    return new_seed


def counts() -> dict[str, int]:
    """How many delays each point has drawn since install() (approximate under threads)."""
    return dict(_counts)


def _pause(point: str) -> None:
    if _max_s:
        rng = _rng
        if point is not THREAD and rng.random() >= HANDOFF_FRACTION:
            return
        _counts[point] += 1
        time.sleep(rng.random() ** SKEW * _max_s)


def _caller_module(frame: Any) -> str | None:
    # Chan.__iter__ calls recv: the lab code is its caller.
    name = frame.f_globals.get("__name__")
    while name == "raft1.chan" and frame.f_back is not None:
        frame = frame.f_back
        name = frame.f_globals.get("__name__")
    return name


def _runs_lab_code(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    if target is None:
        run = type(thread).run
        if run is threading.Thread.run:
            return False
        target = run
    target = getattr(target, "func", target)  # functools.partial
    return is_lab_module(getattr(target, "__module__", None))


def _noisy_start(self: threading.Thread) -> None:
    if _runs_lab_code(self) or is_lab_module(sys._getframe(1).f_globals.get("__name__")):
        run = self.run

        def delayed_run() -> None:
            self.__dict__.pop("run", None)  # no thread -> closure -> thread cycle left behind
            _pause(THREAD)
            run()

        self.run = delayed_run  # type: ignore[method-assign]
    _saved["Thread.start"](self)


def _noisy_cond_init(self: threading.Condition, lock: Any = None) -> None:
    _saved["Condition.__init__"](self, lock)
    if not is_lab_module(sys._getframe(1).f_globals.get("__name__")):
        return
    restore = self.__dict__.get("_acquire_restore")  # an RLock's own
    if restore is None:
        if type(self)._acquire_restore is not _saved["Condition._acquire_restore"]:
            return  # a subclass re-acquires its own way: leave it alone
        acquire = self._lock.acquire

        def restore(_state: Any) -> None:
            acquire()

    def noisy_restore(state: Any) -> None:
        try:
            _pause(WAKE)  # notified, lock not yet held
        finally:
            restore(state)

    self._acquire_restore = noisy_restore  # type: ignore[method-assign]


def _make_noisy_send(send: Callable) -> Callable:
    @functools.wraps(send)
    def noisy_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        if is_lab_module(_caller_module(sys._getframe(1))):
            _pause(SEND)  # before: which of two senders gets there first is the scheduler's call
        return send(self, *args, **kwargs)
    return noisy_send


def _make_noisy_recv(recv: Callable) -> Callable:
    @functools.wraps(recv)
    def noisy_recv(self: Any, *args: Any, **kwargs: Any) -> Any:
        got = recv(self, *args, **kwargs)
        if is_lab_module(_caller_module(sys._getframe(1))):
            _pause(RECV)  # after: a woken receiver runs late; the sender goes on meanwhile
        return got
    return noisy_recv


def _make_noisy_select(select: Callable) -> Callable:
    @functools.wraps(select)
    def noisy_select(*cases: Any, **kwargs: Any) -> Any:
        lab = is_lab_module(_caller_module(sys._getframe(1)))
        if lab:
            _pause(SELECT)  # as before a send
        got = select(*cases, **kwargs)
        if lab:
            _pause(SELECT)  # as after a receive
        return got
    return noisy_select


def _rebind_in_lab_modules(old: Any, new: Any, name: str) -> None:
    # For lab modules imported before install() that did `from raft1.chan import select`.
    for mod_name, mod in list(sys.modules.items()):
        if is_lab_module(mod_name) and getattr(mod, name, None) is old:
            setattr(mod, name, new)


def install(max_ms: float = DEFAULT_MAX_MS, seed: int | None = None) -> None:
    """Patch Thread.start, Condition, raft1.chan.Chan (and chan.select if any); idempotent.

    Classes are patched in place, so that code which did `from threading import Condition`
    or `from raft1.chan import Chan` before this call gets the noise too.
    """
    global _max_s
    if max_ms < 0:
        raise ValueError(f"noise max_ms must be >= 0, got {max_ms}")
    from raft1 import chan

    _max_s = max_ms / 1000
    reseed(seed)
    if installed():
        return
    for k in _counts:
        _counts[k] = 0
    _saved["Thread.start"] = threading.Thread.start
    _saved["Condition.__init__"] = threading.Condition.__init__
    _saved["Condition._acquire_restore"] = threading.Condition._acquire_restore
    _saved["Chan.send"] = chan.Chan.send
    _saved["Chan.recv"] = chan.Chan.recv
    threading.Thread.start = _noisy_start  # type: ignore[method-assign]
    threading.Condition.__init__ = _noisy_cond_init  # type: ignore[method-assign]
    chan.Chan.send = _make_noisy_send(chan.Chan.send)  # type: ignore[method-assign]
    chan.Chan.recv = _make_noisy_recv(chan.Chan.recv)  # type: ignore[method-assign]
    select = getattr(chan, "select", None)
    if select is not None:
        _saved["select"] = select
        chan.select = _make_noisy_select(select)
        _rebind_in_lab_modules(select, chan.select, "select")


def uninstall() -> None:
    """Undo install(); Conditions made meanwhile keep their hook, which then does nothing."""
    global _max_s
    if not installed():
        return
    from raft1 import chan

    threading.Thread.start = _saved["Thread.start"]  # type: ignore[method-assign]
    threading.Condition.__init__ = _saved["Condition.__init__"]  # type: ignore[method-assign]
    chan.Chan.send = _saved["Chan.send"]  # type: ignore[method-assign]
    chan.Chan.recv = _saved["Chan.recv"]  # type: ignore[method-assign]
    if "select" in _saved:
        _rebind_in_lab_modules(chan.select, _saved["select"], "select")
        chan.select = _saved["select"]
    _saved.clear()
    _max_s = 0.0


def settings_from_env(environ: Any = os.environ) -> tuple[bool, float, int | None]:
    """(on, max_ms, fixed seed or None) from KUBEKV_NOISE, KUBEKV_NOISE_MAX_MS, KUBEKV_NOISE_SEED."""
    on = environ.get(ENABLE_ENV, "1").strip().lower() not in ("0", "off", "false", "no")
    raw = environ.get(MAX_MS_ENV, "")
    try:
        bound = float(raw) if raw.strip() else DEFAULT_MAX_MS
    except ValueError:
        raise ValueError(f"{MAX_MS_ENV}={raw!r}: want a number of milliseconds") from None
    if bound < 0:
        raise ValueError(f"{MAX_MS_ENV}={raw!r}: want a number of milliseconds >= 0")
    raw = environ.get(SEED_ENV, "")
    try:
        fixed = int(raw) if raw.strip() else None
    except ValueError:
        raise ValueError(f"{SEED_ENV}={raw!r}: want an integer") from None
    return on and bound > 0, bound, fixed


# ---------------------------------------------------------------------- pytest plugin

_fixed_seed: int | None = None


def pytest_configure(config: Any) -> None:
    global _fixed_seed
    try:
        on, bound, _fixed_seed = settings_from_env()
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None
    if on and not labsim.enabled():  # the simulator chooses every schedule itself
        install(bound, _fixed_seed)


def pytest_unconfigure(config: Any) -> None:
    uninstall()


def pytest_report_header(config: Any) -> str:
    if not installed():
        return "kubekv: schedule noise off"
    return (f"kubekv: schedule noise on, delays up to {max_ms():g} ms "
            f"({ENABLE_ENV}=0 turns it off; tester/noise.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: Any) -> None:
    if installed():
        item._kubekv_noise_seed = reseed(_fixed_seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any):
    outcome = yield
    rep = outcome.get_result()
    seed_used = getattr(item, "_kubekv_noise_seed", None)
    if rep.failed and seed_used is not None:
        rep.sections.append(("schedule noise", (
            f"delays drawn from {SEED_ENV}={seed_used} ({MAX_MS_ENV}={max_ms():g}); the same "
            f"seed makes the failure likelier to recur, not certain (thread timing still varies); "
            f"{ENABLE_ENV}=0 turns the noise off")))


__all__ = [
    "DEFAULT_MAX_MS", "ENABLE_ENV", "HARNESS_MODULES", "LAB_PACKAGES", "MAX_MS_ENV", "POINTS",
    "SEED_ENV", "counts", "install", "installed", "is_lab_module", "max_ms", "reseed", "seed",
    "settings_from_env", "uninstall",
]
