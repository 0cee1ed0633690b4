"""The kvraft1 test harness (Go: kvraft1/test.go and the generic bodies of kvraft_test.go).

Usage in kvraft1/test_kvraft.py:
    ts = MakeTest(tester.T(), "4B basic", 1, 5, True, False, False, -1, False)
    tester.AnnotateTest("TestBasic4B", ts.nservers)
    ts.GenericTest()                       # cleans up itself, like Go's `defer ts.Cleanup()`

A Test is also its tester.kvtest.Test and so its tester.Config (PutAtLeastOnce, CheckGet,
Begin, Group, ... are forwarded), as Go embeds them; it is the kvtest's clerk maker.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import tester
from kvraft1 import rpc
from kvraft1.client import MakeClerk
from kvraft1.server import StartKVServer
from tester import kvtest

Gid = tester.GRP0

# GenericTest: iterations, client run time per iteration, keys with randomkeys.
NITER = 3
NSEC = 1
NKEYS = 100

# GenericTestSpeed: "better than one op per heartbeat interval" (100 ms), at least 3 per interval.
SPEED_NUM_OPS = 1000
HEARTBEAT_INTERVAL_S = 0.100
OPS_PER_INTERVAL = 3
TIME_PER_OP_S = HEARTBEAT_INTERVAL_S / OPS_PER_INTERVAL


class Test(tester.Embed):
    """One kvraft test: a group of KV servers, clerks, and the porcupine-checked op log."""

    _embedded = ("Test",)

    def __init__(self, t: Any, part: str, nclients: int, nservers: int, reliable: bool, crash: bool,
                 partitions: bool, maxraftstate: int, randomkeys: bool) -> None:
        self.t = t
        self.part = part
        self.nclients = nclients
        self.nservers = nservers
        self.crash = crash
        self.partitions = partitions
        self.maxraftstate = maxraftstate
        self.randomkeys = randomkeys
        cfg = tester.MakeConfig(t, nservers, reliable, self.StartKVServer)
        self.Test = kvtest.MakeTest(t, cfg, randomkeys, self)

    def StartKVServer(self, servers: list, gid: int, me: int, persister: Any) -> list:
        return StartKVServer(servers, gid, me, persister, self.maxraftstate)

    def MakeClerk(self) -> Any:
        clnt = self.Config.MakeClient()
        ck = MakeClerk(clnt, self.Group(Gid).SrvNames())
        return kvtest.TestClerk(ck, clnt)

    def DeleteClerk(self, ck: Any) -> None:
        self.DeleteClient(ck.Clnt)

    def MakeClerkTo(self, to: list[int]) -> Any:
        ns = self.Config.Group(Gid).SrvNamesTo(to)
        clnt = self.Config.MakeClientTo(ns)
        ck = MakeClerk(clnt, self.Group(Gid).SrvNames())
        return kvtest.TestClerk(ck, clnt)

    def cleanup(self) -> None:
        self.Test.Cleanup()

    def makeTitle(self) -> str:
        title = "Test: "
        if self.crash:
            title += "restarts, "        # peers restart, so persistence must work
        if self.partitions:
            title += "partitions, "      # the network may partition
        if self.maxraftstate != -1:
            title += "snapshots, "
        if self.randomkeys:
            title += "random keys, "
        title += "many clients" if self.nclients > 1 else "one client"
        return title + " (" + self.part + ")"

    def GenericTest(self) -> None:
        """Clients Put/Get for NSEC s per iteration under the configured faults; porcupine checks
        the cumulative history each time; crash restarts all servers; log/snapshot sizes checked."""
        try:
            self._generic()
        finally:
            self.Cleanup()

    def _generic(self) -> None:
        ck = self.MakeClerk()
        res = kvtest.ClntRes()
        default_key = kvtest.MakeKeys(NKEYS) if self.randomkeys else ["k"]
        for i in range(NITER):
            spawn_done = threading.Event()

            def clients() -> None:
                rs = self.SpawnClientsAndWait(
                    self.nclients, NSEC,
                    lambda cli, ck1, done: self.OneClientPut(cli, ck1, default_key, done))
                if not self.randomkeys:
                    reliable = self.IsReliable() and not self.crash and not self.partitions
                    self.CheckPutConcurrent(ck, default_key[0], rs, res, reliable)
                spawn_done.set()

            tester.go(clients, name="kv-clients")

            ch_partitioner = None
            if self.partitions:
                # let the clients do some operations without interruption
                time.sleep(1.0)
                ch_partitioner = tester.Chan()
                tester.go(self.Partitioner, Gid, ch_partitioner, name="partitioner")

            spawn_done.wait()

            if i == NITER - 1:
                tester.SetAnnotationFinalized()

            self.CheckPorcupine()

            if self.partitions:
                ch_partitioner.send(True)
                ch_partitioner.recv()
                # A client may have submitted a request in a minority; it won't return until
                # that server learns of a new term.
                self.Group(Gid).ConnectAll()
                tester.AnnotateClearFailure()
                time.sleep(kvtest.ElectionTimeout)

            if self.crash:
                for s in range(self.nservers):
                    self.Group(Gid).ShutdownServer(s)
                tester.AnnotateShutdownAll()
                # shutdown isn't a real crash and isn't instantaneous
                time.sleep(kvtest.ElectionTimeout)
                for s in range(self.nservers):
                    self.Group(Gid).StartServer(s)
                self.Group(Gid).ConnectAll()
                tester.AnnotateClearFailure()

            if self.maxraftstate > 0:
                # after the servers processed all requests and had time to snapshot
                sz = self.Config.Group(Gid).LogSize()
                if sz > 8 * self.maxraftstate:
                    err = f"logs were not trimmed ({sz} > 8*{self.maxraftstate})"
                    tester.AnnotateCheckerFailure(err, err)
                    self.t.Fatalf("%s", err)
            if self.maxraftstate < 0:
                ssz = self.Group(Gid).SnapshotSize()
                if ssz > 0:
                    err = f"snapshot too large ({ssz}), should not be used when maxraftstate = {self.maxraftstate}"
                    tester.AnnotateCheckerFailure(err, err)
                    self.t.Fatalf("%s", err)

    def GenericTestSpeed(self) -> None:
        """1000 sequential Puts must take at most 33.3 ms each on average."""
        try:
            ck = self.MakeClerk()
            # the first op completes once a leader is elected and the servers are ready
            ck.Get("x")
            start = time.monotonic()
            for i in range(SPEED_NUM_OPS):
                err = ck.Put("k", str(i), i)
                if err != rpc.OK:
                    self.t.Fatalf("Put err %s", err)
            dur = time.monotonic() - start
            self.speed_ms_per_op = dur / SPEED_NUM_OPS * 1000
            _, ver, err = ck.Get("k")
            if err != rpc.OK:
                self.t.Fatalf("Get err %s", err)
            elif ver != SPEED_NUM_OPS:
                self.t.Fatalf("Get too few ops %s", ver)
            print(f"  ... {self.speed_ms_per_op:.2f} ms/op")
            if dur > SPEED_NUM_OPS * TIME_PER_OP_S:
                self.t.Fatalf("Operations completed too slowly %.1fms/op > %.1fms/op",
                              dur / SPEED_NUM_OPS * 1000, TIME_PER_OP_S * 1000)
        finally:
            self.Cleanup()


def MakeTest(t: Any, part: str, nclients: int, nservers: int, reliable: bool, crash: bool,
             partitions: bool, maxraftstate: int, randomkeys: bool) -> Test:
    """Start nservers KV servers (no long delays) and Begin the test with Go's title."""
    ts = Test(t, part, nclients, nservers, reliable, crash, partitions, maxraftstate, randomkeys)
    ts.Begin(ts.makeTitle())
    return ts
