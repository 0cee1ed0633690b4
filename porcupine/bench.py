"""Benchmark porcupine on Go porcupine's reference KV histories, against Go's times.

Usage:
    python -m porcupine.bench /path/to/porcupine/test_data/kv [--repeat N] [--verbose-check]

The directory holds c01-ok.txt ... c50-bad.txt (not in this repository: fetch
github.com/anishathalye/porcupine and point at its test_data/kv). Each history is
checked partitioned by key and (c01, c10) as one partition, like Go's
BenchmarkKv* functions; the figure is the best of N runs of CheckEvents, the
parse excluded. Go's figures are v1.3.0 on the same kind of machine
(../shared/go-baseline.md). Run it with the timing lock when others share the
machine: flock /tmp/kubekv-timing.lock python -m porcupine.bench DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .checker import CheckEvents, CheckEventsVerbose
from .tools.kvlog import KV_MODEL, KV_NO_PARTITION_MODEL, REFERENCE_HISTORIES, parse_kv_log

# Seconds per check, Go porcupine v1.3.0 (go test -bench) on this machine kind.
GO_SECONDS = {
    ("c01-ok", True): 0.00022, ("c01-bad", True): 0.00015,
    ("c10-ok", True): 0.00081, ("c10-bad", True): 0.00041,
    ("c50-ok", True): 0.187, ("c50-bad", True): 0.021,
    ("c01-ok", False): 0.00010, ("c01-bad", False): 0.000045,
    ("c10-ok", False): 1.83, ("c10-bad", False): 2.20,
}

TARGET_RATIO = 3.0
LAB_TIMEOUT_S = 1.0


def time_check(events, model, want: bool, repeat: int, verbose: bool) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        if verbose:
            # The labs' budget; verbose mode waits for every partition (as in Go), so
            # c50-bad, whose other partitions explode, takes the whole second.
            res = CheckEventsVerbose(model, events, LAB_TIMEOUT_S)[0].value
            if res == "Unknown":
                raise SystemExit("verbose check timed out (Unknown)")
            got = res == "Ok"
        else:
            got = CheckEvents(model, events)
        best = min(best, time.perf_counter() - start)
        if got != want:
            raise SystemExit(f"wrong verdict: expected {want}, got {got}")
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="folder with c01-ok.txt ... c50-bad.txt")
    parser.add_argument("--repeat", type=int, default=5, help="runs per history (best is kept)")
    parser.add_argument("--verbose-check", action="store_true",
                        help="use CheckEventsVerbose with the labs' 1 s timeout instead of CheckEvents "
                             "(partitioned histories only)")
    args = parser.parse_args(argv)
    rows = []
    for partitioned in ((True,) if args.verbose_check else (True, False)):
        for name, want in REFERENCE_HISTORIES.items():
            if (name, partitioned) not in GO_SECONDS:
                continue
            path = os.path.join(args.directory, name + ".txt")
            events = parse_kv_log(path)
            model = KV_MODEL if partitioned else KV_NO_PARTITION_MODEL
            slow = not partitioned and name.startswith("c10")
            repeat = max(1, min(args.repeat, 2)) if slow else args.repeat
            seconds = time_check(events, model, want, repeat, args.verbose_check)
            go = GO_SECONDS[(name, partitioned)]
            label = ("kv " if partitioned else "kv no-partition ") + name
            rows.append((label, seconds, go, seconds / go))
            print(f"{label:26s} {seconds:10.5f} s   Go {go:9.5f} s   x{seconds / go:5.1f}", flush=True)
    if args.verbose_check:
        print("note: Go's figures are for CheckEvents; verbose mode checks every partition to the end "
              "(bad histories take longer), and c50-bad runs until the 1 s timeout, as Go's verbose mode would")
    worst = max(r[3] for r in rows)
    print(f"worst ratio to Go: x{worst:.1f} (target <= x{TARGET_RATIO:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
