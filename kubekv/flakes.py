"""`kubekv test`: the flake hunter -- run matching lab tests many times, table the failures.

Usage:
    kubekv test 3B --runs 100 --workers 2             # every 3B test, 100 runs each
    kubekv test TestBackup3B TestFigure83C --runs 50  # names or -k words, joined with "or"
    kubekv test raft1/test_raft.py::TestBackup3B --sim --runs 200   # simulated, seeds 1..200
    kubekv test 3C --timeout 300 --keep-all --output runs/

A live progress bar counts runs and failures; the end is a table (test, failed, runs, seconds
mean ± std, Go's seconds) and one replay line per failed run.  Each failed run's folder under
--output (default kubekv-runs/<date-time>/) holds its output, replay line, porcupine view and
debug log.  Ctrl-C stops the runs in progress and prints the table of what finished.
Exit status: 0 if every run passed, 1 if one failed, 2 for bad usage, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from kubekv import runs
from kubekv.gotimes import GO_SECONDS

LAB_DIRS = ("raft1", "rsm", "kvraft1")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    t = sub.add_parser("test", help="run lab tests many times and table the failures (a flake hunter)",
                       description=__doc__.split("\n\n", 2)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("patterns", nargs="+", metavar="PATTERN",
                   help="a test name, a -k expression (3B, 'Backup and 3B') or a pytest node id")
    add_run_options(t, runs_default=10)
    t.add_argument("--sim", action="store_true", help="simulated (KUBEKV_SIM=1): run k has seed SEED+k-1")
    t.add_argument("--seed", type=int, default=None, help="base seed (default: random, printed)")
    t.add_argument("--keep-all", action="store_true", help="keep the folders of passing runs too")
    t.add_argument("--dir", default=".", help="the solution's folder, where pytest runs (default .)")
    return t


def add_run_options(p: argparse.ArgumentParser, runs_default: int) -> None:
    p.add_argument("--runs", type=int, default=runs_default, help=f"runs of each test (default {runs_default})")
    p.add_argument("--workers", type=int, default=2, help="runs at a time, one core each (default 2)")
    p.add_argument("--timeout", type=float, default=runs.DEFAULT_TIMEOUT_S,
                   help=f"seconds before a run is stopped and failed (default {runs.DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--output", default=None, help="where failed runs are kept (default kubekv-runs/<date-time>)")
    p.add_argument("--debug", default="", metavar="TOPICS",
                   help="turn on the debug log (KUBEKV_DEBUG=TOPICS, e.g. all or vote,append) in each run")


def run_options_problem(args: Any) -> str | None:
    """What is wrong with --runs/--workers/--timeout/--dir, naming the fix; None if nothing."""
    if args.runs < 1:
        return f"--runs {args.runs}: give at least 1 run"
    if args.workers < 1:
        return f"--workers {args.workers}: give at least 1 worker"
    if not args.timeout > 0:
        return f"--timeout {args.timeout:g}: give a positive number of seconds"
    if not os.path.isdir(args.dir):
        return f"--dir {args.dir}: no such folder; give the folder that holds the solution (raft1/, rsm/, ...)"
    return None


def selection(patterns: list[str], folder: str) -> list[str]:
    """pytest arguments for the patterns: node ids and paths as they are, words joined into -k."""
    paths = [p for p in patterns if "::" in p or "/" in p or p.endswith(".py")]
    words = [p for p in patterns if p not in paths]
    args = list(paths)
    if words:
        if not paths:
            args += [d for d in LAB_DIRS if os.path.isdir(os.path.join(folder, d))]
        args += ["-k", " or ".join(f"({w})" if " " in w else w for w in words)]
    return args


def default_output(kind: str) -> str:
    return os.path.join(f"kubekv-{kind}", time.strftime("%Y%m%d-%H%M%S"))


def execute(args: Any, nodeids: list[str], kind: str, title: str) -> tuple[list[runs.Run], bool, str]:
    """Run every node id args.runs times with a live progress bar; (results, interrupted, out_dir)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    out_dir = args.output or os.path.join(args.dir, default_output(kind))
    planned = runs.plan(nodeids, args.runs, getattr(args, "seed", None), getattr(args, "sim", False))
    base = planned[0].seed if getattr(args, "sim", False) else None
    runner = runs.Runner(args.workers, out_dir, cwd=args.dir, timeout_s=args.timeout,
                         keep_all=getattr(args, "keep_all", False), debug=args.debug)
    seed_note = f", seeds {base}..{base + args.runs - 1}" if base is not None else ""
    console.print(f"{title}: {len(nodeids)} test(s) × {args.runs} run(s), {args.workers} worker(s)"
                  f"{seed_note}; failed runs kept in {out_dir}")
    failed = 0
    interrupted = False
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("runs", total=len(planned), failed=0)

        def done(r: runs.Run) -> None:
            nonlocal failed
            if r.failed:
                failed += 1
                progress.console.print(f"[red]FAIL[/] {r.nodeid} run {r.index}: {r.message}")
            progress.update(task, advance=1, failed=failed)

        try:
            runner.run_all(planned, done)
        except KeyboardInterrupt:
            interrupted = True
            runner.stop()
    return planned, interrupted, out_dir


def table(summaries: list[runs.TestSummary], extra: list[tuple[str, Any]] | None = None) -> Any:
    """A rich Table: test, failed, runs, seconds mean ± std, Go's seconds (+ extra columns)."""
    from rich.table import Table

    t = Table("test", "failed", "runs", "seconds", "Go s", *(name for name, _ in extra or []))
    t.columns[0].overflow = "fold"  # long test names wrap instead of being cut
    for s in summaries:
        go = GO_SECONDS.get(s.name)
        cells = [s.name, f"[red]{s.failed}[/]" if s.failed else "0", str(s.total), runs.mean_std(s),
                 f"{go:.1f}" if go is not None else "-"]
        cells += [str(fn(s)) for _, fn in extra or []]
        t.add_row(*cells)
    return t


def report(results: list[runs.Run], interrupted: bool, cwd: str) -> int:
    """Print the table and the replay lines; the exit status."""
    from rich.console import Console

    console = Console()
    summaries = runs.summarize(results)
    console.print(table(summaries))
    failures = [r for s in summaries for r in s.failures]
    for r in failures:
        console.print(f"replay ({r.nodeid.split('::')[-1]} run {r.index}, kept in {r.folder}):", highlight=False)
        console.print(f"  {r.replay(os.path.abspath(cwd))}", highlight=False, soft_wrap=True)
    total = sum(s.total for s in summaries)
    console.print(f"{sum(s.failed for s in summaries)} of {total} run(s) failed"
                  + (" (interrupted: the table holds the runs that finished)" if interrupted else ""))
    if interrupted:
        return 130
    return 1 if failures else 0


def main(args: Any) -> int:
    try:
        nodeids = runs.collect(selection(args.patterns, args.dir), cwd=args.dir)
    except runs.RunsError as e:
        print(f"kubekv test: {e}", file=sys.stderr)
        return 2
    results, interrupted, _ = execute(args, nodeids, "runs", "kubekv test")
    return report(results, interrupted, args.dir)
