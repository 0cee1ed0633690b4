"""The raft test harness (Go: raft1/test.go).

Usage (in raft1/test_raft.py):
    t = tester.T()
    ts = makeTest(t, servers, reliable, snapshot)
    try:
        ts.Begin("Test (3A): initial election")
        leader = ts.checkOneLeader()
        index = ts.one(cmd, servers, True)
    finally:
        ts.cleanup()

A Test embeds a tester.Config (like Go's embedded *tester.Config): Begin, End,
Fatalf, SetReliable, BytesTotal, Group, ... are reachable on ts directly.
Long network delays are on in every raft test (a Call to a disconnected peer
may take up to 7 s to fail), to catch a leader that sends RPCs synchronously.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import tester
from raft1.raftapi import ApplyMsg
from raft1.server import newRfsrv, rfsrv



class Test:
    """One raft test: the Config, the server group and an rfsrv per server."""

    def __init__(self, t: Any, n: int, snapshot: bool) -> None:
        self.t = t
        self.n = n
        self.g: Any = None
        self.finished = False
        self.mu = threading.Lock()
        self.srvs: list[rfsrv | None] = [None] * n
        self.maxIndex = 0
        self.snapshot = snapshot
        self.Config: Any = None

    def __getattr__(self, name: str) -> Any:
        # Go's struct embedding: ts.Begin() is ts.Config.Begin().
        config = self.__dict__.get("Config")
        if config is None:
            raise AttributeError(name)
        return getattr(config, name)

    def cleanup(self) -> None:
        self.finished = True
        try:
            self.End()
        finally:
            self.Config.Cleanup()
        self.CheckTimeout()

    def mksrv(self, ends: list, grp: int, srv: int, persister: Any) -> list:
        s = newRfsrv(self, srv, ends, persister, self.snapshot)
        with self.mu:
            self.srvs[srv] = s
        return [s, s.raft]

    def restart(self, i: int) -> None:
        self.g.StartServer(i)  # which calls mksrv to make a new server
        self.Group(tester.GRP0).ConnectAll()

    def checkOneLeader(self) -> int:
        tester.AnnotateCheckerBegin("checking for a single leader")
        for _ in range(10):
            ms = 450 + random.randrange(100)
            time.sleep(ms / 1000)

            leaders: dict[int, list[int]] = {}
            for i in range(self.n):
                if self.g.IsConnected(i):
                    term, leader = self.srvs[i].GetState()
                    if leader:
                        leaders.setdefault(term, []).append(i)

            lastTermWithLeader = -1
            for term, ls in leaders.items():
                if len(ls) > 1:
                    details = f"multiple leaders in term {term} = {ls}"
                    tester.AnnotateCheckerFailure("multiple leaders", details)
                    self.Fatalf("term %d has %d (>1) leaders", term, len(ls))
                lastTermWithLeader = max(lastTermWithLeader, term)

            if leaders:
                details = f"leader in term {lastTermWithLeader} = {leaders[lastTermWithLeader][0]}"
                tester.AnnotateCheckerSuccess(details, details)
                return leaders[lastTermWithLeader][0]
        tester.AnnotateCheckerFailure("no leader", "unable to find a leader")
        self.Fatalf("expected one leader, got none")
        return -1

    def checkTerms(self) -> int:
        tester.AnnotateCheckerBegin("checking term agreement")
        term = -1
        for i in range(self.n):
            if self.g.IsConnected(i):
                xterm, _ = self.srvs[i].GetState()
                if term == -1:
                    term = xterm
                elif term != xterm:
                    details = f"node ids -> terms = {{ {i - 1} -> {term}; {i} -> {xterm} }}"
                    tester.AnnotateCheckerFailure("term disagreed", details)
                    self.Fatalf("servers disagree on term")
        tester.AnnotateCheckerSuccess("term agreed", f"term = {term}")
        return term

    def checkLogs(self, i: int, m: ApplyMsg, me: Any = None) -> tuple[str, bool]:
        """Record server i's commit of m; "" or an error if another server committed something else.

        me is the rfsrv whose applier got m. Go looks it up as ts.srvs[i], which is wrong for
        the last message of a crashed server checked after its restart put a new rfsrv there:
        the successor's empty log made it "apply out of order" (the simulator found it,
        TestFigure83C with KUBEKV_SIM_SEED=13).
        """
        with self.mu:
            err_msg = ""
            v = m.Command
            if me is None:
                me = self.srvs[i]
            for j, rs in enumerate(self.srvs):
                if rs is None:
                    continue  # server j's mksrv has not finished yet (its Raft applies early)
                old, oldok = rs.Logs(m.CommandIndex)
                if oldok and old != v:
                    # some server has already committed a different value for this entry!
                    err_msg = (f"commit index={m.CommandIndex} server={i} {m.Command} "
                               f"!= server={j} {old}")
            with me.mu:
                prevok = (m.CommandIndex - 1) in me.logs
                me.logs[m.CommandIndex] = v
            self.maxIndex = max(self.maxIndex, m.CommandIndex)
            return err_msg, prevok

    def checkNoLeader(self) -> None:
        """Check that none of the connected servers thinks it is the leader."""
        tester.AnnotateCheckerBegin("checking no unexpected leader among connected servers")
        for i in range(self.n):
            if self.g.IsConnected(i):
                _, is_leader = self.srvs[i].GetState()
                if is_leader:
                    details = f"leader = {i}"
                    tester.AnnotateCheckerFailure("unexpected leader found", details)
                    self.Fatalf(details)
        tester.AnnotateCheckerSuccess("no unexpected leader", "no unexpected leader")

    def checkNoAgreement(self, index: int) -> None:
        tester.AnnotateCheckerBegin(f"checking no unexpected agreement at index {index}")
        n, _ = self.nCommitted(index)
        if n > 0:
            desp = f"unexpected agreement at index {index}"
            details = f"{n} server(s) commit incorrectly index"
            tester.AnnotateCheckerFailure(desp, details)
            self.Fatalf("%v committed but no majority", n)
        tester.AnnotateCheckerSuccess(f"no unexpected agreement at index {index}", "OK")

    def nCommitted(self, index: int) -> tuple[int, Any]:
        """How many servers think the entry at index is committed, and its command."""
        with self.mu:
            count = 0
            cmd = None
            for rs in self.srvs:
                if rs.applyErr:
                    tester.AnnotateCheckerFailure("apply error", rs.applyErr)
                    self.t.Fatal(rs.applyErr)
                cmd1, ok = rs.Logs(index)
                if ok:
                    if count > 0 and cmd != cmd1:
                        text = f"committed values at index {index} do not match ({cmd} != {cmd1})"
                        tester.AnnotateCheckerFailure("unmatched committed values", text)
                        self.Fatalf(text)
                    count += 1
                    cmd = cmd1
            return count, cmd

    def one(self, cmd: Any, expectedServers: int, retry: bool) -> int:
        """Do a complete agreement on cmd; returns its index.

        It may pick the wrong leader first and re-submit after giving up; it gives up
        entirely after about 10 seconds.  With retry=False, Start() is called only once.
        """
        textretry = "with" if retry else "without"
        textcmd = f"{cmd}"
        tester.AnnotateCheckerBegin(f"checking agreement of {textcmd[:8]} by at least "
                                    f"{expectedServers} servers {textretry} retry")
        t0 = time.monotonic()
        starts = 0
        while time.monotonic() - t0 < 10 and not self.checkFinished():
            # try all the servers, maybe one is the leader.
            index = -1
            for _ in range(len(self.srvs)):
                starts = (starts + 1) % len(self.srvs)
                rf = None
                if self.g.IsConnected(starts):
                    rf = self.srvs[starts].Raft()
                if rf is not None:
                    index1, _, ok = rf.Start(cmd)
                    if ok:
                        index = index1
                        break

            if index != -1:
                # somebody claimed to be the leader and to have submitted our command;
                # wait a while for agreement.
                t1 = time.monotonic()
                while time.monotonic() - t1 < 2:
                    nd, cmd1 = self.nCommitted(index)
                    if nd > 0 and nd >= expectedServers and cmd1 == cmd:
                        tester.AnnotateCheckerSuccess(f"agreement of {textcmd[:8]} reached", "OK")
                        return index
                    time.sleep(0.020)
                if not retry:
                    tester.AnnotateCheckerFailure(f"agreement of {textcmd[:8]} failed",
                                                  "failed after submitting command")
                    self.Fatalf("one(%v) failed to reach agreement", cmd)
            else:
                time.sleep(0.050)
        if not self.checkFinished():
            tester.AnnotateCheckerFailure(f"agreement of {textcmd[:8]} failed",
                                          "failed after 10-second timeout")
            self.Fatalf("one(%v) failed to reach agreement", cmd)
        return -1

    def checkFinished(self) -> bool:
        return self.finished

    def wait(self, index: int, n: int, startTerm: int) -> Any:
        """Wait for at least n servers to commit index, but not forever; -1 if the term moved on."""
        to = 0.010
        for _ in range(30):
            nd, _ = self.nCommitted(index)
            if nd >= n:
                break
            time.sleep(to)
            if to < 1.0:
                to *= 2
            if startTerm > -1:
                for rs in self.srvs:
                    t, _ = rs.raft.GetState()
                    if t > startTerm:
                        # someone has moved on; can no longer guarantee that we'll "win"
                        return -1
        nd, cmd = self.nCommitted(index)
        if nd < n:
            desp = f"less than {n} servers commit index {index}"
            details = f"only {nd} (< {n}) servers commit index {index} at term {startTerm}"
            tester.AnnotateCheckerFailure(desp, details)
            self.Fatalf("only %d decided for index %d; wanted %d", nd, index, n)
        return cmd


def makeTest(t: Any, n: int, reliable: bool, snapshot: bool) -> Test:
    ts = Test(t, n, snapshot)
    ts.Config = tester.MakeConfig(t, n, reliable, ts.mksrv)
    ts.Config.SetLongDelays(True)
    ts.g = ts.Group(tester.GRP0)
    return ts


__all__ = ["Test", "makeTest"]
