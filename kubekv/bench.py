"""`kubekv bench`: durable Puts and linearizable Gets against a real 3-server cluster.

Usage:
    kubekv bench                          # starts a local 3-server cluster in a temp dir
    kubekv bench --clients 1,8,32 --seconds 10
    kubekv bench --endpoints 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379   # a running cluster
    kubekv bench --persist                # Raft's persist() + Sync per append, 100 vs 100,000 entries
    kubekv bench --etcd                   # the etcd API beside a real 3-member etcd (kubekv/etcd/compare.py)

Each client is a thread with its own Client (the lab's Clerk over gRPC), issuing Puts on its
own keys (each Put is acknowledged only once committed, so on the disks of a majority) and
then Gets (each through the Raft log). Prints, per client count and operation: operations per
second, latency p50/p99 in ms, and the fsyncs per second summed over the servers (from
Control.Status), so group commit shows as fsyncs well below operations, and the requests per log
entry (kubekv.groups: concurrent requests share an entry).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from typing import Any, Callable

from kubekv.client import Client, endpoints_from
from kubekv.cluster import LocalCluster
from kvraft1 import rpc

VALUE_BYTES = 100


def add_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="throughput and latency of durable Puts and Gets on a real cluster")
    b.add_argument("--clients", default="1,32", help="client counts to run, comma-separated (default 1,32)")
    b.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    b.add_argument("--endpoints", default=None,
                   help="a running cluster (default: start a local 3-server cluster in a temp dir)")
    b.add_argument("--serve-args", default="",
                   help="extra `kubekv serve` options for the local cluster, e.g. '--batch-window-ms 0'")
    b.add_argument("--etcd", action="store_true",
                   help="instead: the etcd API beside a real etcd cluster (needs etcd and etcdctl)")
    b.add_argument("--perf-loads", default="s,m",
                   help="with --etcd: the `etcdctl check perf` loads to run (default s,m; '' for none)")
    b.add_argument("--persist", action="store_true",
                   help="instead: the cost of persisting one new entry with a short and a long log")


def _counters(c: Client) -> tuple[int, int, int]:
    """(fsyncs, requests proposed, log entries they took), summed over the servers."""
    fsyncs = requests = entries = 0
    for e in c.endpoints:
        st = c.status(e)
        if st is not None:
            fsyncs, requests, entries = fsyncs + st.Fsyncs, requests + st.Requests, entries + st.Entries
    return fsyncs, requests, entries


def closed_loop(clients: int, seconds: float,
                client: Callable[[int, threading.Event], list[float]]) -> tuple[list[float], float]:
    """Run client(k, stop) in `clients` threads for `seconds`; every latency, and the wall time.

    Each client issues one request at a time and returns its latencies once stop is set.
    """
    stop = threading.Event()
    results: list[list[float]] = [[] for _ in range(clients)]

    def run(k: int) -> None:
        results[k] = client(k, stop)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return [x for r in results for x in r], time.perf_counter() - start


def latency_stats(latencies: list[float], elapsed: float) -> dict[str, float]:
    """ops/s, p50 and p99 in ms, and the count."""
    xs = sorted(latencies)
    q = statistics.quantiles(xs, n=100) if len(xs) >= 2 else [float("nan")] * 99
    return {"ops": len(xs) / elapsed, "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "n": len(xs)}


def measure(endpoints: list[str], clients: int, seconds: float,
            op: Callable[[Client, int, int], None]) -> dict[str, float]:
    """Run op(client, client_no, i) from `clients` threads for `seconds`; ops/s and latencies."""
    errors: list[BaseException] = []

    def client(k: int, stop: threading.Event) -> list[float]:
        lat: list[float] = []
        with Client(endpoints, timeout_s=30) as c:
            i = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    op(c, k, i)
                except BaseException as exc:   # reported after the run
                    errors.append(exc)
                    break
                lat.append(time.perf_counter() - t0)
                i += 1
        return lat

    with Client(endpoints) as probe:
        f0, r0, e0 = _counters(probe)
        latencies, elapsed = closed_loop(clients, seconds, client)
        f1, r1, e1 = _counters(probe)
    if errors:
        raise errors[0]
    return dict(latency_stats(latencies, elapsed), fsyncs=(f1 - f0) / elapsed,
                per_entry=(r1 - r0) / max(1, e1 - e0))


def put_op(value: str) -> Callable[[Client, int, int], None]:
    versions: dict[tuple[int, int], int] = {}

    def op(c: Client, k: int, i: int) -> None:
        key = (k, i % 16)
        v = versions.get(key, 0)
        err = c.Put(f"bench-{k}-{i % 16}", value, v)
        if err == rpc.ErrVersion or err == rpc.ErrMaybe:
            _, v, _ = c.Get(f"bench-{k}-{i % 16}")
            versions[key] = v
            return
        if err != rpc.OK:
            raise RuntimeError(f"Put: {err}")
        versions[key] = v + 1
    return op


def get_op(c: Client, k: int, i: int) -> None:
    c.Get(f"bench-{k}-{i % 16}")


def run_bench(endpoints: list[str], client_counts: list[int], seconds: float) -> list[dict[str, Any]]:
    rows = []
    value = "x" * VALUE_BYTES
    for n in client_counts:
        for name, op in (("put", put_op(value)), ("get", get_op)):
            r = measure(endpoints, n, seconds, op)
            r.update(op=name, clients=n)
            rows.append(r)
            print(f"{name:>4} clients={n:<3} {r['ops']:8.0f} ops/s  p50 {r['p50_ms']:6.2f} ms  "
                  f"p99 {r['p99_ms']:6.2f} ms  fsyncs/s {r['fsyncs']:7.0f}  "
                  f"requests/entry {r['per_entry']:5.1f}  ({r['n']} ops)", flush=True)
    return rows


def persist_cost(appends: int = 1000) -> None:
    """Time one append as a leader does it (Raft.persist() then Sync) at 100 and 100,000 entries."""
    from kubekv.storage import DurablePersister
    from raft1.chan import Chan
    from raft1.raft import LogEntry, Raft
    from rsm.rsm import Op

    command = Op(Me=0, Id=1, Req=rpc.PutArgs(Key="key-0001", Value="x" * VALUE_BYTES, Version=1))
    for size in (100, 100_000):
        with tempfile.TemporaryDirectory(prefix="kubekv-persist-") as d:
            p = DurablePersister(d)
            rf = Raft([None] * 3, 0, p, Chan())    # no threads: only its persistence is used
            for i in range(0, size, 1000):
                rf.log.extend(LogEntry(1, command) for _ in range(min(1000, size - i)))
                rf.persist()
            p.Sync()
            f0 = p.stats()["fsyncs"]
            t_persist, t_total = [], []
            for _ in range(appends):
                t0 = time.perf_counter()
                rf.log.append(LogEntry(1, command))
                rf.persist()
                t1 = time.perf_counter()
                p.Sync()
                t2 = time.perf_counter()
                t_persist.append(t1 - t0)
                t_total.append(t2 - t0)
            fsyncs = p.stats()["fsyncs"] - f0
            p.Close()
        for name, xs in (("persist()", t_persist), ("persist()+Sync", t_total)):
            q = statistics.quantiles(xs, n=100)
            print(f"{size:>7} entries  {name:<15} mean {statistics.fmean(xs) * 1e6:8.1f} us  "
                  f"p50 {q[49] * 1e6:8.1f} us  p99 {q[98] * 1e6:8.1f} us", flush=True)
        print(f"{size:>7} entries  {fsyncs} fsyncs for {appends} appends", flush=True)


def main(args: Any) -> int:
    if args.persist:
        persist_cost()
        return 0
    try:
        counts = [int(x) for x in args.clients.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        print(f"kubekv bench: --clients {args.clients!r}: give positive counts, e.g. 1,32")
        return 2
    if args.etcd:
        from kubekv.etcd.compare import compare
        try:
            compare([x for x in args.perf_loads.split(",") if x], counts, args.seconds)
        except RuntimeError as exc:
            print(f"kubekv bench --etcd: {exc}")
            return 2
        return 0
    if args.endpoints:
        run_bench(endpoints_from(args.endpoints), counts, args.seconds)
        return 0
    with tempfile.TemporaryDirectory(prefix="kubekv-bench-") as d:
        with LocalCluster(3, d, serve_args=args.serve_args.split()) as cluster:
            cluster.wait_for_leader()
            print(f"kubekv bench: local 3-server cluster on {','.join(cluster.endpoints)}, "
                  f"{VALUE_BYTES} B values, {args.seconds:g} s per row", flush=True)
            run_bench(cluster.endpoints, counts, args.seconds)
    return 0
