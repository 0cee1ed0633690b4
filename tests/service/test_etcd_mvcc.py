"""kubekv.etcd.mvcc: the etcd v3 MVCC state machine, driven through DoOp with real protobuf requests.

The expected values follow etcd v3.5's behaviour (server/mvcc/kvstore_txn.go,
server/etcdserver/apply.go, server/etcdserver/api/v3rpc/key.go, server/lease/lessor.go,
server/mvcc/watchable_store.go).

Usage:
    python -m pytest tests/service/test_etcd_mvcc.py -q -p no:cacheprovider
"""

from __future__ import annotations

import random
import threading
import time

import grpc
import msgpack
import pytest

import labgob
from kubekv.etcd.mvcc import MAX_TXN_OPS, MIN_LEASE_TTL_S, EtcdError, EtcdOp, MVCCStore
from kubekv.etcd.pb import etcd_kv_pb2 as mvccpb
from kubekv.etcd.pb import etcd_rpc_pb2 as pb

PUT, DELETE = mvccpb.Event.PUT, mvccpb.Event.DELETE
C = pb.Compare
RR = pb.RangeRequest

COMPACTED = "etcdserver: mvcc: required revision has been compacted"
FUTURE = "etcdserver: mvcc: required revision is a future revision"


# ---- helpers ----

def do(s: MVCCStore, kind: str, msg) -> object:
    return s.DoOp(EtcdOp(Kind=kind, Body=msg.SerializeToString()))


def ok(resp):
    assert not isinstance(resp, EtcdError), resp
    return resp


def put(s, key, value=b"", **kw) -> pb.PutResponse:
    return ok(do(s, "put", pb.PutRequest(key=key, value=value, **kw)))


def rng(s, key, range_end=b"", **kw) -> pb.RangeResponse:
    return ok(do(s, "range", RR(key=key, range_end=range_end, **kw)))


def delete(s, key, range_end=b"", **kw) -> pb.DeleteRangeResponse:
    return ok(do(s, "delete_range", pb.DeleteRangeRequest(key=key, range_end=range_end, **kw)))


def txn(s, compare=(), success=(), failure=()):
    return do(s, "txn", pb.TxnRequest(compare=list(compare), success=list(success), failure=list(failure)))


def op_put(key, value=b"", **kw) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, **kw))


def op_get(key, range_end=b"", **kw) -> pb.RequestOp:
    return pb.RequestOp(request_range=RR(key=key, range_end=range_end, **kw))


def op_del(key, range_end=b"", **kw) -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=range_end, **kw))


def op_txn(compare=(), success=(), failure=()) -> pb.RequestOp:
    return pb.RequestOp(request_txn=pb.TxnRequest(compare=list(compare), success=list(success),
                                                  failure=list(failure)))


def cmp(key, target, result, value, range_end=b"") -> pb.Compare:
    field = {C.VERSION: "version", C.CREATE: "create_revision", C.MOD: "mod_revision",
             C.VALUE: "value", C.LEASE: "lease"}[target]
    return pb.Compare(key=key, target=target, result=result, range_end=range_end, **{field: value})


def grant(s, lease_id, ttl=60) -> pb.LeaseGrantResponse:
    return ok(do(s, "lease_grant", pb.LeaseGrantRequest(ID=lease_id, TTL=ttl)))


def compact(s, rev):
    return do(s, "compact", pb.CompactionRequest(revision=rev))


def keys(resp) -> list[bytes]:
    return [kv.key for kv in resp.kvs]


def err(resp, code, message):
    assert isinstance(resp, EtcdError), resp
    assert (resp.code, resp.message) == (code, message)


def drain(w, timeout=0.01) -> list:
    events, compact_rev = w.get(timeout)
    assert compact_rev == 0
    return [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in events]


# ---- revisions, versions ----

def TestEmptyStoreIsAtRevisionOne():
    s = MVCCStore()
    assert s.revision == 1 and s.compact_revision == 0
    r = rng(s, b"a")
    assert r.header.revision == 1 and r.count == 0 and not r.kvs


def TestRevisionArithmetic():
    s = MVCCStore()
    assert put(s, b"a", b"1").header.revision == 2
    assert put(s, b"b", b"1").header.revision == 3
    d = delete(s, b"a")
    assert (d.deleted, d.header.revision) == (1, 4)
    d = delete(s, b"missing")   # deletes nothing: no new revision
    assert (d.deleted, d.header.revision) == (0, 4)
    assert s.revision == 4
    t = ok(txn(s, success=[op_put(b"x"), op_put(b"y")]))
    assert t.header.revision == 5 and s.revision == 5
    r = rng(s, b"x", b"z")
    assert [kv.mod_revision for kv in r.kvs] == [5, 5]
    # A txn that only reads, or whose chosen branch writes nothing, keeps the revision.
    assert ok(txn(s, success=[op_get(b"x")])).header.revision == 5
    t = ok(txn(s, compare=[cmp(b"x", C.VERSION, C.EQUAL, 9)], success=[op_put(b"x")],
               failure=[op_get(b"x")]))
    assert not t.succeeded and t.header.revision == 5
    # A txn's delete that deletes nothing adds no revision either.
    assert ok(txn(s, success=[op_del(b"nothing")])).header.revision == 5
    # A range through the log reports the current revision.
    assert rng(s, b"x").header.revision == 5


def TestCreateModVersionAcrossDeleteAndRecreate():
    s = MVCCStore()
    put(s, b"k", b"v1")                       # rev 2
    put(s, b"k", b"v2")                       # rev 3
    kv = rng(s, b"k").kvs[0]
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (2, 3, 2, b"v2")
    delete(s, b"k")                           # rev 4
    assert rng(s, b"k").count == 0
    put(s, b"k", b"v3")                       # rev 5: a new generation
    kv = rng(s, b"k").kvs[0]
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (5, 5, 1, b"v3")
    # The old generation is still readable at its revisions.
    kv = rng(s, b"k", revision=3).kvs[0]
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (2, 3, 2, b"v2")
    assert rng(s, b"k", revision=4).count == 0


def TestPutPrevKvIgnoreValueIgnoreLease():
    s = MVCCStore()
    r = put(s, b"k", b"v1", prev_kv=True)
    assert not r.HasField("prev_kv")
    r = put(s, b"k", b"v2", prev_kv=True)
    assert (r.prev_kv.value, r.prev_kv.version, r.prev_kv.mod_revision) == (b"v1", 1, 2)
    grant(s, 7)
    put(s, b"k", b"v3", lease=7)
    put(s, b"k", ignore_value=True)                       # keeps v3, drops the lease
    kv = rng(s, b"k").kvs[0]
    assert (kv.value, kv.lease, kv.version) == (b"v3", 0, 4)
    put(s, b"k", b"v4", lease=7)
    put(s, b"k", b"v5", ignore_lease=True)                # keeps lease 7
    kv = rng(s, b"k").kvs[0]
    assert (kv.value, kv.lease) == (b"v5", 7)
    err(do(s, "put", pb.PutRequest(key=b"nope", ignore_value=True)), grpc.StatusCode.INVALID_ARGUMENT,
        "etcdserver: key not found")
    err(do(s, "put", pb.PutRequest(key=b"nope", ignore_lease=True)), grpc.StatusCode.INVALID_ARGUMENT,
        "etcdserver: key not found")
    err(do(s, "put", pb.PutRequest(key=b"k", value=b"x", ignore_value=True)),
        grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: value is provided")
    err(do(s, "put", pb.PutRequest(key=b"k", lease=7, ignore_lease=True)),
        grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: lease is provided")
    err(do(s, "put", pb.PutRequest(key=b"", value=b"x")), grpc.StatusCode.INVALID_ARGUMENT,
        "etcdserver: key is not provided")
    assert s.revision == 7   # six puts; the refused ones changed nothing


# ---- Range ----

def _abc_store() -> MVCCStore:
    s = MVCCStore()
    for k in (b"a", b"b", b"b/1", b"b/2", b"c", b"d"):
        put(s, k, k.upper())
    return s


def TestRangeSingleRangePrefixAll():
    s = _abc_store()
    assert keys(rng(s, b"b")) == [b"b"]
    assert keys(rng(s, b"zz")) == []
    assert keys(rng(s, b"b", b"c")) == [b"b", b"b/1", b"b/2"]
    assert keys(rng(s, b"b/", b"b0")) == [b"b/1", b"b/2"]          # prefix: range_end = prefix + 1
    assert keys(rng(s, b"c", b"\0")) == [b"c", b"d"]               # every key >= key
    assert keys(rng(s, b"\0", b"\0")) == [b"a", b"b", b"b/1", b"b/2", b"c", b"d"]
    assert keys(rng(s, b"c", b"a")) == []                          # end before key: nothing
    err(do(s, "range", RR(key=b"")), grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: key is not provided")


def TestRangeLimitCountKeysOnly():
    s = _abc_store()
    r = rng(s, b"\0", b"\0", limit=2)
    assert keys(r) == [b"a", b"b"] and r.more and r.count == 6
    r = rng(s, b"\0", b"\0", limit=6)
    assert len(r.kvs) == 6 and not r.more and r.count == 6
    r = rng(s, b"\0", b"\0", count_only=True)
    assert r.count == 6 and not r.kvs and not r.more
    r = rng(s, b"b", b"c", keys_only=True)
    assert keys(r) == [b"b", b"b/1", b"b/2"] and all(kv.value == b"" for kv in r.kvs)
    assert r.kvs[0].mod_revision == 3 and r.kvs[0].version == 1


def TestRangeSort():
    s = MVCCStore()
    put(s, b"a", b"3")      # rev 2
    put(s, b"b", b"1")      # rev 3
    put(s, b"c", b"2")      # rev 4
    put(s, b"a", b"4")      # rev 5: a has version 2
    all_ = dict(key=b"\0", range_end=b"\0")
    assert keys(rng(s, **all_, sort_order=RR.DESCEND)) == [b"c", b"b", b"a"]
    assert keys(rng(s, **all_, sort_order=RR.ASCEND, sort_target=RR.VALUE)) == [b"b", b"c", b"a"]
    assert keys(rng(s, **all_, sort_order=RR.DESCEND, sort_target=RR.MOD)) == [b"a", b"c", b"b"]
    assert keys(rng(s, **all_, sort_order=RR.ASCEND, sort_target=RR.CREATE)) == [b"a", b"b", b"c"]
    assert keys(rng(s, **all_, sort_order=RR.DESCEND, sort_target=RR.VERSION))[0] == b"a"
    # A target without an order sorts ascending (etcd's default).
    assert keys(rng(s, **all_, sort_target=RR.MOD)) == [b"b", b"c", b"a"]
    # limit applies after sorting.
    r = rng(s, **all_, sort_order=RR.DESCEND, sort_target=RR.VALUE, limit=1)
    assert keys(r) == [b"a"] and r.more and r.count == 3


def TestRangeRevisionFilters():
    s = MVCCStore()
    put(s, b"a")            # 2
    put(s, b"b")            # 3
    put(s, b"c")            # 4
    put(s, b"a")            # 5 (create 2)
    all_ = dict(key=b"\0", range_end=b"\0")
    assert keys(rng(s, **all_, min_mod_revision=4)) == [b"a", b"c"]
    assert keys(rng(s, **all_, max_mod_revision=3)) == [b"b"]
    assert keys(rng(s, **all_, min_create_revision=3)) == [b"b", b"c"]
    assert keys(rng(s, **all_, max_create_revision=2)) == [b"a"]
    r = rng(s, **all_, min_mod_revision=4, limit=1)
    assert keys(r) == [b"a"] and r.more and r.count == 3   # count: before the filters


def TestRangePastRevisionsCompactedAndFuture():
    s = MVCCStore()
    put(s, b"a", b"1")      # 2
    put(s, b"b", b"1")      # 3
    put(s, b"a", b"2")      # 4
    delete(s, b"b")         # 5
    r = rng(s, b"\0", b"\0", revision=3)
    assert [(kv.key, kv.value) for kv in r.kvs] == [(b"a", b"1"), (b"b", b"1")]
    assert r.header.revision == 5          # the header is the current revision
    assert keys(rng(s, b"\0", b"\0", revision=2)) == [b"a"]
    assert keys(rng(s, b"\0", b"\0", revision=1)) == []
    assert rng(s, b"\0", b"\0", revision=5).count == 1
    err(do(s, "range", RR(key=b"a", revision=6)), grpc.StatusCode.OUT_OF_RANGE, FUTURE)
    ok(compact(s, 4))
    err(do(s, "range", RR(key=b"a", revision=3)), grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    assert rng(s, b"a", revision=4).kvs[0].value == b"2"     # the compact revision itself is kept
    with pytest.raises(EtcdError) as e:
        s.range(RR(key=b"a", revision=2))
    assert e.value.message == COMPACTED and e.value.code == grpc.StatusCode.OUT_OF_RANGE


# ---- DeleteRange ----

def TestDeleteRangePrevKv():
    s = _abc_store()
    d = delete(s, b"b", b"c", prev_kv=True)
    assert d.deleted == 3 and [(kv.key, kv.value) for kv in d.prev_kvs] == [
        (b"b", b"B"), (b"b/1", b"B/1"), (b"b/2", b"B/2")]
    assert d.header.revision == 8
    assert keys(rng(s, b"\0", b"\0")) == [b"a", b"c", b"d"]
    d = delete(s, b"c", b"\0")
    assert d.deleted == 2 and not d.prev_kvs and d.header.revision == 9
    err(do(s, "delete_range", pb.DeleteRangeRequest(key=b"")), grpc.StatusCode.INVALID_ARGUMENT,
        "etcdserver: key is not provided")


# ---- Txn ----

def TestTxnCompareTargetsAndResults():
    s = MVCCStore()
    grant(s, 5)
    put(s, b"k", b"m", lease=5)     # rev 2: create 2, mod 2, version 1
    put(s, b"k", b"m", lease=5)     # rev 3: mod 3, version 2
    facts = {C.VERSION: 2, C.CREATE: 2, C.MOD: 3, C.VALUE: b"m", C.LEASE: 5}
    lower = {C.VERSION: 1, C.CREATE: 1, C.MOD: 2, C.VALUE: b"a", C.LEASE: 4}
    higher = {C.VERSION: 3, C.CREATE: 3, C.MOD: 4, C.VALUE: b"z", C.LEASE: 6}
    # The stored fact compared with an equal, a lower and a higher operand: which results hold.
    holds = {"same": {C.EQUAL}, "lower": {C.NOT_EQUAL, C.GREATER}, "higher": {C.NOT_EQUAL, C.LESS}}
    for target in facts:
        for value, which in ((facts[target], "same"), (lower[target], "lower"), (higher[target], "higher")):
            for result in (C.EQUAL, C.NOT_EQUAL, C.GREATER, C.LESS):
                want = result in holds[which]
                t = ok(txn(s, [cmp(b"k", target, result, value)]))
                assert t.succeeded is want, (target, value, result)
    assert s.revision == 3


def TestTxnMissingKey():
    s = MVCCStore()
    # etcd's create-if-absent idiom: version("k") = "0".
    t = ok(txn(s, [cmp(b"k", C.VERSION, C.EQUAL, 0)], [op_put(b"k", b"first")], [op_get(b"k")]))
    assert t.succeeded and t.header.revision == 2
    t = ok(txn(s, [cmp(b"k", C.VERSION, C.EQUAL, 0)], [op_put(b"k", b"second")], [op_get(b"k")]))
    assert not t.succeeded and t.responses[0].response_range.kvs[0].value == b"first"
    for target in (C.CREATE, C.MOD, C.LEASE):
        assert ok(txn(s, [cmp(b"nope", target, C.EQUAL, 0)])).succeeded
    # A value compare against a missing key always fails, even with b"".
    assert not ok(txn(s, [cmp(b"nope", C.VALUE, C.EQUAL, b"")])).succeeded
    assert not ok(txn(s, [cmp(b"nope", C.VALUE, C.NOT_EQUAL, b"x")])).succeeded
    # A target_union of another kind than the target counts as 0.
    c = pb.Compare(key=b"k", target=C.VERSION, result=C.GREATER, mod_revision=100)
    assert ok(txn(s, [c])).succeeded


def TestTxnRangeCompare():
    s = MVCCStore()
    put(s, b"p/a")
    put(s, b"p/b")
    put(s, b"q")
    assert ok(txn(s, [cmp(b"p/", C.VERSION, C.EQUAL, 1, range_end=b"p0")])).succeeded
    put(s, b"p/b")
    assert not ok(txn(s, [cmp(b"p/", C.VERSION, C.EQUAL, 1, range_end=b"p0")])).succeeded
    assert ok(txn(s, [cmp(b"p/", C.MOD, C.LESS, 6, range_end=b"p0")])).succeeded
    # An empty range compares as one missing key.
    assert ok(txn(s, [cmp(b"x/", C.CREATE, C.EQUAL, 0, range_end=b"x0")])).succeeded


def TestTxnKubernetesShapes():
    s = MVCCStore()
    key = b"/registry/pods/default/p"

    def create(value):
        return ok(txn(s, [cmp(key, C.MOD, C.EQUAL, 0)], [op_put(key, value)]))

    def update(rev, value):
        return ok(txn(s, [cmp(key, C.MOD, C.EQUAL, rev)], [op_put(key, value)], [op_get(key)]))

    def remove(rev):
        return ok(txn(s, [cmp(key, C.MOD, C.EQUAL, rev)], [op_del(key)], [op_get(key)]))

    t = create(b"v1")
    assert t.succeeded and t.header.revision == 2
    assert t.responses[0].response_put.header.revision == 2
    assert not create(b"again").succeeded
    t = update(2, b"v2")
    assert t.succeeded and t.header.revision == 3
    t = update(2, b"stale")
    assert not t.succeeded
    kv = t.responses[0].response_range.kvs[0]
    assert (kv.value, kv.mod_revision) == (b"v2", 3)
    t = remove(2)
    assert not t.succeeded and t.responses[0].response_range.kvs[0].mod_revision == 3
    t = remove(3)
    assert t.succeeded and t.responses[0].response_delete_range.deleted == 1 and t.header.revision == 4
    assert create(b"v3").succeeded and rng(s, key).kvs[0].create_revision == 5


def TestTxnReadsSeeOwnWrites():
    s = MVCCStore()
    put(s, b"a", b"old")    # rev 2
    put(s, b"c", b"gone")   # rev 3
    t = ok(txn(s, success=[op_get(b"a"), op_put(b"a", b"new"), op_get(b"a"), op_put(b"b", b"1"),
                           op_get(b"\0", b"\0", count_only=True), op_del(b"c", prev_kv=True),
                           op_get(b"\0", b"\0")]))
    r = t.responses
    assert r[0].response_range.kvs[0].value == b"old" and r[0].response_range.header.revision == 3
    assert r[1].response_put.header.revision == 4
    assert r[2].response_range.kvs[0].value == b"new" and r[2].response_range.header.revision == 4
    assert r[4].response_range.count == 3
    assert r[5].response_delete_range.deleted == 1 and r[5].response_delete_range.header.revision == 4
    assert r[5].response_delete_range.prev_kvs[0].value == b"gone"
    assert keys(r[6].response_range) == [b"a", b"b"]
    assert t.header.revision == 4 and s.revision == 4
    # One revision for all of it: a has version 2, b was created, c deleted.
    assert rng(s, b"a").kvs[0].version == 2 and rng(s, b"b").kvs[0].mod_revision == 4
    assert rng(s, b"c").count == 0


def TestNestedTxn():
    s = MVCCStore()
    put(s, b"a", b"1")      # rev 2
    inner = op_txn([cmp(b"a", C.VALUE, C.EQUAL, b"1")], [op_put(b"c", b"then"), op_get(b"a")],
                   [op_put(b"c", b"else")])
    # The nested compare is decided before the outer put, so it still sees a == "1".
    t = ok(txn(s, [cmp(b"a", C.VERSION, C.EQUAL, 1)], [op_put(b"a", b"2"), inner]))
    assert t.succeeded and t.header.revision == 3
    nested = t.responses[1].response_txn
    assert nested.succeeded and nested.responses[0].response_put.header.revision == 3
    assert nested.responses[1].response_range.kvs[0].value == b"2"   # but its reads see the put
    assert nested.HasField("header") and nested.header.revision == 0   # etcd leaves it empty
    assert rng(s, b"c").kvs[0].value == b"then"
    # The same key in then and else of a nested txn is fine (only one runs).
    t = ok(txn(s, success=[op_txn([cmp(b"a", C.VALUE, C.EQUAL, b"9")], [op_put(b"d", b"t")],
                                  [op_put(b"d", b"e")])]))
    assert rng(s, b"d").kvs[0].value == b"e"


def TestTxnRefusals():
    s = MVCCStore()
    put(s, b"k")
    dup = "etcdserver: duplicate key given in txn request"
    INV = grpc.StatusCode.INVALID_ARGUMENT
    err(txn(s, success=[op_put(b"x"), op_put(b"x")]), INV, dup)
    err(txn(s, success=[op_put(b"x"), op_del(b"x")]), INV, dup)
    err(txn(s, success=[op_del(b"a", b"z"), op_put(b"k")]), INV, dup)
    err(txn(s, failure=[op_put(b"x"), op_txn(success=[op_put(b"x")])]), INV, dup)
    err(txn(s, success=[op_txn(success=[op_del(b"x")]), op_put(b"x")]), INV, dup)
    err(txn(s, success=[op_put(b"x")] * (MAX_TXN_OPS + 1)), INV,
        "etcdserver: too many operations in txn request")
    err(txn(s, [cmp(b"k", C.VERSION, C.EQUAL, 1)] * (MAX_TXN_OPS + 1)), INV,
        "etcdserver: too many operations in txn request")
    # A nested txn gets only what its parent leaves: here 100 ops, so 28 for the nested one.
    err(txn(s, success=[op_get(b"k")] * 99 + [op_txn(success=[op_get(b"k")] * 29)]), INV,
        "etcdserver: too many operations in txn request")
    ok(txn(s, success=[op_get(b"k")] * 99 + [op_txn(success=[op_get(b"k")] * 28)]))
    ok(txn(s, success=[op_get(b"k")] * MAX_TXN_OPS))
    err(txn(s, [cmp(b"", C.VERSION, C.EQUAL, 0)]), INV, "etcdserver: key is not provided")
    err(txn(s, success=[op_get(b"")]), INV, "etcdserver: key is not provided")
    err(txn(s, success=[pb.RequestOp()]), INV, "etcdserver: key not found")
    # State checks on the chosen path refuse the whole txn before any write.
    err(txn(s, success=[op_put(b"y"), op_put(b"z", lease=99)]), grpc.StatusCode.NOT_FOUND,
        "etcdserver: requested lease not found")
    err(txn(s, success=[op_put(b"y"), op_put(b"nokey", ignore_value=True)]), INV, "etcdserver: key not found")
    err(txn(s, success=[op_put(b"y"), op_get(b"k", revision=50)]), grpc.StatusCode.OUT_OF_RANGE, FUTURE)
    # ... but only on the chosen path.
    assert not ok(txn(s, [cmp(b"k", C.VERSION, C.EQUAL, 5)], [op_put(b"z", lease=99)])).succeeded
    assert s.revision == 2 and rng(s, b"y").count == 0
    # A failure after a write (here an unknown sort target, which would crash etcd) undoes it.
    grant(s, 1)
    w = s.watch(b"\0", b"\0", 0)
    bad = txn(s, success=[op_put(b"y", lease=1), op_put(b"k", b"changed"),
                          op_get(b"k", sort_order=RR.ASCEND, sort_target=9)])
    assert isinstance(bad, EtcdError) and bad.code == INV
    assert s.revision == 2 and rng(s, b"y").count == 0 and rng(s, b"k").kvs[0].value == b""
    assert s.lease(1) == (60, []) and w.get(0) == ([], 0)


def TestTxnFromKeyDeleteIsNotCheckedAgainstPuts():
    # etcd's checkIntervals takes a range_end of "\0" literally, so this txn passes its check
    # and the key changes twice in one revision: deleted (sub 0), then created anew (sub 1).
    s = MVCCStore()
    put(s, b"k", b"old")    # 2
    put(s, b"k", b"old2")   # 3
    w = s.watch(b"k", b"", 0, prev_kv=True)
    t = ok(txn(s, success=[op_del(b"a", b"\0"), op_put(b"k", b"new")]))
    assert t.header.revision == 4
    kv = rng(s, b"k").kvs[0]
    assert (kv.value, kv.version, kv.create_revision, kv.mod_revision) == (b"new", 1, 4, 4)
    events, _ = w.get(0.01)
    assert [(e.type, e.prev_kv.value) for e in events] == [(DELETE, b"old2"), (PUT, b"")]
    assert rng(s, b"k", revision=3).kvs[0].value == b"old2"
    r = MVCCStore()
    r.Restore(s.Snapshot())
    assert rng(r, b"k") == rng(s, b"k")
    err(txn(s, success=[op_del(b"a", b"z"), op_put(b"k", b"new")]), grpc.StatusCode.INVALID_ARGUMENT,
        "etcdserver: duplicate key given in txn request")


# ---- leases ----

def TestLeases():
    s = MVCCStore()
    g = grant(s, 10, ttl=1)
    assert (g.ID, g.TTL, g.header.revision) == (10, MIN_LEASE_TTL_S, 1)
    assert grant(s, 11, ttl=100).TTL == 100
    err(do(s, "lease_grant", pb.LeaseGrantRequest(ID=10, TTL=5)), grpc.StatusCode.FAILED_PRECONDITION,
        "etcdserver: lease already exists")
    err(do(s, "lease_grant", pb.LeaseGrantRequest(ID=0, TTL=5)), grpc.StatusCode.NOT_FOUND,
        "etcdserver: requested lease not found")
    err(do(s, "lease_grant", pb.LeaseGrantRequest(ID=12, TTL=9_000_000_001)), grpc.StatusCode.OUT_OF_RANGE,
        "etcdserver: too large lease TTL")
    assert s.lease_ids() == [10, 11] and s.revision == 1
    put(s, b"a", lease=10)
    put(s, b"b", lease=10)
    put(s, b"c", lease=11)
    assert s.lease(10) == (MIN_LEASE_TTL_S, [b"a", b"b"])
    put(s, b"b", lease=11)                 # moves b to lease 11
    put(s, b"c")                           # detaches c
    assert s.lease(10) == (MIN_LEASE_TTL_S, [b"a"]) and s.lease(11) == (100, [b"b"])
    put(s, b"d", lease=10)
    delete(s, b"d")                        # a deleted key leaves its lease
    assert s.lease(10)[1] == [b"a"]
    put(s, b"e", lease=10)
    rev = s.revision
    r = ok(do(s, "lease_revoke", pb.LeaseRevokeRequest(ID=10)))
    assert r.header.revision == rev + 1 == s.revision      # both keys go in one revision
    assert keys(rng(s, b"\0", b"\0")) == [b"b", b"c"]
    assert s.lease(10) is None and s.lease_ids() == [11]
    err(do(s, "lease_revoke", pb.LeaseRevokeRequest(ID=10)), grpc.StatusCode.NOT_FOUND,
        "etcdserver: requested lease not found")
    err(do(s, "put", pb.PutRequest(key=b"x", lease=10)), grpc.StatusCode.NOT_FOUND,
        "etcdserver: requested lease not found")
    # Revoking a lease without keys adds no revision.
    grant(s, 12)
    rev = s.revision
    assert ok(do(s, "lease_revoke", pb.LeaseRevokeRequest(ID=12))).header.revision == rev


# ---- compaction ----

def TestCompaction():
    s = MVCCStore()
    ok(compact(s, 0))                      # etcd: never compacted is -1, so 0 is allowed
    put(s, b"a", b"1")      # 2
    put(s, b"a", b"2")      # 3
    put(s, b"b", b"1")      # 4
    delete(s, b"b")         # 5
    put(s, b"c", b"1")      # 6
    err(compact(s, 7), grpc.StatusCode.OUT_OF_RANGE, FUTURE)
    c = ok(compact(s, 5))
    assert c.header.revision == 6 and s.compact_revision == 5 and s.revision == 6
    err(compact(s, 5), grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    err(compact(s, 4), grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    assert [(kv.key, kv.value) for kv in rng(s, b"\0", b"\0", revision=5).kvs] == [(b"a", b"2")]
    err(do(s, "range", RR(key=b"a", revision=4)), grpc.StatusCode.OUT_OF_RANGE, COMPACTED)
    # b's history ended in a deletion at or below 5: it is gone entirely; a's older value too.
    assert s._hist.keys() == {b"a", b"c"} and len(s._hist[b"a"]) == 1
    ok(compact(s, 6))
    assert rng(s, b"a").kvs[0].version == 2 and rng(s, b"a").kvs[0].create_revision == 2


# ---- snapshots ----

def _busy_store() -> MVCCStore:
    s = MVCCStore()
    grant(s, 3, ttl=30)
    grant(s, 4, ttl=40)
    for i in range(20):
        put(s, b"k%02d" % (i % 7), b"v%d" % i, lease=3 if i % 3 == 0 else 0)
    delete(s, b"k01")
    ok(txn(s, success=[op_put(b"t1", b"x", lease=4), op_put(b"t2", b"y"), op_del(b"k02")]))
    ok(compact(s, 10))
    put(s, b"k03", b"after")
    return s


def TestSnapshotRestoreRoundTrip():
    s = _busy_store()
    data = s.Snapshot()
    r = MVCCStore()
    r.Restore(data)
    assert r.Snapshot() == data
    assert (r.revision, r.compact_revision, r.lease_ids()) == (s.revision, 10, [3, 4])
    assert r.lease(3) == s.lease(3) and r.lease(4) == (40, [b"t1"])
    for rev in range(10, s.revision + 1):
        assert rng(r, b"\0", b"\0", revision=rev) == rng(s, b"\0", b"\0", revision=rev)
    ops = [("put", pb.PutRequest(key=b"k00", value=b"n", prev_kv=True)),
           ("lease_revoke", pb.LeaseRevokeRequest(ID=3)),
           ("range", RR(key=b"k", range_end=b"l", revision=11)),
           ("range", RR(key=b"k", range_end=b"l", revision=9)),
           ("txn", pb.TxnRequest(compare=[cmp(b"t1", C.LEASE, C.EQUAL, 4)],
                                 success=[op_del(b"t", b"u", prev_kv=True)])),
           ("compact", pb.CompactionRequest(revision=12)),
           ("lease_grant", pb.LeaseGrantRequest(ID=4, TTL=1)),
           ("delete_range", pb.DeleteRangeRequest(key=b"\0", range_end=b"\0", prev_kv=True))]
    for kind, msg in ops:
        assert do(s, kind, msg) == do(r, kind, msg), kind
    assert r.Snapshot() == s.Snapshot()
    r.Restore(b"")
    assert r.revision == 1 and r.lease_ids() == [] and rng(r, b"\0", b"\0").count == 0
    with pytest.raises(ValueError):
        r.Restore(b"\x93garbage")


def TestSnapshotLaterEncodesTheStateAtItsCall():
    """SnapshotLater copies at once and encodes later: writes and a compaction in between (the
    apply thread goes on while a snapshot is encoded) are not in it."""
    s = _busy_store()
    for i in range(2500):                       # more keys than one encoding chunk
        put(s, b"m%05d" % i, b"v")
    expected, rev = s.Snapshot(), s.revision
    later = s.SnapshotLater()
    put(s, b"k00", b"after")
    put(s, b"new-key", b"after")
    ok(compact(s, s.revision))                  # rewrites every key's history
    delete(s, b"m", b"n")
    assert later() == expected
    r = MVCCStore()
    r.Restore(expected)
    assert r.revision == rev < s.revision and rng(r, b"m", b"n").count == 2500


def TestSnapshotOfTheFirstFormatStillRestores():
    """A data directory of format "kubekv 2" holds format-1 MVCC snapshots: keys not chunked."""
    s = _busy_store()
    state = msgpack.unpackb(s.Snapshot(), raw=False)
    keys = [kr for chunk in state.pop("chunks") for kr in msgpack.unpackb(chunk, raw=False)]
    old = msgpack.packb({**state, "v": 1, "keys": keys}, use_bin_type=True)
    r = MVCCStore()
    r.Restore(old)
    assert r.Snapshot() == s.Snapshot()


def TestSnapshotSizeFollowsLiveDataAndHistory():
    s = MVCCStore()
    for i in range(2000):
        put(s, b"key", b"x" * 100)
    before = len(s.Snapshot())
    ok(compact(s, s.revision))
    after = len(s.Snapshot())
    assert before > 2000 * 100 and after < 300


# ---- watchers ----

def TestWatchFromNow():
    s = MVCCStore()
    put(s, b"a", b"0")                     # before the watch: not seen
    w = s.watch(b"a", b"", 0)
    assert w.get(0.01) == ([], 0)
    put(s, b"a", b"1")                     # 3
    put(s, b"b", b"1")                     # 4: another key
    delete(s, b"a")                        # 5
    assert drain(w) == [(PUT, b"a", b"1", 3), (DELETE, b"a", b"", 5)]
    assert drain(w) == []
    put(s, b"a", b"2")
    events, _ = w.get(0.01)
    assert events[0].kv.version == 1 and events[0].kv.create_revision == 6


def TestWatchFromPastRevisionThenLive():
    s = MVCCStore()
    put(s, b"a", b"1")      # 2
    put(s, b"a", b"2")      # 3
    delete(s, b"a")         # 4
    put(s, b"b", b"1")      # 5
    w = s.watch(b"a", b"", 3)
    put(s, b"a", b"3")      # 6
    assert drain(w) == [(PUT, b"a", b"2", 3), (DELETE, b"a", b"", 4), (PUT, b"a", b"3", 6)]
    # A start revision in the future starts there.
    f = s.watch(b"a", b"", 8)
    put(s, b"a", b"4")      # 7: skipped
    put(s, b"a", b"5")      # 8
    assert drain(f) == [(PUT, b"a", b"5", 8)]


def TestWatchPrefixAndAll():
    s = MVCCStore()
    p = s.watch(b"p/", b"p0", 0)
    every = s.watch(b"\0", b"\0", 0)
    geq = s.watch(b"q", b"\0", 0)
    for k in (b"p/1", b"o", b"p/2", b"p0", b"q", b"z"):
        put(s, k)
    assert [e[1] for e in drain(p)] == [b"p/1", b"p/2"]
    assert [e[1] for e in drain(every)] == [b"p/1", b"o", b"p/2", b"p0", b"q", b"z"]
    assert [e[1] for e in drain(geq)] == [b"q", b"z"]


def TestWatchPrevKv():
    s = MVCCStore()
    put(s, b"a", b"1")      # 2
    w = s.watch(b"a", b"", 0, prev_kv=True)
    put(s, b"a", b"2")      # 3
    delete(s, b"a")         # 4
    put(s, b"a", b"3")      # 5: a creation has no prev_kv
    events, _ = w.get(0.01)
    assert [(e.type, e.prev_kv.value, e.prev_kv.mod_revision) for e in events] == [
        (PUT, b"1", 2), (DELETE, b"2", 3), (PUT, b"", 0)]
    assert not events[2].HasField("prev_kv")
    d = events[1]
    assert (d.kv.key, d.kv.mod_revision, d.kv.version, d.kv.create_revision) == (b"a", 4, 0, 0)
    # Replayed from history, prev_kv is the same.
    h = s.watch(b"a", b"", 3, prev_kv=True)
    events, _ = h.get(0.01)
    assert [(e.type, e.prev_kv.value) for e in events] == [(PUT, b"1"), (DELETE, b"2"), (PUT, b"")]
    n = s.watch(b"a", b"", 3)
    assert not any(e.HasField("prev_kv") for e in n.get(0.01)[0])


def TestWatchFilters():
    s = MVCCStore()
    noput = s.watch(b"a", b"", 0, filters=[pb.WatchCreateRequest.NOPUT])
    nodel = s.watch(b"a", b"", 0, filters=[pb.WatchCreateRequest.NODELETE])
    put(s, b"a")
    delete(s, b"a")
    put(s, b"a")
    assert drain(noput) == [(DELETE, b"a", b"", 3)]
    assert [e[3] for e in drain(nodel)] == [2, 4]
    assert drain(s.watch(b"a", b"", 2, filters=[pb.WatchCreateRequest.NOPUT])) == [(DELETE, b"a", b"", 3)]


def TestWatchEventsOnceInOrderAcrossOps():
    s = MVCCStore()
    w = s.watch(b"\0", b"\0", 0)
    rng_ = random.Random(1)
    seen = []
    for i in range(200):
        k = b"k%d" % rng_.randrange(10)
        if rng_.random() < 0.2:
            delete(s, k)
        else:
            put(s, k, b"%d" % i)
        if rng_.random() < 0.3:
            seen += drain(w, 0)
    seen += drain(w)
    revs = [e[3] for e in seen]
    assert revs == sorted(revs) and len(revs) == len(set(revs)) == s.revision - 1


def TestWatchTxnGivesOneEventPerWriteSameRevision():
    s = MVCCStore()
    put(s, b"c", b"0")      # 2
    w = s.watch(b"\0", b"\0", 0)
    ok(txn(s, success=[op_put(b"b", b"1"), op_put(b"a", b"1"), op_del(b"c"), op_get(b"a")]))
    assert drain(w) == [(PUT, b"b", b"1", 3), (PUT, b"a", b"1", 3), (DELETE, b"c", b"", 3)]
    h = s.watch(b"\0", b"\0", 3)           # the same from history: sub-revision order
    assert drain(h) == [(PUT, b"b", b"1", 3), (PUT, b"a", b"1", 3), (DELETE, b"c", b"", 3)]


def TestWatchLeaseRevokeDeletes():
    s = MVCCStore()
    grant(s, 1)
    put(s, b"x", lease=1)
    put(s, b"y", lease=1)
    w = s.watch(b"\0", b"\0", 0)
    ok(do(s, "lease_revoke", pb.LeaseRevokeRequest(ID=1)))
    assert drain(w) == [(DELETE, b"x", b"", 4), (DELETE, b"y", b"", 4)]


def TestWatchCompaction():
    s = MVCCStore()
    for i in range(5):
        put(s, b"a", b"%d" % i)             # revs 2..6
    ok(compact(s, 4))
    w = s.watch(b"a", b"", 3)               # below the compact revision: ended at once
    assert w.get(0) == ([], 4) and w.ended
    w = s.watch(b"a", b"", 4)               # the compact revision itself is still there
    assert [e[3] for e in drain(w)] == [4, 5, 6]
    # A watcher that has not read events older than the next compaction is ended by it...
    lagging = s.watch(b"a", b"", 0)
    keeping_up = s.watch(b"a", b"", 0)
    put(s, b"a", b"x")                      # 7
    put(s, b"a", b"y")                      # 8
    assert [e[3] for e in drain(keeping_up)] == [7, 8]
    ok(compact(s, 8))
    assert lagging.get(0) == ([], 8) and lagging.get(0) == ([], 8)
    # ... the other goes on.
    put(s, b"a", b"z")                      # 9
    assert [e[3] for e in drain(keeping_up)] == [9]
    # One whose unread events are all at or after the compact revision goes on too.
    put(s, b"a", b"w")                      # 10
    ok(compact(s, 10))
    assert [e[3] for e in drain(keeping_up)] == [10]


def TestWatchCancelAndBlockingGet():
    s = MVCCStore()
    w = s.watch(b"a", b"", 0)
    t0 = time.monotonic()
    assert w.get(0.05) == ([], 0) and time.monotonic() - t0 >= 0.04
    got = []
    reader = threading.Thread(target=lambda: got.append(w.get(5)))
    reader.start()
    time.sleep(0.05)
    put(s, b"a", b"1")
    reader.join(5)
    assert [e.kv.value for e in got[0][0]] == [b"1"]
    reader = threading.Thread(target=lambda: got.append(w.get(5)))
    reader.start()
    time.sleep(0.05)
    w.cancel()
    reader.join(5)
    assert not reader.is_alive() and got[1] == ([], 0) and w.ended
    put(s, b"a", b"2")
    assert w.get(0) == ([], 0) and not s._watchers


def TestWatchCatchesUpAfterRestore():
    leader = MVCCStore()
    follower = MVCCStore()
    w = follower.watch(b"k", b"\0", 0)
    for i in range(5):
        put(leader, b"k%d" % i, b"%d" % i)
        if i == 1:
            follower.Restore(leader.Snapshot())
    assert [e[3] for e in drain(w)] == [2, 3]
    follower.Restore(leader.Snapshot())     # the watcher gets what the snapshot added
    assert [e[3] for e in drain(w)] == [4, 5, 6]
    ok(compact(leader, 6))
    put(leader, b"k9")
    follower.Restore(leader.Snapshot())
    assert [e[3] for e in drain(w)] == [7]
    # A watcher behind a snapshot's compaction ends.
    stale = follower.watch(b"k", b"\0", 0)
    put(leader, b"k9")                      # 8
    put(leader, b"k9")                      # 9
    ok(compact(leader, 9))
    follower.Restore(leader.Snapshot())
    assert stale.get(0) == ([], 9)


# ---- robustness ----

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def TestDoOpNeverRaises():
    s = MVCCStore()
    put(s, b"k", b"v")
    kinds = ["put", "delete_range", "txn", "compact", "range", "lease_grant", "lease_revoke"]
    gen = random.Random(7)
    for _ in range(3000):
        body = bytes(gen.randrange(256) for _ in range(gen.randrange(40)))
        resp = s.DoOp(EtcdOp(Kind=gen.choice(kinds), Body=body))
        assert resp is not None
    for bad in (EtcdOp(Kind="nope"), EtcdOp(Kind="put", Body="text"), EtcdOp(Kind="put", Body=10**12),
                EtcdOp(Kind=None), "not an op", None, EtcdOp(Kind="txn", Body=b"\x12\x02\x22\x00" * 3 + b"\xff")):
        resp = s.DoOp(bad)
        assert isinstance(resp, EtcdError) and resp.code == grpc.StatusCode.INVALID_ARGUMENT
    # Deep nesting beyond protobuf's recursion limit is a decode error, not a crash.
    deep = b""
    for _ in range(150):   # TxnRequest.success (field 2) holding RequestOp.request_txn (field 4)
        deep = b"\x22" + _varint(len(deep)) + deep
        deep = b"\x12" + _varint(len(deep)) + deep
    assert isinstance(s.DoOp(EtcdOp(Kind="txn", Body=deep)), EtcdError)
    # Within the limit, nesting works.
    nested = pb.TxnRequest(success=[op_put(b"n", b"deep")])
    for _ in range(40):
        nested = pb.TxnRequest(success=[pb.RequestOp(request_txn=nested)])
    assert ok(do(s, "txn", nested)).header.revision == s.revision and rng(s, b"n").count == 1
    # Unknown enum values: an unknown sort target with an order is refused, unknown compare
    # result/target pass as etcd's do.
    assert isinstance(do(s, "range", RR(key=b"k", sort_order=RR.ASCEND, sort_target=9)), EtcdError)
    assert ok(txn(s, [pb.Compare(key=b"k", target=9, result=9)])).succeeded
    assert rng(s, b"k").kvs[0].value == b"v"


def TestEtcdOpCrossesLabgob():
    op = EtcdOp(Kind="put", Body=pb.PutRequest(key=b"k", value=b"v").SerializeToString())
    back = labgob.loads(labgob.dumps(op))
    assert back == op
    assert isinstance(MVCCStore().DoOp(back), pb.PutResponse)


def TestReadsFromOtherThreadsWhileApplying():
    s = MVCCStore()
    stop = threading.Event()
    failures = []

    def reader():
        while not stop.is_set():
            r = s.range(RR(key=b"\0", range_end=b"\0"))
            # Every txn adds two keys at one revision: a read never sees half of one.
            if r.count != 2 * (r.header.revision - 1):
                failures.append((r.count, r.header.revision))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(300):
        ok(txn(s, success=[op_put(b"a%04d" % i), op_put(b"b%04d" % i)]))
    stop.set()
    for t in threads:
        t.join(5)
    assert not failures and s.range(RR(key=b"\0", range_end=b"\0", count_only=True)).count == 600


def TestARetriedRequestIsAppliedOnceAndAnsweredWithTheFirstResult() -> None:
    from kubekv.etcd.mvcc import EtcdOp, MVCCStore
    from kubekv.etcd.pb import etcd_rpc_pb2 as pb

    s = MVCCStore()
    put = EtcdOp(Kind="put", Body=pb.PutRequest(key=b"k", value=b"v").SerializeToString(), Id=7)
    first = s.DoOp(put)
    again = s.DoOp(put)
    assert again.header.revision == first.header.revision == 2 and s.revision == 2
    create = pb.TxnRequest(compare=[pb.Compare(key=b"n", target=pb.Compare.CREATE, create_revision=0)],
                           success=[pb.RequestOp(request_put=pb.PutRequest(key=b"n", value=b"x"))])
    txn = EtcdOp(Kind="txn", Body=create.SerializeToString(), Id=8)
    assert s.DoOp(txn).succeeded
    restored = MVCCStore()
    restored.Restore(s.Snapshot())
    assert restored.DoOp(txn).succeeded and restored.revision == 3   # still answered, not re-run
    assert s.DoOp(EtcdOp(Kind="txn", Body=create.SerializeToString(), Id=9)).succeeded is False


def TestSyncedRevisionWaitsForBufferedEvents():
    s = MVCCStore()
    put(s, b"a", b"1")                          # rev 2
    w = s.watch(b"a", b"", 0)
    assert w.synced_revision() == 2             # nothing buffered: everything up to now was handed out
    put(s, b"a", b"2")                          # rev 3, buffered
    put(s, b"b", b"x")                          # rev 4, not watched
    assert w.synced_revision() is None          # a notice now would overtake rev 3
    events, _ = w.get(0)
    assert [e.kv.mod_revision for e in events] == [3]
    assert w.synced_revision() == 4
    future = s.watch(b"a", b"", 10)             # starts at a revision still to come
    assert future.synced_revision() == 4        # never beyond the store's revision
    past = s.watch(b"a", b"", 2)                # replays history first
    assert past.synced_revision() is None
    w.cancel()
    assert w.synced_revision() is None


def TestWakeIsCalledWhenAWatcherHasNews():
    s = MVCCStore()
    woken = threading.Event()
    w = s.watch(b"k", b"", 0, wake=woken.set)
    put(s, b"other", b"x")
    assert not woken.is_set()
    put(s, b"k", b"v")
    assert woken.is_set()
    woken.clear()
    w.cancel()
    assert woken.is_set()


def TestResultOfWaitsForTheRequestWithThatId():
    s = MVCCStore()
    assert s.result_of(7, 0.01) == (False, None)
    got = []
    t = threading.Thread(target=lambda: got.append(s.result_of(7, 5)))
    t.start()
    s.DoOp(EtcdOp(Kind="put", Body=pb.PutRequest(key=b"k", value=b"v").SerializeToString(), Id=7))
    t.join(5)
    done, resp = got[0]
    assert done and resp.header.revision == 2
