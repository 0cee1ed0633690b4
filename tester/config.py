"""Config: the network, server groups and clerks of one test (Go: tester1/config.go).

Usage: see the package docstring (tester/__init__.py). In short:
    cfg = tester.MakeConfig(t, n, reliable, mks)
    try:
        cfg.Begin("Test (3A): initial election")
        ...
        cfg.End()
    finally:
        cfg.Cleanup()

Beyond Go: a watchdog thread per Config. If the test is still running WATCHDOG_S seconds
after MakeConfig (env KUBEKV_WATCHDOG_S, default 180 = the 120 s limit + 60 s slack; 0 turns it
off), it prints the stack of every thread and fails the test from the test thread (see
tester.failure), so a hung test ends with a diagnosis instead of hanging the run.
"""

from __future__ import annotations

import base64
import faulthandler
import os
import secrets
import sys
import threading
import time
import traceback
import warnings
from typing import Any, Sequence

import labrpc
from tester import annotation, threadcheck
from tester.clnts import Clnt, Clnts
from tester.failure import T, TestFailed, format_lab_exception
from tester.gofmt import Sprintf
from tester.group import GRP0, FstartServer, Groups, ServerGrp, Tgid

# Go's CheckTimeout: a test may take at most this long, measured from MakeConfig.
TEST_TIME_LIMIT_S = 120
WATCHDOG_ENV = "KUBEKV_WATCHDOG_S"
WATCHDOG_DEFAULT_S = TEST_TIME_LIMIT_S + 60

_once_mu = threading.Lock()
_once_done = False


def Randstring(n: int) -> str:
    """n random URL-safe base64 characters (crypto-random), e.g. for end names."""
    return base64.urlsafe_b64encode(secrets.token_bytes(2 * n)).decode("ascii")[:n]


def watchdog_limit_s() -> float:
    raw = os.environ.get(WATCHDOG_ENV, "")
    if raw == "":
        return float(WATCHDOG_DEFAULT_S)
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"{WATCHDOG_ENV}={raw!r}: want a number of seconds (0 = no watchdog)") from None
    if v < 0:
        raise ValueError(f"{WATCHDOG_ENV}={raw!r}: want a number of seconds >= 0 (0 = no watchdog)")
    return v


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object with no descriptor
        return 2


# If no Python thread runs for this long after the limit (one holds the GIL for good), faulthandler's
# C timer prints the stacks instead. It reads other threads' frames without the GIL, which crashes
# the process if a thread is exiting meanwhile, so it is the last resort, not the way.
GIL_STUCK_GRACE_S = 10.0


class _Watchdog:
    """One idle thread per Config, waiting on an Event until the time limit or Cleanup."""

    def __init__(self, t: T, limit_s: float) -> None:
        self._t = t
        self._limit_s = limit_s
        self._fd = _stderr_fd()
        faulthandler.dump_traceback_later(limit_s + GIL_STUCK_GRACE_S, exit=False, file=self._fd)
        # Set by stop() (Config.Cleanup): the watchdog thread then exits.
        self._stopped = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._run, name="tester-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._stopped.wait(self._limit_s):
            return
        faulthandler.cancel_dump_traceback_later()
        self.fired = True
        print(f"test {self._t.Name()} still running {self._limit_s:g} seconds after MakeConfig "
              f"(tester watchdog, {WATCHDOG_ENV}); the stacks of all threads follow",
              file=sys.stderr, flush=True)
        # With the GIL held, as here, no other thread can free a frame while it is printed.
        faulthandler.dump_traceback(file=self._fd, all_threads=True)
        frame = sys._current_frames().get(self._t._test_thread)
        here = "".join(traceback.format_stack(frame)) if frame is not None else "(test thread gone)\n"
        self._t.record(f"test took longer than {self._limit_s:g} seconds (tester watchdog: "
                       f"the stacks of all threads are printed on stderr; the test thread was "
                       f"at the stack below)",
                       stack=here)

    def stop(self) -> None:
        faulthandler.cancel_dump_traceback_later()
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()


class Config:
    """Everything one test runs on: network, server groups (GRP0 first), clerks, counters."""

    def __init__(self, t: T, n: int, reliable: bool, mks: FstartServer) -> None:
        if not isinstance(t, T):
            raise TypeError(f"MakeConfig: t must be a tester.T (make one with tester.T() in the test), "
                            f"got {t!r}")
        limit = watchdog_limit_s()  # bad values fail here, before anything is started
        self._thread_check = threadcheck.mode()
        self._threads_before = threadcheck.snapshot()
        _first_use()
        annotation.install_sigint_handler()
        self.t = t
        self.net = labrpc.MakeNetwork()
        self.groups = Groups(self.net)
        try:
            self.MakeGroupStart(GRP0, n, mks)
        except BaseException:
            self.groups.cleanup()
            self.net.Cleanup()
            raise
        self.clnts = Clnts(self.net)
        self.start = time.monotonic()
        self.t0 = self.start
        self.rpcs0 = 0
        # Guards ops (Op() is called from many clerk threads).
        self._ops_mu = threading.Lock()
        self.ops = 0
        self._cleaned = False
        self.net.Reliable(reliable)
        self._watchdog = _Watchdog(t, limit) if limit > 0 else None

    # ---- network ---------------------------------------------------------------------
    def SetReliable(self, reliable: bool) -> None:
        self.net.Reliable(reliable)

    def IsReliable(self) -> bool:
        return self.net.IsReliable()

    def SetLongReordering(self, longrel: bool) -> None:
        self.net.LongReordering(longrel)

    def SetLongDelays(self, longdel: bool) -> None:
        self.net.LongDelays(longdel)

    def RpcTotal(self) -> int:
        return self.net.GetTotalCount()

    def BytesTotal(self) -> int:
        return self.net.GetTotalBytes()

    # ---- groups (Go embeds *Groups) -------------------------------------------------------
    def Group(self, gid: Tgid) -> ServerGrp:
        return self.groups.lookup(gid)

    def MakeGroup(self, gid: Tgid, nsrv: int, mks: FstartServer) -> None:
        self.groups.MakeGroup(gid, nsrv, mks)

    def MakeGroupStart(self, gid: Tgid, nsrv: int, mks: FstartServer) -> None:
        self.MakeGroup(gid, nsrv, mks)
        self.Group(gid).StartServers()

    def ExitGroup(self, gid: Tgid) -> None:
        self.Group(gid).Shutdown()
        self.groups.delete(gid)

    # ---- clients (Go embeds *Clnts) --------------------------------------------------------
    def MakeClient(self) -> Clnt:
        return self.clnts.MakeClient()

    def MakeClientTo(self, srvs: Sequence[str] | None) -> Clnt:
        return self.clnts.MakeClientTo(srvs)

    def DeleteClient(self, clnt: Clnt) -> None:
        self.clnts.DeleteClient(clnt)

    # ---- test life cycle -------------------------------------------------------------------
    def Begin(self, description: str) -> None:
        """Print "<description> (reliable network)..." and start the time/RPC/op counters."""
        self.t.Check()
        rel = "reliable" if self.net.IsReliable() else "unreliable"
        print(f"{description} ({rel} network)...", flush=True)
        self.t0 = time.monotonic()
        self.rpcs0 = self.RpcTotal()
        with self._ops_mu:
            self.ops = 0

    def Op(self) -> None:
        """Count one clerk Get/Put (any thread)."""
        with self._ops_mu:
            self.ops += 1

    def End(self) -> None:
        """Check the time limit and, if the test has not failed, print the Passed line."""
        _note_propagating(self.t)
        self.CheckTimeout()
        if not self.t.Failed():
            t = time.monotonic() - self.t0
            npeers = self.Group(GRP0).N()
            nrpc = self.RpcTotal() - self.rpcs0
            with self._ops_mu:
                ops = self.ops
            print("  ... Passed --" + Sprintf("  time %4.1fs #peers %d #RPCs %5d #Ops %4d", t, npeers, nrpc, ops),
                  flush=True)
        if sys.exc_info()[1] is None:
            self.t.Check()

    def Fatalf(self, fmt: str, *args: Any) -> None:
        """Print "Fatal: <message>" and the test-file frames, then fail the test (never returns)."""
        __tracebackhide__ = True
        msg = Sprintf(fmt, *args)
        lines = [f"Fatal: {msg}"]
        for fs in traceback.extract_stack()[:-1]:
            if _is_test_file(fs.filename):
                lines.append(f"        {fs.filename}:{fs.lineno}")
        print("\n".join(lines), flush=True)
        self.t.Fatalf("%s", msg)

    def CheckFailed(self) -> None:
        """In the test thread: raise a failure another thread recorded (t.Check())."""
        __tracebackhide__ = True
        self.t.Check()

    def CheckTimeout(self) -> None:
        """Fail the test if more than 120 s passed since MakeConfig (Go checks only here)."""
        __tracebackhide__ = True
        if not self.t.Failed() and time.monotonic() - self.start > TEST_TIME_LIMIT_S:
            self.t.Fatal(f"test took longer than {TEST_TIME_LIMIT_S} seconds")

    def Cleanup(self) -> None:
        """Kill every server, delete every end, stop the network, write the view if failed, check."""
        if self._cleaned:
            return
        self._cleaned = True
        _note_propagating(self.t)
        try:
            with self.t.shielded():
                try:
                    self.clnts.cleanup()
                    self.groups.cleanup()
                    self.net.Cleanup()
                    failed = self.t.Failed()
                    annotation.cleanup(failed, "test failed" if failed else "test passed")
                finally:
                    if self._watchdog is not None:
                        self._watchdog.stop()
            self._check_threads()
            if sys.exc_info()[1] is None:
                self.CheckTimeout()
                self.t.Check()
        finally:
            self.t.finish()

    def _check_threads(self) -> None:
        """Lab threads still running after cleanup: a warning, or in strict mode a failure."""
        if self._thread_check == "off":
            return
        wait = threadcheck.wait_s(self._thread_check)
        left = threadcheck.lingering(self._threads_before, wait)
        if not left:
            return
        what = f"{threadcheck.describe(left)} still running {wait:g} s after cleanup"
        if self._thread_check == "strict":
            if not self.t.Failed():
                self.t.Errorf("%s (%s=strict)", what, threadcheck.MODE_ENV)
        else:
            warnings.warn(threadcheck.ThreadLeakWarning(
                f"{self.t.Name()}: {what}. Go's harness does not check this; a thread that never ends "
                f"may block forever (KUBEKV_THREAD_CHECK=strict fails the test, =off hides this)"),
                stacklevel=2)


def _is_test_file(path: str) -> bool:
    """Go prints frames of files whose name contains "test.go": tests, harnesses, kvtest."""
    base = os.path.basename(path)
    return base.startswith("test") or base in ("harness.py", "kvtest.py")


def _note_propagating(t: T) -> None:
    """If an exception is unwinding the test (we run in its finally), mark the test failed."""
    exc = sys.exc_info()[1]
    if exc is None or getattr(exc, "_kubekv_recorded", False) or not t.in_test_thread():
        return
    if isinstance(exc, TestFailed) or type(exc).__name__ == "Skipped":  # pytest.skip is no failure
        return
    exc._kubekv_recorded = True  # type: ignore[attr-defined]
    text = format_lab_exception(exc)
    t.record(f"test raised {type(exc).__name__}: {exc}", stack=text, interrupt=False)


def _first_use() -> None:
    global _once_done
    with _once_mu:
        if _once_done:
            return
        _once_done = True
    if (os.cpu_count() or 1) < 2:
        print("warning: only one CPU, which may conceal locking bugs", flush=True)


def MakeConfig(t: T, n: int, reliable: bool, mks: FstartServer) -> Config:
    """Make the network and start group GRP0 with n servers made by mks, all connected."""
    return Config(t, n, reliable, mks)


__all__ = ["Config", "MakeConfig", "Randstring", "TEST_TIME_LIMIT_S", "WATCHDOG_ENV"]
