"""Measure how many mutants (tests/mutants/*.py) the lab tests kill, in real time or simulated.

Usage (from the repository root):
    python -m tests.mutants.run                          # every mutant, its part's tests once, real time
    python -m tests.mutants.run --sim --seeds 10         # simulated, seeds 1..10 (--seed-base 1)
    python -m tests.mutants.run --sim --scope suite --seeds 13 --workers 2 --budget-s 600
                                                         # a simulated grading run of the whole suite
    python -m tests.mutants.run --sim --seeds 50 raft_figure8_commit rsm_no_monitor
    python -m tests.mutants.run --parts 3A,3B --budget-s 600 --json out.json
    python -m tests.mutants.run --reference --sim        # no mutant: the same commands must pass
    python -m tests.mutants.run --list

For each mutant one subprocess runs `pytest -p tests.mutants.plugin -x` with KUBEKV_MUTANT=<name>:
with --scope part (the default) on its part's test file(s) with `-k <PART>`; with --scope suite
on every lab test that runs the mutated module (a Raft mutant meets 3A..4C, as a student's
solution does in a grading run).  With --sim also KUBEKV_SIM=1, KUBEKV_SIM_SEED=<base> and
`--count N --repeat-scope session`, so the tests run with seed base, then base+1, ... and -x
stops at the first failure: "seeds to first kill" is that failure's repetition.  --workers N
spreads each run over N pytest-xdist workers.

A mutant that no test can kill says why in UNREACHABLE (an equivalent mutant, or a bug the Go
tests' steps cannot reach); it is run unless --skip-unreachable, and it is counted apart: the
kill rate is over the others.  The
failure and its seed come from KUBEKV_SIM_REPORT (labsim's one JSON line per test), else from
the run's own output.  A test that prints the tester's "Fatal:" line counts as a kill at once:
the process gets FATAL_GRACE_S to finish and is then stopped (under labsim a failure in a
helper thread may not end a test whose thread waits with no timeout).  --budget-s bounds each
mutant's run; a run stopped by it is "budget" (not killed within the budget).  Output of each
run goes to <log-dir>/<name>.log.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from kubekv.gotimes import PARTS
from tests.mutants import REPO
from tests.mutants.plugin import MUTANT_ENV, MUTANTS, load, mutated_path

PART_TESTS = {
    "3A": ["raft1/test_raft.py"], "3B": ["raft1/test_raft.py"], "3C": ["raft1/test_raft.py"],
    "3D": ["raft1/test_raft.py"], "4A": ["rsm/test_rsm.py"], "4B": ["kvraft1/test_kvraft.py"],
    "4C": ["rsm/test_rsm.py", "kvraft1/test_kvraft.py"],
}
assert tuple(PART_TESTS) == PARTS, "PART_TESTS must name kubekv.gotimes.PARTS, in order"
# The lab test files that run each mutable module (rsm runs Raft, kvraft runs rsm).
SUITE_TESTS = {
    "raft1/raft.py": ["raft1/test_raft.py", "rsm/test_rsm.py", "kvraft1/test_kvraft.py"],
    "rsm/rsm.py": ["rsm/test_rsm.py", "kvraft1/test_kvraft.py"],
    "kvraft1/server.py": ["kvraft1/test_kvraft.py"],
    "kvraft1/client.py": ["kvraft1/test_kvraft.py"],
}
REFERENCE = "(reference)"
FATAL_GRACE_S = 10.0
_NODEID = re.compile(r"^(\S+\.py::\w+(?:\[(\d+)-(\d+)\])?)")
_FAILED = re.compile(r"^(?:\[gw\d+\] (?:\[ *\d+%\] )?)?(?:FAILED|ERROR) (\S+\.py::\S+)")
_REPLAY_SEED = re.compile(r"KUBEKV_SIM_SEED=(\d+)")


@dataclass
class Result:
    mutant: str
    part: str
    status: str = "survived"       # killed, survived, budget, error
    test: str = ""                 # the first failing test (nodeid, repetition suffix dropped)
    seed: int | None = None        # its seed (--sim)
    repetition: int | None = None  # 1-based: seeds run up to and including the kill (--sim)
    seconds: float = 0.0
    unreachable: str = ""          # the mutant's UNREACHABLE: why no test can kill it
    tests_run: int = 0             # tests that reported (with --sim: labsim's report lines)
    detail: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.status == "killed"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.mutants.run",
                                description="Run each mutant's part's tests; report which mutants they kill.")
    p.add_argument("names", nargs="*", help="mutants to run (default: all)")
    p.add_argument("--sim", action="store_true", help="simulated (KUBEKV_SIM=1), --seeds seeds per mutant")
    p.add_argument("--seeds", type=int, default=None, help="seeds per mutant with --sim (default 10)")
    p.add_argument("--seed-base", type=int, default=1, help="first seed (default 1)")
    p.add_argument("--budget-s", type=float, default=None, help="stop a mutant's run after this many seconds")
    p.add_argument("--scope", choices=("part", "suite"), default="part",
                   help="part: the tests of the mutant's PART; suite: every lab test that runs its module")
    p.add_argument("--workers", type=int, default=1, help="pytest-xdist workers per run (default 1: none)")
    p.add_argument("--skip-unreachable", action="store_true", help="do not run mutants marked UNREACHABLE")
    p.add_argument("--parts", default="", help="only mutants of these parts, e.g. 3A,3B")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--log-dir", default=None, help="where each run's output goes (default: a temp dir)")
    p.add_argument("--reference", action="store_true",
                   help="run the reference (no mutant) with the same command for each selected part")
    p.add_argument("--list", action="store_true", help="list the selected mutants and exit")
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = 10 if args.sim else 1
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.seeds > 1 and not args.sim:
        p.error("--seeds > 1 needs --sim (a real-time run is one run)")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    args.parts = [s.strip().upper() for s in args.parts.split(",") if s.strip()]
    unknown = [s for s in args.parts if s not in PART_TESTS]
    if unknown:
        p.error(f"unknown part(s) {', '.join(unknown)}; parts are {', '.join(PARTS)}")
    unknown = [n for n in args.names if n not in MUTANTS]
    if unknown:
        p.error(f"unknown mutant(s) {', '.join(unknown)}; see --list")
    return args


def part_of(name: str) -> str:
    part = getattr(load(name), "PART", None)
    if part not in PART_TESTS:
        raise ValueError(f"mutant {name}: PART = {part!r}, want one of {', '.join(PARTS)}")
    return part


def select(names: Iterable[str], parts: Iterable[str]) -> list[tuple[str, str]]:
    """(mutant, part) for the named mutants (all if none), kept to the given parts (all if none)."""
    parts = list(parts)
    chosen = list(names) or list(MUTANTS)
    picked = [(n, part_of(n)) for n in chosen]
    return [(n, p) for n, p in picked if not parts or p in parts]


def unreachable(name: str) -> str:
    """Why mutant name cannot be killed by any lab test ("" if it should be)."""
    return getattr(load(name), "UNREACHABLE", "")


def test_files(mutant: str | None, part: str, scope: str) -> list[str]:
    """The pytest arguments that select the tests of one run."""
    if scope == "part":
        return [*PART_TESTS[part], "-k", part]
    if mutant is None:  # the reference: the whole suite
        return sorted({f for files in PART_TESTS.values() for f in files})
    return list(SUITE_TESTS[mutated_path(load(mutant))])


def command(mutant: str | None, part: str, sim: bool, seeds: int, seed_base: int,
            report: str | None = None, scope: str = "part",
            workers: int = 1) -> tuple[list[str], dict[str, str]]:
    """The pytest command line and the environment changes for one mutant's (or the reference's) run."""
    argv = [sys.executable, "-m", "pytest", "-p", "tests.mutants.plugin", "-p", "no:cacheprovider",
            "-x", "-v", "-s", "-rfE", *test_files(mutant, part, scope)]
    if workers > 1:
        argv += ["-n", str(workers)]
    env = {}
    if mutant is not None:
        env[MUTANT_ENV] = mutant
    if sim:
        env.update(KUBEKV_SIM="1", KUBEKV_SIM_SEED=str(seed_base), PYTHONHASHSEED="0")
        if report:
            env["KUBEKV_SIM_REPORT"] = report
        if seeds > 1:
            argv += ["--count", str(seeds), "--repeat-scope", "session"]
    return argv, env


def _strip_repetition(nodeid: str) -> str:
    return re.sub(r"\[\d+-\d+\]$", "", nodeid)


def run_one(mutant: str | None, part: str, sim: bool, seeds: int, seed_base: int,
            budget_s: float | None, log_dir: str, scope: str = "part", workers: int = 1) -> Result:
    name = mutant or REFERENCE
    log_path = os.path.join(log_dir, f"{mutant or 'reference-' + part}.log")
    report = os.path.join(log_dir, f"{mutant or 'reference-' + part}.jsonl") if sim else None
    if report and os.path.exists(report):
        os.remove(report)
    argv, extra = command(mutant, part, sim, seeds, seed_base, report, scope, workers)
    env = {k: v for k, v in os.environ.items()
           if k not in (MUTANT_ENV, "KUBEKV_SIM", "KUBEKV_SIM_SEED", "KUBEKV_SIM_REPORT")}
    env.update(extra)
    res = Result(name, part, command=[f"{k}={v}" for k, v in extra.items()] + argv[1:],
                 unreachable=unreachable(mutant) if mutant else "")
    start = time.monotonic()
    seen: dict[str, Any] = {"fatal_at": None}
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", bufsize=1, start_new_session=True)
        reader = threading.Thread(target=_read_output, args=(proc, log, res, seen), daemon=True)
        reader.start()
        stopped = ""
        while proc.poll() is None:
            time.sleep(0.2)
            now = time.monotonic()
            if seen["fatal_at"] is None and report and _reports_failure(report):
                seen["fatal_at"] = now  # -x under xdist waits for the other workers' tests
            if seen["fatal_at"] is not None and now - seen["fatal_at"] > FATAL_GRACE_S:
                stopped = "stopped after the tester's Fatal"
            elif budget_s is not None and now - start > budget_s:
                stopped = "budget"
            if stopped:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        rc = proc.wait()
        reader.join()
    res.seconds = time.monotonic() - start
    with open(log_path, encoding="utf-8", errors="replace") as f:
        output = f.read()
    _classify(res, rc, stopped, output, report, seed_base)
    return res


def _reports_failure(report: str) -> bool:
    """Does labsim's report (one JSON line per test) hold a failed test yet?"""
    try:
        with open(report, encoding="utf-8") as f:
            return '"outcome": "failed"' in f.read()
    except OSError:
        return False


def _read_output(proc: subprocess.Popen, log: Any, res: Result, seen: dict[str, Any]) -> None:
    """Copy the run's output to its log, noting the running test and the first "Fatal:" line."""
    current = ""
    for line in proc.stdout:  # type: ignore[union-attr]
        log.write(line)
        m = _NODEID.match(line)
        if m:
            current = m.group(1)
        if line.startswith("Fatal: ") and seen["fatal_at"] is None:
            seen["fatal_at"] = time.monotonic()
            res.status, res.test, res.detail = "killed", current, line[len("Fatal: "):].strip()[:200]


def _classify(res: Result, rc: int, stopped: str, output: str, report: str | None, seed_base: int) -> None:
    """Fill in status, failing test and seed from the exit code, labsim's report and the output."""
    failed = [m.group(1) for m in map(_FAILED.match, output.splitlines()) if m]
    first_failed = None
    if report and os.path.exists(report):
        with open(report, encoding="utf-8") as f:
            entries = [json.loads(line) for line in f if line.strip()]
        res.tests_run = len(entries)
        first_failed = next((e for e in entries if e.get("outcome") == "failed"), None)
    if first_failed is not None:
        res.status, res.test, res.seed = "killed", first_failed["nodeid"], first_failed.get("seed")
    elif failed:
        res.status, res.test = "killed", failed[0]
    elif res.status == "killed":
        pass  # a Fatal line, and the run was stopped (or ended) without a report of it
    elif stopped == "budget":
        res.status, res.detail = "budget", f"no failure within {res.seconds:.0f} s"
        if res.tests_run:
            res.detail += f" ({res.tests_run} tests run)"
    elif rc == 0:
        res.status = "survived"
    else:
        res.status, res.detail = "error", f"pytest exit code {rc}" + (f" ({stopped})" if stopped else "")
        tail = [line for line in output.splitlines() if line.strip()][-3:]
        res.detail += ": " + " | ".join(tail)[:300]
    if res.status == "killed":
        m = re.search(r"\[(\d+)-\d+\]$", res.test)
        if m:
            res.repetition = int(m.group(1))
        res.test = _strip_repetition(res.test)
        if res.seed is None and res.command and any(c.startswith("KUBEKV_SIM=") for c in res.command):
            seeds = _REPLAY_SEED.findall(output)
            if seeds:
                res.seed = int(seeds[-1])
            elif res.repetition is not None:
                res.seed = seed_base + res.repetition - 1
            else:
                res.seed = seed_base
        if res.seed is not None and res.repetition is None:
            res.repetition = res.seed - seed_base + 1


def table(results: list[Result], sim: bool) -> str:
    headers = ["mutant", "part", "killed?", "by test", "seed" if sim else "", "seconds"]
    rows = []
    for r in results:
        status = "yes" if r.killed else ("no" if r.status == "survived" else r.status)
        if r.unreachable:
            status += " (unreachable)"
        seed = "" if r.seed is None else f"{r.seed} (#{r.repetition})"
        rows.append([r.mutant, r.part, status, r.test.split("::")[-1], seed if sim else "", f"{r.seconds:.1f}"])
    if not sim:
        headers.pop(4)
        rows = [row[:4] + row[5:] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)
    t = Table(*headers)
    for row in rows:
        t.add_row(*row)
    buf = io.StringIO()
    Console(file=buf, width=160, color_system=None).print(t)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = select(args.names, args.parts)
    if args.list:
        for name, part in selected:
            doc = (load(name).__doc__ or "").splitlines()[0]
            print(f"{name:40} {part}  {doc}")
        return 0
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="kubekv-mutants-")
    os.makedirs(log_dir, exist_ok=True)
    if args.reference:
        jobs = [(None, p) for p in (args.parts or sorted({p for _, p in selected}))]
        if args.scope == "suite":
            jobs = [(None, "all")]
    else:
        jobs = [(n, p) for n, p in selected if not (args.skip_unreachable and unreachable(n))]
    mode = (f"simulated, seeds {args.seed_base}..{args.seed_base + args.seeds - 1}" if args.sim
            else "real time, one run")
    print(f"{len(jobs)} run(s), {mode}; logs in {log_dir}", flush=True)
    results = []
    start = time.monotonic()
    for mutant, part in jobs:
        r = run_one(mutant, part, args.sim, args.seeds, args.seed_base, args.budget_s, log_dir,
                    args.scope, args.workers)
        results.append(r)
        seed = f" seed {r.seed}" if r.seed is not None else ""
        print(f"  {r.mutant:40} {part}  {r.status:8} {r.test.split('::')[-1]}{seed} "
              f"{r.seconds:.1f}s {r.detail[:100]}", flush=True)
    wall = time.monotonic() - start
    print()
    print(table(results, args.sim))
    killed = sum(r.killed for r in results)
    if args.reference:
        print(f"reference: {killed} false kill(s) in {len(results)} run(s), "
              f"{sum(r.status == 'error' for r in results)} error(s); {wall:.0f} s")
    else:
        counted = [r for r in results if not r.unreachable]
        killed = sum(r.killed for r in counted)
        marked = len(results) - len(counted)
        rate = f" ({100 * killed / len(counted):.0f}%)" if counted else ""
        print(f"killed {killed}/{len(counted)}{rate}"
              + (f"; {marked} marked UNREACHABLE not counted "
                 f"({sum(r.killed for r in results if r.unreachable)} of them killed)" if marked else "")
              + f"; {wall:.0f} s wall time")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"mode": mode, "sim": args.sim, "seeds": args.seeds, "seed_base": args.seed_base,
                       "reference": args.reference, "wall_s": wall,
                       "results": [asdict(r) | {"killed": r.killed} for r in results]}, f, indent=1)
    if args.reference:
        return 1 if killed or any(r.status != "survived" for r in results) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
