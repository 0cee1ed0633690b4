"""The real store: server processes on 127.0.0.1, gRPC, data directories on disk.

Run:  python -m pytest tests/service/test_cluster.py -q
      python -m pytest tests/service/test_cluster.py -k kill --count 20    # the 20-run campaign

Every cluster a test starts is stopped (SIGTERM, then SIGKILL) and reaped when it ends.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

import pytest

import porcupine
from kubekv.client import Client, ClusterUnavailable
from kubekv.cluster import LocalCluster, free_ports
from kubekv.server import DATA_FORMAT
from kvraft1 import rpc
from tester.models import KvInput, KvModel, KvOutput

pytestmark = pytest.mark.timeout(300)

KEYS = ["a", "b", "c"]
NEVER_NS = 1 << 62   # the return time of an operation that never returned (it may take effect any time)


class History:
    """The clients' operations, for porcupine."""

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.ops: list[porcupine.Operation] = []
        self.ok_versions: dict[str, int] = {}   # key -> highest version an acknowledged Put created

    def get(self, c: Client, cid: int, key: str) -> tuple[str, int, str] | None:
        start = time.monotonic_ns()
        try:
            value, version, err = c.Get(key)
        except ClusterUnavailable:
            return None   # a read that never returned constrains nothing
        with self.mu:
            self.ops.append(porcupine.Operation(ClientId=cid, Input=KvInput(Op=0, Key=key), Call=start,
                                                Output=KvOutput(Value=value, Version=version, Err=err),
                                                Return=time.monotonic_ns()))
        return value, version, err

    def put(self, c: Client, cid: int, key: str, value: str, version: int) -> str:
        start = time.monotonic_ns()
        try:
            err = c.Put(key, value, version)
            end = time.monotonic_ns()
        except ClusterUnavailable:
            err, end = rpc.ErrMaybe, NEVER_NS
        with self.mu:
            self.ops.append(porcupine.Operation(ClientId=cid, Input=KvInput(Op=1, Key=key, Value=value,
                                                                            Version=version),
                                                Call=start, Output=KvOutput(Err=err), Return=end))
            if err == rpc.OK:
                self.ok_versions[key] = max(self.ok_versions.get(key, 0), version + 1)
        return err

    def check(self) -> None:
        res, _ = porcupine.CheckOperationsVerbose(KvModel, self.ops, 60)
        assert res != porcupine.Illegal, "the history is not linearizable"


def run_clients(cluster: LocalCluster, hist: History, stop: threading.Event, n: int) -> list[threading.Thread]:
    def client(cid: int) -> None:
        rnd = random.Random(cid)
        with cluster.client(timeout_s=30) as c:
            while not stop.is_set():
                key = rnd.choice(KEYS)
                got = hist.get(c, cid, key)
                if got is None:
                    continue
                _, version, err = got
                hist.put(c, cid, key, f"{cid}-{rnd.randrange(10**6)}", version if err == rpc.OK else 0)

    threads = [threading.Thread(target=client, args=(i,), name=f"client-{i}") for i in range(n)]
    for t in threads:
        t.start()
    return threads


def index_of(cluster: LocalCluster, endpoint: str) -> int:
    return cluster.endpoints.index(endpoint)


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(3, str(tmp_path / "data"), faults=True, maxraftstate=64 * 1024)
    c.start()
    try:
        yield c
    finally:
        c.stop()
    for i in range(3):
        assert not c.alive(i)


def TestKill9LeaderFollowerAllLinearizableNothingLost(cluster: LocalCluster) -> None:
    cluster.wait_for_leader()
    hist, stop = History(), threading.Event()
    clients = run_clients(cluster, hist, stop, 5)
    try:
        time.sleep(1.5)
        leader = index_of(cluster, cluster.wait_for_leader())
        cluster.kill(leader)
        time.sleep(1.5)
        cluster.restart(leader)
        time.sleep(1.5)
        follower = (index_of(cluster, cluster.wait_for_leader()) + 1) % 3
        cluster.kill(follower)
        time.sleep(1.0)
        cluster.restart(follower)
        time.sleep(1.5)
        with cluster.client() as c:
            grouped = [st for st in map(c.status, c.endpoints) if st is not None and st.Entries]
        # Concurrent requests shared log entries (kubekv.groups), so Batch entries are among
        # those the full crash below must recover.
        assert any(st.Requests > st.Entries for st in grouped), [(st.Requests, st.Entries) for st in grouped]
        for i in range(3):
            cluster.kill(i)
        for i in range(3):
            cluster.restart(i)
        cluster.wait_for_leader()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in clients:
            t.join(60)
    assert not any(t.is_alive() for t in clients), "clients still stuck 60 s after the faults"
    # Everything acknowledged survives one more full crash and restart.
    for i in range(3):
        cluster.kill(i)
    for i in range(3):
        cluster.restart(i)
    with cluster.client(timeout_s=30) as c:
        for key in KEYS:
            got = hist.get(c, 99, key)
            assert got is not None, f"Get({key}) found no leader after the restart"
            assert got[1] >= hist.ok_versions.get(key, 0), (
                f"key {key}: version {got[1]} after the restart, but a Put acknowledged version "
                f"{hist.ok_versions[key]}")
    oks = sum(1 for op in hist.ops if op.Input.Op == 1 and op.Output.Err == rpc.OK)
    assert oks > 20, f"only {oks} Puts succeeded: the cluster hardly served"
    hist.check()


def TestPartitionedLeaderCommitsNothingMajorityGoesOn(cluster: LocalCluster) -> None:
    old = index_of(cluster, cluster.wait_for_leader())
    others = [i for i in range(3) if i != old]
    with cluster.client() as c:
        assert c.Put("k", "before", 0) == rpc.OK
        for i in range(3):
            c.block(cluster.endpoints[i], others if i == old else [old])
    minority = Client([cluster.endpoints[old]], timeout_s=3)
    majority = Client([cluster.endpoints[i] for i in others], timeout_s=20)
    try:
        # The cut-off leader may keep calling itself leader, but nothing it takes can commit.
        try:
            err = minority.Put("k", "minority", 1)
        except ClusterUnavailable:
            err = None
        assert err != rpc.OK, "a leader cut off from the majority committed a Put"
        assert majority.Put("k", "majority", 1) == rpc.OK
        value, version, _ = majority.Get("k")
        assert (value, version) == ("majority", 2)
        with cluster.client() as c:
            for i in range(3):
                c.block(cluster.endpoints[i], [])
        # Healed: the old leader learns the new term, and every server serves the majority's value.
        deadline = time.monotonic() + 20
        with cluster.client() as c:
            while True:
                st = [c.status(e) for e in cluster.endpoints]
                terms = {s.Term for s in st if s is not None}
                leaders = [s for s in st if s is not None and s.IsLeader]
                if len(terms) == 1 and len(leaders) == 1:
                    break
                assert time.monotonic() < deadline, f"no convergence after the heal: {st}"
                time.sleep(0.05)
            assert c.Get("k")[:2] == ("majority", 2)
            assert c.Put("k", "after", 2) == rpc.OK
        # The old leader's copy caught up: alone with one peer it still has the value.
        cluster.kill(others[0])
        with Client([cluster.endpoints[old], cluster.endpoints[others[1]]], timeout_s=20) as c:
            assert c.Get("k")[:2] == ("after", 3)
    finally:
        minority.Close()
        majority.Close()


def kubekv(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubekv", *args], capture_output=True, text=True,
                          timeout=timeout)


def TestCliPutGetStatus(cluster: LocalCluster) -> None:
    cluster.wait_for_leader()
    eps = ",".join(cluster.endpoints)
    r = kubekv("put", "greeting", "hello", "--endpoints", eps)
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout
    r = kubekv("get", "greeting", "--endpoints", eps)
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    r = kubekv("put", "greeting", "again", "--version", "7", "--endpoints", eps)
    assert r.returncode == 1 and "ErrVersion" in r.stderr
    r = kubekv("get", "nothing-here", "--endpoints", eps)
    assert r.returncode == 1 and "no key" in r.stderr
    r = kubekv("status", "--endpoints", eps)
    assert r.returncode == 0 and r.stdout.count("leader") == 1, r.stdout


def TestCliRefusesUnreachableClusterClearly() -> None:
    eps = ",".join(f"127.0.0.1:{p}" for p in free_ports(3))
    r = kubekv("get", "k", "--endpoints", eps, "--timeout", "1")
    assert r.returncode == 3
    assert "kubekv cluster" in r.stderr and eps.split(",")[0] in r.stderr


def TestServeRefusesBusyPortMissingPeersOtherMembersDir(tmp_path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = f"127.0.0.1:{s.getsockname()[1]}"
        r = kubekv("serve", "--id", "0", "--peers", busy, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "in use" in r.stderr and busy in r.stderr, r.stderr
    r = kubekv("serve", "--id", "0", "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "--peers" in r.stderr
    peers = ",".join(f"127.0.0.1:{p}" for p in free_ports(3))
    r = kubekv("serve", "--id", "3", "--peers", peers, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "--id 3" in r.stderr
    # Member 0 initialises d; member 1 must not take it over.
    p = subprocess.Popen([sys.executable, "-m", "kubekv", "serve", "--id", "0", "--peers", peers,
                          "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE, text=True)
    try:
        assert "serving" in p.stdout.readline()
    finally:
        p.terminate()
        p.wait(10)
    r = kubekv("serve", "--id", "1", "--peers", peers, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "member 0" in r.stderr and "member 1" in r.stderr, r.stderr
    assert os.path.isdir(tmp_path / "d")
    # A directory another kubekv version wrote is refused by its FORMAT, naming both.
    (tmp_path / "d" / "FORMAT").write_text("kubekv 0\n")
    r = kubekv("serve", "--id", "0", "--peers", peers, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "'kubekv 0'" in r.stderr and f"'{DATA_FORMAT}'" in r.stderr, r.stderr
    # Log entries that do not decode (another version's classes) are named as such, not a crash.
    (tmp_path / "d" / "FORMAT").write_text(DATA_FORMAT + "\n")
    from kubekv.storage import DurablePersister
    with DurablePersister(tmp_path / "d") as p:
        p.SaveLog(b"not labgob", 0, 1, [], b"")
    r = kubekv("serve", "--id", "0", "--peers", peers, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "does not decode" in r.stderr and "fix" in r.stderr, r.stderr


def _command_lines() -> list[str]:
    """Every running process's command line."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


def TestClusterCommandServesAndStopsOnCtrlC(tmp_path) -> None:
    import signal

    from kubekv.cluster import _port_free

    # Below Linux's ephemeral range (32768-60999), where other tests' connections take ports.
    base = next(b for b in range(random.randrange(20000, 30000), 32000, 3)
                if all(_port_free(b + k) and _port_free(b + 100 + k) for k in range(3)))
    p = subprocess.Popen([sys.executable, "-m", "kubekv", "cluster", "--base-port", str(base),
                          "--data-dir", str(tmp_path / "kv")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert "leader" in line, line + p.stderr.read()
        eps = [f"127.0.0.1:{base + k}" for k in range(3)]
        assert p.stdout.readline() == f"--endpoints={','.join(eps)}\n"
        with Client(eps) as c:
            assert c.Put("k", "v", 0) == rpc.OK
            assert c.Get("k") == ("v", 1, rpc.OK)
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    left = [cmd for cmd in _command_lines() if str(tmp_path) in cmd]
    assert not left, f"servers outlived `kubekv cluster`: {left}"
    assert all(_port_free(base + k) and _port_free(base + 100 + k) for k in range(3))
    assert sorted(os.listdir(tmp_path / "kv")) == ["member-0", "member-1", "member-2",
                                                   "server-0.log", "server-1.log", "server-2.log"]
