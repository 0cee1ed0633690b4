"""The raft tester's per-server wrapper (Go: raft1/server.go).

Usage (from raft1/harness.py's mksrv):
    s = newRfsrv(ts, srv, ends, persister, snapshot)   # calls raft.Make, starts the applier
    s.GetState(); s.Raft(); s.Logs(i); s.Kill()

An rfsrv plays the service above one Raft peer: its applier thread reads applyCh,
checks every committed command against what the other servers committed at the
same index (ts.checkLogs), and in snapshot mode (3D) hands Raft a snapshot every
SnapShotInterval entries, synchronously, from the thread that reads applyCh.

An apply error fails the test with Go's message ("apply error: ..."); where Go
ends the whole process (log.Fatalf), this port records the failure with the
tester's failure collector, which fails the test from the test thread, and the
applier goes on draining applyCh without checking, so that a Raft whose Kill()
sends on applyCh (or waits for a send to finish) is not blocked by the error.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import labgob
import tester
from raft1 import raft
from raft1.chan import Chan
from raft1.raftapi import ApplyMsg, Raft

SnapShotInterval = 10


class rfsrv:
    """One raft server as the tester sees it (Go's rfsrv; the name is Go's)."""

    def __init__(self, ts: Any, me: int, persister: Any) -> None:
        self.ts = ts
        self.me = me
        self.applyErr = ""        # from the applyCh reader
        self.lastApplied = 0
        self.persister = persister
        self.mu = threading.Lock()
        self.raft: Raft | None = None
        self.logs: dict[int, Any] = {}  # copy of each server's committed entries

    def Kill(self) -> None:
        with self.mu:
            self.raft = None  # the tester calls Kill() on the Raft itself
        if self.persister is not None:
            # Mimic a KV server that saves its persistent state in case it restarts.
            raftlog = self.persister.ReadRaftState()
            snapshot = self.persister.ReadSnapshot()
            self.persister.Save(raftlog, snapshot)

    def GetState(self) -> tuple[int, bool]:
        """Raft's GetState.  Like Go (a nil dereference), calling it on a crashed server is an error."""
        with self.mu:
            return self.raft.GetState()  # type: ignore[union-attr]

    def Raft(self) -> Raft | None:
        with self.mu:
            return self.raft

    def Logs(self, i: int) -> tuple[Any, bool]:
        with self.mu:
            if i in self.logs:
                return self.logs[i], True
            return None, False

    def applier(self, applyCh: Chan) -> None:
        """Read applyCh until it closes; check each command against the other servers' logs."""
        for m in applyCh:
            if not m.CommandValid or self.applyErr:
                continue  # ignore other types of ApplyMsg; after an error, only drain
            err_msg, prevok = self.ts.checkLogs(self.me, m, self)
            if m.CommandIndex > 1 and not prevok:
                err_msg = f"server {self.me} apply out of order {m.CommandIndex}"
            if err_msg:
                self.apply_error(err_msg)

    def applierSnap(self, applyCh: Chan) -> None:
        """applier for 3D: also ingest snapshots, and take one every SnapShotInterval entries."""
        if self.Raft() is None:
            return
        for m in applyCh:
            err_msg = ""
            if self.applyErr:
                continue  # the test has failed: only drain
            if m.SnapshotValid:
                err_msg = self.ingestSnap(m.Snapshot, m.SnapshotIndex)
            elif m.CommandValid:
                err_msg = self.apply_command_snap(m)
                if not err_msg and (m.CommandIndex + 1) % SnapShotInterval == 0:
                    self.take_snapshot(m.CommandIndex)  # skipped once the server is shut down
            if err_msg:
                self.apply_error(err_msg)

    def apply_command_snap(self, m: ApplyMsg) -> str:
        err_msg = ""
        if m.CommandIndex != self.lastApplied + 1:
            err_msg = (f"server {self.me} apply out of order, expected index "
                       f"{self.lastApplied + 1}, got {m.CommandIndex}")
        if not err_msg:
            err_msg, prevok = self.ts.checkLogs(self.me, m, self)
            if m.CommandIndex > 1 and not prevok:
                err_msg = f"server {self.me} apply out of order {m.CommandIndex}"
        self.lastApplied = m.CommandIndex
        return err_msg

    def take_snapshot(self, index: int) -> bool:
        """Snapshot through index and hand it to Raft on this thread (as Go does); False if killed."""
        w = io.BytesIO()
        e = labgob.NewEncoder(w)
        e.Encode(index)
        with self.mu:
            xlog = [self.logs.get(j) for j in range(index + 1)]
            rf = self.raft
        e.Encode(xlog)
        if rf is None:
            return False
        start = tester.GetAnnotateTimestamp()
        rf.Snapshot(index, w.getvalue())
        details = f"snapshot created after applying the command at index {index}"
        tester.AnnotateInfoInterval(start, "snapshot created", details)
        return True

    def apply_error(self, err_msg: str) -> None:
        """Go: log.Fatalf("apply error: ...").  Here the test fails; this thread drains on."""
        tester.AnnotateCheckerFailureBeforeExit("apply error", err_msg)
        self.fatal(err_msg, f"apply error: {err_msg}")

    def fatal(self, err_msg: str, message: str) -> None:
        """Go's log.Fatalf: fail the test; in the applier, return so that it drains applyCh on."""
        self.applyErr = err_msg
        t = tester.CurrentT()
        if t is None or t.in_test_thread():
            tester.Fatalf("%s", message)
        t.record(message)  # interrupts the test thread; does not raise here

    def ingestSnap(self, snapshot: bytes, index: int) -> str:
        """Replace the logs with the snapshot's contents; returns "" or an error string."""
        with self.mu:
            if snapshot is None:
                tester.AnnotateCheckerFailureBeforeExit("failed to ingest snapshot", "nil snapshot")
                self.fatal("nil snapshot", "nil snapshot")
                return ""  # reported
            d = labgob.NewDecoder(io.BytesIO(snapshot))
            try:
                lastIncludedIndex = d.Decode()
                xlog = d.Decode()
            except labgob.LabgobError:
                text = "failed to decode snapshot"
                tester.AnnotateCheckerFailureBeforeExit(text, text)
                self.fatal("snapshot Decode() error", "snapshot decode error")
                return ""  # reported
            if index != -1 and index != lastIncludedIndex:
                return f"server {self.me} snapshot doesn't match m.SnapshotIndex"
            self.logs = {j: v for j, v in enumerate(xlog)}
            self.lastApplied = lastIncludedIndex
            return ""


def newRfsrv(ts: Any, srv: int, ends: list, persister: Any, snapshot: bool) -> rfsrv:
    s = rfsrv(ts, srv, persister)
    applyCh: Chan = Chan()
    s.raft = raft.Make(ends, srv, persister, applyCh)
    with ts.mu:
        ts.srvs[srv] = s  # before the applier starts: checkLogs looks this server up
    if snapshot:
        snap = persister.ReadSnapshot()
        if snap:
            # Mimic a KV server and process the snapshot now (ideally Raft would send it on applyCh).
            err = s.ingestSnap(snap, -1)
            if err:
                tester.AnnotateCheckerFailureBeforeExit("failed to ingest snapshot", err)
                ts.t.Fatal(err)
        tester.go(s.applierSnap, applyCh, name=f"rfsrv{srv}-applier")
    else:
        tester.go(s.applier, applyCh, name=f"rfsrv{srv}-applier")
    return s


__all__ = ["SnapShotInterval", "rfsrv", "newRfsrv"]
