"""Python-only rsm tests: Submit's optional timeout (not in Go's API)."""

from __future__ import annotations

import time

import tester
from kvraft1 import rpc
from rsm.harness import NSRV, Gid, Leader, makeTest
from rsm.server import Dec, Inc


def TestSubmitTimeoutInMinority():
    """A cut-off leader's Submit(timeout=...) gives up on time; its op may still run later."""
    TIMEOUT_S = 0.3
    ts = makeTest(tester.T(), -1)
    try:
        tester.AnnotateTest("TestSubmitTimeoutInMinority", NSRV)
        ts.Begin("Submit timeout in a minority")
        r = ts.oneInc()
        ts.checkCounter(r.N, NSRV)
        found, l = Leader(ts.Config, Gid)
        assert found, "no leader"
        p1, p2 = ts.Group(Gid).MakePartition(l)
        ts.Group(Gid).Partition(p1, p2)

        t0 = time.monotonic()
        err, rep = ts.srvs[l].rsm.Submit(Dec(), timeout=TIMEOUT_S)
        waited = time.monotonic() - t0
        assert (err, rep) == (rpc.ErrWrongLeader, None)
        assert TIMEOUT_S <= waited < TIMEOUT_S + 0.2, f"Submit returned after {waited:.3f} s"
        assert not ts.srvs[l].rsm.waiters, "the abandoned Submit is still registered"

        # The majority goes on; after the heal the stranded Dec is overwritten, not run.
        ts.onePartition(p1, Inc())
        ts.Group(Gid).ConnectAll()
        r = ts.oneInc()
        assert r.N == 3, f"counter {r.N}, want 3 (two Incs in the majority, then this one)"
        ts.checkCounter(r.N, NSRV)
    finally:
        ts.cleanup()


def TestSubmitTimeoutNotReached():
    """A Submit that commits in time returns its result, as without a timeout."""
    ts = makeTest(tester.T(), -1)
    try:
        tester.AnnotateTest("TestSubmitTimeoutNotReached", NSRV)
        ts.Begin("Submit timeout, committed in time")
        r = ts.oneInc()   # waits for a leader
        found, l = Leader(ts.Config, Gid)
        assert found, "no leader"
        err, rep = ts.srvs[l].rsm.Submit(Inc(), timeout=5.0)
        assert err == rpc.OK and rep.N == r.N + 1, (err, rep)
        ts.checkCounter(rep.N, NSRV)
    finally:
        ts.cleanup()
