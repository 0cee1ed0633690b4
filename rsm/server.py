"""The replicated counter the rsm tests run on the RSM (Go: kvraft1/rsm/server.go).

Usage (by rsm/harness.py):
    s = RsmSrv(ts, i, ends, persister)     # makes an RSM with this counter as its StateMachine
    err, rep = s.rsm.Submit(Inc())          # rep is IncRep(N=<counter after the increment>)

Requests: Inc increments the counter and returns IncRep(N); Null returns NullRep() and changes
nothing; Dec must never execute (the tests submit it only to a minority), so executing it fails
the running test.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import labgob
from rsm.rsm import MakeRSM, Op, StateMachine


@dataclass
class Inc:
    pass


@dataclass
class IncRep:
    N: int = 0


@dataclass
class Null:
    pass


@dataclass
class NullRep:
    pass


@dataclass
class Dec:
    pass


class RsmSrv(StateMachine):
    """One replica of the test counter (Go: rsmSrv)."""

    def __init__(self, ts: Any, srv: int, ends: list, persister: Any, snapshot: bool = False) -> None:
        for cls in (Op, Inc, IncRep, Null, NullRep, Dec):
            labgob.Register(cls)
        self.ts = ts
        self.me = srv
        self.mu = threading.Lock()
        self.counter = 0
        self.rsm = MakeRSM(ends, srv, persister, ts.maxraftstate, self)

    def DoOp(self, req: Any) -> Any:
        if isinstance(req, Inc):
            with self.mu:
                self.counter += 1
                return IncRep(self.counter)
        if isinstance(req, Null):
            return NullRep()
        # Go exits the process here; the failure collector fails the running test instead.
        self.ts.t.Fatalf("DoOp should execute only Inc and not %s", type(req).__name__)
        return None

    def Snapshot(self) -> bytes:
        w = io.BytesIO()
        labgob.NewEncoder(w).Encode(self.counter)
        return w.getvalue()

    def Restore(self, data: bytes) -> None:
        try:
            counter = labgob.NewDecoder(io.BytesIO(data)).Decode()
        except labgob.LabgobError as e:
            self.ts.t.Fatalf("%d couldn't decode counter: %s", self.me, e)
            return
        with self.mu:
            self.counter = counter

    def Kill(self) -> None:
        with self.mu:
            self.rsm = None

    def Raft(self) -> Any:
        with self.mu:
            return self.rsm.Raft()
