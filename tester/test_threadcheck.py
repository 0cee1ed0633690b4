"""tester.threadcheck and Config.Cleanup's thread check: a warning by default, a failure when strict."""

from __future__ import annotations

import threading
import warnings

import pytest

import tester
from tester import threadcheck


class LeakyServer:
    """A service whose Kill() returns while a thread of its own keeps running until released."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        threading.Thread(target=self.ticker, name="leaky-ticker", daemon=True).start()

    def ticker(self) -> None:
        self.release.wait()

    def Kill(self) -> None:
        pass


def _run_leaky_test(release: threading.Event) -> None:
    t = tester.T()
    cfg = tester.MakeConfig(t, 1, True, lambda ends, grp, srv, p: [LeakyServer(release)])
    try:
        cfg.Begin("leaky")
        cfg.End()
    finally:
        cfg.Cleanup()


def TestLeakIsAWarningByDefault(monkeypatch):
    monkeypatch.delenv(threadcheck.MODE_ENV, raising=False)
    release = threading.Event()
    try:
        with pytest.warns(threadcheck.ThreadLeakWarning, match=r"1 thread: 'leaky-ticker' \(threading.py:\d+ in wait\)"):
            _run_leaky_test(release)
    finally:
        release.set()


def TestLeakFailsWhenStrict(monkeypatch):
    monkeypatch.setenv(threadcheck.MODE_ENV, "strict")
    monkeypatch.setattr(threadcheck, "STRICT_WAIT_S", 0.2)
    release = threading.Event()
    try:
        with pytest.raises(tester.TestFailed, match=r"'leaky-ticker'.*still running 0.2 s after cleanup"):
            _run_leaky_test(release)
    finally:
        release.set()


def TestOffChecksNothing(monkeypatch):
    monkeypatch.setenv(threadcheck.MODE_ENV, "off")
    release = threading.Event()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", threadcheck.ThreadLeakWarning)
            _run_leaky_test(release)
    finally:
        release.set()


def TestBadModeNamesTheVariable(monkeypatch):
    monkeypatch.setenv(threadcheck.MODE_ENV, "loud")
    with pytest.raises(ValueError, match=r"KUBEKV_THREAD_CHECK='loud': want one of warn, strict, off"):
        threadcheck.mode()


def TestThreadStartedMeanwhileIsWaitedFor():
    """The old check listed threads once: one started by a finishing thread was reported at once."""
    before = threadcheck.snapshot()
    second_done = threading.Event()

    def second() -> None:
        second_done.wait(0.3)

    def first() -> None:
        threading.Event().wait(0.2)
        threading.Thread(target=second, name="late-heartbeat", daemon=True).start()

    threading.Thread(target=first, name="first", daemon=True).start()
    assert threadcheck.lingering(before, 5.0) == []
    assert second_done.is_set() is False  # second ended by its own timeout, and was waited for


def TestFrameworkThreadsDoNotCount():
    before = threadcheck.snapshot()
    stop = threading.Event()
    th = threading.Thread(target=stop.wait, daemon=True)
    th._kubekv_fn = tester.Randstring  # runs framework code
    th.start()
    try:
        assert threadcheck.lingering(before, 0.0) == []
    finally:
        stop.set()

