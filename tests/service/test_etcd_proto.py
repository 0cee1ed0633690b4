"""kubekv.etcd.pb: the generated etcd v3 wire definitions (no server logic yet).

The golden byte strings below are written out by hand from etcd's own field
numbers and types (etcd-io/etcd v3.5.33 api/etcdserverpb/rpc.proto and
api/mvccpb/kv.proto), so a renumbered or retyped field fails here even if it
still round-trips through our own code.

Usage:
    python -m pytest tests/service/test_etcd_proto.py -q -p no:cacheprovider
"""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from kubekv.etcd.pb import etcd_kv_pb2 as kv
from kubekv.etcd.pb import etcd_rpc_pb2 as rpc
from kubekv.etcd.pb import etcd_rpc_pb2_grpc as rpc_grpc


def tag(field: int, wire_type: int) -> int:
    """A one-byte key (field numbers up to 15): wire types 0 varint, 2 length-delimited."""
    assert field < 16
    return field << 3 | wire_type


V, L = 0, 2  # varint, length-delimited


# ---- modules and services ----

def TestModulesImport():
    assert kv.DESCRIPTOR.package == "mvccpb"
    assert rpc.DESCRIPTOR.package == "etcdserverpb"
    assert rpc.DESCRIPTOR.dependencies[0] is kv.DESCRIPTOR
    assert kv.KeyValue.DESCRIPTOR.full_name == "mvccpb.KeyValue"
    assert rpc.RangeRequest.DESCRIPTOR.full_name == "etcdserverpb.RangeRequest"
    for svc in ("KV", "Watch", "Lease", "Cluster", "Maintenance"):
        assert hasattr(rpc_grpc, f"{svc}Stub")
        assert hasattr(rpc_grpc, f"{svc}Servicer")
        assert hasattr(rpc_grpc, f"add_{svc}Servicer_to_server")


# method -> (input, output, client_streaming, server_streaming)
SERVICES = {
    "KV": {
        "Range": ("RangeRequest", "RangeResponse", False, False),
        "Put": ("PutRequest", "PutResponse", False, False),
        "DeleteRange": ("DeleteRangeRequest", "DeleteRangeResponse", False, False),
        "Txn": ("TxnRequest", "TxnResponse", False, False),
        "Compact": ("CompactionRequest", "CompactionResponse", False, False),
    },
    "Watch": {
        "Watch": ("WatchRequest", "WatchResponse", True, True),
    },
    "Lease": {
        "LeaseGrant": ("LeaseGrantRequest", "LeaseGrantResponse", False, False),
        "LeaseRevoke": ("LeaseRevokeRequest", "LeaseRevokeResponse", False, False),
        "LeaseKeepAlive": ("LeaseKeepAliveRequest", "LeaseKeepAliveResponse", True, True),
        "LeaseTimeToLive": ("LeaseTimeToLiveRequest", "LeaseTimeToLiveResponse", False, False),
        "LeaseLeases": ("LeaseLeasesRequest", "LeaseLeasesResponse", False, False),
    },
    "Cluster": {
        "MemberAdd": ("MemberAddRequest", "MemberAddResponse", False, False),
        "MemberRemove": ("MemberRemoveRequest", "MemberRemoveResponse", False, False),
        "MemberUpdate": ("MemberUpdateRequest", "MemberUpdateResponse", False, False),
        "MemberList": ("MemberListRequest", "MemberListResponse", False, False),
        "MemberPromote": ("MemberPromoteRequest", "MemberPromoteResponse", False, False),
    },
    "Maintenance": {
        "Alarm": ("AlarmRequest", "AlarmResponse", False, False),
        "Status": ("StatusRequest", "StatusResponse", False, False),
        "Defragment": ("DefragmentRequest", "DefragmentResponse", False, False),
        "Hash": ("HashRequest", "HashResponse", False, False),
        "HashKV": ("HashKVRequest", "HashKVResponse", False, False),
        "Snapshot": ("SnapshotRequest", "SnapshotResponse", False, True),
        "MoveLeader": ("MoveLeaderRequest", "MoveLeaderResponse", False, False),
        "Downgrade": ("DowngradeRequest", "DowngradeResponse", False, False),
    },
}


def TestServiceDescriptors():
    assert set(rpc.DESCRIPTOR.services_by_name) == set(SERVICES)
    for svc_name, methods in SERVICES.items():
        svc = rpc.DESCRIPTOR.services_by_name[svc_name]
        assert svc.full_name == f"etcdserverpb.{svc_name}"
        assert {m.name for m in svc.methods} == set(methods), svc_name
        for name, (inp, out, cs, ss) in methods.items():
            m = svc.methods_by_name[name]
            assert m.input_type.full_name == f"etcdserverpb.{inp}", name
            assert m.output_type.full_name == f"etcdserverpb.{out}", name
            assert (m.client_streaming, m.server_streaming) == (cs, ss), name


def TestMethodPaths():
    # The HTTP/2 path that etcd's Go clients send is /<package>.<Service>/<Method>.
    class Channel:
        def __init__(self):
            self.paths = {}

        def _record(self, kind):
            def f(path, *a, **kw):
                self.paths[path] = kind
                return None
            return f

        def __getattr__(self, kind):
            return self._record(kind)

    ch = Channel()
    for svc in SERVICES:
        getattr(rpc_grpc, f"{svc}Stub")(ch)
    assert ch.paths["/etcdserverpb.KV/Range"] == "unary_unary"
    assert ch.paths["/etcdserverpb.Watch/Watch"] == "stream_stream"
    assert ch.paths["/etcdserverpb.Lease/LeaseKeepAlive"] == "stream_stream"
    assert ch.paths["/etcdserverpb.Maintenance/Snapshot"] == "unary_stream"
    assert ch.paths["/etcdserverpb.Cluster/MemberList"] == "unary_unary"
    assert len(ch.paths) == sum(len(m) for m in SERVICES.values())


# ---- enums ----

def TestEnumValues():
    assert [(v.name, v.number) for v in rpc.RangeRequest.SortOrder.DESCRIPTOR.values] == [
        ("NONE", 0), ("ASCEND", 1), ("DESCEND", 2)]
    assert [(v.name, v.number) for v in rpc.RangeRequest.SortTarget.DESCRIPTOR.values] == [
        ("KEY", 0), ("VERSION", 1), ("CREATE", 2), ("MOD", 3), ("VALUE", 4)]
    assert [(v.name, v.number) for v in rpc.Compare.CompareResult.DESCRIPTOR.values] == [
        ("EQUAL", 0), ("GREATER", 1), ("LESS", 2), ("NOT_EQUAL", 3)]
    assert [(v.name, v.number) for v in rpc.Compare.CompareTarget.DESCRIPTOR.values] == [
        ("VERSION", 0), ("CREATE", 1), ("MOD", 2), ("VALUE", 3), ("LEASE", 4)]
    assert [(v.name, v.number) for v in rpc.WatchCreateRequest.FilterType.DESCRIPTOR.values] == [
        ("NOPUT", 0), ("NODELETE", 1)]
    assert [(v.name, v.number) for v in kv.Event.EventType.DESCRIPTOR.values] == [
        ("PUT", 0), ("DELETE", 1)]
    # AlarmType is a top-level enum of package etcdserverpb.
    assert rpc.AlarmType.DESCRIPTOR.full_name == "etcdserverpb.AlarmType"
    assert [(v.name, v.number) for v in rpc.AlarmType.DESCRIPTOR.values] == [
        ("NONE", 0), ("NOSPACE", 1), ("CORRUPT", 2)]
    assert [(v.name, v.number) for v in rpc.AlarmRequest.AlarmAction.DESCRIPTOR.values] == [
        ("GET", 0), ("ACTIVATE", 1), ("DEACTIVATE", 2)]
    assert [(v.name, v.number) for v in rpc.DowngradeRequest.DowngradeAction.DESCRIPTOR.values] == [
        ("VALIDATE", 0), ("ENABLE", 1), ("CANCEL", 2)]


# ---- round trips ----

def TestRoundTrip():
    rr = rpc.RangeRequest(key=b"a", range_end=b"b", limit=10, revision=7,
                          sort_order=rpc.RangeRequest.DESCEND,
                          sort_target=rpc.RangeRequest.MOD,
                          serializable=True, keys_only=True)
    assert rpc.RangeRequest.FromString(rr.SerializeToString()) == rr

    pr = rpc.PutRequest(key=b"k", value=b"\x00\xffv", lease=0x694d71ddacfda227, prev_kv=True)
    assert rpc.PutRequest.FromString(pr.SerializeToString()) == pr

    txn = rpc.TxnRequest(
        compare=[rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.VERSION,
                             key=b"k", version=0),
                 rpc.Compare(result=rpc.Compare.LESS, target=rpc.Compare.MOD,
                             key=b"a", range_end=b"b", mod_revision=42)],
        success=[rpc.RequestOp(request_put=pr),
                 rpc.RequestOp(request_txn=rpc.TxnRequest(
                     success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(
                         key=b"x", range_end=b"\x00", prev_kv=True))]))],
        failure=[rpc.RequestOp(request_range=rr)],
    )
    got = rpc.TxnRequest.FromString(txn.SerializeToString())
    assert got == txn
    # version=0 is a set oneof member (it must survive the trip: "key does not exist").
    assert got.compare[0].WhichOneof("target_union") == "version"
    assert got.compare[1].WhichOneof("target_union") == "mod_revision"
    assert got.success[0].WhichOneof("request") == "request_put"
    nested = got.success[1].request_txn.success[0]
    assert nested.WhichOneof("request") == "request_delete_range"
    assert nested.request_delete_range.range_end == b"\x00"
    assert got.failure[0].request_range.sort_order == rpc.RangeRequest.DESCEND

    resp = rpc.TxnResponse(
        header=rpc.ResponseHeader(cluster_id=2**64 - 1, member_id=1, revision=5, raft_term=2),
        succeeded=True,
        responses=[rpc.ResponseOp(response_range=rpc.RangeResponse(
            kvs=[kv.KeyValue(key=b"k", value=b"v", create_revision=1, mod_revision=5, version=3)],
            count=1))])
    assert rpc.TxnResponse.FromString(resp.SerializeToString()) == resp


# ---- golden wire bytes (field numbers and types from etcd's .proto) ----

def TestWirePutRequest():
    # key=1 bytes, value=2 bytes, lease=3 int64, prev_kv=4, ignore_value=5, ignore_lease=6 bool
    m = rpc.PutRequest(key=b"k", value=b"v", lease=5, prev_kv=True)
    assert m.SerializeToString() == bytes([
        tag(1, L), 1, ord("k"),
        tag(2, L), 1, ord("v"),
        tag(3, V), 5,
        tag(4, V), 1,
    ])
    m = rpc.PutRequest(key=b"k", ignore_value=True, ignore_lease=True)
    assert m.SerializeToString() == bytes([tag(1, L), 1, ord("k"), tag(5, V), 1, tag(6, V), 1])


def TestWireRangeRequest():
    m = rpc.RangeRequest(key=b"a", range_end=b"b", limit=3, revision=4,
                         sort_order=rpc.RangeRequest.DESCEND, sort_target=rpc.RangeRequest.MOD,
                         serializable=True, keys_only=True, count_only=True,
                         min_mod_revision=10, max_mod_revision=11,
                         min_create_revision=12, max_create_revision=13)
    assert m.SerializeToString() == bytes([
        tag(1, L), 1, ord("a"),
        tag(2, L), 1, ord("b"),
        tag(3, V), 3,            # limit
        tag(4, V), 4,            # revision
        tag(5, V), 2,            # sort_order DESCEND
        tag(6, V), 3,            # sort_target MOD
        tag(7, V), 1,            # serializable
        tag(8, V), 1,            # keys_only
        tag(9, V), 1,            # count_only
        tag(10, V), 10,          # min_mod_revision
        tag(11, V), 11,          # max_mod_revision
        tag(12, V), 12,          # min_create_revision
        tag(13, V), 13,          # max_create_revision
    ])


def TestWireResponseHeader():
    # cluster_id=1 uint64, member_id=2 uint64, revision=3 int64, raft_term=4 uint64
    m = rpc.ResponseHeader(cluster_id=300, member_id=2, revision=3, raft_term=4)
    assert m.SerializeToString() == bytes([
        tag(1, V), 0xAC, 0x02,   # 300 as a varint
        tag(2, V), 2,
        tag(3, V), 3,
        tag(4, V), 4,
    ])
    # uint64 member IDs use the full 64 bits (etcd IDs are random 64-bit numbers).
    m = rpc.ResponseHeader(member_id=2**64 - 1)
    assert m.SerializeToString() == bytes([tag(2, V)] + [0xFF] * 9 + [0x01])


def TestWireKeyValue():
    # key=1 bytes, create_revision=2, mod_revision=3, version=4 int64, value=5 bytes, lease=6 int64
    m = kv.KeyValue(key=b"k", create_revision=2, mod_revision=3, version=4, value=b"v", lease=6)
    assert m.SerializeToString() == bytes([
        tag(1, L), 1, ord("k"),
        tag(2, V), 2,
        tag(3, V), 3,
        tag(4, V), 4,
        tag(5, L), 1, ord("v"),
        tag(6, V), 6,
    ])


def TestWireWatchCreateRequest():
    m = rpc.WatchCreateRequest(key=b"k", range_end=b"l", start_revision=3, progress_notify=True,
                               filters=[rpc.WatchCreateRequest.NOPUT,
                                        rpc.WatchCreateRequest.NODELETE],
                               prev_kv=True, watch_id=7, fragment=True)
    assert m.SerializeToString() == bytes([
        tag(1, L), 1, ord("k"),
        tag(2, L), 1, ord("l"),
        tag(3, V), 3,            # start_revision
        tag(4, V), 1,            # progress_notify
        tag(5, L), 2, 0, 1,      # filters: proto3 packs repeated enums
        tag(6, V), 1,            # prev_kv
        tag(7, V), 7,            # watch_id
        tag(8, V), 1,            # fragment
    ])
    # A decoder must also accept the unpacked form of field 5.
    unpacked = rpc.WatchCreateRequest.FromString(bytes([tag(5, V), 1, tag(5, V), 0]))
    assert list(unpacked.filters) == [rpc.WatchCreateRequest.NODELETE, rpc.WatchCreateRequest.NOPUT]


def TestWireWatchRequestOneof():
    # create_request=1, cancel_request=2, progress_request=3
    create = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=b"k"))
    assert create.SerializeToString() == bytes([tag(1, L), 3, tag(1, L), 1, ord("k")])
    cancel = rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=5))
    assert cancel.SerializeToString() == bytes([tag(2, L), 2, tag(1, V), 5])
    progress = rpc.WatchRequest(progress_request=rpc.WatchProgressRequest())
    assert progress.SerializeToString() == bytes([tag(3, L), 0])
    assert rpc.WatchRequest.FromString(bytes([tag(3, L), 0])).WhichOneof("request_union") == "progress_request"


def TestWireWatchResponseAndEvent():
    # Event: type=1 enum, kv=2, prev_kv=3. WatchResponse: header=1, watch_id=2, created=3,
    # canceled=4, compact_revision=5, cancel_reason=6, fragment=7, events=11.
    ev = kv.Event(type=kv.Event.DELETE, kv=kv.KeyValue(key=b"k"), prev_kv=kv.KeyValue(value=b"v"))
    ev_bytes = bytes([tag(1, V), 1, tag(2, L), 3, tag(1, L), 1, ord("k"), tag(3, L), 3, tag(5, L), 1, ord("v")])
    assert ev.SerializeToString() == ev_bytes
    m = rpc.WatchResponse(header=rpc.ResponseHeader(revision=9), watch_id=1, created=True,
                          canceled=True, compact_revision=4, cancel_reason="x", fragment=True,
                          events=[ev])
    assert m.SerializeToString() == bytes([
        tag(1, L), 2, tag(3, V), 9,
        tag(2, V), 1,
        tag(3, V), 1,
        tag(4, V), 1,
        tag(5, V), 4,
        tag(6, L), 1, ord("x"),
        tag(7, V), 1,
        11 << 3 | L, len(ev_bytes),  # events = 11: key byte 0x5a
    ]) + ev_bytes


def TestWireCompare():
    # result=1, target=2, key=3, target_union {version=4, create_revision=5, mod_revision=6,
    # value=7, lease=8}, range_end=64 (a two-byte key: 64<<3|2 = 514 = 0x82 0x04).
    m = rpc.Compare(result=rpc.Compare.NOT_EQUAL, target=rpc.Compare.MOD, key=b"k",
                    mod_revision=9, range_end=b"l")
    assert m.SerializeToString() == bytes([
        tag(1, V), 3, tag(2, V), 2, tag(3, L), 1, ord("k"), tag(6, V), 9, 0x82, 0x04, 1, ord("l")])
    # A oneof member set to its zero value is still written (etcdctl's `version("k") = 0`).
    assert rpc.Compare(key=b"k", version=0).SerializeToString() == bytes([tag(3, L), 1, ord("k"), tag(4, V), 0])
    assert rpc.Compare(create_revision=1).SerializeToString() == bytes([tag(5, V), 1])
    assert rpc.Compare(value=b"v").SerializeToString() == bytes([tag(7, L), 1, ord("v")])
    assert rpc.Compare(lease=2).SerializeToString() == bytes([tag(8, V), 2])


def TestWireTxn():
    # TxnRequest compare=1, success=2, failure=3; RequestOp request_range=1, request_put=2,
    # request_delete_range=3, request_txn=4; TxnResponse header=1, succeeded=2, responses=3;
    # ResponseOp response_range=1, response_put=2, response_delete_range=3, response_txn=4.
    put = bytes([tag(1, L), 1, ord("k")])
    m = rpc.TxnRequest(compare=[rpc.Compare(key=b"k", version=0)],
                       success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"k"))],
                       failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=b"k")),
                                rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=b"k")),
                                rpc.RequestOp(request_txn=rpc.TxnRequest())])
    assert m.SerializeToString() == bytes([
        tag(1, L), 5, tag(3, L), 1, ord("k"), tag(4, V), 0,
        tag(2, L), 5, tag(2, L), 3, *put,
        tag(3, L), 5, tag(1, L), 3, *put,
        tag(3, L), 5, tag(3, L), 3, *put,
        tag(3, L), 2, tag(4, L), 0,
    ])
    r = rpc.TxnResponse(succeeded=True, responses=[
        rpc.ResponseOp(response_put=rpc.PutResponse()),
        rpc.ResponseOp(response_delete_range=rpc.DeleteRangeResponse(deleted=1)),
        rpc.ResponseOp(response_range=rpc.RangeResponse(more=True, count=2)),
        rpc.ResponseOp(response_txn=rpc.TxnResponse())])
    assert r.SerializeToString() == bytes([
        tag(2, V), 1,
        tag(3, L), 2, tag(2, L), 0,
        tag(3, L), 4, tag(3, L), 2, tag(2, V), 1,
        tag(3, L), 6, tag(1, L), 4, tag(3, V), 1, tag(4, V), 2,
        tag(3, L), 2, tag(4, L), 0,
    ])


def TestWireLease():
    # LeaseGrantRequest TTL=1, ID=2; LeaseKeepAliveResponse header=1, ID=2, TTL=3;
    # LeaseTimeToLiveResponse header=1, ID=2, TTL=3, grantedTTL=4, keys=5 — all int64.
    assert rpc.LeaseGrantRequest(TTL=60, ID=7).SerializeToString() == bytes([tag(1, V), 60, tag(2, V), 7])
    assert rpc.LeaseKeepAliveResponse(ID=7, TTL=60).SerializeToString() == bytes([tag(2, V), 7, tag(3, V), 60])
    # TTL -1 ("expired") is a plain int64: ten-byte two's-complement varint, not zigzag.
    m = rpc.LeaseTimeToLiveResponse(ID=1, TTL=-1, grantedTTL=5, keys=[b"a"])
    assert m.SerializeToString() == bytes(
        [tag(2, V), 1, tag(3, V)] + [0xFF] * 9 + [0x01] + [tag(4, V), 5, tag(5, L), 1, ord("a")])
    assert rpc.LeaseGrantResponse(error="e").SerializeToString() == bytes([tag(4, L), 1, ord("e")])
    assert rpc.LeaseTimeToLiveRequest(ID=1, keys=True).SerializeToString() == bytes([tag(1, V), 1, tag(2, V), 1])
    assert rpc.LeaseLeasesResponse(leases=[rpc.LeaseStatus(ID=3)]).SerializeToString() == bytes(
        [tag(2, L), 2, tag(1, V), 3])


def TestWireClusterAndMaintenance():
    # Member ID=1 uint64, name=2, peerURLs=3, clientURLs=4, isLearner=5
    m = rpc.Member(ID=1, name="a", peerURLs=["p"], clientURLs=["c"], isLearner=True)
    assert m.SerializeToString() == bytes([
        tag(1, V), 1, tag(2, L), 1, ord("a"), tag(3, L), 1, ord("p"), tag(4, L), 1, ord("c"), tag(5, V), 1])
    assert rpc.MemberListRequest(linearizable=True).SerializeToString() == bytes([tag(1, V), 1])
    assert rpc.MemberAddResponse(member=rpc.Member(ID=2), members=[rpc.Member(ID=2)]).SerializeToString() == bytes(
        [tag(2, L), 2, tag(1, V), 2, tag(3, L), 2, tag(1, V), 2])
    # StatusResponse header=1, version=2, dbSize=3, leader=4, raftIndex=5, raftTerm=6,
    # raftAppliedIndex=7, errors=8, dbSizeInUse=9, isLearner=10
    s = rpc.StatusResponse(version="3.5.0", dbSize=1, leader=2, raftIndex=3, raftTerm=4,
                           raftAppliedIndex=5, errors=["x"], dbSizeInUse=6, isLearner=True)
    assert s.SerializeToString() == bytes([tag(2, L), 5]) + b"3.5.0" + bytes([
        tag(3, V), 1, tag(4, V), 2, tag(5, V), 3, tag(6, V), 4, tag(7, V), 5,
        tag(8, L), 1, ord("x"), tag(9, V), 6, tag(10, V), 1])
    # AlarmRequest action=1, memberID=2, alarm=3; AlarmMember memberID=1, alarm=2
    assert rpc.AlarmRequest(action=rpc.AlarmRequest.ACTIVATE, memberID=2, alarm=rpc.NOSPACE) \
        .SerializeToString() == bytes([tag(1, V), 1, tag(2, V), 2, tag(3, V), 1])
    assert rpc.AlarmResponse(alarms=[rpc.AlarmMember(memberID=1, alarm=rpc.CORRUPT)]) \
        .SerializeToString() == bytes([tag(2, L), 4, tag(1, V), 1, tag(2, V), 2])
    # SnapshotResponse header=1, remaining_bytes=2, blob=3; HashKVResponse hash=2 uint32,
    # compact_revision=3; MoveLeaderRequest targetID=1; CompactionRequest revision=1, physical=2
    assert rpc.SnapshotResponse(remaining_bytes=2, blob=b"z").SerializeToString() == bytes(
        [tag(2, V), 2, tag(3, L), 1, ord("z")])
    assert rpc.HashKVResponse(hash=1, compact_revision=2).SerializeToString() == bytes(
        [tag(2, V), 1, tag(3, V), 2])
    assert rpc.MoveLeaderRequest(targetID=9).SerializeToString() == bytes([tag(1, V), 9])
    assert rpc.CompactionRequest(revision=5, physical=True).SerializeToString() == bytes(
        [tag(1, V), 5, tag(2, V), 1])
    assert rpc.DowngradeRequest(action=rpc.DowngradeRequest.ENABLE, version="3.4").SerializeToString() == bytes(
        [tag(1, V), 1, tag(2, L), 3]) + b"3.4"


# ---- the generated stubs over a loopback channel ----

class _KV(rpc_grpc.KVServicer):
    def Range(self, request, context):
        return rpc.RangeResponse(header=rpc.ResponseHeader(revision=request.revision),
                                 kvs=[kv.KeyValue(key=request.key, value=b"v")], count=1)


class _Watch(rpc_grpc.WatchServicer):
    def Watch(self, request_iterator, context):
        for i, req in enumerate(request_iterator, start=1):
            if req.WhichOneof("request_union") == "create_request":
                yield rpc.WatchResponse(watch_id=i, created=True)
                yield rpc.WatchResponse(watch_id=i, events=[
                    kv.Event(type=kv.Event.PUT, kv=kv.KeyValue(key=req.create_request.key))])
            elif req.WhichOneof("request_union") == "cancel_request":
                yield rpc.WatchResponse(watch_id=req.cancel_request.watch_id, canceled=True)


class _Maintenance(rpc_grpc.MaintenanceServicer):
    def Snapshot(self, request, context):
        yield rpc.SnapshotResponse(remaining_bytes=1, blob=b"a")
        yield rpc.SnapshotResponse(remaining_bytes=0, blob=b"b")


@pytest.fixture
def channel():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc_grpc.add_KVServicer_to_server(_KV(), server)
    rpc_grpc.add_WatchServicer_to_server(_Watch(), server)
    rpc_grpc.add_MaintenanceServicer_to_server(_Maintenance(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield ch
    finally:
        ch.close()
        server.stop(grace=None)


def TestStubsOverLoopback(channel):
    resp = rpc_grpc.KVStub(channel).Range(rpc.RangeRequest(key=b"k", revision=3), timeout=10)
    assert (resp.header.revision, resp.kvs[0].key, resp.count) == (3, b"k", 1)

    reqs = [rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=b"w")),
            rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=1))]
    got = list(rpc_grpc.WatchStub(channel).Watch(iter(reqs), timeout=10))
    assert [(r.watch_id, r.created, r.canceled, len(r.events)) for r in got] == [
        (1, True, False, 0), (1, False, False, 1), (1, False, True, 0)]
    assert got[1].events[0].kv.key == b"w"

    chunks = list(rpc_grpc.MaintenanceStub(channel).Snapshot(rpc.SnapshotRequest(), timeout=10))
    assert b"".join(c.blob for c in chunks) == b"ab"

    with pytest.raises(grpc.RpcError) as ei:
        rpc_grpc.KVStub(channel).Put(rpc.PutRequest(key=b"k"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
