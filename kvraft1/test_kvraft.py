"""The kvraft1 tests (Go: kvraft1/kvraft_test.go), test for test: `pytest kvraft1 -k 4B`."""

from __future__ import annotations

import threading
import time

import tester
from kvraft1.harness import Gid, MakeTest
from rsm.harness import Leader
from tester import kvtest


def TestBasic4B():
    ts = MakeTest(tester.T(), "4B basic", 1, 5, True, False, False, -1, False)
    tester.AnnotateTest("TestBasic4B", ts.nservers)
    ts.GenericTest()


def TestSpeed4B():
    ts = MakeTest(tester.T(), "4B speed", 1, 3, True, False, False, -1, False)
    tester.AnnotateTest("TestSpeed4B", ts.nservers)
    ts.GenericTestSpeed()


def TestConcurrent4B():
    ts = MakeTest(tester.T(), "4B many clients", 5, 5, True, False, False, -1, False)
    tester.AnnotateTest("TestConcurrent4B", ts.nservers)
    ts.GenericTest()


def TestUnreliable4B():
    ts = MakeTest(tester.T(), "4B many clients", 5, 5, False, False, False, -1, False)
    tester.AnnotateTest("TestUnreliable4B", ts.nservers)
    ts.GenericTest()


def TestOnePartition4B():
    """A request in the minority partition doesn't go through until the partition heals.

    The leader of the original network ends up in the minority.
    """
    t = tester.T()
    ts = MakeTest(t, "4B progress in majority", 0, 5, False, False, False, -1, False)
    try:
        tester.AnnotateTest("TestOnePartition4B", ts.nservers)

        ck = ts.MakeClerk()

        ver0 = ts.PutAtLeastOnce(ck, "1", "13", 0, -1)

        foundl, l = Leader(ts.Config, Gid)
        text = f"leader found = {l}" if foundl else "did not find a leader"
        tester.AnnotateInfo(text, text)
        p1, p2 = ts.Group(Gid).MakePartition(l)
        ts.Group(Gid).Partition(p1, p2)
        tester.AnnotateTwoPartitions(p1, p2)

        ckp1 = ts.MakeClerkTo(p1)   # connect ckp1 to p1
        ckp2a = ts.MakeClerkTo(p2)  # connect ckp2a to p2
        ckp2b = ts.MakeClerkTo(p2)  # connect ckp2b to p2

        ver1 = ts.PutAtLeastOnce(ckp1, "1", "14", ver0, -1)
        ts.CheckGet(ckp1, "1", "14", ver1)

        ts.End()

        # Go's done0/done1 channels: each result list gets one value; `either` is set by both.
        done0: list = []
        done0_ev = threading.Event()
        done1: list = []
        either = threading.Event()

        ts.Begin("Test: no progress in minority (4B)")
        tester.AnnotateCheckerBegin(f"submit Put(1, 15) and Get(1) to {p2}")

        def put15() -> None:
            done0.append(ts.PutAtLeastOnce(ckp2a, "1", "15", ver1, -1))
            done0_ev.set()
            either.set()

        def get1() -> None:
            _, ver, _ = ts.Get(ckp2b, "1", -1)  # different clerk in p2
            done1.append(ver)
            either.set()

        tester.go(put15)
        tester.go(get1)

        if either.wait(1.0):
            if done0:
                err = f"Put in minority completed with version = {done0[0]}"
            else:
                err = f"Get in minority completed with version = {done1[0]}"
            tester.AnnotateCheckerFailure(err, err)
            t.Fatalf("%s", err)
        tester.AnnotateCheckerSuccess("commands to minority partition not committed after 1 second",
                                      "not committed")

        ts.CheckGet(ckp1, "1", "14", ver1)
        ver2 = ts.PutAtLeastOnce(ckp1, "1", "16", ver1, -1)
        ts.CheckGet(ckp1, "1", "16", ver2)

        ts.End()

        ts.Begin("Test: completion after heal (4B)")

        ts.Group(Gid).ConnectAll()
        tester.AnnotateClearFailure()
        ckp2a.Clnt.ConnectAll()
        ckp2b.Clnt.ConnectAll()

        time.sleep(kvtest.ElectionTimeout)

        tester.AnnotateCheckerBegin("status of Put(1, 15)")
        if not done0_ev.wait(30 * 0.100):
            tester.AnnotateCheckerFailure("Put(1, 15) did not complete after partition resolved", "OK")
            t.Fatalf("Put did not complete")
        ver15 = done0[0]
        tester.AnnotateCheckerSuccess("Put(1, 15) completed after partition resolved", "OK")

        # Go's select here has a `default:` branch, so it never waits for the Get; kept as is.
        tester.AnnotateCheckerBegin("status of Get(1)")
        tester.AnnotateCheckerSuccess("Get(1) completed after partition resolved", "OK")

        ts.CheckGet(ck, "1", "15", ver15)
    finally:
        ts.Cleanup()


def TestManyPartitionsOneClient4B():
    ts = MakeTest(tester.T(), "4B partitions, one client", 1, 5, True, False, True, -1, False)
    tester.AnnotateTest("TestManyPartitionsOneClient4B", ts.nservers)
    ts.GenericTest()


def TestManyPartitionsManyClients4B():
    ts = MakeTest(tester.T(), "4B partitions, many clients (4B)", 5, 5, True, False, True, -1, False)
    tester.AnnotateTest("TestManyPartitionsManyClients4B", ts.nservers)
    ts.GenericTest()


def TestPersistOneClient4B():
    ts = MakeTest(tester.T(), "4B restarts, one client 4B ", 1, 5, True, True, False, -1, False)
    tester.AnnotateTest("TestPersistOneClient4B", ts.nservers)
    ts.GenericTest()


def TestPersistConcurrent4B():
    ts = MakeTest(tester.T(), "4B restarts, many clients", 5, 5, True, True, False, -1, False)
    tester.AnnotateTest("TestPersistConcurrent4B", ts.nservers)
    ts.GenericTest()


def TestPersistConcurrentUnreliable4B():
    ts = MakeTest(tester.T(), "4B restarts, many clients ", 5, 5, False, True, False, -1, False)
    tester.AnnotateTest("TestPersistConcurrentUnreliable4B", ts.nservers)
    ts.GenericTest()


def TestPersistPartition4B():
    ts = MakeTest(tester.T(), "4B restarts, partitions, many clients", 5, 5, True, True, True, -1, False)
    tester.AnnotateTest("TestPersistPartition4B", ts.nservers)
    ts.GenericTest()


def TestPersistPartitionUnreliable4B():
    ts = MakeTest(tester.T(), "4B restarts, partitions, many clients", 5, 5, False, True, True, -1, False)
    tester.AnnotateTest("TestPersistPartitionUnreliable4B", ts.nservers)
    ts.GenericTest()


def TestPersistPartitionUnreliableLinearizable4B():
    ts = MakeTest(tester.T(), "4B restarts, partitions, random keys, many clients", 15, 7, False, True, True, -1,
                  True)
    tester.AnnotateTest("TestPersistPartitionUnreliableLinearizable4B", ts.nservers)
    ts.GenericTest()


def TestSnapshotRPC4C():
    """A server that falls behind and rejoins catches up through InstallSnapshot; the majority
    discards committed log entries even while the minority doesn't respond."""
    NSRV = 3
    MAXRAFTSTATE = 1000
    t = tester.T()
    ts = MakeTest(t, "4C SnapshotsRPC", 0, NSRV, True, False, False, MAXRAFTSTATE, False)
    tester.AnnotateTest("TestSnapshotRPC4C", ts.nservers)
    try:
        ck = ts.MakeClerk()

        ts.Begin("Test: InstallSnapshot RPC (4C)")

        vera = ts.PutAtLeastOnce(ck, "a", "A", 0, -1)
        ts.CheckGet(ck, "a", "A", vera)

        # a bunch of puts into the majority partition
        ts.Group(Gid).Partition([0, 1], [2])
        tester.AnnotateTwoPartitions([0, 1], [2])
        ck1 = ts.MakeClerkTo([0, 1])
        for i in range(50):
            ts.PutAtLeastOnce(ck1, str(i), str(i), 0, -1)
        time.sleep(kvtest.ElectionTimeout)
        verb = ts.PutAtLeastOnce(ck1, "b", "B", 0, -1)

        # the majority partition has thrown away most of its log entries
        sz = ts.Group(Gid).LogSize()
        if sz > 8 * ts.maxraftstate:
            err = f"logs were not trimmed ({sz} > 8*{ts.maxraftstate})"
            tester.AnnotateCheckerFailure(err, err)
            t.Fatalf("%s", err)

        # a group that needs the lagging server, so it has to catch up
        ts.Group(Gid).Partition([0, 2], [1])
        tester.AnnotateTwoPartitions([0, 2], [1])
        ck1 = ts.MakeClerkTo([0, 2])
        verc = ts.PutAtLeastOnce(ck1, "c", "C", 0, -1)
        ts.PutAtLeastOnce(ck1, "d", "D", 0, -1)
        ts.CheckGet(ck1, "a", "A", vera)
        ts.CheckGet(ck1, "b", "B", verb)
        ts.CheckGet(ck1, "1", "1", 1)
        ts.CheckGet(ck1, "49", "49", 1)

        # now everybody
        ts.Group(Gid).Partition([0, 1, 2], [])
        tester.AnnotateClearFailure()

        vere = ts.PutAtLeastOnce(ck, "e", "E", 0, -1)
        ts.CheckGet(ck, "c", "C", verc)
        ts.CheckGet(ck, "e", "E", vere)
        ts.CheckGet(ck, "1", "1", 1)
    finally:
        ts.Cleanup()


def TestSnapshotSize4C():
    """Snapshots stay small: 500 bytes is a generous bound for these operations."""
    t = tester.T()
    ts = MakeTest(t, "4C snapshot size is reasonable", 0, 3, True, False, False, 1000, False)
    tester.AnnotateTest("TestSnapshotSize4C", ts.nservers)
    try:
        maxsnapshotstate = 500

        ck = ts.MakeClerk()

        ver = 0
        for _ in range(200):
            ver = ts.PutAtLeastOnce(ck, "x", "0", ver, -1)
            ts.CheckGet(ck, "x", "0", ver)
            ver = ts.PutAtLeastOnce(ck, "x", "1", ver, -1)
            ts.CheckGet(ck, "x", "1", ver)

        # servers have thrown away most of their log entries
        sz = ts.Group(Gid).LogSize()
        if sz > 8 * ts.maxraftstate:
            err = f"logs were not trimmed ({sz} > 8*{ts.maxraftstate})"
            tester.AnnotateCheckerFailure(err, err)
            t.Fatalf("%s", err)

        # the snapshots are not unreasonably large
        ssz = ts.Group(Gid).SnapshotSize()
        if ssz > maxsnapshotstate:
            err = f"snapshot too large ({ssz} > {maxsnapshotstate})"
            tester.AnnotateCheckerFailure(err, err)
            t.Fatalf("%s", err)
    finally:
        ts.Cleanup()


def TestSpeed4C():
    ts = MakeTest(tester.T(), "4C speed", 1, 3, True, False, False, 1000, False)
    tester.AnnotateTest("TestSpeed4C", ts.nservers)
    ts.GenericTestSpeed()


def TestSnapshotRecover4C():
    ts = MakeTest(tester.T(), "4C restarts, snapshots, one client", 1, 5, True, True, False, 1000, False)
    tester.AnnotateTest("TestSnapshotRecover4C", ts.nservers)
    ts.GenericTest()


def TestSnapshotRecoverManyClients4C():
    ts = MakeTest(tester.T(), "4C restarts, snapshots, many clients ", 20, 5, True, True, False, 1000, False)
    tester.AnnotateTest("TestSnapshotRecoverManyClients4C", ts.nservers)
    ts.GenericTest()


def TestSnapshotUnreliable4C():
    ts = MakeTest(tester.T(), "4C unreliable net, snapshots, many clients", 5, 5, False, False, False, 1000, False)
    tester.AnnotateTest("TestSnapshotUnreliable4C", ts.nservers)
    ts.GenericTest()


def TestSnapshotUnreliableRecover4C():
    ts = MakeTest(tester.T(), "4C unreliable net, restarts, snapshots, many clients", 5, 5, False, True, False, 1000,
                  False)
    tester.AnnotateTest("TestSnapshotUnreliableRecover4C", ts.nservers)
    ts.GenericTest()


def TestSnapshotUnreliableRecoverConcurrentPartition4C():
    ts = MakeTest(tester.T(), "4C unreliable net, restarts, partitions, snapshots, many clients", 5, 5, False, True,
                  True, 1000, False)
    tester.AnnotateTest("TestSnapshotUnreliableRecoverConcurrentPartition4C", ts.nservers)
    ts.GenericTest()


def TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C():
    ts = MakeTest(tester.T(), "4C unreliable net, restarts, partitions, snapshots, random keys, many clients", 15, 7,
                  False, True, True, 1000, True)
    tester.AnnotateTest("TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C", ts.nservers)
    ts.GenericTest()
