"""pytest hooks that run each test under the simulator when KUBEKV_SIM=1.

Usage (the root conftest.py installs labsim before any lab import and loads this plugin):
    KUBEKV_SIM=1 python -m pytest raft1 -k 3A              # a fresh random seed per test
    KUBEKV_SIM=1 KUBEKV_SIM_SEED=7 python -m pytest ...    # every test with seed 7
    KUBEKV_SIM=1 KUBEKV_SIM_SEED=1 python -m pytest ... --count 100   # repetition k: seed k
    KUBEKV_SIM_REPORT=sim.jsonl ...                        # one JSON line per test as well

Each test's body runs as simulated thread 0; its report gets a section holding one line,
    labsim: seed=7 trace=3f9c2a11b0de virtual=12.345s points=81234 switches=40210
and the session ends with those lines (or, past SUMMARY_LINES tests, with a count per
outcome). A failure's replay line carries KUBEKV_SIM=1 KUBEKV_SIM_SEED=<its seed>.

String hashing must not vary between runs (a set of names iterates in hash order), so a
simulating pytest started without PYTHONHASHSEED restarts itself once with PYTHONHASHSEED=0.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import pytest

import labsim
from labsim import core

REPORT_ENV = "KUBEKV_SIM_REPORT"
LABRPC_SEED_ENV = "LABRPC_SEED"
SUMMARY_LINES = 100
_KEY = "kubekv_labsim"
_results: list[tuple[str, str, dict[str, Any]]] = []


def _base_seed() -> int | None:
    raw = os.environ.get(labsim.SEED_ENV, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{labsim.SEED_ENV}={raw!r}: want an integer seed") from None


def _restart_for_hash_seed(config: Any) -> None:
    if os.environ.get("PYTHONHASHSEED", "").isdigit():
        return
    argv = list(getattr(sys, "orig_argv", []))
    runs_pytest = (argv[1:3] == ["-m", "pytest"]
                   or (len(argv) > 1 and os.path.basename(argv[1]) in ("pytest", "py.test")))
    if not runs_pytest:
        print("labsim: set PYTHONHASHSEED=0 for runs that repeat exactly (string hashing is "
              "randomized per process)", file=sys.stderr)
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + argv[1:])


_is_xdist_worker = False


def pytest_configure(config: Any) -> None:
    global _is_xdist_worker
    _is_xdist_worker = hasattr(config, "workerinput")  # the controller collects the reports
    if not labsim.enabled():
        return
    _restart_for_hash_seed(config)
    _base_seed()  # a bad seed is a usage error before anything runs
    labsim.install()


def pytest_report_header(config: Any) -> str | None:
    if not labsim.enabled():
        return None
    base = _base_seed()
    seeds = f"seed {base} (+k for repetition k)" if base is not None else "a random seed per test"
    return (f"labsim: simulation on ({labsim.ENABLE_ENV}=1): one thread at a time, virtual time, "
            f"{seeds}, {core.TICK_S * 1e6:g} us per scheduling point")


def seed_for(item: Any) -> int:
    """The test's seed: KUBEKV_SIM_SEED (+ pytest-repeat's repetition index), else random."""
    base = _base_seed()
    if base is None:
        return int.from_bytes(core._real_urandom(4), "little")
    callspec = getattr(item, "callspec", None)
    step = callspec.params.get("__pytest_repeat_step_number", 0) if callspec is not None else 0
    return base + step


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: Any):
    if not labsim.enabled():
        yield
        return
    seed = seed_for(pyfuncitem)
    user_labrpc_seed = os.environ.get(LABRPC_SEED_ENV)
    if user_labrpc_seed is None:
        os.environ[LABRPC_SEED_ENV] = str(random.Random(f"labsim/{seed}/labrpc").getrandbits(62))
    random.seed(f"labsim/{seed}/random")
    pyfuncitem._labsim_seed = seed
    labsim.begin(seed)
    try:
        yield
    finally:
        figures = labsim.end()
        if user_labrpc_seed is None:
            os.environ.pop(LABRPC_SEED_ENV, None)
        random.seed()
        pyfuncitem._labsim_figures = figures


def summary_line(figures: dict[str, Any]) -> str:
    """The one line a test prints: its seed and its trace hash, then its figures."""
    return (f"labsim: seed={figures['seed']} trace={figures['trace']} "
            f"virtual={figures['virtual_s']:.3f}s points={figures['points']} "
            f"switches={figures['switches']}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any):
    outcome = yield
    if call.when != "call":
        return
    rep = outcome.get_result()
    figures = getattr(item, "_labsim_figures", None)
    if figures is None:
        return
    rep.sections.append(("labsim", summary_line(figures)))
    rep.user_properties.append((_KEY, figures))


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "call" or _is_xdist_worker:
        return
    for key, value in getattr(report, "user_properties", []):
        if key == _KEY:
            _results.append((report.nodeid, report.outcome, value))
            path = os.environ.get(REPORT_ENV)
            if path:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"nodeid": report.nodeid, "outcome": report.outcome,
                                        "duration_s": report.duration, **value}) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    tr = terminalreporter
    tr.section("labsim: seed and trace of each simulated test")
    if len(_results) <= SUMMARY_LINES:
        for nodeid, outcome, figures in _results:
            tr.write_line(f"{nodeid} {outcome}: {summary_line(figures)}")
    else:
        counts: dict[str, int] = {}
        for _, outcome, _f in _results:
            counts[outcome] = counts.get(outcome, 0) + 1
        tr.write_line(f"{len(_results)} simulated tests: "
                      + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                      + f" (set {REPORT_ENV}=FILE for one line each)")
    virtual = sum(f["virtual_s"] for _, _, f in _results)
    tr.write_line(f"labsim: {len(_results)} tests, {virtual:.1f} virtual seconds in all")
