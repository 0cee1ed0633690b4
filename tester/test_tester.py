"""Tests of the tester itself (Go: tester1/tester_test.go, plus the Python-only machinery).

TestBasic and TestShutdownServer are Go's, step for step; the rest check what the port adds or
must keep: the failure collector, the watchdog, connectivity and partitions, crash/restart,
Clnt connectivity, the persister, annotations and the VIS_* view, kvtest and the KV model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
import time

import pytest

import labgob
import porcupine
import tester
from kvraft1 import rpc
from tester import annotation, kvtest
from tester.models import KvInput, KvModel, KvOutput, KvState

@pytest.fixture(autouse=True)
def _no_stray_views(monkeypatch):
    """Tests that fail on purpose write no porcupine view to /tmp; the VIS tests set their own."""
    monkeypatch.setenv("VIS_ENABLE", "never")


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

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tester.__file__)))


def _watchdog_threads() -> list[threading.Thread]:
    return [th for th in threading.enumerate() if th.name == "tester-watchdog"]


def TestWatchdogFailsHungTest(monkeypatch, capfd):
    monkeypatch.setenv(tester.WATCHDOG_ENV, "0.5")
    start = time.monotonic()  # before MakeConfig: the limit counts from there, as Go's 120 s does
    ts = makeTest(tester.T(), 1)
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
    assert "(most recent call first)" in err  # faulthandler's dump of every thread
    assert "TestWatchdogFailsHungTest" in str(ei.value)  # where the test thread was stuck
    assert _watchdog_threads() == []


_CHURN_WHILE_THE_WATCHDOG_FIRES = """
import os, threading
import tester
from tester.config import _Watchdog

stop = False

def short_lived():
    def dive(n):
        s = {n, n + 1}  # frames with objects to free as the thread exits
        return dive(n - 1) if n else s
    dive(20)

def churn():
    while not stop:
        th = threading.Thread(target=short_lived)
        th.start()
        th.join()

churners = [threading.Thread(target=churn) for _ in range(2)]
for th in churners:
    th.start()
fired = 0
for _ in range(300):
    t = tester.T()
    wd = _Watchdog(t, 0.003)
    try:
        threading.Event().wait(5)  # the watchdog interrupts this
    except tester.TestFailed:
        fired += 1
    finally:
        wd.stop()
        t.finish()
stop = True
for th in churners:
    th.join()
print("fired", fired)
"""


def TestWatchdogDumpSurvivesThreadsExiting(tmp_path):
    # faulthandler's C timer reads frames without the GIL and crashed the process (SIGSEGV) about
    # once in 100 dumps like these; the watchdog dumps from Python, holding the GIL.
    script = tmp_path / "churn.py"
    script.write_text(_CHURN_WHILE_THE_WATCHDOG_FIRES)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout.split() == ["fired", "300"]
    assert out.stderr.count("(most recent call first)") >= 300


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


# ---- the KV model -----------------------------------------------------------------------------

def _op(cli: int, call: int, ret: int, inp: KvInput, out: KvOutput) -> porcupine.Operation:
    return porcupine.Operation(ClientId=cli, Input=inp, Call=call, Output=out, Return=ret)


def _put(key: str, value: str, version: int) -> KvInput:
    return KvInput(Op=1, Key=key, Value=value, Version=version)


def _get(key: str) -> KvInput:
    return KvInput(Op=0, Key=key)


def _check(ops: list) -> porcupine.CheckResult:
    res, _ = porcupine.CheckOperationsVerbose(KvModel, ops, 1.0)
    return res


def TestKvModelSequential():
    ops = [_op(0, 0, 10, _put("k", "x", 0), KvOutput(Err="OK")),
           _op(1, 20, 30, _get("k"), KvOutput(Value="x", Version=1, Err="OK")),
           _op(0, 40, 50, _put("k", "y", 0), KvOutput(Err="ErrVersion")),
           _op(0, 60, 70, _put("k", "y", 1), KvOutput(Err="OK")),
           _op(1, 80, 90, _get("k"), KvOutput(Value="y", Version=2, Err="OK")),
           _op(1, 95, 99, _get("missing"), KvOutput(Err="ErrNoKey"))]
    assert _check(ops) == porcupine.Ok
    stale = ops[:4] + [_op(1, 80, 90, _get("k"), KvOutput(Value="x", Version=1, Err="OK"))]
    assert _check(stale) == porcupine.Illegal
    double = [ops[0], _op(1, 20, 30, _put("k", "z", 0), KvOutput(Err="OK"))]  # version 0 twice
    assert _check(double) == porcupine.Illegal
    wrong_err = [_op(0, 0, 10, _put("k", "x", 0), KvOutput(Err="ErrVersion"))]
    assert _check(wrong_err) == porcupine.Illegal


def TestKvModelErrMaybeEitherWay():
    # A matching ErrMaybe Put is applied; a mismatched one is a no-op: both are legal.
    maybe = _op(0, 0, 10, _put("k", "x", 0), KvOutput(Err="ErrMaybe"))
    assert _check([maybe, _op(1, 20, 30, _get("k"), KvOutput(Value="x", Version=1, Err="OK"))]) == porcupine.Ok
    rival = _op(2, 0, 10, _put("k", "a", 0), KvOutput(Err="OK"))
    lost = _op(1, 20, 30, _get("k"), KvOutput(Value="a", Version=1, Err="OK"))
    assert _check([maybe, rival, lost]) == porcupine.Ok  # the rival went first; mine did nothing
    # A matching Put cannot be a no-op, whatever it returned.
    gone = _op(1, 20, 30, _get("k"), KvOutput(Value="", Version=0, Err="ErrNoKey"))
    assert _check([maybe, gone]) == porcupine.Illegal


def TestKvModelConcurrentAndPartitioned():
    ops = [_op(0, 0, 100, _put("k", "x", 0), KvOutput(Err="OK")),
           _op(1, 10, 20, _get("k"), KvOutput(Value="x", Version=1, Err="OK")),  # during the put: fine
           _op(2, 30, 40, _get("k"), KvOutput(Value="", Err="ErrNoKey")),        # ... then "" is too late
           _op(3, 0, 5, _put("j", "1", 0), KvOutput(Err="OK"))]
    assert _check(ops) == porcupine.Illegal
    assert _check([ops[0], ops[1], ops[3]]) == porcupine.Ok
    parts = KvModel.Partition(ops)
    assert [p[0].Input.Key for p in parts] == ["j", "k"] and [len(p) for p in parts] == [1, 3]


def TestKvModelDescribe():
    assert KvModel.DescribeOperation(_get("k"), KvOutput("v", 3, "OK")) == "get('k') -> ('v', '3', 'OK')"
    assert KvModel.DescribeOperation(_put("k", "v", 3), KvOutput(Err="OK")) == "put('k', 'v', '3') -> ('OK')"
    assert KvModel.Step(KvState(), KvInput(Op=7), KvOutput()) == (False, "<invalid>")
    assert KvModel.Init() == KvState("", 0)


# ---- kvtest on a toy versioned KV server --------------------------------------------------------

class KVServer:
    """A one-server versioned KV store (kvsrv1's rules); stale=True answers Gets with old values."""

    def __init__(self, stale: bool = False) -> None:
        self.mu = threading.Lock()
        self.kv: dict[str, tuple[str, int]] = {}
        self.old: dict[str, tuple[str, int]] = {}
        self.stale = stale

    def Get(self, args: rpc.GetArgs, reply: rpc.GetReply) -> None:
        with self.mu:
            if args.Key not in self.kv:
                reply.Err = rpc.ErrNoKey
                return
            value, version = self.old.get(args.Key, self.kv[args.Key]) if self.stale else self.kv[args.Key]
            reply.Value, reply.Version, reply.Err = value, version, rpc.OK

    def Put(self, args: rpc.PutArgs, reply: rpc.PutReply) -> None:
        with self.mu:
            value, version = self.kv.get(args.Key, ("", 0))
            if args.Key not in self.kv and args.Version != 0:
                reply.Err = rpc.ErrNoKey
            elif args.Version != version:
                reply.Err = rpc.ErrVersion
            else:
                if args.Key in self.kv:
                    self.old[args.Key] = self.kv[args.Key]
                self.kv[args.Key] = (args.Value, version + 1)
                reply.Err = rpc.OK

    def Kill(self) -> None:
        pass


class Clerk:
    def __init__(self, clnt: tester.Clnt, server: str, stop: threading.Event) -> None:
        self.clnt = clnt
        self.server = server
        self.stop = stop  # set at cleanup: a zombie clerk gives up instead of retrying forever

    def Get(self, key: str) -> tuple[str, int, str]:
        while not self.stop.is_set():
            reply = rpc.GetReply()
            if self.clnt.Call(self.server, "KVServer.Get", rpc.GetArgs(key), reply):
                return reply.Value, reply.Version, reply.Err
        raise SystemExit("clerk stopped")  # ends a zombie client thread quietly

    def Put(self, key: str, value: str, version: int) -> str:
        first = True
        while not self.stop.is_set():
            reply = rpc.PutReply()
            if self.clnt.Call(self.server, "KVServer.Put", rpc.PutArgs(key, value, version), reply):
                if reply.Err == rpc.ErrVersion and not first:
                    return rpc.ErrMaybe
                return reply.Err
            first = False
        raise SystemExit("clerk stopped")  # ends a zombie client thread quietly


class _KvTest(tester.Embed):
    _embedded = ("Test",)

    def __init__(self, t: tester.T, stale: bool = False, randomkeys: bool = False) -> None:
        self.stale = stale
        self.stop = threading.Event()
        cfg = tester.MakeConfig(t, 1, True, self.StartKVServer)
        self.Test = kvtest.MakeTest(t, cfg, randomkeys, self)

    def StartKVServer(self, ends: list, gid: int, me: int, persister: tester.Persister) -> list:
        return [KVServer(self.stale)]

    def MakeClerk(self) -> kvtest.TestClerk:
        clnt = self.Config.MakeClient()
        return kvtest.TestClerk(Clerk(clnt, tester.ServerName(tester.GRP0, 0), self.stop), clnt)

    def DeleteClerk(self, ck: kvtest.TestClerk) -> None:
        self.DeleteClient(ck.Clnt)

    def Cleanup(self) -> None:
        self.stop.set()
        self.Test.Cleanup()


def TestKvtestHelpersOnToyKV(capsys):
    ts = _KvTest(tester.T())
    before = tester.porcupine_summary()
    try:
        ts.Begin("Test: kvtest helpers")
        tester.AnnotateTest("TestKvtestHelpersOnToyKV", 1)
        ck = ts.MakeClerk()
        ver = ts.PutAtLeastOnce(ck, "a", "x", 0, -1)
        assert ver == 1
        ts.CheckGet(ck, "a", "x", 1)
        rs = ts.SpawnClientsAndWait(3, 0.2, lambda cli, ck1, done: ts.OneClientPut(cli, ck1, ["k"], done))
        assert len(rs) == 3 and sum(r.Nok for r in rs) > 0 and sum(r.Nmaybe for r in rs) == 0
        res = kvtest.ClntRes()
        ts.CheckPutConcurrent(ck, "k", rs, res, True)
        assert res.Nok == sum(r.Nok for r in rs)
        e = kvtest.EntryV()
        ver_k = ts.GetJson(ck, "k", -1, e)
        assert ver_k == res.Nok and 0 <= e.Id < 3 and e.V == ver_k - 1
        val, _, _ = ck.Get("k")
        assert val == '{"Id":%d,"V":%d}' % (e.Id, e.V)  # Go's compact json.Marshal
        ts.CheckPorcupine()
        assert ts.oplog.Len() == ts.Config.ops  # every logged op was counted by cfg.Op()
    finally:
        ts.Cleanup()
    out = capsys.readouterr().out
    assert "info: linearizability check of" in out and ": Ok in" in out
    assert "  ... Passed --" in out
    assert tester.porcupine_summary() != before


def TestCheckGetFailureMessage():
    ts = _KvTest(tester.T())
    with pytest.raises(tester.TestFailed, match=r"^Get\(a\) returns \(x, 1\) != \(y, 1\)$"):
        try:
            tester.AnnotateTest("TestCheckGetFailureMessage", 1)
            ck = ts.MakeClerk()
            ts.PutAtLeastOnce(ck, "a", "x", 0, -1)
            ts.CheckGet(ck, "a", "y", 1)
        finally:
            ts.Cleanup()


def TestPorcupineIllegalWritesViewAndFails(monkeypatch, tmp_path, capsys):
    vis = tmp_path / "history.html"
    monkeypatch.setenv("VIS_FILE", str(vis))
    monkeypatch.delenv("VIS_ENABLE", raising=False)
    ts = _KvTest(tester.T(), stale=True)
    with pytest.raises(tester.TestFailed, match="history is not linearizable"):
        try:
            tester.AnnotateTest("TestPorcupineIllegal", 1)
            ck = ts.MakeClerk()
            ts.Put(ck, "a", "1", 0, 0)
            ts.Put(ck, "a", "2", 1, 0)
            ts.Get(ck, "a", 0)  # the stale server answers "1"
            ts.CheckPorcupine()
        finally:
            ts.Cleanup()
    out = capsys.readouterr().out
    assert f"info: wrote history visualization to {vis}" in out
    assert vis.stat().st_size > 0
    assert "info: wrote visualization to" not in out  # Cleanup does not overwrite it (finalized)


def TestClientFatalfDuringSpawnFailsTest():
    ts = _KvTest(tester.T())
    start = time.monotonic()

    def client(cli: int, ck: kvtest.IKVClerk, done: tester.Chan) -> kvtest.ClntRes:
        if cli == 1:
            ts.Fatalf("client %d: bad value", cli)
        return ts.OneClientPut(cli, ck, ["k"], done)

    with pytest.raises(tester.TestFailed, match="^client 1: bad value"):
        try:
            ts.SpawnClientsAndWait(3, 5.0, client)
        finally:
            ts.Cleanup()
    assert time.monotonic() - start < 2.0


def TestPartitionerStopsAndAcks():
    ts = _ToyTest(tester.T(), 3)
    kt = kvtest.MakeTest(ts.Config.t, ts.Config, False, None)
    try:
        tester.AnnotateTest("TestPartitionerStopsAndAcks", 3)
        ch = tester.Chan()
        tester.go(kt.Partitioner, tester.GRP0, ch)
        time.sleep(0.05)
        start = time.monotonic()
        ch.send(True)
        v, ok = ch.recv(timeout=3.0)
        assert ok and v is True
        assert time.monotonic() - start < kvtest.ElectionTimeout + 0.3
        assert ts.grp.GetConnected() == [True, True, True]
    finally:
        ts.Cleanup()


def TestAppendsOnToyKV():
    ts = _KvTest(tester.T())
    try:
        ck = ts.MakeClerk()
        ts.PutJson(ck, "k", [], 0, 0)
        rs = ts.SpawnClientsAndWait(2, 0.2, ts.OneClientAppend)
        es: list = []
        ver = ts.GetJson(ck, "k", 0, es)
        ts.CheckAppends([kvtest.EntryN(**e) for e in es], 2, rs, ver)
        assert len(es) == sum(r.Nok for r in rs) > 0
    finally:
        ts.Cleanup()


def TestKvtestSmallHelpers():
    assert kvtest.MakeKeys(3) == ["k0", "k1", "k2"]
    v = kvtest.RandValue(30)
    assert len(v) == 30 and v.isalpha() and v.isascii()
    assert kvtest.ElectionTimeout == 1.0
    r = tester.Randstring(20)
    assert len(r) == 20 and r != tester.Randstring(20)


# ---- annotations ------------------------------------------------------------------------------

def _texts(tag: str) -> list[str]:
    return [a.Description for a in annotation.snapshot_annotations() if a.Tag == tag]


def TestAnnotateFaultTexts():
    tester.AnnotateTest("TestAnnotateFaultTexts", 3)
    tester.AnnotateConnection([True, True, True])  # unchanged: nothing
    assert annotation.snapshot_annotations()[0].Description == "TestAnnotateFaultTexts (3 servers)"
    tester.AnnotateConnection([True, False, True])
    tester.AnnotateShutdown([2])
    tester.AnnotateShutdown([2])  # unchanged: nothing
    tester.AnnotateRestartAll()
    tester.AnnotateConnection([True, True, True])  # all healthy: the open fault closes
    tester.AnnotateTwoPartitions([0, 1], [2])
    tester.AnnotateClearFailure()
    closed = [a for a in annotation.snapshot_annotations() if a.Tag == tester.TAG_PARTITION]
    assert [a.Description for a in closed] == [
        "partition = [1] [0 2]",
        "partition = [1] [0] / crash = [2]",
        "partition = [1] [0 2]",
        "partition = [0 1] [2]",
    ]
    # A continuous annotation replaced on its tag ends at t; the next starts at t + 1000 ns.
    assert closed[1].Start == closed[0].End + 1000
    assert all(a.BackgroundColor == tester.COLOR_FAULT for a in closed)


def TestAnnotateCheckerAndQuirks():
    tester.AnnotateTest("TestAnnotateCheckerAndQuirks", 1)
    tester.AnnotateCheckerSuccess("no begin", "point")  # no begin time yet: a point annotation
    t0 = tester.GetAnnotateTimestamp()
    tester.AnnotateCheckerBegin("checking Get(a)")
    tester.AnnotateCheckerFailure("Get(a) wrong", "details")
    tester.AnnotateContinuousEnd("never-opened")  # Go appends a span from time 0; we add nothing
    tester.AnnotateInfoInterval(t0, "interval", "d")
    tester.Annotate("user", "mine", "d")
    anns = annotation.snapshot_annotations()
    point, interval = anns[1], anns[2]
    assert point.End == 0 and point.Tag == tester.TAG_CHECKER and point.BackgroundColor == tester.COLOR_SUCCESS
    assert interval.Start >= t0 and interval.End >= interval.Start
    assert interval.Details == "checking Get(a): details" and interval.BackgroundColor == tester.COLOR_FAILURE
    assert all(a.Tag != "never-opened" for a in anns)
    assert anns[3].Tag == tester.TAG_INFO and anns[3].Start == t0
    assert anns[4].BackgroundColor == tester.COLOR_USER
    tester.AnnotateContinuous("user", "open", "d")
    final = tester.FinalizeAnnotations("the end")
    assert isinstance(final[0], porcupine.Annotation)
    assert [a.Description for a in final[-2:]] == ["open", "the end"]  # open ones closed, then the end
    assert final[-1].End == final[-1].Start + 1000
    assert tester.GetAnnotationFinalized()


def _failing_toy_test() -> None:
    ts = _ToyTest(tester.T(), 2)
    with pytest.raises(tester.TestFailed):
        try:
            tester.AnnotateTest("vis", 2)
            tester.AnnotateShutdown([1])
            ts.Fatalf("boom")
        finally:
            ts.Cleanup()


def _passing_toy_test() -> None:
    ts = _ToyTest(tester.T(), 2)
    try:
        tester.AnnotateTest("vis", 2)
        tester.AnnotateInfo("hello", "world")
    finally:
        ts.Cleanup()


@pytest.mark.parametrize("enable,failing,written", [
    ("", True, True), ("", False, False),
    ("never", True, False), ("always", False, True), ("always", True, True),
])
def TestVisEnableAndFile(monkeypatch, tmp_path, capsys, enable, failing, written):
    vis = tmp_path / "vis.html"
    monkeypatch.setenv("VIS_FILE", str(vis))
    monkeypatch.setenv("VIS_ENABLE", enable)
    (_failing_toy_test if failing else _passing_toy_test)()
    out = capsys.readouterr().out
    assert vis.exists() == written
    assert (f"info: wrote visualization to {vis}" in out) == written
    if written:
        assert vis.stat().st_size > 0


def TestVisTempFileWhenNoVisFile(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("VIS_FILE", raising=False)
    monkeypatch.delenv("VIS_ENABLE", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    _failing_toy_test()
    files = list(tmp_path.glob("porcupine-*.html"))
    assert len(files) == 1
    assert f"info: wrote visualization to {files[0]}" in capsys.readouterr().out


def TestSigintWritesViewAndChains(monkeypatch, tmp_path, capsys):
    import signal

    vis = tmp_path / "interrupted.html"
    monkeypatch.setenv("VIS_FILE", str(vis))
    monkeypatch.delenv("VIS_ENABLE", raising=False)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # A shell starts background jobs with SIGINT ignored, and then the view writer rightly
        # stays out of the way; give this test the interactive default so it can install.
        monkeypatch.setattr(annotation, "_sigint_installed", False)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert annotation.install_sigint_handler()
    chained = []
    monkeypatch.setattr(annotation, "_prev_sigint", lambda signum, frame: chained.append(signum))
    tester.AnnotateTest("TestSigint", 1)
    tester.AnnotateInfo("before ctrl-c", "")
    if signal.getsignal(signal.SIGINT) is annotation._on_sigint:
        signal.raise_signal(signal.SIGINT)
    else:  # someone replaced our handler after install: call it directly (never a real SIGINT)
        annotation._on_sigint(signal.SIGINT, None)
    assert chained == [signal.SIGINT]
    assert vis.stat().st_size > 0
    assert f"info: wrote visualization to {vis}" in capsys.readouterr().out
    annotation.cleanup(False, "reset")


def TestGoFormatVerbs():
    S = tester.Sprintf
    assert S("%v %v %v %v", True, None, [1, [2, 3]], {"b": 1, "a": 2}) == "true <nil> [1 [2 3]] map[a:2 b:1]"
    assert S("%+v|%v", kvtest.EntryV(1, 2), kvtest.EntryV(1, 2)) == "{Id:1 V:2}|{1 2}"
    assert S("%4.1f|%5d|%-4d|%q|%x|%%", 2.06, 46, 7, "k", 255) == " 2.1|   46|7   |\"k\"|ff|%"
    assert S("%d %d", 1) == "1 %!d(MISSING)" and S("x", 1) == "x%!(EXTRA int=1)"


def TestPorcupineUnknownIsCountedAndPasses(capsys):
    ts = _KvTest(tester.T())
    before = tester.porcupine_unknown_count()
    try:
        # Many overlapping Puts of one key, each ErrMaybe: hopeless for the search in 1 ms.
        for i in range(60):
            ts.oplog.Append(porcupine.Operation(ClientId=i, Input=_put("k", f"v{i}", i % 7), Call=i,
                                                Output=KvOutput(Err="ErrMaybe"), Return=10_000 + i))
        ts.oplog.Append(porcupine.Operation(ClientId=99, Input=_get("k"), Call=20_000,
                                            Output=KvOutput(Value="nope"), Return=20_001))
        ts.CheckPorcupineT(0.001)
    finally:
        ts.Cleanup()
    assert tester.porcupine_unknown_count() == before + 1
    out = capsys.readouterr().out
    assert "info: linearizability check timed out, assuming history is ok" in out
    assert "  ... Passed --" in out


def TestTNamesItselfAfterPytestTest():
    t = tester.T()
    assert t.Name().split("[")[0] == "TestTNamesItselfAfterPytestTest"  # "[1-2]" with pytest-repeat
    assert tester.CurrentT() is t and not t.Failed()
    t.finish()
    assert tester.CurrentT() is None


def TestLateInterruptIsHarmless():
    import signal

    from tester import failure

    t = tester.T()
    t.finish()
    assert signal.getsignal(failure.INTERRUPT_SIGNAL) is failure._dispatch_interrupt
    signal.raise_signal(failure.INTERRUPT_SIGNAL)  # as if sent just before the test ended
    time.sleep(0.01)  # the handler runs at the next bytecode boundary: nothing is raised
