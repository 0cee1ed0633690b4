"""What Kubernetes' API server asks of etcd, over gRPC, against a 3-server KubeKV cluster.

Run:  python -m pytest tests/service/test_etcd_kubernetes.py -q

kube-apiserver cannot be had on this machine, so this test speaks its storage layer's requests
itself, as k8s.io/apiserver/pkg/storage/etcd3 and kine document them: create, update and delete
as Txns on mod_revision (the current object back when the compare fails); get; a paginated list at
one revision (limit, a continue key, `more`, count); a watch from a list's revision + 1 with
prev_kv and progress notices, and RequestProgress answered at a revision that covers every event
sent; objects under a lease (Events) gone with it; and the compactor's cycle (a Txn on the
version of compact_rev_key, then Compact), after which an old revision is refused and a watch
from it is cancelled with compact_revision. Requests go to every member in turn, as clients of a
real cluster do.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from kubekv.cluster import LocalCluster
from kubekv.etcd.pb import etcd_kv_pb2 as mvccpb
from kubekv.etcd.pb import etcd_rpc_pb2 as pb
from kubekv.etcd.pb import etcd_rpc_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(300)

PODS = b"/registry/pods/default/"
PODS_END = PODS[:-1] + bytes([PODS[-1] + 1])
COMPACT_KEY = b"compact_rev_key"
TIMEOUT_S = 10
C = pb.Compare


def mod_is(key: bytes, rev: int) -> pb.Compare:
    return pb.Compare(key=key, target=C.MOD, result=C.EQUAL, mod_revision=rev)


def put(key: bytes, value: bytes, lease: int = 0) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, lease=lease))


def get(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=key))


class Apiserver:
    """The etcd3 store's requests, sent to the members in turn (a retry goes to the next)."""

    def __init__(self, endpoints: list[str]) -> None:
        self.channels = [grpc.insecure_channel(e) for e in endpoints]
        self.kv = [pb_grpc.KVStub(c) for c in self.channels]
        self.lease = [pb_grpc.LeaseStub(c) for c in self.channels]
        self.watch_stubs = [pb_grpc.WatchStub(c) for c in self.channels]
        self.turn = 0

    def call(self, stubs: list, method: str, request: Any) -> Any:
        deadline = time.monotonic() + 30
        while True:
            self.turn += 1
            stub = stubs[self.turn % len(stubs)]
            try:
                return getattr(stub, method)(request, timeout=TIMEOUT_S)
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                        or time.monotonic() > deadline:
                    raise

    def txn(self, compare: list, success: list, failure: list = ()) -> pb.TxnResponse:
        return self.call(self.kv, "Txn", pb.TxnRequest(compare=compare, success=success, failure=list(failure)))

    def create(self, key: bytes, value: bytes, lease: int = 0) -> pb.TxnResponse:
        return self.txn([mod_is(key, 0)], [put(key, value, lease)])

    def update(self, key: bytes, rev: int, value: bytes) -> pb.TxnResponse:
        return self.txn([mod_is(key, rev)], [put(key, value)], [get(key)])

    def delete(self, key: bytes, rev: int) -> pb.TxnResponse:
        return self.txn([mod_is(key, rev)], [pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key))],
                        [get(key)])

    def range(self, **kw: Any) -> pb.RangeResponse:
        return self.call(self.kv, "Range", pb.RangeRequest(**kw))

    def close(self) -> None:
        for c in self.channels:
            c.close()


def TestKubernetesStorageSession(tmp_path: Path) -> None:
    with LocalCluster(3, str(tmp_path / "data")) as cluster:
        cluster.wait_for_leader()
        api = Apiserver(cluster.endpoints)
        requests: queue.SimpleQueue = queue.SimpleQueue()
        try:
            # Create: only where nothing is; the second create of a name fails.
            revs = {}
            for i in range(25):
                key = PODS + b"pod-%02d" % i
                t = api.create(key, b"spec-%d" % i)
                assert t.succeeded, key
                revs[key] = t.header.revision
            assert not api.create(PODS + b"pod-00", b"again").succeeded

            # A paginated list at one revision, as the API server's LIST with limit does.
            first = api.range(key=PODS, range_end=PODS_END, limit=10)
            list_rev = first.header.revision
            pages, more, start = [first], first.more, first.kvs[-1].key + b"\0"
            assert first.count == 25 and more
            api.update(PODS + b"pod-24", revs[PODS + b"pod-24"], b"changed after the list began")
            while more:
                page = api.range(key=start, range_end=PODS_END, limit=10, revision=list_rev)
                pages.append(page)
                more = page.more
                if page.kvs:
                    start = page.kvs[-1].key + b"\0"
            listed = [kv for p in pages for kv in p.kvs]
            assert [kv.key for kv in listed] == sorted(revs) and len(pages) == 3
            assert listed[-1].value == b"spec-24", "a page at the list's revision saw a later write"
            assert api.range(key=PODS, range_end=PODS_END, count_only=True).count == 25

            # Watch from the list's revision + 1, with prev_kv and progress notices.
            requests.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=PODS, range_end=PODS_END, start_revision=list_rev + 1, prev_kv=True,
                progress_notify=True)))
            stream = api.watch_stubs[1].Watch(iter(requests.get, None), timeout=120)
            assert next(stream).created
            first_event = next(stream)
            assert [e.kv.key for e in first_event.events] == [PODS + b"pod-24"]
            assert first_event.events[0].prev_kv.value == b"spec-24"

            # Update with a stale revision: fails and hands back the current object.
            key = PODS + b"pod-03"
            t = api.update(key, revs[key], b"v2")
            assert t.succeeded
            new_rev = t.header.revision
            t = api.update(key, revs[key], b"stale writer")
            assert not t.succeeded
            current = t.responses[0].response_range.kvs[0]
            assert (current.value, current.mod_revision) == (b"v2", new_rev)
            # Delete: stale revision refused, current one deletes.
            assert not api.delete(key, revs[key]).succeeded
            t = api.delete(key, new_rev)
            assert t.succeeded and t.responses[0].response_delete_range.deleted == 1
            deleted_at = t.header.revision

            # The watcher saw both, in order, with the previous values; then RequestProgress is
            # answered at a revision no lower than the delete.
            seen = []
            while len(seen) < 2:
                resp = next(stream)
                seen += [(e.type, e.kv.mod_revision, e.prev_kv.value) for e in resp.events]
            assert seen == [(mvccpb.Event.PUT, new_rev, b"spec-3"), (mvccpb.Event.DELETE, deleted_at, b"v2")]
            requests.put(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))
            notice = next(stream)
            assert not notice.events and notice.header.revision >= deleted_at

            # Objects under a lease (how Events expire): revoked, they are gone, and watched so.
            lease = api.call(api.lease, "LeaseGrant", pb.LeaseGrantRequest(TTL=60))
            ev_key = PODS + b"pod-event"
            assert api.create(ev_key, b"event", lease=lease.ID).succeeded
            api.call(api.lease, "LeaseRevoke", pb.LeaseRevokeRequest(ID=lease.ID))
            assert api.range(key=ev_key).count == 0
            types = []
            while len(types) < 2:
                types += [(e.type, e.kv.key) for e in next(stream).events]
            assert types == [(mvccpb.Event.PUT, ev_key), (mvccpb.Event.DELETE, ev_key)]

            # The compactor: a Txn on compact_rev_key's version, then Compact.
            head = api.range(key=COMPACT_KEY)
            version = head.kvs[0].version if head.kvs else 0
            target = api.range(key=PODS, range_end=PODS_END, count_only=True).header.revision
            t = api.txn([pb.Compare(key=COMPACT_KEY, target=C.VERSION, result=C.EQUAL, version=version)],
                        [put(COMPACT_KEY, str(target).encode())], [get(COMPACT_KEY)])
            assert t.succeeded
            # A second compactor that read the old version loses, and sees the winner's value.
            t = api.txn([pb.Compare(key=COMPACT_KEY, target=C.VERSION, result=C.EQUAL, version=version)],
                        [put(COMPACT_KEY, b"0")], [get(COMPACT_KEY)])
            assert not t.succeeded and t.responses[0].response_range.kvs[0].value == str(target).encode()
            api.call(api.kv, "Compact", pb.CompactionRequest(revision=target))
            with pytest.raises(grpc.RpcError) as info:
                api.range(key=PODS, range_end=PODS_END, revision=list_rev)
            assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
            assert "required revision has been compacted" in info.value.details()
            # A watch from before the compaction is cancelled with the compact revision.
            old: queue.SimpleQueue = queue.SimpleQueue()
            old.put(pb.WatchRequest(create_request=pb.WatchCreateRequest(
                key=PODS, range_end=PODS_END, start_revision=list_rev + 1)))
            old_stream = api.watch_stubs[2].Watch(iter(old.get, None), timeout=60)
            responses = [next(old_stream), next(old_stream)]
            old.put(None)
            cancelled = [r for r in responses if r.canceled]
            assert cancelled and cancelled[0].compact_revision == target, responses
            # The live watch goes on after the compaction.
            assert api.create(PODS + b"pod-late", b"late").succeeded
            late = []
            while not late:
                late = [e.kv.key for e in next(stream).events]
            assert late == [PODS + b"pod-late"]
        finally:
            requests.put(None)
            api.close()
