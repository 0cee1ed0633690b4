"""`kubekv bench --etcd`: KubeKV's etcd API beside a real etcd cluster, same clients, one run.

Usage:
    kubekv bench --etcd                       # needs Debian's etcd-server and etcd-client
    kubekv bench --etcd --perf-loads s,m --seconds 10 --clients 1,32

Starts a 3-member etcd (the `etcd` binary on PATH) and a 3-server KubeKV cluster on 127.0.0.1,
each in a temporary directory, then measures both the same way:
  * `etcdctl check perf --load=L` (etcd's own acceptance test: 60 s of Puts at a target rate;
    PASS needs 90% of the rate, slowest request <= 0.5 s, stddev <= 0.1 s);
  * Put, linearizable Range and serializable Range (range-s) benchmarks with N concurrent clients
    (and KubeKV's linearizable Ranges once more through the Raft log, not ReadIndex), each a thread
    with its own gRPC channel and etcd stub (the same code for both systems).
Prints one table with throughput, p50/p99 and the ratio KubeKV/etcd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable

import grpc

from kubekv.bench import closed_loop, latency_stats
from kubekv.cluster import LocalCluster, free_ports

VALUE_BYTES = 256
ETCD_START_S = 30.0


class LocalEtcd:
    """A 3-member etcd cluster of the `etcd` binary on 127.0.0.1, in data_dir; stop() reaps it."""

    def __init__(self, data_dir: str, n: int = 3) -> None:
        if shutil.which("etcd") is None:
            raise RuntimeError("no etcd binary on PATH: install Debian's etcd-server "
                               "(apt-get install etcd-server)")
        self.data_dir = data_dir
        ports = free_ports(2 * n)
        self.endpoints = [f"127.0.0.1:{p}" for p in ports[:n]]
        self.peers = [f"127.0.0.1:{p}" for p in ports[n:]]
        self.procs: list[subprocess.Popen] = []
        self.n = n

    def start(self) -> None:
        initial = ",".join(f"m{i}=http://{p}" for i, p in enumerate(self.peers))
        for i in range(self.n):
            log = open(os.path.join(self.data_dir, f"etcd-{i}.log"), "ab")
            self.procs.append(subprocess.Popen(
                ["etcd", "--name", f"m{i}", "--data-dir", os.path.join(self.data_dir, f"m{i}"),
                 "--listen-client-urls", f"http://{self.endpoints[i]}",
                 "--advertise-client-urls", f"http://{self.endpoints[i]}",
                 "--listen-peer-urls", f"http://{self.peers[i]}",
                 "--initial-advertise-peer-urls", f"http://{self.peers[i]}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "kubekv-compare"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            log.close()
        deadline = time.monotonic() + ETCD_START_S
        while time.monotonic() < deadline:
            r = subprocess.run(["etcdctl", f"--endpoints={','.join(self.endpoints)}", "endpoint", "health"],
                               capture_output=True, text=True, env=_etcdctl_env())
            if r.returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"etcd did not become healthy in {ETCD_START_S:g} s; see {self.data_dir}/etcd-N.log")

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _etcdctl_env() -> dict[str, str]:
    return dict(os.environ, ETCDCTL_API="3")


def check_perf(endpoints: list[str], load: str) -> dict[str, Any]:
    """Run `etcdctl check perf --load=load`; its verdict, throughput and slowest request."""
    r = subprocess.run(["etcdctl", f"--endpoints={','.join(endpoints)}", "check", "perf", f"--load={load}"],
                       capture_output=True, text=True, env=_etcdctl_env(), timeout=300)
    out = r.stdout + r.stderr
    # A failed check prints FAIL only on its first line: "FAIL: Throughput too low: ...", then
    # "Slowest request took too long: 1.3s", "Stddev too high: ...", and a last "FAIL".
    verdicts = [line.strip() for line in out.splitlines()
                if line.startswith(("PASS", "FAIL", "Slowest", "Stddev"))]
    tput = re.search(r"(\d+) writes/s", out)
    slow = re.search(r"Slowest request took (?:too long: )?([\d.]+)s", out)
    return {"pass": r.returncode == 0 and bool(verdicts) and not any(v.startswith("FAIL") for v in verdicts),
            "writes_s": int(tput.group(1)) if tput else 0,
            "slowest_s": float(slow.group(1)) if slow else float("nan"),
            "verdicts": verdicts or [f"exit {r.returncode}: {out.strip().splitlines()[-1:] or ''}"],
            "output": out}


def kv_bench(endpoints: list[str], clients: int, seconds: float, op: str) -> dict[str, float]:
    """`clients` threads doing Puts ("put"), linearizable Ranges ("range") or serializable ones
    ("range-s") for `seconds`."""
    from kubekv.etcd.pb import etcd_rpc_pb2 as pb
    from kubekv.etcd.pb import etcd_rpc_pb2_grpc as pb_grpc

    errors = [0] * clients
    value = b"v" * VALUE_BYTES

    def client(k: int, stop: threading.Event) -> list[float]:
        channel = grpc.insecure_channel(endpoints[k % len(endpoints)])
        kv = pb_grpc.KVStub(channel)
        call: Callable[[int], Any]
        if op == "put":
            def call(i: int) -> Any:
                return kv.Put(pb.PutRequest(key=b"bench/%d/%d" % (k, i % 64), value=value), timeout=5)
        else:
            serializable = op == "range-s"

            def call(i: int) -> Any:
                return kv.Range(pb.RangeRequest(key=b"bench/%d/%d" % (k, i % 64), serializable=serializable),
                                timeout=5)
        lat: list[float] = []
        i = 0
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    call(i)
                    lat.append(time.perf_counter() - t0)
                except grpc.RpcError:
                    errors[k] += 1
                i += 1
        finally:
            channel.close()
        return lat

    latencies, elapsed = closed_loop(clients, seconds, client)
    return dict(latency_stats(latencies, elapsed), errors=sum(errors))


def compare(perf_loads: list[str], client_counts: list[int], seconds: float) -> list[dict[str, Any]]:
    """Measure etcd and KubeKV one after the other on the same workloads; print and return rows."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubekv-vs-etcd-") as d:
        systems: list[tuple[str, Any]] = []
        etcd = LocalEtcd(d)
        kube = LocalCluster(3, os.path.join(d, "kubekv"))
        try:
            etcd.start()
            kube.start()
            kube.wait_for_leader()
            systems = [("etcd", etcd.endpoints), ("kubekv", kube.endpoints)]
            for name, eps in systems:
                kv_bench(eps, 4, 1.0, "put")   # warm-up: connections, first elections
            for load in perf_loads:
                for name, eps in systems:
                    r = check_perf(eps, load)
                    rows.append({"system": name, "workload": f"check perf --load={load}",
                                 "ops": r["writes_s"], "p50_ms": float("nan"),
                                 "p99_ms": r["slowest_s"] * 1000,
                                 "note": ("PASS" if r["pass"] else "FAIL") + " (" + "; ".join(
                                     v for v in r["verdicts"] if v not in ("PASS", "FAIL")) + ")"})
                    _print(rows[-1])
            for n in client_counts:
                for op in ("put", "range", "range-s"):
                    for name, eps in systems:
                        rows.append(_row(name, op, n, kv_bench(eps, n, seconds, op)))
            kube.stop()
            # The same linearizable reads through the Raft log instead of ReadIndex.
            logreads = LocalCluster(3, os.path.join(d, "kubekv-log"), serve_args=["--reads", "log"])
            kube = logreads
            logreads.start()
            logreads.wait_for_leader()
            kv_bench(logreads.endpoints, 4, 1.0, "put")
            for n in client_counts:
                rows.append(_row("kubekv (reads through the log)", "range", n,
                                 kv_bench(logreads.endpoints, n, seconds, "range")))
        finally:
            kube.stop()
            etcd.stop()
    _print_ratios(rows)
    return rows


def _row(system: str, op: str, n: int, r: dict[str, float]) -> dict[str, Any]:
    row = {"system": system, "workload": f"{op} {n} client{'s' * (n > 1)}", "ops": r["ops"],
           "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
           "note": f"{r['errors']:.0f} errors" if r["errors"] else ""}
    _print(row)
    return row


def _print(row: dict[str, Any]) -> None:
    p50 = "" if row["p50_ms"] != row["p50_ms"] else f"{row['p50_ms']:.2f}"
    print(f"{row['system']:<31} {row['workload']:<24} {row['ops']:>9.0f} ops/s  p50 {p50:>7} ms  "
          f"p99/slowest {row['p99_ms']:8.2f} ms  {row['note']}", flush=True)


def _print_ratios(rows: list[dict[str, Any]]) -> None:
    by = {(r["system"], r["workload"]): r for r in rows}
    print("\nKubeKV / etcd throughput:")
    for (system, workload), r in by.items():
        if system != "kubekv" or ("etcd", workload) not in by:
            continue
        e = by[("etcd", workload)]["ops"]
        print(f"  {workload:<24} {r['ops'] / e:6.2f}" if e else f"  {workload:<24}    n/a")
