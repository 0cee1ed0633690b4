"""labgob micro-benchmark: dumps/loads of a typical AppendEntriesArgs carrying 10 entries.

Usage:
    python -m labgob.bench                 # best of 5 runs of 20000 round trips each
    python -m labgob.bench -n 50000 --repeat 3

Two payloads: entries with int commands (Raft's own tests) and entries with an rsm-style
Op(Me, Id, Req=PutArgs(...)) command (the key/value tests). The classes are defined here,
shaped like raft1's and kvraft1's, so the figures do not move when those modules change.
"""

from __future__ import annotations

import argparse
import dataclasses
import timeit
from typing import Any

import labgob


@dataclasses.dataclass
class LogEntry:
    Term: int = 0
    Command: Any = None


@dataclasses.dataclass
class AppendEntriesArgs:
    Term: int = 0
    LeaderId: int = 0
    PrevLogIndex: int = 0
    PrevLogTerm: int = 0
    Entries: list = dataclasses.field(default_factory=list)
    LeaderCommit: int = 0


@dataclasses.dataclass
class PutArgs:
    Key: str = ""
    Value: str = ""
    Version: int = 0


@dataclasses.dataclass
class Op:
    Me: int = 0
    Id: int = 0
    Req: Any = None


for _cls in (LogEntry, AppendEntriesArgs, PutArgs, Op):
    labgob.RegisterName(f"labgob_bench.{_cls.__name__}", _cls)


def payloads() -> dict[str, AppendEntriesArgs]:
    """The benchmarked values, by name."""
    ints = [LogEntry(7, 1000 + i) for i in range(10)]
    ops = [LogEntry(7, Op(1, 500 + i, PutArgs(f"k{i}", "v" * 20, i))) for i in range(10)]
    return {name: AppendEntriesArgs(7, 1, 120, 7, entries, 118)
            for name, entries in (("int commands", ints), ("Op commands", ops))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20000, help="round trips per run (default 20000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs; the best is reported (default 5)")
    opts = ap.parse_args(argv)
    for name, args in payloads().items():
        data = labgob.dumps(args)
        assert labgob.loads(data) == args
        enc = min(timeit.repeat(lambda: labgob.dumps(args), number=opts.n, repeat=opts.repeat))
        dec = min(timeit.repeat(lambda: labgob.loads(data), number=opts.n, repeat=opts.repeat))
        print(f"AppendEntriesArgs, 10 entries, {name}: {len(data)} bytes, "
              f"encode {enc / opts.n * 1e6:.2f} us, decode {dec / opts.n * 1e6:.2f} us")


if __name__ == "__main__":
    main()
