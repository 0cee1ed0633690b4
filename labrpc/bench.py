"""The labrpc TestBenchmark loop as a plain script (Go: 1.44 s = 14.4 us per RPC on the lab machine).

Usage:
    python -m labrpc.bench                 # pinned to one core (KUBEKV_NO_PIN=1: not pinned)
    python -m labrpc.bench --batch         # also SCHED_BATCH (see labrpc/schedpolicy.py)
    python -m labrpc.bench -n 20000 --profile   # cProfile of the calling thread
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from labrpc.affinity import pin_to_one_core
from labrpc.schedpolicy import use_batch_policy

GO_US_PER_RPC = 14.4


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100000, help="sequential calls (default 100000)")
    ap.add_argument("--batch", action="store_true", help="use the SCHED_BATCH policy")
    ap.add_argument("--profile", action="store_true", help="print a cProfile summary")
    ap.add_argument("--repeat", type=int, default=1, help="runs (the best is reported too)")
    opts = ap.parse_args(argv)

    core = pin_to_one_core()
    batch = use_batch_policy() if opts.batch else False
    from labrpc.test_labrpc import run_benchmark   # after pinning: its threads inherit it
    print(f"pinned to core {core}" if core is not None else "not pinned", "| SCHED_BATCH" if batch else "")
    if opts.profile:
        prof = cProfile.Profile()
        prof.enable()
        dt = run_benchmark(opts.n)
        prof.disable()
        print(f"{dt / opts.n * 1e6:.1f} us per RPC under cProfile (calling thread only)")
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return
    best = None
    for _ in range(opts.repeat):
        t0 = time.process_time()
        dt = run_benchmark(opts.n)
        cpu = time.process_time() - t0
        us = dt / opts.n * 1e6
        best = us if best is None else min(best, us)
        print(f"{dt:.3f}s for {opts.n} calls: {us:.1f} us per RPC "
              f"(CPU {cpu / opts.n * 1e6:.1f} us; Go {GO_US_PER_RPC} us, {GO_US_PER_RPC / us:.2f}x Go's rate)")
    if opts.repeat > 1:
        print(f"best: {best:.1f} us per RPC")


if __name__ == "__main__":
    main()
