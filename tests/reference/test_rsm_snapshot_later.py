"""Python-only rsm test: a StateMachine's optional SnapshotLater (encoding off the apply thread).

    python -m pytest tests/reference/test_rsm_snapshot_later.py -q
"""

from __future__ import annotations

import threading

from raft1.raftapi import ApplyMsg
from rsm.rsm import RSM, Op, StateMachine

MAXRAFTSTATE = 1000
ENTRY_BYTES = 100


class FakeRaft:
    """Just what the rsm's snapshot pacing calls: the state size, and Snapshot."""

    def __init__(self) -> None:
        self.size = 0
        self.snapshots: list[tuple[int, bytes]] = []
        self.took = threading.Event()   # set by each Snapshot

    def PersistBytes(self) -> int:
        return self.size

    def Snapshot(self, index: int, data: bytes) -> None:
        self.snapshots.append((index, data))
        self.size = ENTRY_BYTES        # what the log keeps after a trim
        self.took.set()


class Counter(StateMachine):
    """Counts applied ops; its SnapshotLater encodings wait until `release` is set."""

    def __init__(self) -> None:
        self.n = 0
        self.release = threading.Event()
        self.encoding = threading.Event()   # set once an encoding has begun
        self.encoder_threads: list[str] = []

    def DoOp(self, req: int) -> int:
        self.n += 1
        return self.n

    def Snapshot(self) -> bytes:
        raise AssertionError("SnapshotLater is defined: Snapshot must not be called")

    def Restore(self, data: bytes) -> None:
        self.n = int(data)

    def SnapshotLater(self):
        n = self.n

        def encode() -> bytes:
            self.encoder_threads.append(threading.current_thread().name)
            self.encoding.set()
            assert self.release.wait(10), "never released"
            return b"%d" % n
        return encode


def apply(rsm: RSM, rf: FakeRaft, index: int) -> None:
    rf.size += ENTRY_BYTES
    rsm._apply_command(ApplyMsg(CommandValid=True, Command=Op(Me=1, Id=index, Req=index),
                                CommandIndex=index))


def TestSnapshotLaterEncodesOffTheApplyThread():
    sm, rf = Counter(), FakeRaft()
    rsm = RSM(0, MAXRAFTSTATE, sm)
    rsm.rf = rf
    for i in range(1, 10):             # 900 bytes: 0.9 * maxraftstate, a snapshot is due
        apply(rsm, rf, i)
    assert rsm.snapshotting and rf.snapshots == []
    for i in range(10, 31):            # applies go on meanwhile, and start no second one
        apply(rsm, rf, i)
    assert sm.encoding.wait(10), "the encoding never began"
    assert sm.n == 30 and rf.snapshots == [] and len(sm.encoder_threads) == 1
    assert sm.encoder_threads[0] != threading.current_thread().name
    sm.release.set()
    assert rf.took.wait(10), "the encoded snapshot never reached Raft"
    assert rf.snapshots == [(9, b"9")]   # the state at the capture, not at the hand-over
    rf.took.clear()
    for i in range(31, 45):              # the log grows past the threshold again
        apply(rsm, rf, i)
        if rf.took.wait(0.5 if rsm.snapshotting else 0):
            break
    assert rf.snapshots[1][0] > 30 and rf.snapshots[1][1] == b"%d" % rf.snapshots[1][0]
    assert rsm.snapshots_taken == 2
