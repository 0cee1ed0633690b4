"""The rsm tests (Go: kvraft1/rsm/rsm_test.go), test for test: `pytest rsm -k 4A`."""

from __future__ import annotations

import threading
import time

import tester
from kvraft1 import rpc
from rsm.harness import NSEC, NSRV, Gid, Leader, makeTest
from rsm.server import Dec, Inc


def TestBasic4A():
    """Each server executes increments and updates its counter."""
    NINC = 10
    ts = makeTest(tester.T(), -1)
    try:
        tester.AnnotateTest("TestBasic4A", NSRV)
        ts.Begin("Test RSM basic")
        for i in range(NINC):
            r = ts.oneInc()
            if r.N != i + 1:
                err = f"expected {i} instead of {r.N}"
                tester.AnnotateCheckerFailure(err, err)
                ts.t.Fatalf("%s", err)
            ts.checkCounter(r.N, NSRV)
    finally:
        ts.cleanup()


def TestConcurrent4A():
    """Submitting concurrently."""
    NINC = 50
    ts = makeTest(tester.T(), -1)
    try:
        tester.AnnotateTest("TestConcurrent4A", NSRV)
        ts.Begin("Test concurrent submit")
        threads = [threading.Thread(target=ts.oneInc, daemon=True) for _ in range(NINC)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ts.checkCounter(NINC, NSRV)
    finally:
        ts.cleanup()


def TestLeaderFailure4A():
    """Each server executes increments after disconnecting and reconnecting the leader."""
    ts = makeTest(tester.T(), -1)
    try:
        tester.AnnotateTest("TestLeaderFailure4A", NSRV)
        ts.Begin("Test Leader Failure")

        r = ts.oneInc()
        ts.checkCounter(r.N, NSRV)

        l = ts.disconnectLeader()
        tester.AnnotateConnection(ts.g.GetConnected())
        r = ts.oneInc()
        ts.checkCounter(r.N, NSRV - 1)

        ts.connect(l)
        tester.AnnotateConnection(ts.g.GetConnected())

        ts.checkCounter(r.N, NSRV)
    finally:
        ts.cleanup()


def TestLeaderPartition4A():
    """A partitioned leader doesn't commit an operation."""
    NSUBMIT = 100
    t = tester.T()
    ts = makeTest(t, -1)
    try:
        tester.AnnotateTest("TestLeaderPartition4A", NSRV)
        ts.Begin("Test Leader Partition")

        # submit an Inc
        r = ts.oneInc()
        ts.checkCounter(r.N, NSRV)

        # partition leader
        foundl, l = Leader(ts.Config, Gid)
        text = f"leader found = {l}" if foundl else "did not find a leader"
        tester.AnnotateInfo(text, text)
        p1, p2 = ts.Group(Gid).MakePartition(l)
        ts.Group(Gid).Partition(p1, p2)
        tester.AnnotateTwoPartitions(p1, p2)

        text = f"concurrently submitting {NSUBMIT} Dec to {l}"
        tester.AnnotateInfo(text, text)
        done = threading.Event()
        rsm_l = ts.srvs[l].rsm

        def submit_dec(i: int) -> None:
            err, rep = rsm_l.Submit(Dec())
            if err == rpc.OK:
                t.Fatalf("Submit %d in minority completed %s", i, rep)

        def submit_all() -> None:
            # Many Decs, so many raft.Start()s, none of which may commit and execute.
            threads = [threading.Thread(target=submit_dec, args=(i,), daemon=True) for i in range(NSUBMIT)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            done.set()

        threading.Thread(target=submit_all, daemon=True).start()

        # give old leader some time to submit
        time.sleep(0.010)

        # submit an Inc in the majority
        rep = ts.onePartition(p1, Inc())

        if done.wait(1.0):
            text = "Dec's in minority completed"
            tester.AnnotateCheckerFailure(text, text)
            ts.Fatalf("%s", text)

        # reconnect leader; with three servers this heals every partition
        ts.connect(l)
        tester.AnnotateClearFailure()

        if not done.wait(1.0):
            text = "Submit after healing didn't return"
            tester.AnnotateCheckerFailure(text, text)
            ts.Fatalf("%s", text)

        # check that all replicas have the same value for counter
        ts.checkCounter(rep.N, NSRV)
    finally:
        ts.cleanup()


def _inc_many(ts, NINC: int) -> None:
    for i in range(NINC):
        r = ts.oneInc()
        if r.N != i + 1:
            err = f"expected {i} instead of {r.N}"
            tester.AnnotateCheckerFailure(err, err)
            ts.t.Fatalf("%s", err)
        ts.checkCounter(r.N, NSRV)


def _null_many_then_shutdown(ts, NSUBMIT: int) -> None:
    done = threading.Event()

    def submit_all() -> None:
        threads = [threading.Thread(target=ts.oneNull, daemon=True) for _ in range(NSUBMIT)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        done.set()

    threading.Thread(target=submit_all, daemon=True).start()

    # give some time to submit
    time.sleep(0.020)

    ts.Group(Gid).Shutdown()
    tester.AnnotateShutdownAll()

    if not done.wait(NSEC + 1):
        err = "Submit didn't stop after shutdown"
        tester.AnnotateCheckerFailure(err, err)
        ts.Fatalf("%s", err)


def TestRestartReplay4A():
    """A restart replays the Incs."""
    NINC = 100
    t = tester.T()
    ts = makeTest(t, -1)
    try:
        tester.AnnotateTest("TestRestartReplay4A", NSRV)
        ts.Begin("Test Restart")

        _inc_many(ts, NINC)

        ts.Group(Gid).Shutdown()
        tester.AnnotateShutdownAll()

        time.sleep(1.0)

        ts.Group(Gid).StartServers()
        tester.AnnotateRestartAll()

        # submit an Inc
        r = ts.oneInc()

        if r.N != NINC + 1:
            err = f"expected {NINC + 1} got {r.N}"
            tester.AnnotateCheckerFailure(err, err)
            t.Fatalf("%s", err)

        time.sleep(1.0)

        ts.checkCounter(r.N, NSRV)
    finally:
        ts.cleanup()


def TestShutdown4A():
    """Submit() returns after the tester's Shutdown() has killed Raft (Raft closes applyCh)."""
    NSUBMIT = 100
    ts = makeTest(tester.T(), -1)
    try:
        tester.AnnotateTest("TestShutdown4A", NSRV)
        ts.Begin("Test Shutdown")
        _null_many_then_shutdown(ts, NSUBMIT)
    finally:
        ts.cleanup()


def TestRestartSubmit4A():
    """Commands after a restart don't get confused with ones submitted before Shutdown()."""
    NINC = 100
    NSUBMIT = 100
    t = tester.T()
    ts = makeTest(t, -1)
    try:
        tester.AnnotateTest("TestRestartSubmit4A", NSRV)
        ts.Begin("Test Restart and submit")

        _inc_many(ts, NINC)

        ts.Group(Gid).Shutdown()
        tester.AnnotateShutdownAll()

        time.sleep(1.0)

        ts.Group(Gid).StartServers()
        tester.AnnotateRestartAll()

        # submit an Inc
        r = ts.oneInc()

        if r.N != NINC + 1:
            err = f"Expected {NINC + 1} got {r.N}"
            tester.AnnotateCheckerFailure(err, err)
            t.Fatalf("%s", err)

        time.sleep(1.0)

        text = f"concurrently submitting {NSUBMIT} Null"
        tester.AnnotateInfo(text, text)
        _null_many_then_shutdown(ts, NSUBMIT)

        ts.Group(Gid).StartServers()
        tester.AnnotateRestartAll()

        r = ts.oneInc()
        ts.checkCounter(r.N, NSRV)
    finally:
        ts.cleanup()


def TestSnapshot4C():
    """Snapshot and restore."""
    N = 100
    MAXRAFTSTATE = 1000
    ts = makeTest(tester.T(), MAXRAFTSTATE)
    try:
        tester.AnnotateTest("TestSnapshot4C", NSRV)
        ts.Begin("Test creating and restoring snapshot")

        for _ in range(N):
            ts.oneInc()
        ts.checkCounter(N, NSRV)

        sz = ts.Group(Gid).LogSize()
        if sz > 2 * MAXRAFTSTATE:
            err = f"logs were not trimmed ({sz} > 2 * {ts.maxraftstate})"
            tester.AnnotateCheckerFailure(err, err)
            ts.Fatalf("%s", err)

        # rsm must have made snapshots by now; restart all servers from their snapshots
        ts.g.Shutdown()
        tester.AnnotateShutdownAll()
        ts.g.StartServers()
        tester.AnnotateRestartAll()

        # make restarted servers do one increment
        ts.oneInc()

        ts.checkCounter(N + 1, NSRV)
    finally:
        ts.cleanup()
