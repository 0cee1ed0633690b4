"""labrpc tests: Go's labrpc/test_test.go test-for-test, then the Python-specific parts.

Run: pytest labrpc            (pytest labrpc -k TestKilled is `go test -run TestKilled`)

Go's goroutines are threads here; a t.Fatalf inside a goroutine becomes a
failure recorded by the thread and asserted by the test thread.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time

import pytest

import labgob
from labrpc import LabrpcError, MakeNetwork, MakeServer, MakeService, Ref
from labrpc.sched import Scheduler


@dataclasses.dataclass
class JunkArgs:
    X: int = 0


@dataclasses.dataclass
class JunkReply:
    X: str = ""


labgob.Register(JunkArgs)
labgob.Register(JunkReply)


class JunkServer:
    def __init__(self):
        self.mu = threading.Lock()
        self.log1: list[str] = []
        self.log2: list[int] = []

    def Handler1(self, args: str, reply: Ref):
        with self.mu:
            self.log1.append(args)
            reply.Value = int(args)

    def Handler2(self, args: int, reply: Ref):
        with self.mu:
            self.log2.append(args)
            reply.Value = "handler2-" + str(args)

    def Handler3(self, args: int, reply: Ref):
        with self.mu:
            time.sleep(20)
            reply.Value = -args

    # args is a pointer (in Go; Python passes references either way)
    def Handler4(self, args: JunkArgs, reply: JunkReply):
        reply.X = "pointer"

    # args is a not pointer
    def Handler5(self, args: JunkArgs, reply: JunkReply):
        reply.X = "no pointer"

    def Handler6(self, args: str, reply: Ref):
        with self.mu:
            reply.Value = len(args)

    def Handler7(self, args: int, reply: Ref):
        with self.mu:
            reply.Value = ""
            for _ in range(args):
                reply.Value = reply.Value + "y"


class _Failures:
    """Go's t.Fatalf from a goroutine: record the first failure, assert in the test thread."""

    def __init__(self):
        self.mu = threading.Lock()
        self.msgs: list[str] = []

    def Fatalf(self, fmt: str, *args):
        with self.mu:
            self.msgs.append(fmt % args)

    def check(self):
        assert not self.msgs, self.msgs[0]


def _junk_net(servername="server99", endname="end1-99", enable=True):
    rn = MakeNetwork()
    e = rn.MakeEnd(endname)
    js = JunkServer()
    svc = MakeService(js)
    rs = MakeServer()
    rs.AddService(svc)
    rn.AddServer(servername, rs)
    rn.Connect(endname, servername)
    if enable:
        rn.Enable(endname, True)
    return rn, e, js


def TestBasic():
    rn, e, js = _junk_net()
    try:
        reply = Ref("")
        e.Call("JunkServer.Handler2", 111, reply)
        assert reply.Value == "handler2-111", "wrong reply from Handler2"

        reply = Ref(0)
        e.Call("JunkServer.Handler1", "9099", reply)
        assert reply.Value == 9099, "wrong reply from Handler1"
    finally:
        rn.Cleanup()


def TestTypes():
    rn, e, js = _junk_net()
    try:
        args = JunkArgs()
        reply = JunkReply()
        e.Call("JunkServer.Handler4", args, reply)
        assert reply.X == "pointer", "wrong reply from Handler4"

        args = JunkArgs()
        reply = JunkReply()
        e.Call("JunkServer.Handler5", args, reply)
        assert reply.X == "no pointer", "wrong reply from Handler5"
    finally:
        rn.Cleanup()


# does net.Enable(endname, false) really disconnect a client?
def TestDisconnect():
    rn, e, js = _junk_net(enable=False)
    try:
        reply = Ref("")
        e.Call("JunkServer.Handler2", 111, reply)
        assert reply.Value == "", "unexpected reply from Handler2"

        rn.Enable("end1-99", True)

        reply = Ref(0)
        e.Call("JunkServer.Handler1", "9099", reply)
        assert reply.Value == 9099, "wrong reply from Handler1"
    finally:
        rn.Cleanup()


# test net.GetCount()
def TestCounts():
    rn, e, js = _junk_net(servername=99)
    try:
        for i in range(17):
            reply = Ref("")
            e.Call("JunkServer.Handler2", i, reply)
            wanted = "handler2-" + str(i)
            assert reply.Value == wanted, f"wrong reply {reply.Value} from Handler1, expecting {wanted}"

        n = rn.GetCount(99)
        assert n == 17, f"wrong GetCount() {n}, expected 17"
    finally:
        rn.Cleanup()


# test net.GetTotalBytes()
def TestBytes():
    rn, e, js = _junk_net(servername=99)
    try:
        for i in range(17):
            args = "x" * 71
            args = args + args
            args = args + args
            reply = Ref(0)
            e.Call("JunkServer.Handler6", args, reply)
            wanted = len(args)
            assert reply.Value == wanted, f"wrong reply {reply.Value} from Handler6, expecting {wanted}"

        n = rn.GetTotalBytes()
        print(f"TestBytes: phase 1 total {n} bytes (bounds 4828..6000)")
        assert 4828 <= n <= 6000, f"wrong GetTotalBytes() {n}, expected about 5000"

        for i in range(17):
            args = 107
            reply = Ref("")
            e.Call("JunkServer.Handler7", args, reply)
            wanted = args
            assert len(reply.Value) == wanted, \
                f"wrong reply len={len(reply.Value)} from Handler6, expecting {wanted}"

        nn = rn.GetTotalBytes() - n
        print(f"TestBytes: phase 2 increase {nn} bytes (bounds 1800..2500)")
        assert 1800 <= nn <= 2500, f"wrong GetTotalBytes() {nn}, expected about 2000"
    finally:
        rn.Cleanup()


# test RPCs from concurrent ClientEnds
def TestConcurrentMany():
    rn = MakeNetwork()
    try:
        t = _Failures()
        js = JunkServer()
        svc = MakeService(js)
        rs = MakeServer()
        rs.AddService(svc)
        rn.AddServer(1000, rs)

        ch: queue.Queue[int] = queue.Queue()

        nclients = 20
        nrpcs = 10

        def client(i):
            n = 0
            try:
                e = rn.MakeEnd(i)
                rn.Connect(i, 1000)
                rn.Enable(i, True)
                for j in range(nrpcs):
                    arg = i * 100 + j
                    reply = Ref("")
                    e.Call("JunkServer.Handler2", arg, reply)
                    wanted = "handler2-" + str(arg)
                    if reply.Value != wanted:
                        t.Fatalf("wrong reply %s from Handler1, expecting %s", reply.Value, wanted)
                        return
                    n += 1
            finally:
                ch.put(n)

        for ii in range(nclients):
            threading.Thread(target=client, args=(ii,), daemon=True).start()

        total = 0
        for _ in range(nclients):
            total += ch.get()
        t.check()

        assert total == nclients * nrpcs, \
            f"wrong number of RPCs completed, got {total}, expected {nclients * nrpcs}"
        n = rn.GetCount(1000)
        assert n == total, f"wrong GetCount() {n}, expected {total}"
    finally:
        rn.Cleanup()


# test unreliable
def TestUnreliable():
    rn = MakeNetwork()
    try:
        rn.Reliable(False)
        t = _Failures()
        js = JunkServer()
        svc = MakeService(js)
        rs = MakeServer()
        rs.AddService(svc)
        rn.AddServer(1000, rs)

        ch: queue.Queue[int] = queue.Queue()
        nclients = 300

        def client(i):
            n = 0
            try:
                e = rn.MakeEnd(i)
                rn.Connect(i, 1000)
                rn.Enable(i, True)
                arg = i * 100
                reply = Ref("")
                ok = e.Call("JunkServer.Handler2", arg, reply)
                if ok:
                    wanted = "handler2-" + str(arg)
                    if reply.Value != wanted:
                        t.Fatalf("wrong reply %s from Handler1, expecting %s", reply.Value, wanted)
                        return
                    n += 1
            finally:
                ch.put(n)

        for ii in range(nclients):
            threading.Thread(target=client, args=(ii,), daemon=True).start()

        total = 0
        for _ in range(nclients):
            total += ch.get()
        t.check()

        assert total != nclients and total != 0, \
            f"all RPCs succeeded despite unreliable ({rn!r}, {total} of {nclients})"
    finally:
        rn.Cleanup()


# test concurrent RPCs from a single ClientEnd
def TestConcurrentOne():
    rn = MakeNetwork()
    try:
        t = _Failures()
        js = JunkServer()
        svc = MakeService(js)
        rs = MakeServer()
        rs.AddService(svc)
        rn.AddServer(1000, rs)

        e = rn.MakeEnd("c")
        rn.Connect("c", 1000)
        rn.Enable("c", True)

        ch: queue.Queue[int] = queue.Queue()
        nrpcs = 20

        def client(i):
            n = 0
            try:
                arg = 100 + i
                reply = Ref("")
                e.Call("JunkServer.Handler2", arg, reply)
                wanted = "handler2-" + str(arg)
                if reply.Value != wanted:
                    t.Fatalf("wrong reply %s from Handler2, expecting %s", reply.Value, wanted)
                    return
                n += 1
            finally:
                ch.put(n)

        for ii in range(nrpcs):
            threading.Thread(target=client, args=(ii,), daemon=True).start()

        total = 0
        for _ in range(nrpcs):
            total += ch.get()
        t.check()

        assert total == nrpcs, f"wrong number of RPCs completed, got {total}, expected {nrpcs}"
        with js.mu:
            assert len(js.log2) == nrpcs, "wrong number of RPCs delivered"
        n = rn.GetCount(1000)
        assert n == total, f"wrong GetCount() {n}, expected {total}"
    finally:
        rn.Cleanup()


# regression: an RPC that's delayed during Enabled=false
# should not delay subsequent RPCs (e.g. after Enabled=true).
def TestRegression1():
    rn = MakeNetwork()
    try:
        js = JunkServer()
        svc = MakeService(js)
        rs = MakeServer()
        rs.AddService(svc)
        rn.AddServer(1000, rs)

        e = rn.MakeEnd("c")
        rn.Connect("c", 1000)

        # start some RPCs while the ClientEnd is disabled.
        # they'll be delayed.
        rn.Enable("c", False)
        ch: queue.Queue[bool] = queue.Queue()
        nrpcs = 20

        def client(i):
            ok = False
            try:
                arg = 100 + i
                reply = Ref("")
                # this call ought to return false.
                e.Call("JunkServer.Handler2", arg, reply)
                ok = True
            finally:
                ch.put(ok)

        for ii in range(nrpcs):
            threading.Thread(target=client, args=(ii,), daemon=True).start()

        time.sleep(0.100)

        # now enable the ClientEnd and check that an RPC completes quickly.
        t0 = time.monotonic()
        rn.Enable("c", True)
        arg = 99
        reply = Ref("")
        e.Call("JunkServer.Handler2", arg, reply)
        wanted = "handler2-" + str(arg)
        assert reply.Value == wanted, f"wrong reply {reply.Value} from Handler2, expecting {wanted}"
        dur = time.monotonic() - t0

        assert dur <= 0.03, f"RPC took too long ({dur}) after Enable"

        for _ in range(nrpcs):
            ch.get()

        with js.mu:
            assert len(js.log2) == 1, f"wrong number ({len(js.log2)}) of RPCs delivered, expected 1"
        n = rn.GetCount(1000)
        assert n == 1, f"wrong GetCount() {n}, expected 1"
    finally:
        rn.Cleanup()


# if an RPC is stuck in a server, and the server
# is killed with DeleteServer(), does the RPC
# get un-stuck?
def TestKilled():
    rn, e, js = _junk_net()
    try:
        doneCh: queue.Queue[bool] = queue.Queue()

        def client():
            reply = Ref(0)
            ok = e.Call("JunkServer.Handler3", 99, reply)
            doneCh.put(ok)

        threading.Thread(target=client, daemon=True).start()

        time.sleep(1.000)

        try:
            doneCh.get(timeout=0.100)
            pytest.fail("Handler3 should not have returned yet")
        except queue.Empty:
            pass

        rn.DeleteServer("server99")

        try:
            x = doneCh.get(timeout=0.100)
        except queue.Empty:
            pytest.fail("Handler3 should return after DeleteServer()")
        assert x is False, "Handler3 returned successfully despite DeleteServer()"
    finally:
        rn.Cleanup()


BENCHMARK_CALLS = 100000


def run_benchmark(n: int = BENCHMARK_CALLS) -> float:
    """Go's TestBenchmark loop; returns seconds for n sequential calls of Handler2(111)."""
    rn, e, js = _junk_net()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            reply = Ref("")
            e.Call("JunkServer.Handler2", 111, reply)
            if reply.Value != "handler2-111":
                raise AssertionError("wrong reply from Handler2")
        return time.perf_counter() - t0
    finally:
        rn.Cleanup()


def TestBenchmark():
    dt = run_benchmark()
    print(f"{dt:.3f}s for {BENCHMARK_CALLS} ({dt / BENCHMARK_CALLS * 1e6:.1f} us per RPC)")
    # march 2016, rtm laptop, 22 microseconds per RPC (Go)


# regression: a race between write of rn.longDelays in LongDelays()
# and a read in processReq().
def TestLongDelayRace():
    rn, e, js = _junk_net()
    try:
        reply = Ref(0)
        e.Call("JunkServer.Handler1", "9099", reply)

        rn.LongDelays(True)

        rn.DeleteServer("server99")

        doneCh: queue.Queue[bool] = queue.Queue()

        def client():
            reply = Ref(0)
            e.Call("JunkServer.Handler1", "9099", reply)
            doneCh.put(True)

        threading.Thread(target=client, daemon=True).start()

        rn.LongDelays(True)

        try:
            doneCh.get(timeout=0.200)
        except queue.Empty:
            pass

        rn.LongDelays(True)
    finally:
        rn.Cleanup()


# ---------------------------------------------------------------------------------------------
# Python-specific tests.

def TestUnknownMethodOrService():
    rn, e, js = _junk_net()
    try:
        with pytest.raises(LabrpcError, match=r"unknown method 'Nope'.*Handler1.*Handler7"):
            e.Call("JunkServer.Nope", 1, Ref(0))
        with pytest.raises(LabrpcError, match=r"unknown service 'Raft'.*JunkServer"):
            e.Call("Raft.AppendEntries", 1, Ref(0))
    finally:
        rn.Cleanup()


def TestServiceRegistersTwoArgumentPublicMethods():
    class Svc:
        def Good(self, args, reply): pass
        def lower(self, args, reply): pass
        def OneArg(self, args): pass
        def ThreeArgs(self, a, b, c): pass
        def Star(self, *args): pass
    svc = MakeService(Svc())
    assert svc.name == "Svc"
    assert sorted(svc.methods) == ["Good"]


def TestReplyMustBeMutable():
    rn, e, js = _junk_net()
    try:
        with pytest.raises(LabrpcError, match="labrpc.Ref"):
            e.Call("JunkServer.Handler2", 1, "")
    finally:
        rn.Cleanup()


def TestHandlerGetsCopies():
    got = []

    class Keeper:
        def Keep(self, args, reply):
            got.append(args)
            reply.X = "k"

    rn = MakeNetwork()
    try:
        rs = MakeServer()
        rs.AddService(MakeService(Keeper()))
        rn.AddServer("s", rs)
        e = rn.MakeEnd("e")
        rn.Connect("e", "s")
        rn.Enable("e", True)
        args = [JunkArgs(1)]
        reply = JunkReply()
        assert e.Call("Keeper.Keep", args, reply)
        assert got == [args] and got[0] is not args and got[0][0] is not args[0]
        assert reply.X == "k"
    finally:
        rn.Cleanup()


def TestHandlerExceptionRaisesInCaller():
    class Bad:
        def Boom(self, args, reply):
            raise KeyError("boom")

    rn = MakeNetwork()
    try:
        rs = MakeServer()
        rs.AddService(MakeService(Bad()))
        rn.AddServer("s", rs)
        e = rn.MakeEnd("e")
        rn.Connect("e", "s")
        rn.Enable("e", True)
        with pytest.raises(LabrpcError, match="Bad.Boom.*boom"):
            e.Call("Bad.Boom", 1, Ref(0))
    finally:
        rn.Cleanup()


def TestReplyIntoNonDefaultCounted():
    rn, e, js = _junk_net()
    try:
        e0 = labgob.errorCount
        reply = Ref("stale")
        assert e.Call("JunkServer.Handler2", 5, reply)
        assert reply.Value == "handler2-5"
        assert labgob.errorCount == e0 + 1
        reply = JunkReply("stale")
        assert e.Call("JunkServer.Handler4", JunkArgs(), reply)
        assert reply.X == "pointer" and labgob.errorCount == e0 + 2
    finally:
        rn.Cleanup()


def TestUnregisteredArgsRaise():
    class NotRegistered:
        X: int = 0

    rn, e, js = _junk_net()
    try:
        with pytest.raises(labgob.LabgobError, match="labgob.Register"):
            e.Call("JunkServer.Handler4", NotRegistered(), JunkReply())
    finally:
        rn.Cleanup()


def _fates(seed: str, monkeypatch, ncalls=60):
    monkeypatch.setenv("LABRPC_SEED", seed)
    rn, e, js = _junk_net()
    try:
        assert rn.seed == int(seed) and f"LABRPC_SEED={seed}" in repr(rn)
        rn.Reliable(False)
        oks = []
        for i in range(ncalls):
            oks.append(e.Call("JunkServer.Handler2", i, Ref("")))
        return oks, rn._rng.random()
    finally:
        rn.Cleanup()


def TestSeedReplay(monkeypatch):
    a = _fates("12345", monkeypatch)
    b = _fates("12345", monkeypatch)
    c = _fates("54321", monkeypatch)
    assert a == b, "the same LABRPC_SEED must give the same drop/delay decisions"
    assert a[0] != c[0], "different seeds gave identical decisions"
    assert 0 < sum(a[0]) < len(a[0])


def TestReplacedServerReplyNotDelivered():
    # AddServer(name, new) is a restart: a call in flight to the old server fails at once.
    rn, e, js = _junk_net()
    try:
        doneCh: queue.Queue[bool] = queue.Queue()
        threading.Thread(target=lambda: doneCh.put(e.Call("JunkServer.Handler3", 1, Ref(0))),
                         daemon=True).start()
        time.sleep(0.2)
        rs2 = MakeServer()
        rs2.AddService(MakeService(JunkServer()))
        rn.AddServer("server99", rs2)
        assert doneCh.get(timeout=0.1) is False
        assert rn.GetCount("server99") == 0, "a new Server object starts counting from 0"
        reply = Ref("")
        assert e.Call("JunkServer.Handler2", 3, reply) and reply.Value == "handler2-3"
    finally:
        rn.Cleanup()


def TestDisableWakesCallInFlight():
    rn, e, js = _junk_net()
    try:
        doneCh: queue.Queue[bool] = queue.Queue()
        threading.Thread(target=lambda: doneCh.put(e.Call("JunkServer.Handler3", 1, Ref(0))),
                         daemon=True).start()
        time.sleep(0.2)
        rn.Enable("end1-99", False)
        assert doneCh.get(timeout=0.1) is False
    finally:
        rn.Cleanup()


def TestCleanup():
    rn, e, js = _junk_net(enable=False)
    rn.LongDelays(True)
    doneCh: queue.Queue[bool] = queue.Queue()
    # a call waiting out a long failure delay fails as soon as the network is cleaned up
    threading.Thread(target=lambda: doneCh.put(e.Call("JunkServer.Handler2", 1, Ref(""))),
                     daemon=True).start()
    time.sleep(0.05)
    rn.Cleanup()
    assert doneCh.get(timeout=0.1) is False
    rn.Enable("end1-99", True)
    t0 = time.monotonic()
    assert e.Call("JunkServer.Handler2", 1, Ref("")) is False
    assert time.monotonic() - t0 < 0.01
    assert rn.GetTotalCount() == 1, "a Call after Cleanup never enters the network"


def TestNoThreadsLeftAfterCleanup():
    rn, e, js = _junk_net()
    rn.Reliable(False)
    ts = [threading.Thread(target=e.Call, args=("JunkServer.Handler2", i, Ref(""))) for i in range(50)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    workers = rn.threads()
    assert workers, "the pool should hold idle workers before Cleanup"
    rn.Cleanup()
    assert rn.threads() == []
    assert [w.name for w in workers if w.is_alive()] == []


def TestLongReorderingDelaysReplies(monkeypatch):
    # A fixed seed makes the reordering decisions replayable: with LABRPC_SEED=2 the
    # first six replies are held back 0, 0, 221, 546, 0, 0 ms.
    monkeypatch.setenv("LABRPC_SEED", "2")
    rn, e, js = _junk_net()
    try:
        rn.LongReordering(True)
        durs = []
        for i in range(6):
            t1 = time.monotonic()
            assert e.Call("JunkServer.Handler2", i, Ref(""))
            durs.append(time.monotonic() - t1)
        want = [0, 0, 0.221, 0.546, 0, 0]
        assert all(w <= d < w + 0.1 for w, d in zip(want, durs)), durs
    finally:
        rn.Cleanup()


def TestSchedulerRunsInOrderAndStops():
    s = Scheduler("test-sched")
    out: list[int] = []
    done = threading.Event()
    s.AfterFunc(0.03, out.append, 3)
    s.AfterFunc(0.01, out.append, 1)
    h = s.AfterFunc(0.02, out.append, 2)
    s.AfterFunc(0.04, lambda _: done.set())
    assert h.Stop() is True
    assert done.wait(1.0)
    assert out == [1, 3]
    assert h.Stop() is False
    s.Close()
    assert not any(t.name == "test-sched" for t in threading.enumerate())


def TestKillsRacingReplies():
    # Kills (Enable false, DeleteServer, AddServer replace) racing handlers that are just
    # finishing: every Call must return True with the right reply, or False; never raise.
    rn, e, js = _junk_net()
    t = _Failures()
    stop = threading.Event()
    results = {True: 0, False: 0}

    def client(k):
        i = 0
        while not stop.is_set():
            reply = Ref("")
            try:
                ok = e.Call("JunkServer.Handler2", k * 100000 + i, reply)
            except BaseException as exc:  # noqa: BLE001 - any exception is the failure
                t.Fatalf("Call raised %r", exc)
                return
            if ok and reply.Value != f"handler2-{k * 100000 + i}":
                t.Fatalf("wrong reply %s", reply.Value)
            with js.mu:
                results[ok] += 1
            i += 1

    def churn():
        try:
            churn1()
        except BaseException as exc:  # noqa: BLE001 - a kill must never raise
            t.Fatalf("kill raised %r", exc)

    def churn1():
        n = 0
        while not stop.is_set():
            n += 1
            if n % 3 == 0:
                rn.Enable("end1-99", False)
                rn.Enable("end1-99", True)
            elif n % 3 == 1:
                rn.DeleteServer("server99")
                rs = MakeServer()
                rs.AddService(MakeService(js))
                rn.AddServer("server99", rs)
            else:
                rs = MakeServer()
                rs.AddService(MakeService(js))
                rn.AddServer("server99", rs)
            time.sleep(0.0005)

    try:
        ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        ts.append(threading.Thread(target=churn))
        for th in ts:
            th.start()
        time.sleep(0.5)
        stop.set()
        for th in ts:
            th.join(5)
        t.check()
        assert results[True] > 0 and results[False] > 0, results
    finally:
        stop.set()
        rn.Cleanup()


def TestSeedPrintedOnFailure(tmp_path):
    # A failing test's report names its networks' seeds (labrpc/seedreport.py).
    import os
    import subprocess
    import sys
    (tmp_path / "test_fails.py").write_text(
        "import labrpc\n"
        "def TestFails():\n"
        "    rn = labrpc.MakeNetwork()\n"
        "    rn.Cleanup()\n"
        "    assert False, 'deliberate'\n")
    env = dict(os.environ, LABRPC_SEED="424242", KUBEKV_NO_PIN="1")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "labrpc.seedreport",
                          "-p", "no:cacheprovider", "-o", "python_functions=Test*",
                          str(tmp_path / "test_fails.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "networks made by this test: LABRPC_SEED=424242" in out.stdout, out.stdout


# ---- issue 13: a wrong call is a named error, never a silently lost result ---------------------

@dataclasses.dataclass
class VoteReply:
    Term: int = 0
    VoteGranted: bool = False


@dataclasses.dataclass
class AppendReply:
    Term: int = 0
    Success: bool = False


@dataclasses.dataclass
class ReplyWithCache:
    X: int = 0

    def __post_init__(self):
        self.cache = {}   # set by the class itself: not the handler's doing


@dataclasses.dataclass
class IntArgs:
    N: int = 0


labgob.Register(VoteReply)
labgob.Register(AppendReply)
labgob.Register(ReplyWithCache)
labgob.Register(IntArgs)


class Peer:
    def Append(self, args: JunkArgs, reply: AppendReply) -> None:
        reply.Term, reply.Success = 3, True

    def Loose(self, args, reply):   # unannotated: Call cannot check the classes beforehand
        reply.Term, reply.Success = 3, True

    def Typo(self, args: JunkArgs, reply: AppendReply) -> None:
        reply.Sucess = True

    def Cached(self, args, reply: ReplyWithCache) -> None:
        reply.X = 1

    def Count(self, args: int, reply: Ref) -> None:
        reply.Value = args + 1

    def Half(self, args: float, reply: Ref) -> None:
        reply.Value = args / 2

    def Take(self, args: IntArgs, reply: Ref) -> None:
        reply.Value = args.N

    def appendEntries(self, args, reply):   # lower-case: not a handler, as in Go
        pass

    def Vote(self, args):   # one parameter: not a handler
        pass

    Limit = 5


def _peer_net():
    rn = MakeNetwork()
    rs = MakeServer()
    rs.AddService(MakeService(Peer()))
    rn.AddServer("s", rs)
    e = rn.MakeEnd("e")
    rn.Connect("e", "s")
    rn.Enable("e", True)
    return rn, e


def TestReplyOfAnotherClassRaises():
    rn, e = _peer_net()
    try:
        reply = AppendReply()
        assert e.Call("Peer.Append", JunkArgs(), reply) and reply == AppendReply(3, True)
        with pytest.raises(LabrpcError, match=r"Call\(Peer\.Append\): the reply is a VoteReply, but the "
                           r"handler fills an AppendReply; pass Call an AppendReply"):
            e.Call("Peer.Append", JunkArgs(), VoteReply())
        with pytest.raises(LabrpcError, match=r"the reply is a Ref, but the handler fills an AppendReply"):
            e.Call("Peer.Append", JunkArgs(), Ref(0))
        with pytest.raises(LabrpcError, match=r"the reply is a JunkReply, but the handler fills a Ref; "
                           r"pass Call a labrpc\.Ref"):
            e.Call("Peer.Count", 1, JunkReply())
        # unannotated: the handler's fields that the reply's class lacks are caught after it runs
        with pytest.raises(LabrpcError, match=r"Call\(Peer\.Loose\): the handler set reply\.Success, which "
                           r"VoteReply does not declare \(its fields: Term, VoteGranted\), so the value "
                           r"would be lost"):
            e.Call("Peer.Loose", JunkArgs(), VoteReply())
        with pytest.raises(LabrpcError, match=r"set reply\.Term, reply\.Success, which Ref does not declare"):
            e.Call("Peer.Loose", JunkArgs(), Ref(0))
        with pytest.raises(LabrpcError, match=r"Call\(Peer\.Typo\): the handler set reply\.Sucess, which "
                           r"AppendReply does not declare"):
            e.Call("Peer.Typo", JunkArgs(), AppendReply())
        reply = ReplyWithCache()
        assert e.Call("Peer.Cached", None, reply) and reply.X == 1, "attributes of __init__ are fine"
    finally:
        rn.Cleanup()


def TestArgsOfAnotherTypeRaise():
    rn, e = _peer_net()
    try:
        with pytest.raises(LabrpcError, match=r"Call\(Peer\.Append\): the args are a JunkReply, but the "
                           r"handler takes a JunkArgs; pass a JunkArgs"):
            e.Call("Peer.Append", JunkReply(), AppendReply())
        with pytest.raises(LabrpcError, match=r"the args are a str, but the handler takes an int"):
            e.Call("Peer.Count", "1", Ref(0))
        with pytest.raises(LabrpcError, match=r"the args are a bool, but the handler takes an int"):
            e.Call("Peer.Count", True, Ref(0))
        reply = Ref(0.0)
        assert e.Call("Peer.Half", 3, reply) and reply.Value == 1.5, "an int stands for a float"
        # args the server's labgob refuses (the caller put a str in an int field)
        with pytest.raises(LabrpcError, match=r"Call\(Peer\.Take\): the server cannot decode the args: "
                           r"labgob: test_labrpc\.IntArgs\.N is declared int, but the data holds a str"):
            e.Call("Peer.Take", IntArgs("7"), Ref(0))
    finally:
        rn.Cleanup()


def TestNotAHandlerSaysWhy(capsys):
    class Fresh(Peer):   # a class of its own, so its MakeService warning is printed in this test
        pass

    MakeService(Fresh())
    MakeService(Fresh())
    err = capsys.readouterr().err
    assert err.count("labrpc warning: Fresh.appendEntries is not an RPC handler: its name must start "
                     "with an upper-case letter, as in Go (rename appendEntries to AppendEntries)") == 1, err
    assert "Vote" not in err and "Limit" not in err, "only methods meant as handlers are warned about"
    rn, e = _peer_net()
    try:
        with pytest.raises(LabrpcError, match=r"labrpc: no method 'AppendEntries' in 'Peer\.AppendEntries': "
                           r"Peer\.appendEntries is not an RPC handler: its name must start with an "
                           r"upper-case letter, as in Go"):
            e.Call("Peer.AppendEntries", 1, Ref(0))
        with pytest.raises(LabrpcError, match=r"labrpc: Peer\.appendEntries is not an RPC handler: its name"):
            e.Call("Peer.appendEntries", 1, Ref(0))
        with pytest.raises(LabrpcError, match=r"labrpc: Peer\.Vote is not an RPC handler: it takes "
                           r"\(self, args\), but an RPC handler takes exactly \(self, args, reply\)"):
            e.Call("Peer.Vote", 1, Ref(0))
        with pytest.raises(LabrpcError,
                           match=r"labrpc: Peer\.Limit is not an RPC handler: it is not a method"):
            e.Call("Peer.Limit", 1, Ref(0))
        with pytest.raises(LabrpcError, match=r"unknown method 'Nope' in 'Peer\.Nope'; expecting one of"):
            e.Call("Peer.Nope", 1, Ref(0))
    finally:
        rn.Cleanup()


def TestXdistWorkersOfAPinnedControllerGetCoresOfTheirOwn():
    # A worker inherits the controller's one-core mask; it must still choose from every core.
    import os
    import subprocess
    import sys

    from labrpc.affinity import allowed_cores

    if len(allowed_cores()) < 2:   # this process is pinned: the cores it had before
        pytest.skip("needs two cores")
    controller = """
import os, subprocess, sys
from labrpc.affinity import pin_to_one_core
pin_to_one_core()
child = "import os; from labrpc.affinity import pin_to_one_core as p; p(); print(sorted(os.sched_getaffinity(0)))"
for w in ("gw0", "gw1"):
    out = subprocess.run([sys.executable, "-c", child], env={**os.environ, "PYTEST_XDIST_WORKER": w},
                         capture_output=True, text=True)
    print(out.stdout.strip())
"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBEKV_NO_PIN", "KUBEKV_PIN_CORE", "PYTEST_XDIST_WORKER")}
    out = subprocess.run([sys.executable, "-c", controller], env=env, capture_output=True,
                         text=True, timeout=60)
    got = out.stdout.split()
    assert len(got) == 2 and got[0] != got[1], out.stdout + out.stderr
