"""Shared test code for the key/value labs (Go: kvtest1/kvtest.go and porcupine.go).

Usage (a lab harness; see kvraft1/harness.py):
    from tester import kvtest

    class Test(tester.Embed):                       # Go: type Test struct { *kvtest.Test; ... }
        _embedded = ("Test",)
        def __init__(self, t, ...):
            cfg = tester.MakeConfig(t, nservers, reliable, self.StartKVServer)
            self.Test = kvtest.MakeTest(t, cfg, randomkeys, self)   # self is the IClerkMaker
        def MakeClerk(self) -> kvtest.IKVClerk:
            clnt = self.Config.MakeClient()
            return kvtest.TestClerk(MakeClerk(clnt, ...), clnt)
        def DeleteClerk(self, ck): self.DeleteClient(ck.Clnt)

    ver = ts.PutAtLeastOnce(ck, "k", "v", 0, -1)    # logged for porcupine, counted by cfg.Op()
    ts.CheckGet(ck, "k", "v", ver)
    rs = ts.SpawnClientsAndWait(5, 1.0, lambda cli, ck, done: ts.OneClientPut(cli, ck, keys, done))
    ts.CheckPutConcurrent(ck, "k", rs, res, reliable)
    ts.CheckPorcupine()                             # 1 s linearizability check of every logged op
    ts.Cleanup()                                    # End() then Config.Cleanup()

Durations are seconds (ElectionTimeout = 1.0). A Clerk's Get returns (value, version, err) and
its Put returns err (kvraft1.rpc Err strings). `done` channels are tester.Chan; a client function
checks them with `kvtest.is_done(done)` (Go: select { case <-done: ...; default: }).

Every porcupine check prints its result and is counted (tester.porcupine_summary()); an Unknown
(timeout) prints Go's message and passes, as in Go. An Illegal history writes the view (unless
VIS_ENABLE=never) to VIS_FILE or a temporary porcupine-*.html and fails the test.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import labsim
import porcupine
import tester
from raft1.chan import Chan
from tester import annotation, stats
from tester.annotation import timestamp
from tester.config import Config
from tester.embed import Embed
from tester.failure import T
from tester.gofmt import Sprintf
from tester.models import KvInput, KvModel, KvOutput

OK = "OK"
ErrMaybe = "ErrMaybe"
ErrVersion = "ErrVersion"

# The tester generously allows solutions to complete elections in one second.
ElectionTimeout = 1.0
ELECTION_TIMEOUT_S = ElectionTimeout
# Go's linearizabilityCheckTimeout.
LINEARIZABILITY_CHECK_TIMEOUT_S = 1.0

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def RandValue(n: int) -> str:
    """n random letters [a-zA-Z]."""
    return "".join(random.choice(_LETTERS) for _ in range(n))


def MakeKeys(n: int) -> list[str]:
    """["k0", ..., "k<n-1>"]."""
    return [f"k{i}" for i in range(n)]


class IKVClerk(Protocol):
    def Get(self, key: str) -> tuple[str, int, str]: ...

    def Put(self, key: str, value: str, version: int) -> str: ...


class IClerkMaker(Protocol):
    def MakeClerk(self) -> IKVClerk: ...

    def DeleteClerk(self, ck: IKVClerk) -> None: ...


class TestClerk:
    """A clerk plus the Clnt it uses (Go embeds IKVClerk: Get, Put and the rest are forwarded)."""

    __test__ = False

    def __init__(self, IKVClerk: Any, Clnt: Any) -> None:
        self.IKVClerk = IKVClerk
        self.Clnt = Clnt

    def Get(self, key: str) -> tuple[str, int, str]:
        return self.IKVClerk.Get(key)

    def Put(self, key: str, value: str, version: int) -> str:
        return self.IKVClerk.Put(key, value, version)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "IKVClerk":
            raise AttributeError(name)
        return getattr(self.__dict__["IKVClerk"], name)


@dataclass
class ClntRes:
    Nok: int = 0
    Nmaybe: int = 0


@dataclass
class EntryV:
    Id: int = 0
    V: int = 0


@dataclass
class EntryN:
    Id: int = 0
    N: int = 0


Fclnt = Callable[[int, IKVClerk, Chan], ClntRes]


def is_done(done: Chan) -> bool:
    """Non-blocking receive on done: True if a token was waiting (or done is closed)."""
    try:
        done.recv(timeout=0)
    except TimeoutError:
        return False
    return True


class OpLog:
    """The history of logged clerk operations, for porcupine. Thread-safe."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._operations: list[porcupine.Operation] = []

    def Len(self) -> int:
        with self._mu:
            return len(self._operations)

    def Append(self, op: porcupine.Operation) -> None:
        with self._mu:
            self._operations.append(op)

    def Read(self) -> list[porcupine.Operation]:
        with self._mu:
            return list(self._operations)


def Get(cfg: Config, ck: IKVClerk, key: str, log: OpLog | None, cli: int) -> tuple[str, int, str]:
    """ck.Get(key), counted by cfg.Op() and logged (with call/return times) when log is given."""
    start = timestamp()
    val, ver, err = ck.Get(key)
    end = timestamp()
    cfg.Op()
    if log is not None:
        log.Append(porcupine.Operation(ClientId=cli, Input=KvInput(Op=0, Key=key), Call=start,
                                       Output=KvOutput(Value=val, Version=ver, Err=err), Return=end))
    return val, ver, err


def Put(cfg: Config, ck: IKVClerk, key: str, value: str, version: int, log: OpLog | None, cli: int) -> str:
    """ck.Put(key, value, version), counted by cfg.Op() and logged when log is given."""
    start = timestamp()
    err = ck.Put(key, value, version)
    end = timestamp()
    cfg.Op()
    if log is not None:
        log.Append(porcupine.Operation(ClientId=cli, Input=KvInput(Op=1, Key=key, Value=value, Version=version),
                                       Call=start, Output=KvOutput(Err=err), Return=end))
    return err


def _fill_from_json(v: Any, decoded: Any) -> None:
    """Go's json.Unmarshal into v: a dataclass gets its fields, a list/dict its contents."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        if not isinstance(decoded, dict):
            raise ValueError(f"want a JSON object for {type(v).__name__}, got {decoded!r}")
        for f in dataclasses.fields(v):
            if f.name in decoded:
                setattr(v, f.name, decoded[f.name])
    elif isinstance(v, list):
        if not isinstance(decoded, list):
            raise ValueError(f"want a JSON array, got {decoded!r}")
        v[:] = decoded
    elif isinstance(v, dict):
        if not isinstance(decoded, dict):
            raise ValueError(f"want a JSON object, got {decoded!r}")
        v.clear()
        v.update(decoded)
    else:
        raise TypeError(f"GetJson: cannot fill a {type(v).__name__}; pass a dataclass instance, list or dict")


def _to_json(v: Any) -> str:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        v = dataclasses.asdict(v)
    elif isinstance(v, list):
        v = [dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x for x in v]
    return json.dumps(v, separators=(",", ":"))  # compact, like Go's json.Marshal


class Test(Embed):
    """Go's kvtest.Test: a Config (embedded) plus the op log and the clerk maker."""

    __test__ = False
    _embedded = ("Config",)

    def __init__(self, t: T, cfg: Config, randomkeys: bool, mck: IClerkMaker) -> None:
        self.Config = cfg
        self.t = t
        self.oplog = OpLog()
        self.mck = mck
        self.randomkeys = randomkeys
        # done channels of SpawnClientsAndWait calls still running; Cleanup closes them so
        # clients of a failed test stop at their next is_done() instead of running on.
        self._dones_mu = threading.Lock()
        self._dones: list[Chan] = []

    def Cleanup(self) -> None:
        try:
            self.Config.End()
        finally:
            with self._dones_mu:
                dones, self._dones = self._dones, []
            for done in dones:
                done.close()
            self.Config.Cleanup()

    def ConnectClnts(self, clnts: Sequence[Any]) -> None:
        for c in clnts:
            c.ConnectAll()

    def MakeClerk(self) -> IKVClerk:
        return self.mck.MakeClerk()

    # ---- logged operations ---------------------------------------------------------------
    def Get(self, ck: IKVClerk, key: str, cli: int) -> tuple[str, int, str]:
        return Get(self.Config, ck, key, self.oplog, cli)

    def Put(self, ck: IKVClerk, key: str, value: str, version: int, cli: int) -> str:
        return Put(self.Config, ck, key, value, version, self.oplog, cli)

    def GetJson(self, ck: IKVClerk, key: str, me: int, v: Any) -> int:
        """Get key and decode its JSON value into v (a dataclass instance, list or dict)."""
        val, ver, err = Get(self.Config, ck, key, self.oplog, me)
        if err != OK:
            self.Fatalf("%d: Get %q err %v", me, key, err)
        try:
            _fill_from_json(v, json.loads(val))
        except (ValueError, TypeError):
            self.Fatalf("Unmarshal err %v", ver)
        return ver

    def PutJson(self, ck: IKVClerk, key: str, v: Any, ver: int, me: int) -> str:
        try:
            b = _to_json(v)
        except (TypeError, ValueError) as e:
            self.Fatalf("%d: marshal %v", me, e)
        return Put(self.Config, ck, key, b, ver, self.oplog, me)

    # ---- helpers -------------------------------------------------------------------------
    def PutAtLeastOnce(self, ck: IKVClerk, key: str, value: str, ver: int, me: int) -> int:
        """Put until it surely happened; returns the version after it. Assumes a key of its own."""
        ver_prev = ver
        while True:
            err = self.Put(ck, key, value, ver, me)
            if err == OK:
                ver += 1
                break
            if err in (ErrMaybe, ErrVersion):
                ver += 1
            elif ver != 0:  # failing with ver 0 is retried
                self.Fatalf("Put %v ver %d err %v", key, ver, err)
        annotation.AnnotateInfo(Sprintf("Put(%v, %v) completes", key, value),
                                Sprintf("version: %v -> %v", ver_prev, ver))
        return ver

    def CheckGet(self, ck: IKVClerk, key: str, value: str, version: int) -> None:
        annotation.AnnotateCheckerBegin(Sprintf("checking Get(%v) = (%v, %v)", key, value, version))
        val, ver, err = self.Get(ck, key, 0)
        if err != OK:
            text = Sprintf("Get(%v) returns error = %v", key, err)
            annotation.AnnotateCheckerFailure(text, text)
            self.Fatalf("%s", text)
        if val != value or ver != version:
            text = Sprintf("Get(%v) returns (%v, %v) != (%v, %v)", key, val, ver, value, version)
            annotation.AnnotateCheckerFailure(text, text)
            self.Fatalf("%s", text)
        text = Sprintf("Get(%v) returns (%v, %v) as expected", key, val, ver)
        annotation.AnnotateCheckerSuccess(text, "OK")

    def CheckPutConcurrent(self, ck: IKVClerk, key: str, rs: Sequence[ClntRes], res: ClntRes,
                           reliable: bool) -> None:
        """The key's version must match the puts the clients saw succeed; adds rs into res."""
        e = EntryV()
        ver0 = self.GetJson(ck, key, -1, e)
        for r in rs:
            res.Nok += r.Nok
            res.Nmaybe += r.Nmaybe
        if reliable:
            if ver0 != res.Nok:
                self.Fatalf("Reliable: Wrong number of puts: server %d clnts %v", ver0, res)
        elif ver0 > res.Nok + res.Nmaybe:
            self.Fatalf("Unreliable: Wrong number of puts: server %d clnts %v", ver0, res)

    def _run_client(self, me: int, ca: Chan, done: Chan, mkc: IClerkMaker, fn: Fclnt) -> None:
        ck = mkc.MakeClerk()
        v = fn(me, ck, done)
        ca.send(v)
        mkc.DeleteClerk(ck)

    def SpawnClientsAndWait(self, nclnt: int, t: float, fn: Fclnt) -> list[ClntRes]:
        """Run fn(cli, ck, done) in nclnt client threads for t seconds; their results, in order."""
        # Result channels hold one value, so a client can finish even if nobody collects.
        ca = [Chan(1) for _ in range(nclnt)]
        done: Chan = Chan()
        with self._dones_mu:
            self._dones.append(done)
        for cli in range(nclnt):
            tester.go(self._run_client, cli, ca[cli], done, self.mck, fn, name=f"kv-client-{cli}")
        time.sleep(t)
        for _ in range(nclnt):
            done.send(None)
        rs = []
        for cli in range(nclnt):
            v, _ = ca[cli].recv()
            rs.append(v)
        with self._dones_mu:
            if done in self._dones:
                self._dones.remove(done)
        self.t.Check()
        return rs

    def PutAtLeastOnceJson(self, ck: IKVClerk, key: str, value: Any, ver: int, me: int) -> int:
        while True:
            if self.PutJson(ck, key, value, 0, me) != ErrMaybe:
                break
            ver += 1
        return ver

    def OnePut(self, me: int, ck: IKVClerk, key: str, ver: int) -> tuple[int, bool]:
        """Put until one of my puts surely or maybe happened; returns (current version, surely)."""
        while True:
            err = self.PutJson(ck, key, EntryV(me, ver), ver, me)
            if err not in (OK, ErrVersion, ErrMaybe):
                self.Fatalf("Wrong error %v", err)
            e = EntryV()
            ver0 = self.GetJson(ck, key, me, e)
            if err == OK and ver0 == ver + 1:  # my put?
                if e.Id != me and e.V != ver:  # Go's (weak) check, kept as is
                    self.Fatalf("Wrong value %v", e)
            ver = ver0
            if err in (OK, ErrMaybe):
                return ver, err == OK

    def Partitioner(self, gid: int, ch: Chan) -> None:
        """Repartition group gid at random every 1-1.2 s until ch delivers; then ack on ch."""
        try:
            while not is_done(ch):
                n = self.Group(gid).N()
                a = [random.randrange(2) for _ in range(n)]
                pa = [[j for j in range(n) if a[j] == i] for i in range(2)]
                self.Group(gid).Partition(pa[0], pa[1])
                annotation.AnnotateTwoPartitions(pa[0], pa[1])
                time.sleep(ElectionTimeout + random.randrange(200) / 1000)
        finally:
            ch.send(True)

    def OneClientPut(self, cli: int, ck: IKVClerk, ka: Sequence[str], done: Chan) -> ClntRes:
        """Do OnePut's (on ka[0], or random keys) until done; count sure and maybe puts."""
        res = ClntRes()
        verm = {k: 0 for k in ka}
        while not is_done(done):
            k = ka[0]
            if self.randomkeys:
                k = ka[random.randrange(len(ka))]
            verm[k], ok = self.OnePut(cli, ck, k, verm[k])
            if ok:
                res.Nok += 1
            else:
                res.Nmaybe += 1
        return res

    def SpreadPutsSize(self, ck: IKVClerk, n: int, valsz: int) -> tuple[list[str], list[str]]:
        ka = MakeKeys(n)
        va = [tester.Randstring(valsz) for _ in range(n)]
        for i in range(n):
            ck.Put(ka[i], va[i], 0)
        for i in range(n):
            self.CheckGet(ck, ka[i], va[i], 1)
        return ka, va

    def SpreadPuts(self, ck: IKVClerk, n: int) -> tuple[list[str], list[str]]:
        return self.SpreadPutsSize(ck, n, 20)

    def OneClientAppend(self, me: int, ck: IKVClerk, done: Chan) -> ClntRes:
        """Append (me, i) to key "k" by Get + versioned Put, for i = 0, 1, ... until done."""
        nmay = 0
        nok = 0
        i = 0
        while not is_done(done):
            while True:  # keep trying to put my i while err == ErrVersion
                es: list = []
                ver = self.GetJson(ck, "k", me, es)
                es.append({"Id": me, "N": i})
                err = self.PutJson(ck, "k", es, ver, me)
                if err == OK:
                    nok += 1
                    break
                if err == ErrMaybe:
                    nmay += 1
                    break
            i += 1
        return ClntRes(nok, nmay)

    def CheckAppends(self, es: Sequence[EntryN], nclnt: int, rs: Sequence[ClntRes], ver: int) -> None:
        expect = {i: 0 for i in range(nclnt)}
        skipped = {i: 0 for i in range(nclnt)}
        for e in es:
            if isinstance(e, dict):
                e = EntryN(e["Id"], e["N"])
            if expect.get(e.Id, 0) > e.N:  # old put?
                self.Fatalf("%d: wrong expecting %v but got %v", e.Id, expect.get(e.Id, 0), e.N)
            elif expect.get(e.Id, 0) == e.N:
                expect[e.Id] = expect.get(e.Id, 0) + 1
            else:  # missing entries because of a failed put
                skipped[e.Id] = skipped.get(e.Id, 0) + e.N - expect.get(e.Id, 0)
                expect[e.Id] = e.N + 1
        if len(es) + 1 != ver:
            self.Fatalf("%d appends in val != puts on server %d", len(es), ver)
        for c, n in expect.items():
            if skipped.get(c, 0) > rs[c].Nmaybe:
                self.Fatalf("%d: skipped puts %d on server > %d maybe", c, skipped[c], rs[c].Nmaybe)
            if n > rs[c].Nok + rs[c].Nmaybe:
                self.Fatalf("%d: %d puts on server > ok+maybe %d", c, n, rs[c].Nok + rs[c].Nmaybe)

    # ---- linearizability ------------------------------------------------------------------
    def CheckPorcupine(self) -> None:
        self.CheckPorcupineT(LINEARIZABILITY_CHECK_TIMEOUT_S)

    def CheckPorcupineT(self, nsec: float) -> None:
        """Check that the logged history is linearizable, giving porcupine nsec seconds."""
        self.t.Check()
        checkPorcupine(self.t, self.oplog, nsec)


def checkPorcupine(t: T, opLog: OpLog, nsec: float) -> None:
    import os

    enabled = os.environ.get("VIS_ENABLE", "")
    ops = opLog.Read()
    with labsim.real_clock():  # porcupine's budget is CPU time, also under simulation
        start = time.monotonic()
        res, info = porcupine.CheckOperationsVerbose(KvModel, ops, nsec)
        elapsed = time.monotonic() - start
    result = str(res)
    stats.record_porcupine(result, t.Name())
    print(f"info: linearizability check of {len(ops)} operations: {result} in {elapsed:.2f}s "
          f"(limit {nsec:g}s)", flush=True)
    if res == porcupine.Illegal:
        if enabled != "never":
            annotation.write_visualization(info, None, "info: wrote history visualization to %s",
                                           extra=annotation.FinalizeAnnotations("test failed"))
        t.Fatal("history is not linearizable")
    elif res == porcupine.Unknown:
        print("info: linearizability check timed out, assuming history is ok", flush=True)
    if enabled == "always" and annotation.GetAnnotationFinalized():
        annotation.write_visualization(info, None, "info: wrote history visualization to %s",
                                       extra=annotation.FinalizeAnnotations("test passed"))


def MakeTest(t: T, cfg: Config, randomkeys: bool, mck: IClerkMaker) -> Test:
    return Test(t, cfg, randomkeys, mck)


__all__ = [
    "ElectionTimeout", "ELECTION_TIMEOUT_S", "LINEARIZABILITY_CHECK_TIMEOUT_S", "RandValue", "MakeKeys",
    "IKVClerk", "IClerkMaker", "TestClerk", "ClntRes", "EntryV", "EntryN", "Fclnt", "is_done", "OpLog",
    "Get", "Put", "Test", "MakeTest", "checkPorcupine",
]
