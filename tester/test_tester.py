"""Tests of the tester itself (Go: tester1/tester_test.go, plus the Python-only machinery).

TestBasic and TestShutdownServer are Go's, step for step; the rest check what the port adds or
must keep: the failure collector, the watchdog, connectivity and partitions, crash/restart,
Clnt connectivity, the persister, annotations and the VIS_* view, kvtest and the KV model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
import time

import pytest

import labgob
import labrpc
import tester
from kvraft1 import rpc

labgob.Register(rpc.GetArgs)
labgob.Register(rpc.GetReply)
labgob.Register(rpc.PutArgs)
labgob.Register(rpc.PutReply)


# ---- Go's tester_test.go ----------------------------------------------------------------

class Server:
    def __init__(self) -> None:
        self.n = 0
        self.killed = False

    def Kill(self) -> None:
        self.killed = True

    def Get(self, args: rpc.GetArgs, reply: rpc.GetReply) -> None:
        self.n += 1
        reply.Version = self.n


class _Test(tester.Embed):
    _embedded = ("Config",)

    def __init__(self, t: tester.T, nsrv: int) -> None:
        self.t = t
        self.s: Server | None = None
        self.sn = tester.ServerName(tester.GRP0, 0)
        self.Config = tester.MakeConfig(t, nsrv, True, self.startServer)
        self.clnt = self.Config.MakeClient()

    def startServer(self, servers: list, gid: int, me: int, persister: tester.Persister) -> list:
        self.s = Server()
        return [self.s]

    def cleanup(self) -> None:
        self.Cleanup()

    def oneRPC(self) -> bool:
        args = rpc.GetArgs(Key="xxx")
        reply = rpc.GetReply()
        if not self.clnt.Call(self.sn, "Server.Get", args, reply):
            return False
        if reply.Version != self.s.n:
            self.Fatalf("Wrong version")
        return True


def makeTest(t: tester.T, nsrv: int) -> _Test:
    return _Test(t, nsrv)


def TestBasic():
    ts = makeTest(tester.T(), 1)
    try:
        ts.oneRPC()
    finally:
        ts.cleanup()


def TestShutdownServer():
    ts = makeTest(tester.T(), 1)
    try:
        ts.oneRPC()
        ts.Group(tester.GRP0).Shutdown()
        if not ts.s.killed:
            ts.Fatalf("Not killed")
        if ts.oneRPC():
            ts.Fatalf("RPC succeeded")
    finally:
        ts.cleanup()


# ---- the failure collector ------------------------------------------------------------------

def _blocked_until_interrupted(ts: _Test, seconds: float = 10.0) -> None:
    threading.Event().wait(seconds)  # a test thread stuck waiting, like a hung Chan.recv


def TestFatalfFromOtherThreadFailsTestThread():
    ts = makeTest(tester.T(), 1)
    start = time.monotonic()

    def client_worker() -> None:
        time.sleep(0.05)
        ts.Fatalf("client %d saw %v", 3, [1, 2])

    with pytest.raises(tester.TestFailed) as ei:
        try:
            tester.go(client_worker)
            _blocked_until_interrupted(ts)
        finally:
            ts.cleanup()
    msg = str(ei.value)
    assert msg.startswith("client 3 saw [1 2]")
    assert "client_worker" in msg  # the failing thread's stack comes along
    assert time.monotonic() - start < 2.0, "the blocked test thread was not interrupted"


def TestModuleFatalfFindsCurrentTest():
    ts = makeTest(tester.T(), 1)
    seen = []

    def library_code() -> None:
        seen.append(tester.CurrentT())
        tester.Fatalf("library says %q", "no")

    with pytest.raises(tester.TestFailed, match='library says "no"'):
        try:
            th = threading.Thread(target=library_code)  # a plain thread, not tester.go
            th.start()
            th.join()
            ts.CheckFailed()
        finally:
            ts.cleanup()
    assert seen == [ts.t]


def TestUncaughtExceptionInPlainThreadFailsTest():
    ts = makeTest(tester.T(), 1)
    with pytest.raises(tester.TestFailed) as ei:
        try:
            th = threading.Thread(target=lambda: {}["missing"], name="applier")
            th.start()
            _blocked_until_interrupted(ts)
        finally:
            ts.cleanup()
    assert "KeyError" in str(ei.value) and "'applier'" in str(ei.value)


def TestFirstFailureWins(capfd):
    ts = makeTest(tester.T(), 1)
    with pytest.raises(tester.TestFailed) as ei:
        try:
            with ts.t.shielded():  # no interrupt: both failures are recorded first
                tester.go(ts.Fatalf, "first").join()
                tester.go(ts.Fatalf, "second").join()
            ts.CheckFailed()
        finally:
            ts.cleanup()
    assert str(ei.value).startswith("first")
    assert "+1 later failure" in str(ei.value)
    assert "second" in capfd.readouterr().err


def TestFatalfInTestThreadRaisesAtOnce(capsys):
    ts = makeTest(tester.T(), 1)
    with pytest.raises(tester.TestFailed, match="^Wrong version 7$"):
        try:
            ts.Fatalf("Wrong version %d", 7)
        finally:
            ts.cleanup()
    out = capsys.readouterr().out
    assert "Fatal: Wrong version 7" in out
    assert "test_tester.py:" in out  # Go prints the test-file frames


def TestErrorfFailsAtCleanup(capsys):
    ts = makeTest(tester.T(), 1)
    with pytest.raises(tester.TestFailed, match="soft failure"):
        try:
            ts.Begin("Test: errorf")
            ts.t.Errorf("soft %s", "failure")
            assert ts.t.Failed()
            ts.End()
        finally:
            ts.cleanup()
    assert "Passed" not in capsys.readouterr().out


def TestFailureAfterEndIsReported(capfd):
    ts = makeTest(tester.T(), 1)
    ts.cleanup()
    th = tester.go(ts.Fatalf, "zombie %d", 1)  # bound to the finished T
    th.join()
    assert "failure after test" in capfd.readouterr().err


def TestExceptionInTestMarksFailedAndNoPassedLine(capsys):
    ts = makeTest(tester.T(), 1)
    with pytest.raises(ZeroDivisionError):
        try:
            ts.Begin("Test: raises")
            1 / 0
        finally:
            try:
                ts.End()
            finally:
                ts.cleanup()
    assert ts.t.Failed()
    assert "Passed" not in capsys.readouterr().out


# ---- the watchdog ---------------------------------------------------------------------------

def _watchdog_threads() -> list[threading.Thread]:
    return [th for th in threading.enumerate() if th.name == "tester-watchdog"]


def TestWatchdogFailsHungTest(monkeypatch, capfd):
    monkeypatch.setenv(tester.WATCHDOG_ENV, "0.5")
    ts = makeTest(tester.T(), 1)
    start = time.monotonic()
    with pytest.raises(tester.TestFailed, match="test took longer than 0.5 seconds") as ei:
        try:
            lock = threading.Lock()
            lock.acquire()
            lock.acquire()  # deadlocked for good
        finally:
            ts.cleanup()
    took = time.monotonic() - start
    assert 0.5 <= took < 2.0
    err = capfd.readouterr().err
    assert "stacks of all threads" in err and "TestWatchdogFailsHungTest" in err
    assert "TestWatchdogFailsHungTest" in str(ei.value)  # where the test thread was stuck
    assert _watchdog_threads() == []


def TestWatchdogQuietAndStopped():
    ts = makeTest(tester.T(), 1)
    try:
        assert len(_watchdog_threads()) == 1
        ts.oneRPC()
    finally:
        ts.cleanup()
    assert _watchdog_threads() == []


def TestWatchdogEnvValidated(monkeypatch):
    monkeypatch.setenv(tester.WATCHDOG_ENV, "soon")
    with pytest.raises(ValueError, match=tester.WATCHDOG_ENV):
        makeTest(tester.T(), 1)


def TestCheckTimeout120():
    ts = makeTest(tester.T(), 1)
    with pytest.raises(tester.TestFailed, match="test took longer than 120 seconds"):
        try:
            ts.Config.start -= tester.TEST_TIME_LIMIT_S + 1  # as if MakeConfig ran 121 s ago
            ts.End()
        finally:
            ts.cleanup()


# ---- Begin / End output ---------------------------------------------------------------------

def TestBeginEndLines(capsys):
    ts = makeTest(tester.T(), 1)
    try:
        ts.Begin("Test (3A): initial election")
        ts.oneRPC()
        ts.oneRPC()
        for _ in range(5):
            ts.Op()
        ts.End()
        ts.SetReliable(False)
        ts.Begin("Test (3C): unreliable")
    finally:
        ts.cleanup()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Test (3A): initial election (reliable network)..."
    assert lines[1].startswith("  ... Passed --  time  0.")
    assert lines[1].endswith("s #peers 1 #RPCs     2 #Ops    5")
    assert lines[2] == "Test (3C): unreliable (unreliable network)..."


# ---- a toy service for groups: connectivity, partitions, crash/restart -----------------------

@dataclass
class PingArgs:
    From: int = 0


@dataclass
class PingReply:
    Me: int = 0


@dataclass
class SaveArgs:
    State: str = ""


labgob.Register(PingArgs)
labgob.Register(PingReply)
labgob.Register(SaveArgs)


class Toy:
    def __init__(self, me: int, ends: list, persister: tester.Persister) -> None:
        self.me = me
        self.ends = ends
        self.persister = persister
        self.killed = False

    def Ping(self, args: PingArgs, reply: PingReply) -> None:
        reply.Me = self.me

    def Save(self, args: SaveArgs, reply: PingReply) -> None:
        self.persister.Save(args.State.encode(), b"snap-" + args.State.encode())
        reply.Me = self.me

    def Kill(self) -> None:
        self.killed = True


class _ToyTest(tester.Embed):
    _embedded = ("Config",)

    def __init__(self, t: tester.T, n: int) -> None:
        self.instances: dict[int, list[Toy]] = {}
        self.Config = tester.MakeConfig(t, n, True, self.mks)
        self.grp = self.Config.Group(tester.GRP0)

    def mks(self, ends: list, grp: int, srv: int, persister: tester.Persister) -> list:
        toy = Toy(srv, ends, persister)
        self.instances.setdefault(srv, []).append(toy)
        return [toy]

    def toy(self, i: int) -> Toy:
        return self.instances[i][-1]

    def ping(self, i: int, j: int) -> bool:
        reply = PingReply()
        ok = self.toy(i).ends[j].Call("Toy.Ping", PingArgs(i), reply)
        assert not ok or reply.Me == j
        return ok

    def reach(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], bool]:
        """Ping every pair concurrently (a failed call takes up to 99 ms)."""
        out: dict[tuple[int, int], bool] = {}
        ths = [tester.go(lambda p=p: out.__setitem__(p, self.ping(*p))) for p in pairs]
        for th in ths:
            th.join()
        return out


def _all_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(n)]


def TestConnectDisconnect():
    ts = _ToyTest(tester.T(), 3)
    try:
        assert all(ts.reach(_all_pairs(3)).values())
        ts.grp.DisconnectAll(1)
        assert ts.grp.GetConnected() == [True, False, True]
        r = ts.reach(_all_pairs(3))
        for (i, j), ok in r.items():
            assert ok == (i != 1 and j != 1), (i, j)
        ts.grp.ConnectOne(1)
        assert ts.grp.IsConnected(1)
        assert all(ts.reach(_all_pairs(3)).values())
    finally:
        ts.Cleanup()


def TestConnectOnlyToConnected():
    ts = _ToyTest(tester.T(), 3)
    try:
        ts.grp.DisconnectAll(0)
        ts.grp.DisconnectAll(1)
        ts.grp.ConnectOne(0)  # 1 is still disconnected: 0 <-> 1 stays down
        r = ts.reach([(0, 1), (1, 0), (0, 2), (2, 0), (0, 0)])
        assert r == {(0, 1): False, (1, 0): False, (0, 2): True, (2, 0): True, (0, 0): True}
    finally:
        ts.Cleanup()


def TestMakePartitionShapes():
    ts = _ToyTest(tester.T(), 5)
    try:
        assert ts.grp.MakePartition(1) == ([0, 2, 3], [4, 1])
        assert ts.grp.MakePartition(4) == ([0, 1, 2], [3, 4])
        p1, p2 = ts.grp.MakePartition(2)
        ts.grp.Partition(p1, p2)
        assert ts.grp.GetConnected() == [True] * 5
        r = ts.reach(_all_pairs(5))
        for (i, j), ok in r.items():
            assert ok == ((i in p1) == (j in p1)), (i, j)
        ts.grp.Partition([0, 1, 2, 3, 4], [])  # an empty side: everything connected again
        assert all(ts.reach(_all_pairs(5)).values())
    finally:
        ts.Cleanup()
    ts3 = _ToyTest(tester.T(), 3)
    try:
        assert ts3.grp.MakePartition(0) == ([1, 2], [0])
    finally:
        ts3.Cleanup()
    ts4 = _ToyTest(tester.T(), 4)
    try:
        assert ts4.grp.MakePartition(2) == ([0, 1, 3], [0, 2])  # Go's zero-slot quirk for even n
    finally:
        ts4.Cleanup()


def TestCrashRestart():
    ts = _ToyTest(tester.T(), 3)
    clnt = ts.MakeClient()
    name1 = tester.ServerName(tester.GRP0, 1)
    try:
        reply = PingReply()
        assert clnt.Call(name1, "Toy.Save", SaveArgs("v1"), reply) and reply.Me == 1
        assert ts.grp.RpcCount(1) == 1
        old = ts.toy(1)
        old_persister = old.persister
        old_ends = list(ts.grp.srvs[1].endNames)

        ts.grp.ShutdownServer(1)
        assert old.killed and ts.grp.Services()[1] is None
        assert not ts.grp.IsConnected(1)
        assert not clnt.Call(name1, "Toy.Ping", PingArgs(), PingReply())
        old_persister.Save(b"zombie", b"zombie")  # a zombie's write must not reach the next instance
        assert ts.grp.LogSize() == len("v1") and ts.grp.SnapshotSize() == len("snap-v1")

        ts.grp.StartServer(1)
        new = ts.toy(1)
        assert new is not old and ts.grp.Services()[1] == [new]
        assert new.persister is not old_persister
        assert new.persister.ReadRaftState() == b"v1" and new.persister.ReadSnapshot() == b"snap-v1"
        assert ts.grp.RpcCount(1) == 0  # a new labrpc server: counts start over
        assert set(ts.grp.srvs[1].endNames).isdisjoint(old_ends)  # fresh ends
        # Not connected yet: peers cannot reach it, but a clerk end (by name) can.
        assert ts.reach([(0, 1), (1, 0)]) == {(0, 1): False, (1, 0): False}
        assert clnt.Call(name1, "Toy.Ping", PingArgs(), PingReply())
        ts.grp.ConnectOne(1)
        assert all(ts.reach([(0, 1), (1, 0), (1, 2)]).values())
        assert ts.grp.RpcCount(1) == 2  # the clerk ping and 0 -> 1; calls to a disabled end never arrive
    finally:
        ts.Cleanup()
    assert all(t.killed for t in ts.instances[0] + ts.instances[2] + [ts.toy(1)])


def TestShutdownAndExitGroup():
    ts = _ToyTest(tester.T(), 2)
    try:
        ts.MakeGroupStart(1, 2, ts.mks)
        assert ts.Group(1).SrvNames() == ["server-1-0", "server-1-1"]
        assert ts.Group(1).SrvNamesTo([1]) == ["server-1-1"]
        ts.ExitGroup(1)
        with pytest.raises(KeyError, match="no server group 1"):
            ts.Group(1)
        ts.grp.Shutdown()
        assert ts.grp.Services() == [None, None]
        ts.grp.StartServers()  # restart everything, connected
        assert all(ts.reach(_all_pairs(2)).values())
    finally:
        ts.Cleanup()


def TestMksMustReturnServices():
    with pytest.raises(TypeError, match="Kill"):
        tester.MakeConfig(tester.T(), 1, True, lambda ends, grp, srv, p: [object()])
    with pytest.raises(TypeError, match="tester.T"):
        tester.MakeConfig(None, 1, True, lambda ends, grp, srv, p: [])


# ---- Clnt connectivity ------------------------------------------------------------------------

def TestClntAllowedServers():
    ts = _ToyTest(tester.T(), 2)
    n0, n1 = ts.grp.SrvNames()
    try:
        def call(c: tester.Clnt, name: str) -> bool:
            return c.Call(name, "Toy.Ping", PingArgs(), PingReply())

        c = ts.MakeClientTo([n0])
        assert call(c, n0) and not call(c, n1)
        c.ConnectTo([n0, n1])
        assert call(c, n1)
        c.Disconnect(n0)
        assert not call(c, n0) and call(c, n1)
        c.ConnectTo([n1])  # does not disable n0's end again (it is already off), nor enable it
        assert not call(c, n0)
        c.DisconnectAll()
        assert not call(c, n1)
        c.ConnectAll()
        assert call(c, n0) and call(c, n1)

        none = ts.MakeClientTo([])
        assert not call(none, n0)
        ts.DeleteClient(none)
        # Partitions of the group never touch clerk ends.
        all_ = ts.MakeClient()
        ts.grp.DisconnectAll(0)
        assert call(all_, n0)
    finally:
        ts.Cleanup()


# ---- Persister --------------------------------------------------------------------------------

def TestPersister():
    p = tester.MakePersister()
    assert p.ReadRaftState() == b"" and p.ReadSnapshot() == b"" and p.RaftStateSize() == 0
    buf = bytearray(b"state")
    p.Save(buf, b"snap")
    buf[0:1] = b"X"  # the caller's buffer changing later does not change what was saved
    assert p.ReadRaftState() == b"state" and p.RaftStateSize() == 5 and p.SnapshotSize() == 4
    q = p.Copy()
    p.Save(b"new", None)  # None or b"" erases the snapshot, as Go's nil does
    assert p.ReadSnapshot() == b"" and p.SnapshotSize() == 0
    assert q.ReadRaftState() == b"state" and q.ReadSnapshot() == b"snap"
    with pytest.raises(TypeError, match="raftstate must be bytes"):
        p.Save("text", b"")
