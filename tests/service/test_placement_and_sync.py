"""The service's use of Raft and the machine: a leader counts its own entries only once synced,
and a server's core follows its role.

Usage:
    python -m pytest tests/service/test_placement_and_sync.py -q
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from kubekv import placement
from kubekv.cluster import LocalCluster
from raft1.chan import Chan
from raft1.raft import Make


class GatedLogStore:
    """A log-keeping persister whose Sync() waits until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.syncs = 0
        self.saved_entries = 0

    def SaveLog(self, state, base, first, entries, snapshot) -> None:
        self.saved_entries += len(entries)

    def ReadLog(self):
        return b"", 0, []

    def ReadSnapshot(self) -> bytes:
        return b""

    def RaftStateSize(self) -> int:
        return 0

    def Sync(self) -> None:
        self.gate.wait()
        self.syncs += 1


def TestLeaderCommitsItsOwnEntryOnlyOnceSynced() -> None:
    """A one-server cluster: its own copy is the majority, so nothing commits before Sync()."""
    persister = GatedLogStore()
    apply_ch = Chan()
    rf = Make([None], 0, persister, apply_ch)
    applied: list = []
    reader = threading.Thread(target=lambda: applied.extend(m.Command for m in apply_ch), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 5
        while not rf.GetState()[1]:
            assert time.monotonic() < deadline, "a lone server did not become leader"
            time.sleep(0.01)
        index, _, ok = rf.Start("x")
        assert ok and index == 1
        time.sleep(0.3)
        assert persister.saved_entries == 1, "Start must hand the entry to the persister at once"
        assert rf.commitIndex == 0 and not applied, "committed before its own disk held the entry"
        persister.gate.set()
        deadline = time.monotonic() + 5
        while applied != ["x"]:
            assert time.monotonic() < deadline, f"not applied after the sync: {applied}"
            time.sleep(0.01)
        assert persister.syncs >= 1
    finally:
        persister.gate.set()
        rf.Kill()
        reader.join(5)


def TestCoreForGivesTheLeaderACoreOfItsOwnWhenServersMustShare() -> None:
    two = [0, 1]
    assert placement.core_for(2, 3, leader=True, cores=two) == 0
    assert {placement.core_for(me, 3, leader=False, cores=two) for me in range(3)} == {1}
    # Enough cores: each server keeps its own, leader or not.
    assert [placement.core_for(me, 3, leader=me == 1, cores=[0, 1, 2, 3]) for me in range(3)] == [0, 1, 2]
    # One core: everyone on it.
    assert placement.core_for(1, 3, leader=True, cores=[5]) == 5
    assert placement.follows_role(3, "none") is False


def _cores_of(pid: int) -> set[int]:
    """The cores every thread of pid may run on (their union)."""
    cores: set[int] = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            cores |= os.sched_getaffinity(int(tid))
        except OSError:
            pass   # the thread exited meanwhile
    return cores


def TestLeaderRunsAloneOnItsCore(tmp_path) -> None:
    cores = placement.allowed_cores()
    if not 1 < len(cores) < 3:
        pytest.skip(f"role placement applies with 2 cores for 3 servers; this machine offers {cores}")
    with LocalCluster(3, str(tmp_path)) as cluster:
        leader_endpoint = cluster.wait_for_leader()
        leader = cluster.endpoints.index(leader_endpoint)
        deadline = time.monotonic() + 10
        while True:
            seen = {i: _cores_of(cluster.procs[i].pid) for i in range(3)}
            want = {i: {cores[0]} if i == leader else {cores[1]} for i in range(3)}
            if seen == want:
                break
            assert time.monotonic() < deadline, f"cores {seen}, wanted {want} (leader {leader})"
            time.sleep(0.1)


def TestWaitAppliedWakesEachWaiterWhenItsIndexIsApplied() -> None:
    """rsm.wait_applied (the service's read path): many waiters, each returns once its index is
    applied; a wait for an index never reached times out; a stopped RSM releases its waiters."""
    from kvraft1 import rpc
    from rsm.rsm import MakeRSM, StateMachine

    class Counter(StateMachine):
        def __init__(self) -> None:
            self.n = 0

        def DoOp(self, req):
            self.n += 1
            return self.n

        def Snapshot(self) -> bytes:
            return b""

        def Restore(self, data: bytes) -> None:
            pass

    persister = GatedLogStore()
    persister.gate.set()
    rsm = MakeRSM([None], 0, persister, -1, Counter())
    try:
        deadline = time.monotonic() + 5
        while not rsm.Raft().GetState()[1]:
            assert time.monotonic() < deadline, "a lone server did not become leader"
            time.sleep(0.01)
        results: dict[int, bool] = {}
        waiters = [threading.Thread(target=lambda i=i: results.__setitem__(i, rsm.wait_applied(i, 10)))
                   for i in range(1, 41)]
        for t in waiters:
            t.start()
        for _ in range(40):
            assert rsm.Submit("op", timeout=5)[0] == rpc.OK
        for t in waiters:
            t.join(10)
        assert results == {i: True for i in range(1, 41)}
        assert rsm.wait_applied(40, 0) is True
        assert rsm.wait_applied(1000, 0.05) is False
        late = []
        t = threading.Thread(target=lambda: late.append(rsm.wait_applied(2000, 10)))
        t.start()
        time.sleep(0.1)
    finally:
        rsm.Raft().Kill()
    t.join(5)
    assert late == [False], "a stopped RSM must release its waiters"


def TestLongLivedObjectsAreFrozenWithAFullCollectionNowAndThen() -> None:
    import gc

    from kubekv.server import LongLivedObjects

    keep = [[i] for i in range(1000)]       # tracked objects that outlive the collections below
    cb = LongLivedObjects(interval_s=600)
    try:
        cb("start", {"generation": 1})
        assert gc.get_freeze_count() == 0
        cb("stop", {"generation": 0})        # a young collection leaves things as they are
        assert gc.get_freeze_count() == 0
        cb("stop", {"generation": 1})
        assert gc.get_freeze_count() >= len(keep)
        cb.last_full -= 601                  # a full collection is due: everything is visible again
        cb("stop", {"generation": 1})
        assert gc.get_freeze_count() == 0 and cb.sweeping
        cb("stop", {"generation": 1})        # ... until generation 2 has been collected
        assert gc.get_freeze_count() == 0
        cb("stop", {"generation": 2})
        assert not cb.sweeping and gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()
