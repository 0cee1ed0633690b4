"""Jepsen's etcd "register" workload, against a real KubeKV cluster over the etcd v3 gRPC API.

Run:  python -m pytest tests/service/test_etcd_register.py -q -s     # -s prints the run's figures

Six client threads, each with its own gRPC channel to one member, read (KV.Range, linearizable),
write (KV.Put) and compare-and-set (KV.Txn: value == old ? put new) a few independent registers
while the cluster is crashed and partitioned:
    kill -9 the leader, restart it; partition the leader from the other two, heal;
    kill -9 a follower, restart it; kill -9 all three, restart them.
Porcupine then checks the history against a model of independent registers (partitioned by
key). As in Jepsen, an operation whose client got an error or a timeout after sending it is
indefinite: a write or cas is recorded with a return time after the end of the history (it may
have happened at any time after its call, or never) and the model accepts either outcome; a
read that failed constrains nothing and is dropped. After an indefinite operation the thread
goes on as a new "process" (a new ClientId), as Jepsen's do, so a ClientId's operations never
overlap. Values are unique per write (client id + counter), so every value read names the one
write that made it. A register key is retired after OPS_PER_KEY operations and a fresh one
(empty again) takes its place, as Jepsen's independent keys do: that keeps each porcupine
partition small, whatever the number of indefinite operations.

Some reads are serializable (Range with serializable=True): those may be stale, so they stay out
of the checked history; each is only checked to return a value some client tried to write.

Porcupine's HTML view of the history (faults drawn as annotations) is written to the test's
tmp dir as register.html, the run's figures to summary.txt and the history to history.jsonl; a
failure's message names them.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from typing import Any, NamedTuple

import grpc
import pytest

import porcupine
from kubekv.client import Client
from kubekv.cluster import LocalCluster
from kubekv.etcd.pb import etcd_rpc_pb2 as pb
from kubekv.etcd.pb import etcd_rpc_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(300)

N_CLIENTS = 6
SLOTS = 3                 # registers in use at any time
OPS_PER_KEY = 200         # then the slot moves on to a fresh key (Jepsen: ops per independent key)
CALL_TIMEOUT_S = 3.0      # every etcd call's deadline
ERROR_BACKOFF_S = 0.05    # after a failed call, before the next (a dead member refuses at once)
SERIALIZABLE_READS = 0.1  # the share of reads that are serializable (unchecked by porcupine)
CHECK_TIMEOUT_S = 120.0
MIN_OK_UPDATES = 100      # acknowledged writes + successful cas needed for the run to count
NEVER_NS = 1 << 62        # the return time of an indefinite operation
# Codes an etcd client can get from a cluster under crashes and partitions: the operation may or
# may not have happened. Anything else is a server bug (reported by the test).
INDEFINITE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# UNAVAILABLE with these details is definite: the request never reached the etcd service (gRPC
# found no connection, as Jepsen's clients treat "connection refused"), or the member refused it
# before doing anything (EtcdAPI.ready). Such a write or cas did not happen: it is left out.
NOT_SENT = ("failed to connect to all addresses", "etcdserver: not ready yet")
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50),
                    ("grpc.max_reconnect_backoff_ms", 500), ("grpc.enable_retries", 0)]

READ, WRITE, CAS = 0, 1, 2
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


# -- the model: independent registers, one per key ------------------------------------------------

class RegInput(NamedTuple):
    Op: int                    # READ, WRITE or CAS
    Key: str
    Value: str | None = None   # WRITE: the value; CAS: the new value
    Old: str | None = None     # CAS: the value compared with


class RegOutput(NamedTuple):
    Status: str = OK           # OK; FAIL (a cas whose compare failed); UNKNOWN (indefinite)
    Value: str | None = None   # READ: the value read, None for a missing key


def _partition(history: list) -> list:
    by_key: dict[str, list] = {}
    for op in history:
        by_key.setdefault(op.Input.Key, []).append(op)
    return [by_key[k] for k in sorted(by_key)]


def _step(state: str | None, inp: RegInput, out: RegOutput) -> tuple[bool, Any]:
    if inp.Op == READ:
        return out.Value == state, state
    if inp.Op == WRITE:        # OK or UNKNOWN: an indefinite write never returns, so porcupine
        return True, inp.Value  # may also place it last, where it changes nothing anyone sees
    if inp.Op == CAS:
        if out.Status == FAIL:
            return state != inp.Old, state
        if state == inp.Old:
            return True, inp.Value
        return out.Status == UNKNOWN, state   # an indefinite cas whose compare failed: no effect
    return False, state


def _read_only(inp: RegInput, out: RegOutput) -> bool:
    return inp.Op == READ or (inp.Op == CAS and out.Status == FAIL)


def _describe_operation(inp: RegInput, out: RegOutput) -> str:
    if inp.Op == READ:
        return f"read({inp.Key}) -> {out.Value!r}"
    if inp.Op == WRITE:
        return f"write({inp.Key}, {inp.Value!r}) -> {out.Status}"
    return f"cas({inp.Key}, {inp.Old!r}, {inp.Value!r}) -> {out.Status}"


RegisterModel = porcupine.Model(
    Partition=_partition,
    Init=lambda: None,
    Step=_step,
    ReadOnly=_read_only,
    DescribeOperation=_describe_operation,
    DescribeState=lambda s: repr(s),
)


# -- the history ------------------------------------------------------------------------------

class Keys:
    """SLOTS registers; a slot's key is replaced by a fresh one after OPS_PER_KEY operations."""

    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.gen = [0] * SLOTS
        self.count = [0] * SLOTS
        self.used: list[str] = [self._name(s, 0) for s in range(SLOTS)]

    @staticmethod
    def _name(slot: int, gen: int) -> str:
        return f"register-{slot}-{gen}"

    def pick(self, rnd: random.Random) -> str:
        slot = rnd.randrange(SLOTS)
        with self.mu:
            self.count[slot] += 1
            if self.count[slot] > OPS_PER_KEY:
                self.gen[slot] += 1
                self.count[slot] = 1
                self.used.append(self._name(slot, self.gen[slot]))
            return self._name(slot, self.gen[slot])


class History:
    def __init__(self) -> None:
        self.mu = threading.Lock()
        self.ops: list[porcupine.Operation] = []
        self.attempted: dict[str, set[str]] = {}     # key -> every value a write or cas tried
        self.counts: dict[str, int] = {}
        self.errors: dict[str, int] = {}             # gRPC code name -> how many calls got it
        self.unexpected: list[str] = []              # errors other than INDEFINITE_CODES
        self.stale_bad: list[str] = []               # serializable reads of never-written values

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def add(self, cid: int, inp: RegInput, call: int, out: RegOutput, ret: int) -> None:
        with self.mu:
            self.ops.append(porcupine.Operation(ClientId=cid, Input=inp, Call=call, Output=out, Return=ret))
            self.count(f"{('read', 'write', 'cas')[inp.Op]} {out.Status}")

    def attempt(self, key: str, value: str) -> None:
        with self.mu:
            self.attempted.setdefault(key, set()).add(value)

    def error(self, what: str, exc: grpc.RpcError) -> None:
        code = exc.code()
        name = code.name + (" (not sent)" if not_sent(exc) else "")
        with self.mu:
            self.errors[name] = self.errors.get(name, 0) + 1
            if code not in INDEFINITE_CODES:
                self.unexpected.append(f"{what}: {code.name}: {exc.details()}")

    def dump(self, path: Any) -> None:
        """The history as JSON lines (ClientId, input, call, output, return), to re-check offline."""
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps([op.ClientId, list(op.Input), op.Call, list(op.Output), op.Return]) + "\n")


def not_sent(exc: grpc.RpcError) -> bool:
    details = exc.details() or ""
    return exc.code() == grpc.StatusCode.UNAVAILABLE and any(s in details for s in NOT_SENT)


def _value(resp: pb.RangeResponse) -> str | None:
    return resp.kvs[0].value.decode() if resp.kvs else None


class Worker:
    """One client thread: its own channel to one member; another member after UNAVAILABLE."""

    def __init__(self, n: int, endpoints: list[str], hist: History, keys: Keys, stop: threading.Event,
                 seed: int) -> None:
        self.n = n
        self.endpoints = endpoints
        self.hist = hist
        self.keys = keys
        self.stop = stop
        self.rnd = random.Random(seed * 1000 + n)
        self.process = n          # Jepsen's process: a new one after each indefinite operation
        self.member = n % len(endpoints)
        self.channel: grpc.Channel | None = None
        self.kv: Any = None
        self.values = itertools.count()
        self.known: dict[str, str] = {}   # key -> the value this client last saw there
        self.thread = threading.Thread(target=self.run, name=f"register-client-{n}", daemon=True)

    def connect(self) -> None:
        if self.channel is not None:
            self.channel.close()
        self.channel = grpc.insecure_channel(self.endpoints[self.member], options=_CHANNEL_OPTIONS)
        self.kv = pb_grpc.KVStub(self.channel)

    def failed(self, what: str, exc: grpc.RpcError) -> None:
        self.hist.error(what, exc)
        self.member = (self.member + 1) % len(self.endpoints)
        self.connect()
        self.stop.wait(ERROR_BACKOFF_S)

    def run(self) -> None:
        self.connect()
        try:
            while not self.stop.is_set():
                key = self.keys.pick(self.rnd)
                r = self.rnd.random()
                if r < 0.4:
                    self.read(key, serializable=self.rnd.random() < SERIALIZABLE_READS)
                elif r < 0.7 or key not in self.known:
                    self.write(key)
                else:
                    self.cas(key)
        finally:
            self.channel.close()

    def read(self, key: str, serializable: bool = False) -> None:
        start = time.monotonic_ns()
        try:
            resp = self.kv.Range(pb.RangeRequest(key=key.encode(), serializable=serializable),
                                 timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            self.failed(f"read({key})", exc)   # a read that did not return: dropped
            return
        end = time.monotonic_ns()
        value = _value(resp)
        if serializable:
            with self.hist.mu:
                self.hist.count("serializable read")
                if value is not None and value not in self.hist.attempted.get(key, ()):
                    self.hist.stale_bad.append(f"serializable read({key}) -> {value!r}, never written")
            return
        self.hist.add(self.process, RegInput(READ, key), start, RegOutput(OK, value), end)
        if value is None:
            self.known.pop(key, None)
        else:
            self.known[key] = value

    def write(self, key: str) -> None:
        value = f"{self.n}-{next(self.values)}"
        self.hist.attempt(key, value)
        inp = RegInput(WRITE, key, value)
        start = time.monotonic_ns()
        try:
            self.kv.Put(pb.PutRequest(key=key.encode(), value=value.encode()), timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            self.indefinite(inp, start, f"write({key}, {value})", exc)
            return
        self.hist.add(self.process, inp, start, RegOutput(OK), time.monotonic_ns())
        self.known[key] = value

    def cas(self, key: str) -> None:
        old, new = self.known[key], f"{self.n}-{next(self.values)}"
        self.hist.attempt(key, new)
        inp = RegInput(CAS, key, new, old)
        k = key.encode()
        req = pb.TxnRequest(
            compare=[pb.Compare(key=k, target=pb.Compare.VALUE, result=pb.Compare.EQUAL, value=old.encode())],
            success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=new.encode()))])
        start = time.monotonic_ns()
        try:
            resp = self.kv.Txn(req, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            self.indefinite(inp, start, f"cas({key}, {old}, {new})", exc)
            return
        end = time.monotonic_ns()
        self.hist.add(self.process, inp, start, RegOutput(OK if resp.succeeded else FAIL), end)
        if resp.succeeded:
            self.known[key] = new
        else:
            self.known.pop(key, None)

    def indefinite(self, inp: RegInput, start: int, what: str, exc: grpc.RpcError) -> None:
        if not_sent(exc):
            with self.hist.mu:
                self.hist.count(f"{('read', 'write', 'cas')[inp.Op]} not sent")
        else:
            self.hist.add(self.process, inp, start, RegOutput(UNKNOWN), NEVER_NS)
            self.process += N_CLIENTS
            self.known.pop(inp.Key, None)
        self.failed(what, exc)


# -- faults -----------------------------------------------------------------------------------

class Faults:
    """The nemesis: each fault is drawn on porcupine's view as an annotation."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.control = Client(cluster.endpoints, timeout_s=10)
        self.log: list[tuple[int, int, str]] = []   # (start ns, end ns, what)

    def leader(self) -> int:
        return self.cluster.endpoints.index(self.cluster.wait_for_leader(timeout_s=30))

    def note(self, start: int, what: str) -> None:
        self.log.append((start, time.monotonic_ns(), what))

    def block(self, i: int, peers: list[int]) -> None:
        deadline = time.monotonic() + 15
        while not self.control.block(self.cluster.endpoints[i], peers):
            assert time.monotonic() < deadline, f"server {i} did not take Control.Block({peers})"
            time.sleep(0.1)

    def kill_restart(self, victims: list[int], down_s: float, what: str) -> None:
        t = time.monotonic_ns()
        for i in victims:
            self.cluster.kill(i)
        time.sleep(down_s)
        for i in victims:
            self.cluster.restart(i)
        self.note(t, what)

    def partition(self, leader: int, for_s: float) -> None:
        t = time.monotonic_ns()
        others = [i for i in range(self.cluster.n) if i != leader]
        for i in range(self.cluster.n):
            self.block(i, others if i == leader else [leader])
        time.sleep(for_s)
        for i in range(self.cluster.n):
            self.block(i, [])
        self.note(t, f"partition: leader {leader} | {others}")

    def run(self) -> None:
        time.sleep(2.0)
        leader = self.leader()
        self.kill_restart([leader], 2.0, f"kill -9 leader {leader}, restart")
        time.sleep(2.0)
        self.partition(self.leader(), 3.0)
        time.sleep(2.0)
        follower = (self.leader() + 1) % self.cluster.n
        self.kill_restart([follower], 2.0, f"kill -9 follower {follower}, restart")
        time.sleep(2.0)
        self.kill_restart(list(range(self.cluster.n)), 0.5, "kill -9 all, restart")
        self.leader()
        time.sleep(3.0)

    def annotations(self) -> list[porcupine.Annotation]:
        return [porcupine.Annotation(Tag="nemesis", Start=s, End=e, Description=what,
                                     BackgroundColor="#efaefc") for s, e, what in self.log]


def final_reads(cluster: LocalCluster, hist: History, keys: list[str]) -> None:
    """A linearizable read of every key used, once the faults are over (cid 9999)."""
    deadline = time.monotonic() + 30
    member = 0
    for key in keys:
        while True:
            with grpc.insecure_channel(cluster.endpoints[member], options=_CHANNEL_OPTIONS) as ch:
                start = time.monotonic_ns()
                try:
                    resp = pb_grpc.KVStub(ch).Range(pb.RangeRequest(key=key.encode()), timeout=CALL_TIMEOUT_S)
                except grpc.RpcError as exc:
                    assert time.monotonic() < deadline, f"final read({key}): {exc.code().name} for 30 s"
                    member = (member + 1) % cluster.n
                    time.sleep(0.1)
                    continue
                hist.add(9999, RegInput(READ, key), start, RegOutput(OK, _value(resp)), time.monotonic_ns())
                break


def TestEtcdRegisterLinearizableUnderCrashesAndPartitions(tmp_path) -> None:
    seed = int(os.environ.get("REGISTER_SEED", random.randrange(1 << 30)))
    cluster = LocalCluster(3, str(tmp_path / "data"), faults=True, maxraftstate=64 * 1024)
    hist, keys, stop = History(), Keys(), threading.Event()
    workers = [Worker(n, cluster.endpoints, hist, keys, stop, seed) for n in range(N_CLIENTS)]
    faults = Faults(cluster)
    cluster.start()
    try:
        cluster.wait_for_leader(timeout_s=30)
        t_begin = time.monotonic()
        for w in workers:
            w.thread.start()
        try:
            faults.run()
        finally:
            stop.set()
            for w in workers:
                w.thread.join(30)
        assert not any(w.thread.is_alive() for w in workers), "client threads stuck 30 s after the faults"
        load_s = time.monotonic() - t_begin
        final_reads(cluster, hist, keys.used)
    finally:
        faults.control.Close()
        cluster.stop()
    assert not any(cluster.alive(i) for i in range(cluster.n))

    t = time.monotonic()
    res, info = porcupine.CheckOperationsVerbose(RegisterModel, hist.ops, CHECK_TIMEOUT_S)
    check_s = time.monotonic() - t
    view = tmp_path / "register.html"
    c = hist.counts
    indefinite = c.get("write unknown", 0) + c.get("cas unknown", 0)
    updates = c.get("write ok", 0) + c.get("cas ok", 0)
    summary = (f"register (seed {seed}): {len(hist.ops)} ops on {len(keys.used)} keys in {load_s:.1f} s: "
               f"{dict(sorted(c.items()))}; {indefinite} indefinite; errors {hist.errors}; "
               f"porcupine {res} in {check_s:.2f} s; faults: {[w for _, _, w in faults.log]}")
    print("\n" + summary)
    (tmp_path / "summary.txt").write_text(summary + "\n")
    hist.dump(tmp_path / "history.jsonl")
    info.AddAnnotations(faults.annotations())
    porcupine.VisualizePath(RegisterModel, info, str(view))   # well under a second for 10^4 ops
    bad = [k for k, r in zip(sorted({op.Input.Key for op in hist.ops}), info.partition_results)
           if r is not porcupine.Ok]
    assert res is not porcupine.Illegal, (
        f"the etcd register history is not linearizable (keys {bad}); see {view} (seed {seed}). {summary}")
    assert res is porcupine.Ok, (
        f"porcupine could not decide within {CHECK_TIMEOUT_S:g} s (keys {bad}); see {view}. {summary}")
    assert not hist.stale_bad, f"serializable reads returned values nobody wrote: {hist.stale_bad[:5]}"
    assert not hist.unexpected, f"etcd calls failed with unexpected codes: {hist.unexpected[:5]}"
    assert updates > MIN_OK_UPDATES, (
        f"only {updates} writes/cas succeeded: the cluster hardly served. {summary}")
