"""The etcd v3 API with other clients than etcdctl: aetcd from PyPI, and a Jepsen-like watch workload.

Run:  python -m pytest tests/service/test_etcd_clients.py -q      (the aetcd test needs: pip install aetcd)

TestAetcdSession runs tests/service/aetcd_session.py (aetcd, an asyncio etcd v3 client with its
own generated protobuf modules) in its own process against a 3-server cluster and checks what it
printed. aetcd's modules register the same protobuf names as kubekv/etcd/pb, so the two cannot
share a process. Without aetcd the test is skipped, saying what to install; under CI (CI set) it
fails instead.

TestWatchersAgreeAcrossLeaderKill is etcd's watch workload as Jepsen runs it: one writer, three
watchers on three members from one start revision, the leader SIGKILLed and restarted in the
middle; watchers whose stream breaks resume from their last revision + 1, on the next member.
Every watcher must see the same events, in revision order, without gaps or duplicates, and
exactly the writes the writer was told happened (plus retried writes that may have happened).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

import grpc
import pytest

from kubekv.cluster import LocalCluster
from kubekv.etcd.pb import etcd_kv_pb2 as mvccpb
from kubekv.etcd.pb import etcd_rpc_pb2 as pb
from kubekv.etcd.pb import etcd_rpc_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(300)

AETCD_SESSION = Path(__file__).with_name("aetcd_session.py")


# -- aetcd ------------------------------------------------------------------------------------------

def _need_aetcd() -> None:
    """aetcd must import in a fresh interpreter (never in this one: see the module docstring)."""
    r = subprocess.run([sys.executable, "-c", "import aetcd"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        msg = f"aetcd cannot be imported ({last}): install it with `pip install aetcd`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _ev(kind: str, key: str, value: str, rev: int) -> tuple:
    return (kind, key, value, rev)


def _evs(events: list[dict]) -> list[tuple]:
    return [_ev(e["type"], e["key"], e["value"], e["mod_revision"]) for e in events]


def TestAetcdSession(tmp_path: Path) -> None:
    _need_aetcd()
    cluster = LocalCluster(3, str(tmp_path / "data"))
    cluster.start()
    try:
        cluster.wait_for_leader()
        r = subprocess.run([sys.executable, str(AETCD_SESSION), "--endpoints", ",".join(cluster.endpoints),
                            "--prefix", "/aetcd/"],
                           capture_output=True, text=True, timeout=200, stdin=subprocess.DEVNULL)
    finally:
        cluster.stop()
    assert not any(cluster.alive(i) for i in range(3))
    try:
        out = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"aetcd_session.py printed no JSON (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
    assert "error" not in out, (f"aetcd_session.py failed: {out['error']}\n{out.get('traceback', '')}\n"
                                f"{r.stderr}\n(server logs in {cluster.log_dir})")
    assert r.returncode == 0, r.stderr

    # put, get, range, delete
    rev = out["put_revision"]
    assert rev > 1
    assert out["get"] == {"key": "/aetcd/a", "value": "1", "create_revision": rev, "mod_revision": rev,
                          "version": 1, "lease": 0}
    assert out["get_missing"] is None
    assert out["get_each"] == ["1"] * 3
    assert out["get_each_serializable"] == ["1"] * 3
    assert out["put_header"]["cluster_id"] != 0 and out["put_header"]["member_id"] != 0
    assert out["put_header"]["raft_term"] >= 1
    assert out["get_prefix"] == {"count": 3, "more": False,
                                 "kvs": [["/aetcd/a", "1"], ["/aetcd/b", "2"], ["/aetcd/c/d", "3"]]}
    assert out["get_prefix_keys_only"] == [["/aetcd/a", ""], ["/aetcd/b", ""], ["/aetcd/c/d", ""]]
    assert out["get_prefix_descend"] == ["/aetcd/c/d", "/aetcd/b", "/aetcd/a"]
    assert out["get_range"] == [["/aetcd/a", "1"], ["/aetcd/b", "2"]]
    assert out["delete"] == {"deleted": 1, "prev_value": "2"}
    assert out["delete_again"] is None
    assert out["get_deleted"] is None
    assert out["delete_prefix"] == 1
    assert out["get_prefix_after_delete"] == ["/aetcd/a"]

    # transactions
    then = out["txn_value_then"]
    assert then["succeeded"] is True and then["get"] == ["2"] and then["put_revision"] > rev
    assert out["txn_value_else"] == {"succeeded": False, "get": ["2"]}
    assert out["txn_version_mod"] == {"succeeded": True, "value": "3"}
    assert out["txn_stale_mod"] == {"succeeded": False, "value": "3"}
    assert out["txn_create"] == [True, False]
    assert out["txn_nested"] == {"succeeded": True, "inner_succeeded": True, "new": None}

    # leases
    lease = out["lease"]
    assert lease["ttl"] == 60 and lease["id_nonzero"] and lease["key_lease_matches"], lease
    assert lease["keys"] == ["/aetcd/l"] and lease["granted_ttl"] == 60, lease
    assert 50 <= lease["remaining_ttl"] <= 60 and lease["refresh_ttl"] == 60, lease
    assert out["lease_revoked"] == {"get": None, "remaining_ttl": -1}
    assert "requested lease not found" in out["lease_revoke_again"]

    # watches
    w = out["watch_revisions"]
    assert w["x1"] < w["y2"] < w["del_x"] < w["z3"]
    assert _evs(out["watch"]) == [_ev("PUT", "/aetcd/w/x", "1", w["x1"]), _ev("PUT", "/aetcd/w/y", "2", w["y2"]),
                                  _ev("DELETE", "/aetcd/w/x", "", w["del_x"]),
                                  _ev("PUT", "/aetcd/w/z", "3", w["z3"])]
    hist = out["watch_history"]
    assert _evs(hist["events"]) == [_ev("PUT", "/aetcd/w/x", "1", w["x1"]),
                                    _ev("DELETE", "/aetcd/w/x", "", w["del_x"]),
                                    _ev("PUT", "/aetcd/w/x", "4", hist["live_revision"])]
    assert [(e["type"], e["value"]) for e in out["watch_puts_only"]] == [("PUT", v) for v in "1234"]
    assert out["watch_deletes_prev_kv"] == [{"type": "DELETE", "key": "/aetcd/w/x", "value": "",
                                             "mod_revision": w["del_x"], "version": 0, "prev_value": "1"}]
    compacted = out["watch_compacted"]   # a watch from before a compaction: RevisionCompactedError
    assert isinstance(compacted, dict) and compacted["compacted_revision"] == compacted["compacted_at"], compacted

    # aetcd's lock: a txn on create revision 0 with a lease, a DELETE-only watch to wait
    assert out["lock"] == {"first_acquired": True, "second_waited": True, "first_released": True,
                           "second_acquired": True, "second_holds": True, "first_holds": False,
                           "second_released": True}

    # status, members, alarms, errors
    members = out["members"]
    assert [m["name"] for m in members] == ["kubekv-0", "kubekv-1", "kubekv-2"]
    assert [m["client_urls"] for m in members] == [[f"http://{ep}"] for ep in cluster.endpoints]
    assert [m["peer_urls"] for m in members] == [[f"http://{a}"] for a in cluster.peer_addresses]
    statuses = out["status"]
    assert len(statuses) == 3 and all(s["version"] == "3.5.13" for s in statuses), statuses
    leaders = {s["leader_id"] for s in statuses}
    assert len(leaders) == 1 and leaders <= {m["id"] for m in members}, statuses
    assert all(s["raft_term"] >= 1 and s["raft_index"] > 0 for s in statuses), statuses
    assert statuses[0]["leader_client_urls"] in [[f"http://{ep}"] for ep in cluster.endpoints], statuses
    assert out["alarms"] == []
    assert out["empty_key"] == "etcdserver: key is not provided"


# -- the watch workload ----------------------------------------------------------------------------

PREFIX = b"/jepsen-watch/"
PREFIX_END = PREFIX[:-1] + bytes([PREFIX[-1] + 1])
N_OPS = 300
N_KEYS = 7
DELETE_EVERY = 20              # op i with i % DELETE_EVERY == DELETE_EVERY - 1 deletes a key
CALL_TIMEOUT_S = 8.0           # one Put or Range (a server looks for a leader for up to 5 s)
WRITER_DEADLINE_S = 150.0
CATCH_UP_S = 30.0              # after the last write, for every watcher to see it
RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]


class Event(NamedTuple):
    revision: int
    key: bytes
    value: bytes
    type: str          # "PUT" or "DELETE"
    version: int


def _event(e: mvccpb.Event) -> Event:
    return Event(e.kv.mod_revision, e.kv.key, e.kv.value,
                 "DELETE" if e.type == mvccpb.Event.DELETE else "PUT", e.kv.version)


def _retrying(stubs: list, first: int, call: Callable, deadline: float) -> tuple[object, int, int]:
    """call(stub) on stubs[first], then the next ones, while it fails with RETRY_CODES.

    Returns (response, index of the stub that answered, number of failed tries).
    """
    i, failures = first, 0
    while True:
        try:
            return call(stubs[i]), i, failures
        except grpc.RpcError as exc:
            if exc.code() not in RETRY_CODES or time.monotonic() > deadline:
                raise
        failures += 1
        i = (i + 1) % len(stubs)
        time.sleep(0.05)


def _linearizable_range(kvs: list, deadline_s: float = 30.0) -> pb.RangeResponse:
    return _retrying(kvs, 0, lambda s: s.Range(pb.RangeRequest(key=PREFIX, range_end=PREFIX_END),
                                               timeout=CALL_TIMEOUT_S),
                     time.monotonic() + deadline_s)[0]


class Writer(threading.Thread):
    """N_OPS writes under PREFIX: Puts of unique values, every DELETE_EVERY-th a DeleteRange."""

    def __init__(self, kvs: list, first: int, halfway: threading.Event, stop: threading.Event) -> None:
        super().__init__(name="writer", daemon=True)
        self.kvs, self.first, self.halfway, self.stop = kvs, first, halfway, stop
        self.tries: dict[tuple[bytes, bytes], int] = {}       # every Put sent -> how many times
        self.acked: dict[tuple[bytes, bytes], int] = {}       # (key, value) -> its revision
        self.deletes_tried: list[bytes] = []
        self.deleted: dict[int, bytes] = {}                   # revision -> key, for deleted == 1
        self.failures = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + WRITER_DEADLINE_S
            at = self.first
            for i in range(N_OPS):
                if self.stop.is_set():
                    raise RuntimeError(f"stopped after {i} of {N_OPS} writes")
                if i == N_OPS // 2:
                    self.halfway.set()
                key = PREFIX + b"k%d" % (i % N_KEYS)
                if i % DELETE_EVERY == DELETE_EVERY - 1:
                    self.deletes_tried.append(key)
                    resp, at, f = _retrying(self.kvs, at, lambda s: s.DeleteRange(
                        pb.DeleteRangeRequest(key=key), timeout=CALL_TIMEOUT_S), deadline)
                    if resp.deleted:
                        self.deleted[resp.header.revision] = key
                else:
                    value = b"v%d" % i
                    self.tries[(key, value)] = 1
                    resp, at, f = _retrying(self.kvs, at, lambda s: s.Put(
                        pb.PutRequest(key=key, value=value), timeout=CALL_TIMEOUT_S), deadline)
                    self.acked[(key, value)] = resp.header.revision
                    self.tries[(key, value)] += f
                self.failures += f
        except BaseException as exc:   # reported by the test
            self.error = exc
        finally:
            self.halfway.set()


class WatchRecorder(threading.Thread):
    """One watcher of PREFIX from start_revision: records every event; resumes where it broke.

    A stream that breaks (an RPC error, or a cancellation by the server) is opened again from
    the last revision seen + 1, on the next member if rotate, else on the same one.
    """

    def __init__(self, name: str, watch_stubs: list, first: int, start_revision: int,
                 stop: threading.Event, rotate: bool = True) -> None:
        super().__init__(name=name, daemon=True)
        self.stubs, self.at, self.rotate, self.stop = watch_stubs, first, rotate, stop
        self.last = start_revision - 1
        self.events: list[Event] = []
        self.streams = 0                      # streams opened (1 + reconnections)
        self.breaks: list[str] = []           # why each stream ended
        self.cancels: list[str] = []          # cancellations the server sent (none expected)
        self.created = threading.Event()      # the first stream's watch exists
        self.progress = threading.Condition()
        self._mu = threading.Lock()
        self._call = None

    def run(self) -> None:
        while not self.stop.is_set():
            done = threading.Event()
            create = pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=PREFIX, range_end=PREFIX_END, start_revision=self.last + 1))

            def requests(create=create, done=done):
                yield create
                while not done.is_set() and not self.stop.is_set():
                    done.wait(0.2)

            with self._mu:
                if self.stop.is_set():
                    break
                self._call = self.stubs[self.at].Watch(requests(), timeout=WRITER_DEADLINE_S)
                call = self._call
            self.streams += 1
            try:
                for resp in call:
                    if resp.created:
                        self.created.set()
                    if resp.canceled:
                        self.cancels.append(f"member {self.at}: {resp.cancel_reason!r} "
                                            f"(compact revision {resp.compact_revision})")
                        break
                    if resp.events:
                        with self.progress:
                            for e in resp.events:
                                ev = _event(e)
                                self.events.append(ev)
                                self.last = max(self.last, ev.revision)
                            self.progress.notify_all()
                self.breaks.append(f"member {self.at}: stream ended")
            except grpc.RpcError as exc:
                self.breaks.append(f"member {self.at}: {exc.code().name}")
            finally:
                done.set()
                call.cancel()   # a no-op unless the loop left early (a cancellation by the server)
            if self.rotate:
                self.at = (self.at + 1) % len(self.stubs)
            self.stop.wait(0.1)

    def wait_for(self, revision: int, deadline: float) -> bool:
        """True once an event at revision or later has come, False at deadline (monotonic)."""
        with self.progress:
            return self.progress.wait_for(lambda: self.last >= revision, max(0.0, deadline - time.monotonic()))

    def halt(self) -> None:
        self.stop.set()
        with self._mu:
            if self._call is not None:
                self._call.cancel()


def _difference(a: list[Event], b: list[Event]) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (f"{len(a)} vs {len(b)} events, first difference at #{i}: "
            f"{a[i] if i < len(a) else 'nothing'} vs {b[i] if i < len(b) else 'nothing'}")


def _replay(events: list[Event]) -> tuple[dict[bytes, tuple[bytes, int]], list[str]]:
    """The state the events lead to (key -> (value, mod revision)) and any version out of step."""
    state: dict[bytes, tuple[bytes, int, int]] = {}
    wrong = []
    for e in events:
        if e.type == "DELETE":
            if e.key not in state:
                wrong.append(f"revision {e.revision}: DELETE of {e.key!r}, which does not exist")
            state.pop(e.key, None)
            continue
        want = state[e.key][2] + 1 if e.key in state else 1
        if e.version != want:
            wrong.append(f"revision {e.revision}: {e.key!r} at version {e.version}, expected {want}")
        state[e.key] = (e.value, e.revision, e.version)
    return {k: (v, r) for k, (v, r, _) in state.items()}, wrong


def TestWatchersAgreeAcrossLeaderKill(tmp_path: Path) -> None:
    cluster = LocalCluster(3, str(tmp_path / "data"))
    stop, halfway = threading.Event(), threading.Event()
    channels: list[grpc.Channel] = []
    recorders: list[WatchRecorder] = []
    writer = None
    cluster.start()
    try:
        leader_ep = cluster.wait_for_leader()
        channels = [grpc.insecure_channel(ep, options=CHANNEL_OPTIONS) for ep in cluster.endpoints]
        kvs = [pb_grpc.KVStub(ch) for ch in channels]
        watch_stubs = [pb_grpc.WatchStub(ch) for ch in channels]
        start = _linearizable_range(kvs).header.revision + 1   # the first write's revision

        watchers = [WatchRecorder(f"watcher-{i}", watch_stubs, i, start, stop) for i in range(3)]
        recorders += watchers
        for w in watchers:
            w.start()
        for w in watchers:
            assert w.created.wait(20), f"{w.name}: no watch created in 20 s ({w.breaks})"

        writer = Writer(kvs, cluster.endpoints.index(leader_ep), halfway, stop)
        writer.start()
        assert halfway.wait(WRITER_DEADLINE_S), "the writer did not get halfway"
        assert writer.error is None, f"writer: {writer.error!r}"
        leader = cluster.endpoints.index(cluster.wait_for_leader())
        cluster.kill(leader)
        time.sleep(1.0)
        cluster.restart(leader)
        writer.join(WRITER_DEADLINE_S + 2 * CALL_TIMEOUT_S)
        assert not writer.is_alive(), "the writer is still running"
        assert writer.error is None, f"writer: {writer.error!r} (server logs in {cluster.log_dir})"

        final = _linearizable_range(kvs)
        last = final.header.revision
        deadline = time.monotonic() + CATCH_UP_S
        for w in watchers:
            assert w.wait_for(last, deadline), (
                f"{w.name} saw revisions up to {w.last} only, {CATCH_UP_S:g} s after the last write "
                f"(revision {last}); streams ended: {w.breaks}")
        # Every member's history, watched afresh from the start (the restarted one included).
        auditors = [WatchRecorder(f"history-{i}", watch_stubs, i, start, threading.Event(), rotate=False)
                    for i in range(3)]
        recorders += auditors
        for a in auditors:
            a.start()
        deadline = time.monotonic() + CATCH_UP_S
        for a in auditors:
            assert a.wait_for(last, deadline), f"member {a.at}'s history ends at {a.last} < {last}: {a.breaks}"
        for r in recorders:
            r.halt()
        for r in recorders:
            r.join(10)
            assert not r.is_alive(), f"{r.name} did not stop"

        seq = watchers[0].events
        for w in watchers + auditors:
            assert not w.cancels, f"{w.name}: the server cancelled its watch: {w.cancels}"
            assert w.events == seq, f"{w.name} and {watchers[0].name} disagree: {_difference(w.events, seq)}"
        revs = [e.revision for e in seq]
        assert all(a < b for a, b in zip(revs, revs[1:])), "revisions not strictly increasing"
        # Nobody else writes in this cluster and each write touches one key: one event per revision.
        missing = sorted(set(range(start, last + 1)) - set(revs))
        assert revs == list(range(start, last + 1)), (
            f"events for revisions {start}..{last} expected; missing {missing[:20]}, "
            f"outside {[r for r in revs if not start <= r <= last][:20]}")

        puts: dict[tuple[bytes, bytes], list[int]] = {}   # (key, value) -> the revisions of its events
        for e in seq:
            if e.type == "PUT":
                puts.setdefault((e.key, e.value), []).append(e.revision)
        not_seen = {kv: r for kv, r in writer.acked.items() if kv not in puts}
        assert not not_seen, f"acknowledged Puts no watcher saw: {sorted(not_seen.items())[:10]}"
        wrong_rev = {kv: (r, puts[kv]) for kv, r in writer.acked.items() if r not in puts[kv]}
        assert not wrong_rev, f"Puts seen at other revisions than acknowledged: {wrong_rev}"
        never_sent = set(puts) - set(writer.tries)
        assert not never_sent, f"events for Puts nobody sent: {sorted(never_sent)[:10]}"
        # A value is applied at most as often as it was sent (a retry may add one more copy).
        extra = {kv: (revs, writer.tries[kv]) for kv, revs in puts.items() if len(revs) > writer.tries[kv]}
        assert not extra, ("Puts applied more often than the writer sent them (the server ran one "
                           f"request twice): {{(key, value): (revisions, times sent)}} = {extra}")
        deletes = {e.revision: e.key for e in seq if e.type == "DELETE"}
        assert all(deletes.get(r) == k for r, k in writer.deleted.items()), (writer.deleted, deletes)
        assert set(deletes.values()) <= set(writer.deletes_tried)
        assert len(deletes) <= len(writer.deletes_tried)

        state, wrong = _replay(seq)
        assert not wrong, wrong[:10]
        assert state == {kv.key: (kv.value, kv.mod_revision) for kv in final.kvs}, \
            "the events do not add up to the final state"
        assert watchers[leader].streams >= 2, f"the killed leader's watcher never reconnected: {watchers[leader].breaks}"
        dups = sum(len(revs) - 1 for revs in puts.values())
        print(f"\nwatch workload: {len(seq)} events (revisions {start}..{last}), {len(writer.acked)} Puts "
              f"acknowledged, {writer.failures} failed tries, {dups} Puts applied twice; killed member "
              f"{leader}; streams per watcher {[w.streams for w in watchers]}")
    finally:
        for r in recorders:
            r.halt()
        stop.set()
        for r in recorders:
            r.join(10)
        if writer is not None:
            writer.join(2 * CALL_TIMEOUT_S)
        for ch in channels:
            ch.close()
        cluster.stop()
    assert not any(cluster.alive(i) for i in range(3))


# -- bad requests -------------------------------------------------------------------------------------

def TestBadRequestsAreRefusedBeforeTheLog(tmp_path: Path) -> None:
    """etcd refuses an empty key or a txn writing one key twice in its gRPC layer, before
    proposing: the answer is INVALID_ARGUMENT with etcd's message, and no member's Raft log grows."""
    with LocalCluster(3, str(tmp_path / "data")) as cluster:
        cluster.wait_for_leader()
        channels = [grpc.insecure_channel(ep, options=CHANNEL_OPTIONS) for ep in cluster.endpoints]
        try:
            kvs = [pb_grpc.KVStub(ch) for ch in channels]
            maint = [pb_grpc.MaintenanceStub(ch) for ch in channels]
            _retrying(kvs, 0, lambda kv: kv.Put(pb.PutRequest(key=b"ok", value=b"1"), timeout=5),
                      time.monotonic() + 30)
            _linearizable_range(kvs)

            def raft_indexes() -> list[int]:
                return [m.Status(pb.StatusRequest(), timeout=5).raftIndex for m in maint]

            before = raft_indexes()
            put_twice = pb.RequestOp(request_put=pb.PutRequest(key=b"k", value=b"v"))
            bad = [
                ("Put", pb.PutRequest(key=b"", value=b"v"), "etcdserver: key is not provided"),
                ("DeleteRange", pb.DeleteRangeRequest(key=b""), "etcdserver: key is not provided"),
                ("Txn", pb.TxnRequest(success=[put_twice, put_twice]),
                 "etcdserver: duplicate key given in txn request"),
                ("Put", pb.PutRequest(key=b"k", value=b"v", ignore_value=True), "etcdserver: value is provided"),
            ]
            for kv in kvs:   # the leader and both followers (which would forward)
                for method, request, message in bad:
                    with pytest.raises(grpc.RpcError) as info:
                        getattr(kv, method)(request, timeout=5)
                    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, info.value)
                    assert info.value.details() == message, (method, info.value.details())
            assert raft_indexes() == before, "a refused request went into the Raft log"
        finally:
            for ch in channels:
                ch.close()


# -- progress notices ---------------------------------------------------------------------------------

def TestProgressNoticesNeverOvertakeEvents(tmp_path: Path) -> None:
    """A progress notice at revision R promises that every event up to R was already sent on
    the stream (etcd #15220, which Kubernetes' watch cache relies on). Writers on all three
    members race a stream of progress requests on every member's watch stream."""
    n_writes = 300
    with LocalCluster(3, str(tmp_path / "data")) as cluster:
        cluster.wait_for_leader()
        channels = [grpc.insecure_channel(ep, options=CHANNEL_OPTIONS) for ep in cluster.endpoints]
        try:
            kvs = [pb_grpc.KVStub(ch) for ch in channels]
            start = _linearizable_range(kvs).header.revision + 1
            asks: list[queue.SimpleQueue] = []
            streams = []
            for ch in channels:
                q: queue.SimpleQueue = queue.SimpleQueue()
                q.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                    key=PREFIX, range_end=PREFIX_END, start_revision=start)))
                asks.append(q)
                streams.append(pb_grpc.WatchStub(ch).Watch(iter(q.get, None), timeout=120))
            for s in streams:
                assert next(s).created

            def write(k: int) -> None:
                for i in range(k, n_writes, 3):
                    _retrying(kvs, k, lambda kv: kv.Put(pb.PutRequest(key=PREFIX + b"%04d" % i, value=b"v"),
                                                        timeout=CALL_TIMEOUT_S), time.monotonic() + 60)

            writers = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(3)]
            for t in writers:
                t.start()
            last_rev = start + n_writes - 1
            violations: list[str] = []
            notices = [0] * 3

            def follow(m: int) -> None:
                seen: set[int] = set()
                for resp in streams[m]:
                    if resp.events:
                        seen.update(e.kv.mod_revision for e in resp.events)
                    elif resp.watch_id == -1:   # the answer to a progress_request
                        notices[m] += 1
                        r = resp.header.revision
                        missing = [v for v in range(start, r + 1) if v not in seen]
                        if missing:
                            violations.append(f"member {m}: notice at {r} before events {missing[:5]}")
                    if len(seen) == n_writes and notices[m] and resp.watch_id == -1 \
                            and resp.header.revision >= last_rev:
                        return
                    asks[m].put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))

            followers = [threading.Thread(target=follow, args=(m,), daemon=True) for m in range(3)]
            for m, t in enumerate(followers):
                asks[m].put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))
                t.start()
            for t in writers:
                t.join(90)
            for m in range(3):
                asks[m].put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))
            for t in followers:
                t.join(60)
            assert not any(t.is_alive() for t in writers + followers), "a writer or watcher did not finish"
            assert not violations, violations[:5]
            assert min(notices) > 10, f"too few progress notices to judge: {notices}"
        finally:
            for q in asks:
                q.put(None)
            for ch in channels:
                ch.close()
