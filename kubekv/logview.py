"""`kubekv logs`: pretty-print a debug log written by tester.dlog (what dslog does).

Usage:
    kubekv logs run.log                          # a colour per topic
    kubekv logs run.log --columns                # one column per peer
    kubekv logs run.log --just vote,leader       # only these topics
    kubekv logs run.log --ignore append,persist  # all topics but these
    KUBEKV_DEBUG=all python -m pytest ... 2>&1 | kubekv logs -

A line "001234 VOTE S2 granting vote to S0" is shown with its time, its topic in the topic's
colour and its message; with --columns the message goes in peer 2's column.  A line that is
not in that form (the tester's own output, a traceback) is shown as it is, across the width.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any, Iterable, TextIO

from tester import dlog

LINE = re.compile(r"^(\d+) ([A-Z]{2,5}) S(\S+) (.*)$")
COLOURS = {
    dlog.TIMER: "bright_black", dlog.VOTE: "bright_cyan", dlog.LEADER: "bright_green",
    dlog.TERM: "green", dlog.APPEND: "blue", dlog.COMMIT: "magenta", dlog.APPLY: "bright_magenta",
    dlog.PERSIST: "yellow", dlog.SNAPSHOT: "bright_yellow", dlog.RSM: "cyan", dlog.KV: "bright_blue",
    dlog.CLIENT: "white", dlog.TEST: "bold white", dlog.INFO: "white", dlog.WARN: "bright_red",
    dlog.ERROR: "bold red",
}
ROWS_PER_TABLE = 500  # --columns prints in chunks of this many lines, with fixed column widths


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("logs", help="pretty-print a per-peer debug log (KUBEKV_DEBUG)",
                       description=__doc__.split("\n\n", 2)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="the log (KUBEKV_DEBUG_FILE, a kept run's debug.log), or - for stdin")
    p.add_argument("--just", default="", metavar="TOPICS", help="only these topics (comma-separated)")
    p.add_argument("--ignore", default="", metavar="TOPICS", help="leave these topics out")
    p.add_argument("--columns", action="store_true", help="one column per peer")
    p.add_argument("--peers", type=int, default=None, help="number of columns (default: the peers seen)")
    return p


def parse(line: str) -> tuple[int, str, str, str] | None:
    """(ms, topic, peer, message) of a debug line, or None if it is not one."""
    m = LINE.match(line.rstrip("\n"))
    return (int(m.group(1)), m.group(2), m.group(3), m.group(4)) if m else None


def keep(topic: str, just: frozenset[str], ignore: frozenset[str]) -> bool:
    return (not just or topic in just) and topic not in ignore


def _peer_order(peer: str) -> tuple[int, Any]:
    return (0, int(peer)) if peer.isdigit() else (1, peer)


def render(lines: Iterable[str], out: Any, just: frozenset[str] = frozenset(),
           ignore: frozenset[str] = frozenset(), columns: bool = False, peers: int | None = None) -> int:
    """Print lines on the rich Console out; the number of debug lines shown."""
    from rich.table import Table
    from rich.text import Text

    lines = list(lines)
    parsed = [parse(ln) for ln in lines]
    shown = 0
    if not columns:
        for raw, p in zip(lines, parsed):
            if p is None:
                out.print(Text(raw.rstrip("\n")))
                continue
            ms, topic, peer, msg = p
            if not keep(topic, just, ignore):
                continue
            shown += 1
            out.print(Text.assemble((f"{ms:06d} ", "dim"), (f"{topic:<4} ", COLOURS.get(topic, "")),
                                    (f"S{peer} ", "bold"), (msg, COLOURS.get(topic, ""))))
        return shown
    seen = sorted({p[2] for p in parsed if p is not None}, key=_peer_order)
    if peers is not None:
        seen = sorted(set(seen) | {str(i) for i in range(peers)}, key=_peer_order)
    col = {peer: i for i, peer in enumerate(seen)}
    width = max(10, (out.width - 9) // max(1, len(seen)) - 1)
    table = None
    rows = 0

    def flush() -> None:
        nonlocal table, rows
        if table is not None and rows:
            out.print(table)
        table, rows = None, 0

    for raw, p in zip(lines, parsed):
        if p is None:
            flush()
            out.print(Text(raw.rstrip("\n")))
            continue
        ms, topic, peer, msg = p
        if not keep(topic, just, ignore):
            continue
        if table is None:
            table = Table("ms", *(f"S{s}" for s in seen), box=None, pad_edge=False, show_header=True)
            table.columns[0].width = 7
            for c in table.columns[1:]:
                c.width = width
        cells = [""] * len(seen)
        cells[col[peer]] = Text.assemble((f"{topic} ", COLOURS.get(topic, "")), (msg, COLOURS.get(topic, "")))
        table.add_row(Text(f"{ms:06d}", "dim"), *cells)
        rows += 1
        shown += 1
        if rows >= ROWS_PER_TABLE:
            flush()
    flush()
    return shown


def main(args: Any) -> int:
    from rich.console import Console

    try:
        just = dlog.parse_topics(args.just, "--just") if args.just else frozenset()
        ignore = dlog.parse_topics(args.ignore, "--ignore") if args.ignore else frozenset()
    except dlog.DebugConfigError as e:
        print(f"kubekv logs: {e}", file=sys.stderr)
        return 2
    try:
        f: TextIO = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")
    except OSError as e:
        print(f"kubekv logs: cannot read {args.file}: {e.strerror}; give a log written with "
              f"{dlog.FILE_ENV}=FILE (or - for stdin)", file=sys.stderr)
        return 2
    with f:
        render(f, Console(highlight=False), just, ignore, args.columns, args.peers)
    return 0
