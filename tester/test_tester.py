"""Tests of the tester itself (Go: tester1/tester_test.go, plus the Python-only machinery).

TestBasic and TestShutdownServer are Go's, step for step; the rest check what the port adds or
must keep: the failure collector, the watchdog, connectivity and partitions, crash/restart,
Clnt connectivity, the persister, annotations and the VIS_* view, kvtest and the KV model.
"""

from __future__ import annotations

import threading
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
