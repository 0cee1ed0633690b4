"""kubekv.server.ServiceState: both keyspaces' snapshot, now or later.

    python -m pytest tests/service/test_service_state.py -q
"""

from __future__ import annotations

from kubekv.etcd.mvcc import EtcdOp, MVCCStore
from kubekv.etcd.pb import etcd_rpc_pb2 as pb
from kubekv.server import ServiceState
from kvraft1 import rpc
from kvraft1.server import KVServer


def put_both(st: ServiceState, i: int) -> None:
    st.DoOp(rpc.PutArgs(Key=f"k{i}", Value=f"v{i}", Version=0))
    st.DoOp(EtcdOp(Kind="put", Body=pb.PutRequest(key=b"e%d" % i, value=b"x").SerializeToString()))


def TestSnapshotLaterIsTheStateAtItsCallAndIsPreparedOnce():
    prepared: list[bytes] = []
    st = ServiceState(KVServer(0), MVCCStore(), prepare=prepared.append)
    for i in range(5):
        put_both(st, i)
    now = st.Snapshot()
    assert prepared == []                   # Snapshot() writes no file ahead
    later = st.SnapshotLater()
    put_both(st, 99)                        # applied meanwhile: not in it
    data = later()
    assert data == now and len(prepared) == 1 and prepared[0] is data
    fresh = ServiceState(KVServer(1), MVCCStore())
    fresh.Restore(data)
    assert fresh.Snapshot() == now and fresh.mvcc.revision == 6
