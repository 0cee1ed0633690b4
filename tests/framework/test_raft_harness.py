"""The raft harness (raft1/harness.py, raft1/server.py) as a student's Raft meets it."""

from __future__ import annotations

import threading

import pytest

import tester
from raft1 import server
from raft1.harness import makeTest
from raft1.raftapi import ApplyMsg


class OutOfOrderRaft:
    """Applies index 2 before 1, then, like many Go solutions, sends once more on applyCh in Kill()."""

    instances: list["OutOfOrderRaft"] = []
    go = threading.Event()  # set by the test once its annotations are set up

    def __init__(self, peers, me, persister, applyCh) -> None:
        self.applyCh = applyCh
        self.kill_send_done = threading.Event()
        OutOfOrderRaft.instances.append(self)
        threading.Thread(target=self.apply, daemon=True).start()

    def apply(self) -> None:
        OutOfOrderRaft.go.wait()
        self.applyCh.send(ApplyMsg(CommandValid=True, Command=7, CommandIndex=2))
        self.applyCh.send(ApplyMsg(CommandValid=True, Command=8, CommandIndex=3))

    def Start(self, command): return -1, 0, False
    def GetState(self): return 0, False
    def Snapshot(self, index, snapshot): pass
    def PersistBytes(self): return 0

    def Kill(self) -> None:
        self.applyCh.send(ApplyMsg(CommandValid=True, Command=9, CommandIndex=4), timeout=5.0)
        self.kill_send_done.set()
        self.applyCh.close()


def TestApplierDrainsAfterApplyError(monkeypatch):
    """Go's log.Fatalf ends the process; here the test fails and the applier still reads applyCh."""
    OutOfOrderRaft.instances.clear()
    OutOfOrderRaft.go.clear()
    monkeypatch.setattr(server.raft, "Make", OutOfOrderRaft)
    ts = makeTest(tester.T(), 1, True, False)
    with pytest.raises(tester.TestFailed, match=r"apply error: server 0 apply out of order 2"):
        try:
            tester.AnnotateTest("TestApplierDrainsAfterApplyError", 1)
            ts.Begin("Test: apply error")
            OutOfOrderRaft.go.set()
            threading.Event().wait(5.0)  # interrupted by the applier's failure
        finally:
            ts.cleanup()
    (rf,) = OutOfOrderRaft.instances
    assert rf.kill_send_done.is_set(), "Kill() was left blocked on its applyCh send"
