"""Run lab tests many times in worker processes, keep what failed, and tabulate (dstest's job).

Usage:
    from kubekv import runs
    nodeids = runs.collect(["raft1", "-k", "3B"], cwd=".")
    results = runs.run_many(nodeids, repeat=10, workers=2, out_dir="kubekv-runs/x")
    print(runs.summary_rows(results))        # per test: failed, total, mean and std of seconds

Each run is one `python -m pytest <nodeid>` process of its own, pinned to one core (worker k
gets core k of those allowed), with its seeds fixed by the runner: LABRPC_SEED and
KUBEKV_NOISE_SEED in real time, KUBEKV_SIM_SEED under simulation.  So the replay line of a
failure is known even when the run hangs and is stopped.  A run writes into its own folder:
output.txt (everything it printed), junit.xml (pytest's verdict and the test's own time),
history.html (porcupine's view, if the test drew one) and debug.log (the per-peer debug log
when KUBEKV_DEBUG is set); the folder is kept for a failure (or for every run with keep_all)
and removed otherwise, and replay.txt in it holds the line that runs it again.
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Callable, Iterable

from labrpc.affinity import allowed_cores

# Environment the runner sets per run (the lab packages read these names).
LABRPC_SEED_ENV = "LABRPC_SEED"
NOISE_SEED_ENV = "KUBEKV_NOISE_SEED"
SIM_ENV = "KUBEKV_SIM"
SIM_SEED_ENV = "KUBEKV_SIM_SEED"
PIN_CORE_ENV = "KUBEKV_PIN_CORE"
VIS_FILE_ENV = "VIS_FILE"
DEBUG_FILE_ENV = "KUBEKV_DEBUG_FILE"
# A run that outlives this is stopped and counted as failed ("timeout"); the tester's own
# watchdog should fail a hung test well before.
DEFAULT_TIMEOUT_S = 600.0
# Seeds the runner draws are below this, so that replay lines stay short.
SEED_LIMIT = 10**9

PASSED, FAILED, TIMEOUT, ERROR, STOPPED = "passed", "failed", "timeout", "error", "stopped"


class RunsError(RuntimeError):
    """A selection that matches no test, or a folder that cannot hold the runs."""


@dataclass
class Run:
    """One run of one test."""

    nodeid: str
    index: int                       # 1-based, per test
    seed: int
    sim: bool = False
    status: str = ""                 # PASSED, FAILED, TIMEOUT, ERROR; STOPPED by Ctrl-C
    seconds: float = 0.0             # the test's own time (pytest's), else the process's
    message: str = ""                # the failure's first line
    folder: str = ""                 # kept folder ("" if removed)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, TIMEOUT, ERROR)

    @property
    def counted(self) -> bool:
        return self.status not in ("", STOPPED)

    def replay(self, cwd: str | None = None) -> str:
        """The shell line that runs this test again with this run's seeds."""
        line = " ".join([*(f"{k}={v}" for k, v in self.env.items()), "python", "-m", "pytest",
                         shlex.quote(self.nodeid)])
        return f"cd {shlex.quote(cwd)} && {line}" if cwd else line


def collect(selection: list[str], cwd: str = ".") -> list[str]:
    """The node ids pytest selects with these arguments (paths, -k EXPR, node ids) in cwd."""
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            *selection]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env=_child_env({"KUBEKV_SIM": ""}))
    ids = [line.strip() for line in proc.stdout.splitlines() if "::" in line and " " not in line.strip()]
    if not ids:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise RunsError(f"no test matches {' '.join(selection) or '(everything)'} in {os.path.abspath(cwd)}; "
                        f"give a test name or a -k expression such as 3B or TestBackup3B "
                        f"(pytest said: {tail or 'nothing'})")
    return ids


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (LABRPC_SEED_ENV, NOISE_SEED_ENV, SIM_ENV, SIM_SEED_ENV, PIN_CORE_ENV,
                        VIS_FILE_ENV, DEBUG_FILE_ENV, "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    env.update({k: v for k, v in extra.items() if v != ""})
    return env


def plan(nodeids: Iterable[str], repeat: int, seed: int | None = None, sim: bool = False) -> list[Run]:
    """The runs to make, interleaved (every test's first run, then every second, ...), with seeds.

    Under simulation run k of every test gets seed base+k-1, as `--count` does; in real time
    each run gets its own seed drawn from base."""
    ids = list(nodeids)
    base = seed if seed is not None else random.randrange(1, SEED_LIMIT)
    rng = random.Random(base)
    out = []
    for k in range(1, repeat + 1):
        for nodeid in ids:
            s = base + k - 1 if sim else rng.randrange(1, SEED_LIMIT)
            env = {SIM_ENV: "1", SIM_SEED_ENV: str(s)} if sim else {LABRPC_SEED_ENV: str(s), NOISE_SEED_ENV: str(s)}
            out.append(Run(nodeid, k, s, sim, env=env))
    return out


def _folder_name(nodeid: str) -> str:
    return nodeid.split("::")[-1].replace("/", "_").replace("[", "_").replace("]", "")


class Runner:
    """Runs planned runs on `workers` processes at a time; stop() ends them (Ctrl-C)."""

    def __init__(self, workers: int, out_dir: str, cwd: str = ".", timeout_s: float = DEFAULT_TIMEOUT_S,
                 keep_all: bool = False, debug: str = "") -> None:
        if workers < 1:
            raise RunsError(f"workers {workers}: give at least 1")
        self.workers = workers
        self.out_dir = os.path.abspath(out_dir)
        self.cwd = os.path.abspath(cwd)
        self.timeout_s = timeout_s
        self.keep_all = keep_all
        self.debug = debug
        self._cores = allowed_cores()
        self._slots = _Slots(workers)
        self._procs: dict[int, subprocess.Popen] = {}
        self._mu = threading.Lock()
        self._stopping = threading.Event()
        try:
            os.makedirs(self.out_dir, exist_ok=True)
        except OSError as e:
            raise RunsError(f"cannot create the runs folder {self.out_dir}: {e}; give another with --output") from e

    def stop(self) -> None:
        """Stop every run in progress (they count as STOPPED) and start no more."""
        self._stopping.set()
        with self._mu:
            procs = list(self._procs.values())
        for p in procs:
            _kill_group(p)

    def run_all(self, runs: list[Run], on_done: Callable[[Run], None] | None = None) -> list[Run]:
        """Make every run (until stop()); on_done(run) after each, in the calling thread's pool."""
        with concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="kubekv-run") as pool:
            futures = [pool.submit(self._run_one, r) for r in runs]
            try:
                for fut in concurrent.futures.as_completed(futures):
                    r = fut.result()
                    if on_done is not None:
                        on_done(r)
            except BaseException:
                self.stop()
                for f in futures:
                    f.cancel()
                raise
        return runs

    def _run_one(self, r: Run) -> Run:
        if self._stopping.is_set():
            r.status = STOPPED
            return r
        slot = self._slots.take()
        try:
            return self._execute(r, slot)
        finally:
            self._slots.give(slot)

    def _execute(self, r: Run, slot: int) -> Run:
        folder = os.path.join(self.out_dir, _folder_name(r.nodeid), str(r.index))
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        extra = dict(r.env)
        extra[VIS_FILE_ENV] = os.path.join(folder, "history.html")
        if self.debug:
            extra["KUBEKV_DEBUG"] = self.debug
            extra[DEBUG_FILE_ENV] = os.path.join(folder, "debug.log")
        if self._cores:
            extra[PIN_CORE_ENV] = str(self._cores[slot % len(self._cores)])
        junit = os.path.join(folder, "junit.xml")
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rfE", "-q",
                f"--junitxml={junit}", r.nodeid]
        with open(os.path.join(folder, "replay.txt"), "w", encoding="utf-8") as f:
            f.write(r.replay(self.cwd) + "\n")
        start = time.monotonic()
        with open(os.path.join(folder, "output.txt"), "w", encoding="utf-8") as out:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=_child_env(extra), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            with self._mu:
                self._procs[id(r)] = proc
            try:
                rc = proc.wait(self.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                rc = None
                proc.wait()
            finally:
                with self._mu:
                    self._procs.pop(id(r), None)
        wall = time.monotonic() - start
        if self._stopping.is_set() and rc != 0:
            r.status = STOPPED
        elif rc is None:
            r.status, r.message = TIMEOUT, f"stopped after {self.timeout_s:g} s (--timeout)"
        else:
            r.status, r.message = _verdict(rc, junit, os.path.join(folder, "output.txt"))
        r.seconds = _test_seconds(junit) or wall
        if r.failed or self.keep_all:
            r.folder = folder
        else:
            shutil.rmtree(folder, ignore_errors=True)
            _remove_empty_parent(folder)
        return r


class _Slots:
    """Worker slot numbers (each maps to a core); take() blocks until one is free."""

    def __init__(self, n: int) -> None:
        self._free = list(range(n))
        self._cond = threading.Condition()

    def take(self) -> int:
        with self._cond:
            while not self._free:
                self._cond.wait()
            return self._free.pop(0)

    def give(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._free.sort()
            self._cond.notify()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_empty_parent(folder: str) -> None:
    try:
        os.rmdir(os.path.dirname(folder))
    except OSError:
        pass


def _verdict(rc: int, junit: str, output: str) -> tuple[str, str]:
    """(status, first line of the failure) from pytest's exit code and junit report."""
    message = ""
    try:
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            for tag in ("failure", "error"):
                el = case.find(tag)
                if el is not None and not message:
                    lines = (el.get("message") or el.text or tag).strip().splitlines()
                    message = (lines[0] if lines else tag)[:200]
    except (OSError, ElementTree.ParseError):
        pass
    if rc == 0:
        return PASSED, ""
    if rc == 1:
        return FAILED, message or "failed"
    if rc == 5:
        return ERROR, "pytest collected no test (was the test renamed?)"
    if rc < 0:
        return ERROR, f"killed by signal {-rc}"
    if not message:
        try:
            with open(output, encoding="utf-8", errors="replace") as f:
                lines = [ln for ln in f.read().splitlines() if ln.strip()]
            message = lines[-1][:200] if lines else ""
        except OSError:
            pass
    return ERROR, message or f"pytest exit code {rc}"


def _test_seconds(junit: str) -> float:
    try:
        root = ElementTree.parse(junit).getroot()
        return sum(float(c.get("time", 0)) for c in root.iter("testcase"))
    except (OSError, ElementTree.ParseError, ValueError):
        return 0.0


@dataclass
class TestSummary:
    """The runs of one test, summed up."""

    nodeid: str
    total: int
    failed: int
    mean_s: float
    std_s: float
    failures: list[Run]

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]


def summarize(results: list[Run]) -> list[TestSummary]:
    """Per test (in first-seen order): counted runs, failures, mean and std of seconds."""
    by_test: dict[str, list[Run]] = {}
    for r in results:
        by_test.setdefault(r.nodeid, []).append(r)
    out = []
    for nodeid, rs in by_test.items():
        done = [r for r in rs if r.counted]
        secs = [r.seconds for r in done]
        out.append(TestSummary(nodeid, len(done), sum(r.failed for r in done),
                               statistics.fmean(secs) if secs else 0.0,
                               statistics.stdev(secs) if len(secs) > 1 else 0.0,
                               [r for r in done if r.failed]))
    return out


def mean_std(s: TestSummary) -> str:
    return f"{s.mean_s:.1f} ± {s.std_s:.1f}" if s.total else "-"
