"""pytest hooks for the tester: porcupine summary line and per-test T clean-up.

Usage, in the project's conftest.py:
    pytest_plugins = ["tester.pytest_plugin"]

What it does:
- after each test, ends the test's tester.T if the test left it running (e.g. a test that
  failed before making a Config), so its failure interrupt handler is removed;
- counts the porcupine checks of every test (works with pytest-xdist: each test's counts travel
  in its report) and prints at the end of the session, for example
      porcupine: 60 checks, 59 ok, 0 illegal, 1 unknown (timed out, assumed ok): TestSnapshotUnreliable4C
  Unknown results pass the test, as in Go; this line is how a run shows they happened.
"""

from __future__ import annotations

from typing import Any

import pytest

from tester import failure, stats

_KEY = "kubekv_porcupine"
_session_totals = {"checks": 0, "ok": 0, "illegal": 0, "unknown": 0}
_unknown_tests: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any):
    before = stats.snapshot()
    yield
    after = stats.snapshot()
    delta = {k: after[k] - before[k] for k in after}
    if delta["checks"]:
        item.user_properties.append((_KEY, delta))


def pytest_runtest_teardown(item: Any) -> None:
    failure.finish_current_test()


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call":
        return
    for key, value in getattr(report, "user_properties", []):
        if key == _KEY:
            for k in _session_totals:
                _session_totals[k] += value.get(k, 0)
            if value.get("unknown"):
                _unknown_tests.append(report.nodeid.split("::")[-1])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    t = _session_totals
    if not t["checks"]:
        return
    line = (f"porcupine: {t['checks']} checks, {t['ok']} ok, {t['illegal']} illegal, "
            f"{t['unknown']} unknown (timed out, assumed ok)")
    if _unknown_tests:
        line += ": " + ", ".join(_unknown_tests)
    terminalreporter.write_line(line)
