"""The per-test handle `T` and the failure collector (Go: *testing.T plus t.Fatalf from goroutines).

Usage:
    t = tester.T()                  # in the test function: names itself after the running pytest test
    t.Fatalf("got %v, want %v", a, b)   # Go fmt verbs (tester.gofmt)
    tester.go(worker, arg1, arg2)   # a "goroutine": a failure or exception in it fails the test
    tester.Fatalf("...")            # from library code in any thread: fails the current test
    t.Check()                       # in the test thread: raise a failure recorded by another thread

What a failure does:
- In the test thread (the thread that made the T), Fatalf raises `TestFailed` at once.
- In any other thread it records the failure (the first one wins; its message and the stack of
  the failing thread are kept, later ones are counted and printed), then raises TestFailed in
  that thread to unwind it (like runtime.Goexit). The test thread gets the first failure raised:
  at once, if it is the main thread (a signal, `INTERRUPT_SIGNAL`, interrupts whatever it is
  blocked in, unless it is inside `t.shielded()`, which Config.Cleanup uses), else at its next
  `t.Check()` (every Config / kvtest call checks) and at Config.Cleanup.
- An uncaught exception in any thread (a tester.go thread, or a plain threading.Thread of a lab,
  through threading.excepthook) is a failure too: Go panics kill the test binary; here the test
  fails with the exception's traceback and the process lives on.
Nothing is lost: a failure after the test ended is printed to stderr.

TestFailed derives from BaseException (like KeyboardInterrupt) so that `except Exception:` in lab
code never swallows it; pytest reports it as a plain test failure.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import labsim
from tester.gofmt import Sprint, Sprintf

# The signal that interrupts a blocked main test thread when another thread failed the test.
# The tester owns it in a test process: its handler is installed once and never removed.
INTERRUPT_SIGNAL = signal.SIGUSR2


class TestFailed(BaseException):
    """The test has failed (t.Fatalf / cfg.Fatalf / a failure recorded by another thread)."""

    __test__ = False  # not a pytest test class, despite the name


class _Failure:
    __slots__ = ("message", "thread_name", "thread_id", "stack")

    def __init__(self, message: str, stack: str) -> None:
        self.message = message
        self.thread_name = threading.current_thread().name
        self.thread_id = threading.get_ident()
        self.stack = stack

    def report(self) -> str:
        return f"{self.message}\n--- failed in thread {self.thread_name!r} at:\n{self.stack.rstrip()}"


_state_mu = threading.Lock()
_current: "T | None" = None  # the T of the running test (the most recently made one)
_bound = threading.local()  # .t: the T a tester.go() thread was started for


def _pytest_test_name() -> str | None:
    cur = os.environ.get("PYTEST_CURRENT_TEST")  # "pkg/test_x.py::TestName (call)"
    if not cur:
        return None
    return cur.split("::")[-1].rsplit(" ", 1)[0]


class T:
    """A running test: Go's *testing.T. Make one at the start of each test function."""

    __test__ = False

    def __init__(self, name: str | None = None) -> None:
        self._name = name or _pytest_test_name() or "test"
        # Reentrant: the interrupt handler runs in the test thread and may find it inside a `with self._mu`.
        self._mu = threading.RLock()
        self._failures: list[_Failure] = []
        self._test_thread = threading.get_ident()
        self._finished = False
        self._shield_depth = 0
        # Set when another thread failed the test and the test thread has not yet raised it.
        self._interrupt_pending = False
        self._handler_installed = False
        self._install_interrupt()
        _ensure_excepthook()
        _make_current(self)

    # ---- Go's testing.T methods -------------------------------------------------
    def Name(self) -> str:
        return self._name

    def Failed(self) -> bool:
        with self._mu:
            return bool(self._failures)

    def Fatalf(self, fmt: str, *args: Any) -> None:
        """Fail the test with a Go-formatted message and stop the calling thread (never returns)."""
        __tracebackhide__ = True  # pytest shows the caller's frame, not ours
        self._fail(Sprintf(fmt, *args), stop=True)

    def Fatal(self, *args: Any) -> None:
        __tracebackhide__ = True  # pytest shows the caller's frame, not ours
        self._fail(Sprint(*args), stop=True)

    def Errorf(self, fmt: str, *args: Any) -> None:
        """Mark the test failed but keep going (raised at the next Check / Cleanup)."""
        self._fail(Sprintf(fmt, *args), stop=False)

    def Error(self, *args: Any) -> None:
        self._fail(Sprint(*args), stop=False)

    def FailNow(self) -> None:
        __tracebackhide__ = True  # pytest shows the caller's frame, not ours
        self._fail("FailNow", stop=True)

    def Logf(self, fmt: str, *args: Any) -> None:
        print(Sprintf(fmt, *args), flush=True)

    def Helper(self) -> None:
        """No-op (Go's t.Helper only adjusts line numbers)."""

    # ---- collector --------------------------------------------------------------
    def in_test_thread(self) -> bool:
        return threading.get_ident() == self._test_thread

    def Check(self) -> None:
        """In the test thread, raise the first failure recorded so far; a no-op elsewhere."""
        __tracebackhide__ = True  # pytest shows the caller's frame, not ours
        if not self.in_test_thread():
            return
        with self._mu:
            if not self._failures:
                return
            self._interrupt_pending = False
            exc = self._exception_locked()
        raise exc

    def record(self, message: str, stack: str | None = None, interrupt: bool = True) -> TestFailed:
        """Record a failure without raising; returns the TestFailed the test thread will see."""
        if stack is None:
            stack = "".join(_lab_frames(traceback.extract_stack()[:-1]).format())
        failure = _Failure(message, stack)
        with self._mu:
            if self._finished:
                late = True
            else:
                late = False
                self._failures.append(failure)
                first = len(self._failures) == 1
                exc = self._exception_locked()
        if late:
            print(f"tester: failure after test {self._name} ended (ignored):\n{failure.report()}",
                  file=sys.stderr, flush=True)
            return TestFailed(message)
        if not first:
            print(f"tester: another failure in {self._name} (the first one is reported):\n{failure.report()}",
                  file=sys.stderr, flush=True)
        elif interrupt and not self.in_test_thread():
            self._interrupt_test_thread()
        return exc

    def _fail(self, message: str, stop: bool) -> None:
        __tracebackhide__ = True  # pytest shows the caller's frame, not ours
        exc = self.record(message, interrupt=stop)
        exc._kubekv_recorded = True  # type: ignore[attr-defined]
        if stop:
            if self.in_test_thread():
                self.Check()
            raise exc

    def _exception_locked(self) -> TestFailed:
        first = self._failures[0]
        # A failure of the test thread itself carries its own traceback; another thread's does not.
        text = first.message if first.thread_id == self._test_thread else first.report()
        if len(self._failures) > 1:
            text += f"\n(+{len(self._failures) - 1} later failure(s), printed to stderr)"
        exc = TestFailed(text)
        exc._kubekv_recorded = True  # type: ignore[attr-defined]
        return exc

    # ---- interrupting the test thread ------------------------------------------
    @contextmanager
    def shielded(self) -> Iterator[None]:
        """No asynchronous interrupt inside this block (a pending one is raised by the next Check)."""
        with self._mu:
            self._shield_depth += 1
        try:
            yield
        finally:
            with self._mu:
                self._shield_depth -= 1

    def _install_interrupt(self) -> None:
        if threading.get_ident() == threading.main_thread().ident:
            self._handler_installed = _install_dispatcher()

    def _interrupt_test_thread(self) -> None:
        if labsim.active():
            # One thread runs at a time: no signal, the simulator wakes the test thread and
            # runs the handler there; a shielded one finds it at its next Check().
            with self._mu:
                if self._finished:
                    return
                self._interrupt_pending = True
                shielded = self._shield_depth > 0
            if not shielded:
                labsim.interrupt(self._test_thread, self._on_interrupt)
            return
        with self._mu:
            if not self._handler_installed or self._finished:
                return
            self._interrupt_pending = True
        try:
            signal.pthread_kill(self._test_thread, INTERRUPT_SIGNAL)
        except (ProcessLookupError, OSError):
            pass

    def _on_interrupt(self) -> bool:
        """Run by the dispatcher in the test thread: raise a pending failure; False if none is ours."""
        __tracebackhide__ = True  # pytest shows the caller's frame, not ours
        with self._mu:
            ours = self._interrupt_pending
            fire = ours and self._shield_depth == 0 and not self._finished
            if fire:
                self._interrupt_pending = False
                exc = self._exception_locked()
        if fire:
            raise exc
        return ours  # shielded: the next Check() raises it

    def finish(self) -> None:
        """The test is over: later failures are only printed, and nothing interrupts its thread."""
        with self._mu:
            if self._finished:
                return
            self._finished = True
            self._interrupt_pending = False
        global _current
        with _state_mu:
            if _current is self:
                _current = None

    def __repr__(self) -> str:
        return f"<tester.T {self._name} failed={self.Failed()}>"


def _make_current(t: T) -> None:
    global _current
    with _state_mu:
        old = _current
        _current = t
    if old is not None and old is not t:
        old.finish()


# The interrupt dispatcher: installed once per process from the main thread and never removed,
# so a signal sent just as a test ends can never meet the default action (which kills the process).
_dispatcher_installed = False
_prev_interrupt_handler: Any = None


def _install_dispatcher() -> bool:
    global _dispatcher_installed, _prev_interrupt_handler
    with _state_mu:
        if _dispatcher_installed:
            return True
        try:
            _prev_interrupt_handler = signal.signal(INTERRUPT_SIGNAL, _dispatch_interrupt)
        except (ValueError, OSError):  # not the main interpreter, or no signals here
            return False
        _dispatcher_installed = True
        return True


def _dispatch_interrupt(signum: int, frame: Any) -> None:
    __tracebackhide__ = True
    t = _current
    if t is not None and t.in_test_thread() and t._on_interrupt():  # raises a pending failure
        return  # ours, but the test thread is shielded: its next Check() raises it
    # Not ours: a late one for a test that just ended (ignored) or someone else's signal.
    # SIG_DFL (terminate) is deliberately not applied: the tester owns this signal.
    prev = _prev_interrupt_handler
    if callable(prev):
        prev(signum, frame)


def CurrentT() -> T | None:
    """The T this thread works for: the one its tester.go() was started under, else the running test's."""
    t = getattr(_bound, "t", None)
    if t is not None:
        return t
    return _current


def Fatalf(fmt: str, *args: Any) -> None:
    """Fail the current test from any thread (see CurrentT); raises TestFailed in the caller."""
    __tracebackhide__ = True
    t = CurrentT()
    if t is None:
        raise TestFailed(Sprintf(fmt, *args))
    t.Fatalf(fmt, *args)


def go(fn: Callable[..., Any], *args: Any, name: str | None = None, **kwargs: Any) -> threading.Thread:
    """Start fn(*args, **kwargs) in a daemon thread bound to the current T (a goroutine).

    A TestFailed raised in it just ends the thread (the failure is already recorded), and so
    does SystemExit; any other exception is recorded as a test failure with its traceback. Returns the started
    Thread, so the caller can join() it.
    """
    t = CurrentT()

    def run() -> None:
        _bound.t = t
        try:
            fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - every exception of a goroutine fails the test
            _route_exception(t, e)

    th = threading.Thread(target=run, name=name or f"go-{getattr(fn, '__name__', 'fn')}", daemon=True)
    th._kubekv_fn = fn  # type: ignore[attr-defined]  # whose code it runs (tester.threadcheck)
    th.start()
    return th


# Frames of these files are the machinery around a failure, not where it happened.
_MACHINERY_FILES = frozenset({threading.__file__, __file__,
                              os.path.join(os.path.dirname(__file__), "config.py"),
                              labsim.core.__file__})


def _lab_frames(stack: traceback.StackSummary) -> traceback.StackSummary:
    """stack without thread bootstrap and tester frames, so it starts in the lab's code."""
    kept = [f for f in stack if f.filename not in _MACHINERY_FILES]
    return traceback.StackSummary.from_list(kept or list(stack))


def prune_traceback(tb: Any) -> None:
    """Unlink machinery frames (see _MACHINERY_FILES) from a traceback chain, in place.

    The head frame (pytest's own call) stays; a failure raised by Fatalf then ends at its caller.
    """
    while tb is not None:
        nxt = tb.tb_next
        while nxt is not None and nxt.tb_frame.f_code.co_filename in _MACHINERY_FILES:
            nxt = nxt.tb_next
        tb.tb_next = nxt
        tb = nxt


def format_lab_exception(e: BaseException) -> str:
    """e's traceback as text, starting in the lab's code (see _lab_frames)."""
    te = traceback.TracebackException.from_exception(e)
    te.stack = _lab_frames(te.stack)
    return "".join(te.format())


def _route_exception(t: T | None, e: BaseException) -> None:
    if isinstance(e, TestFailed) and getattr(e, "_kubekv_recorded", False):
        return
    if isinstance(e, SystemExit):  # ends the thread quietly, as in a plain threading.Thread
        return
    text = format_lab_exception(e)
    msg = f"uncaught {type(e).__name__} in thread {threading.current_thread().name!r}: {e}"
    if t is None:
        print(f"tester: {msg} (no test running)\n{text}", file=sys.stderr, flush=True)
        return
    t.record(msg, stack=text)


_prev_excepthook = threading.excepthook


def _excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    t = getattr(_bound, "t", None) or _current
    if t is None or args.exc_value is None:
        if getattr(_bound, "in_prev_hook", False):
            return  # a hook that chains back to us: stop the loop
        _bound.in_prev_hook = True
        try:
            _prev_excepthook(args)
        finally:
            _bound.in_prev_hook = False
        return
    _route_exception(t, args.exc_value)


def _ensure_excepthook() -> None:
    """Put our hook in front again if someone replaced it (pytest does at configure time)."""
    global _prev_excepthook
    with _state_mu:
        if threading.excepthook is not _excepthook:
            _prev_excepthook = threading.excepthook
            threading.excepthook = _excepthook


_ensure_excepthook()


def finish_current_test() -> None:
    """End the running T if any (a safety net for a pytest teardown hook)."""
    t = _current
    if t is not None:
        t.finish()


__all__ = ["T", "TestFailed", "CurrentT", "Fatalf", "go", "finish_current_test", "INTERRUPT_SIGNAL"]
