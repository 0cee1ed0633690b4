"""The rsm test harness (Go: kvraft1/rsm/test.go).

Usage in rsm/test_rsm.py, like Go's `ts := makeTest(t, -1); defer ts.cleanup()`:
    ts = makeTest(tester.T(), -1)
    try:
        ts.Begin("Test RSM basic")
        r = ts.oneInc()
        ts.checkCounter(r.N, NSRV)
    finally:
        ts.cleanup()

A Test is also its tester.Config (Begin, End, Group, ... are forwarded), as Go embeds it.
`Leader(cfg, gid)` is shared with the kvraft1 tests.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import tester
from kvraft1 import rpc
from raft1.raftapi import Raft
from rsm.server import Inc, IncRep, Null, NullRep, RsmSrv

NSRV = 3
NSEC = 10

Gid = tester.GRP0

# checkCounter polls like raft's wait(): 10, 20, 40, ... ms, capped near 1 s, 30 polls.
CHECK_POLLS = 30


class Test(tester.Embed):
    """Per-test state: the Config, the replicas, and the last server that answered as leader."""

    _embedded = ("Config",)

    def __init__(self, t: Any, maxraftstate: int) -> None:
        self.t = t
        self.mu = threading.Lock()
        self.maxraftstate = maxraftstate
        self.srvs: list[RsmSrv | None] = [None] * NSRV
        self.leader = 0
        self.Config = tester.MakeConfig(t, NSRV, True, self.mksrv)
        self.g = self.Config.Group(tester.GRP0)

    def cleanup(self) -> None:
        self.End()
        self.Config.Cleanup()
        self.CheckTimeout()

    def mksrv(self, ends: list, grp: int, srv: int, persister: Any) -> list:
        s = RsmSrv(self, srv, ends, persister, False)
        self.srvs[srv] = s
        # Only Raft is a service: the tester never kills rsmSrv (as in Go).
        return [s.rsm.Raft()]

    def onePartition(self, p: list[int] | None, req: Any) -> Any:
        """Submit req to each server in p (all if None) in turn until one commits it; None after NSEC s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < NSEC:
            with self.mu:
                index = self.leader
            for _ in range(len(self.srvs)):
                if self.g.IsConnected(index):
                    s = self.srvs[index]
                    if s is not None and s.rsm is not None and inPartition(index, p):
                        err, rep = s.rsm.Submit(req)
                        if err == rpc.OK:
                            with self.mu:
                                self.leader = index
                            return rep
                index = (index + 1) % len(self.srvs)
            time.sleep(0.050)
        return None

    def oneInc(self) -> IncRep | None:
        rep = self.onePartition(None, Inc())
        if rep is None:
            return None
        assert isinstance(rep, IncRep), f"Submit(Inc) returned {rep!r}"
        return rep

    def oneNull(self) -> NullRep | None:
        rep = self.onePartition(None, Null())
        if rep is None:
            return None
        assert isinstance(rep, NullRep), f"Submit(Null) returned {rep!r}"
        return rep

    def checkCounter(self, v: int, nsrv: int) -> None:
        to_s = 0.010
        n = 0
        for _ in range(CHECK_POLLS):
            n = self.countValue(v)
            if n >= nsrv:
                text = f"all {nsrv} servers have counter value {v}"
                tester.AnnotateCheckerSuccess(text, text)
                return
            time.sleep(to_s)
            if to_s < 1.0:
                to_s *= 2
        err = f"checkCounter: only {n} srvs have {v} instead of {nsrv}"
        tester.AnnotateCheckerFailure(err, err)
        self.Fatalf("%s", err)

    def countValue(self, v: int) -> int:
        i = 0
        for s in self.srvs:
            with s.mu:
                if s.counter == v:
                    i += 1
        return i

    def disconnectLeader(self) -> int:
        self.g.DisconnectAll(self.leader)
        return self.leader

    def connect(self, i: int) -> None:
        self.g.ConnectOne(i)


def makeTest(t: Any, maxraftstate: int) -> Test:
    """A 3-server rsm test on a reliable network without long delays."""
    return Test(t, maxraftstate)


def inPartition(s: int, p: list[int] | None) -> bool:
    return p is None or s in p


def Leader(cfg: Any, gid: int) -> tuple[bool, int]:
    """(True, i) for the first server of group gid whose Raft says it is leader, else (False, 0)."""
    for i, ss in enumerate(cfg.Group(gid).Services()):
        for s in ss or []:
            if isinstance(s, Raft):
                _, is_leader = s.GetState()
                if is_leader:
                    return True, i
    return False, 0
