"""`kubekv grade`: run each lab part's tests N times on a solution and give its points.

Usage:
    kubekv grade                                  # the solution here, every part, 5 runs each
    kubekv grade submissions/alice --parts 3A,3B --runs 10 --workers 2 --json alice.json
    kubekv grade DIR --points my-points.ini       # a teacher's own points table

The table has one row per test: part, test, passed/runs, seconds mean ± std, Go's seconds, and
points; then each part's total and the grand total.  A part's points (kubekv/points.ini, or
--points FILE) are shared equally among its tests, and a test earns its share only if every
run passed: a flaky test earns nothing, as a flaky solution would fail some grading run.
Exit status: 0 if every run passed, 1 otherwise, 2 for bad usage, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import sys
from typing import Any

from kubekv import flakes, runs
from kubekv.gotimes import GO_SECONDS, PARTS, part_of

DEFAULT_POINTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "points.ini")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    g = sub.add_parser("grade", help="run each part's lab tests N times on a solution; points per part",
                       description=__doc__.split("\n\n", 2)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("dir", nargs="?", default=".", help="the solution's folder (default .)")
    g.add_argument("--parts", default=",".join(PARTS), help="parts to grade (default all: 3A,...,4C)")
    flakes.add_run_options(g, runs_default=5)
    g.add_argument("--points", default=DEFAULT_POINTS, help="the points table (default kubekv/points.ini)")
    g.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return g


def read_points(path: str) -> dict[str, float]:
    """Points per part from an INI file's [points] section ("3A = 10")."""
    cp = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except OSError as e:
        raise runs.RunsError(f"--points {path}: {e.strerror}; give an INI file with a [points] section") from e
    if not cp.has_section("points"):
        raise runs.RunsError(f"--points {path}: no [points] section; write e.g. '[points]' then '3A = 10'")
    out = {}
    for key, value in cp.items("points"):
        part = key.upper()
        if part not in PARTS:
            raise runs.RunsError(f"--points {path}: '{key}' is not a part; parts are {', '.join(PARTS)}")
        try:
            out[part] = float(value)
        except ValueError:
            raise runs.RunsError(f"--points {path}: {key} = {value!r} is not a number") from None
    return out


def parse_parts(text: str) -> list[str]:
    parts = [p.strip().upper() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise runs.RunsError(f"--parts {text}: {', '.join(bad) or 'none given'}; parts are {', '.join(PARTS)}")
    return parts


def grade_rows(results: list[runs.Run], points: dict[str, float]) -> list[dict[str, Any]]:
    """One row per test: its part, runs, passes, seconds and the points it earned of its share."""
    summaries = runs.summarize(results)
    per_part: dict[str, int] = {}
    for s in summaries:
        per_part[part_of(s.name) or "?"] = per_part.get(part_of(s.name) or "?", 0) + 1
    rows = []
    for s in summaries:
        part = part_of(s.name) or "?"
        share = points.get(part, 0.0) / per_part[part]
        ok = s.total > 0 and s.failed == 0
        rows.append({"part": part, "test": s.name, "nodeid": s.nodeid, "runs": s.total,
                     "passed": s.total - s.failed, "mean_s": s.mean_s, "std_s": s.std_s,
                     "go_s": GO_SECONDS.get(s.name), "points": share if ok else 0.0, "of": share,
                     "replays": [r.replay() for r in s.failures]})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("part", "test", "passed", "seconds", "Go s", "points")
    t.columns[1].overflow = "fold"  # long test names wrap instead of being cut
    for part in PARTS + ("?",):
        mine = [r for r in rows if r["part"] == part]
        if not mine:
            continue
        for r in mine:
            passed = f"{r['passed']}/{r['runs']}"
            t.add_row(part, r["test"], passed if r["passed"] == r["runs"] else f"[red]{passed}[/]",
                      f"{r['mean_s']:.1f} ± {r['std_s']:.1f}",
                      "-" if r["go_s"] is None else f"{r['go_s']:.1f}", f"{r['points']:.1f}/{r['of']:.1f}")
        got, of = sum(r["points"] for r in mine), sum(r["of"] for r in mine)
        t.add_row("", f"[bold]{part} total[/]", "", "", "", f"[bold]{got:.1f}/{of:.1f}[/]", end_section=True)
    got, of = sum(r["points"] for r in rows), sum(r["of"] for r in rows)
    t.add_row("", "[bold]TOTAL[/]", "", "", "", f"[bold]{got:.1f}/{of:.1f}[/]")
    Console().print(t)


def main(args: Any) -> int:
    try:
        parts = parse_parts(args.parts)
        points = read_points(args.points)
        nodeids = runs.collect([d for d in flakes.LAB_DIRS if os.path.isdir(os.path.join(args.dir, d))]
                               + ["-k", " or ".join(parts)], cwd=args.dir)
    except runs.RunsError as e:
        print(f"kubekv grade: {e}", file=sys.stderr)
        return 2
    nodeids = [n for n in nodeids if part_of(n) in parts]
    results, interrupted, out_dir = flakes.execute(args, nodeids, "grade", f"kubekv grade {args.dir}")
    rows = grade_rows(results, points)
    print_table(rows)
    for r in rows:
        for line in r["replays"]:
            print(f"replay: cd {os.path.abspath(args.dir)} && {line}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"dir": os.path.abspath(args.dir), "runs": args.runs, "parts": parts,
                       "interrupted": interrupted, "kept": out_dir, "tests": rows,
                       "points": sum(r["points"] for r in rows), "of": sum(r["of"] for r in rows)}, f, indent=1)
    if interrupted:
        print("interrupted: the table holds the runs that finished", file=sys.stderr)
        return 130
    return 0 if all(r["passed"] == r["runs"] and r["runs"] for r in rows) else 1
