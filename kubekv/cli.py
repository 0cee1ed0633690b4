"""The `kubekv` console script.

Usage:
    kubekv handout DIR               # a student repository with skeletons (kubekv/handout.py)
    kubekv test 3B --runs 100        # the flake hunter (kubekv/flakes.py)
    kubekv grade [DIR] --runs 5      # grade a solution part by part (kubekv/grade.py)
    kubekv logs FILE --columns       # pretty-print a per-peer debug log (kubekv/logview.py)
    kubekv cluster                   # a real 3-server cluster on 127.0.0.1 (kubekv/cluster.py)
    kubekv put KEY VALUE; kubekv get KEY; kubekv status   # talk to it (kubekv/client.py)
    kubekv serve --id N --peers a,b,c --data-dir DIR       # one server process
    kubekv demo                      # 5 servers, 5 clients, 10 s of faults, porcupine check: ~11 s
    kubekv demo --seconds 5 --clients 3 --reliable --no-partitions --no-crashes
    kubekv demo --seed 42            # the same fault schedule as any other run with --seed 42

`kubekv demo` runs, in this one process, a KubeKV cluster (Raft + rsm + KV servers) on the
simulated labrpc network. Clients issue random Gets and versioned Puts on a few keys while a fault
injector partitions the network and crashes/restarts servers (each restart resumes from its
persisted Raft state and snapshot); by default the network is also unreliable (drops, delays).
Afterwards the faults injected are listed ("fault at 1.23 s: ..."), the whole history is checked
for linearizability with porcupine, a summary is printed, and an HTML visualisation of the history
with the faults annotated is written.

A seed (--seed N, or the random one printed when none is given) fixes the fault schedule (which
servers are partitioned or crashed, and when: the same "fault at" lines), each client's sequence
of key and operation choices, and the network's stream of drop/delay draws. It does not fix thread
timing, so operation counts, interleavings, which leader is elected and which RPC each network draw
falls on vary from run to run; the linearizability verdict must hold for every one of them.

Exit status: 0 linearizable, 1 not linearizable, 2 bad usage, 3 check timed out (unknown),
4 the run itself failed (e.g. clients still stuck after the faults were healed).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from typing import Any

DEMO_DESCRIPTION = __doc__.split("\n\n", 2)[2]
# With fewer servers no majority survives losing one, so every fault would only stall the cluster.
MIN_SERVERS_WITH_FAULTS = 3


def build_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The `kubekv` parser and its `demo` sub-parser (whose error() names the demo's usage)."""
    p = argparse.ArgumentParser(prog="kubekv", description="KubeKV: Raft-replicated, linearizable KV store (Python).")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run a faulty cluster with clients, then check linearizability",
                       description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--seconds", type=float, default=10.0, help="how long the clients run (default 10)")
    d.add_argument("--clients", type=int, default=5, help="concurrent clients (default 5)")
    d.add_argument("--servers", type=int, default=5,
                   help=f"KV servers in the cluster (default 5; at least {MIN_SERVERS_WITH_FAULTS} with faults on)")
    d.add_argument("--keys", type=int, default=5, help="distinct keys the clients use (default 5)")
    d.add_argument("--seed", type=int, default=None,
                   help="fixes the fault schedule, the clients' choices and the network's random draws, "
                        "not thread timing (default: random, printed)")
    d.add_argument("--reliable", action="store_true", help="no dropped or delayed RPCs")
    d.add_argument("--no-partitions", dest="partitions", action="store_false", help="never partition the network")
    d.add_argument("--no-crashes", dest="crashes", action="store_false", help="never crash servers")
    d.add_argument("--maxraftstate", type=int, default=1000,
                   help="snapshot when Raft state nears this many bytes; -1 disables snapshots (default 1000)")
    d.add_argument("--check-timeout", type=float, default=30.0,
                   help="seconds porcupine may spend before the verdict is 'unknown'; 0: no limit (default 30)")
    d.add_argument("--vis", default="kubekv-demo.html",
                   help="where to write the HTML visualisation (default kubekv-demo.html)")
    d.add_argument("--quiet", action="store_true", help="no progress line")
    from kubekv import flakes, grade, handout, logview
    if importlib.util.find_spec("kubekv.cluster") is not None:   # a student handout has no store
        from kubekv import bench, client, cluster
        cluster.add_parsers(sub)
        client.add_parsers(sub)
        bench.add_parser(sub)
    handout.add_parser(sub)
    flakes.add_parser(sub)
    grade.add_parser(sub)
    logview.add_parser(sub)
    return p, d


def build_parser() -> argparse.ArgumentParser:
    return build_parsers()[0]


def demo_args_problem(args: Any) -> str | None:
    """What is wrong with parsed `kubekv demo` arguments, naming the flag and the fix; None if nothing."""
    if not math.isfinite(args.seconds) or args.seconds <= 0:
        return f"--seconds {args.seconds:g}: give a positive number of seconds, e.g. --seconds 5"
    if args.clients < 1:
        return f"--clients {args.clients}: give at least 1 client"
    if args.keys < 1:
        return f"--keys {args.keys}: give at least 1 key"
    if args.servers < 1:
        return f"--servers {args.servers}: give at least 1 server ({MIN_SERVERS_WITH_FAULTS} or more with faults)"
    if args.servers < MIN_SERVERS_WITH_FAULTS and (args.partitions or args.crashes):
        return (f"--servers {args.servers}: a cluster of {args.servers} has no majority left once a server "
                f"is crashed or cut off, so every fault would only stall it; use --servers "
                f"{MIN_SERVERS_WITH_FAULTS} or more, or turn faults off with --no-partitions --no-crashes")
    if args.maxraftstate == 0 or args.maxraftstate < -1:
        return (f"--maxraftstate {args.maxraftstate}: give a positive number of bytes, "
                f"or -1 to turn snapshots off")
    if not math.isfinite(args.check_timeout) or args.check_timeout < 0:
        return f"--check-timeout {args.check_timeout:g}: give a positive number of seconds, or 0 for no limit"
    return _vis_problem(args.vis)


def _vis_problem(path: str) -> str | None:
    # Found out here, not after a run of many seconds whose view could then not be written.
    if not path:
        return "--vis '': give a file path, e.g. --vis kubekv-demo.html"
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        return f"--vis {path}: that is a folder; give a file path, e.g. --vis {os.path.join(path, 'kubekv-demo.html')}"
    if not os.path.isdir(folder):
        return (f"--vis {path}: the folder {folder} does not exist; create it (mkdir -p {folder}) "
                f"or give a path in an existing folder")
    if os.path.exists(full) and not os.access(full, os.W_OK):
        return f"--vis {path}: the file is not writable; give another path"
    if not os.path.exists(full) and not os.access(folder, os.W_OK | os.X_OK):
        return f"--vis {path}: cannot create a file in {folder}; give a path in a folder you can write to"
    return None


def main(argv: list[str] | None = None) -> int:
    parser, demo_parser = build_parsers()
    args = parser.parse_args(argv)
    if args.command == "handout":
        from kubekv import handout
        return handout.main(args)
    if args.command in ("serve", "cluster"):
        from kubekv import cluster
        return cluster.serve_main(args) if args.command == "serve" else cluster.cluster_main(args)
    if args.command == "bench":
        from kubekv import bench
        return bench.main(args)
    if args.command in ("put", "get", "status"):
        from kubekv import client
        return client.main(args)
    if args.command == "logs":
        from kubekv import logview
        return logview.main(args)
    if args.command in ("test", "grade"):
        from kubekv import flakes, grade
        problem = flakes.run_options_problem(args)
        if problem:
            parser.error(f"{args.command}: {problem}")
        return flakes.main(args) if args.command == "test" else grade.main(args)
    problem = demo_args_problem(args) if args.command == "demo" else None
    if problem:
        demo_parser.error(problem)  # exits 2
    from kubekv.demo import run_demo
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
