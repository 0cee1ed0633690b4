"""pytest hooks for the tester: porcupine summary line and per-test T clean-up.

Usage, in the project's conftest.py:
    pytest_plugins = ["tester.pytest_plugin"]

What it does:
- after each test, ends the test's tester.T if the test left it running (e.g. a test that
  failed before making a Config), so its failure interrupt handler is removed;
- on a failure, adds a "replay" section with a ready-to-run line (the test's LABRPC_SEED and
  schedule-noise seed, `python -m pytest <test>`), and lists those lines again at the end;
- prunes thread bootstrap and tester frames from a failing test's traceback, so it ends in
  the test's or the lab's own code;
- with the debug log on (KUBEKV_DEBUG, tester/dlog.py), ends a failure's report with the
  last lines each peer logged in that test;
- counts the porcupine checks of every test (works with pytest-xdist: each test's counts travel
  in its report) and prints at the end of the session, for example
      porcupine: 60 checks, 59 ok, 0 illegal, 1 unknown (timed out, assumed ok): TestSnapshotUnreliable4C
  Unknown results pass the test, as in Go; this line is how a run shows they happened.
"""

from __future__ import annotations

import re
import shlex
import sys
from typing import Any

import pytest

import labrpc
import labsim
from tester import dlog, failure, stats

_KEY = "kubekv_porcupine"
_session_totals = {"checks": 0, "ok": 0, "illegal": 0, "unknown": 0}
_unknown_tests: list[str] = []
_REPLAY_KEY = "kubekv_replay"
_replays: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any):
    before = stats.snapshot()
    outcome = yield
    if outcome.excinfo is not None:
        failure.prune_traceback(outcome.excinfo[2])
    after = stats.snapshot()
    delta = {k: after[k] - before[k] for k in after}
    if delta["checks"]:
        item.user_properties.append((_KEY, delta))


def pytest_runtest_teardown(item: Any) -> None:
    failure.finish_current_test()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: Any):
    item._kubekv_networks = labrpc.networks_made()
    dlog.reset_tails()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("call", "teardown"):
        line = replay_line(item)
        tails = dlog.tails()
        if tails:
            rep.sections.append((f"debug log: the last {dlog.TAIL_LINES} lines of each peer",
                                 "\n".join(ln for lines in tails.values() for ln in lines)))
        rep.sections.append(("replay", line))
        rep.user_properties.append((_REPLAY_KEY, line))


def replay_line(item: Any) -> str:
    """A shell line that runs this test again with its network's and its noise's seeds."""
    nodeid = re.sub(r"\[\d+-\d+\]$", "", item.nodeid)
    sim_seed = getattr(item, "_labsim_seed", None)
    if sim_seed is not None:  # the simulation's seed fixes everything, the network's too
        return " ".join([f"{labsim.ENABLE_ENV}=1", f"{labsim.SEED_ENV}={sim_seed}", "python", "-m",
                         "pytest", shlex.quote(nodeid)])
    env = []
    mark = getattr(item, "_kubekv_networks", None)
    seeds = labrpc.seeds_since(mark) if mark is not None else []
    if len(seeds) == 1:
        env.append(f"LABRPC_SEED={seeds[0]}")
    noise = sys.modules.get("tester.noise")
    if noise is not None and noise.installed() and noise.seed() is not None:
        env.append(f"{noise.SEED_ENV}={noise.seed()}")
        if noise.max_ms() != noise.DEFAULT_MAX_MS:
            env.append(f"{noise.MAX_MS_ENV}={noise.max_ms():g}")
    # pytest-repeat's "[3-10]" names a repetition, not a test: the replay runs the test once.
    return " ".join(env + ["python", "-m", "pytest", shlex.quote(nodeid)])


def pytest_runtest_logreport(report: Any) -> None:
    for key, value in getattr(report, "user_properties", []):
        if key == _REPLAY_KEY and report.failed and value not in _replays:
            _replays.append(value)
    if report.when != "call":
        return
    for key, value in getattr(report, "user_properties", []):
        if key == _KEY:
            for k in _session_totals:
                _session_totals[k] += value.get(k, 0)
            if value.get("unknown"):
                _unknown_tests.append(report.nodeid.split("::")[-1])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _replays:
        if labsim.enabled():
            terminalreporter.section("replay a failure (simulated: the same seed runs the same "
                                     "schedule)")
        else:
            terminalreporter.section("replay a failure (same network and noise seeds; thread "
                                     "timing still varies)")
        for line in _replays:
            terminalreporter.write_line(line)
    t = _session_totals
    if not t["checks"]:
        return
    line = (f"porcupine: {t['checks']} checks, {t['ok']} ok, {t['illegal']} illegal, "
            f"{t['unknown']} unknown (timed out, assumed ok)")
    if _unknown_tests:
        line += ": " + ", ".join(_unknown_tests)
    terminalreporter.write_line(line)
