"""The replicated state machine layer (Go: kvraft1/rsm/rsm.go).

A service that wants to be replicated implements StateMachine and hands itself to MakeRSM:

    class Counter(StateMachine):
        def DoOp(self, req): ...          # run one committed request, return its result
        def Snapshot(self) -> bytes: ...  # the whole state, labgob-encoded
        def Restore(self, data): ...      # replace the state by a snapshot

    rsm = MakeRSM(servers, me, persister, maxraftstate, Counter())
    err, result = rsm.Submit(req)         # (rpc.OK, DoOp(req)) or (rpc.ErrWrongLeader, None)
    err, result = rsm.Submit(req, timeout=0.5)   # Python-only: stop waiting after 0.5 s
    rsm.Raft()                            # the Raft peer underneath (a raftapi.Raft)

Every request travels through the Raft log wrapped in an `Op` (registered with labgob), so the
request's own class must be registered with labgob too. With maxraftstate > 0 the RSM snapshots
once Raft's persisted state nears maxraftstate bytes; with -1 it never snapshots.

Python-only: a StateMachine whose state is large may also define SnapshotLater(), which returns
a function that encodes the state as it is now. The RSM calls SnapshotLater() between two
applies, then calls the function on a thread of its own and hands Raft the snapshot when it is
done, so applies go on while the encoding runs (a 15 MB state took the apply thread ~0.8 s).

How Submit learns its fate: one reader thread drains applyCh, runs each committed Op through
DoOp and hands the result to the Submit waiting on that log index, provided the Op there is the
one that Submit proposed (same Me and Id). An Op overwritten by another leader's entry, or
stranded because its leader lost its term, ends as ErrWrongLeader: a single monitor thread checks
Raft's term while Submits are pending. When Raft closes applyCh after Kill(), the reader exits and
every pending Submit returns ErrWrongLeader.

Like Go's, Submit waits as long as its leader keeps its term, which for a leader cut off in a
minority lasts until the partition heals (the rsm tests rely on that). A caller that would
rather try elsewhere passes `timeout`: Submit then answers ErrWrongLeader once that many seconds
have passed, and the op, already in the log, may still commit later.
"""

from __future__ import annotations

import abc
import heapq
import itertools
import random
import threading
from dataclasses import dataclass
from typing import Any, Callable

import labgob
from kvraft1 import rpc
from raft1.raftapi import ApplyMsg, Chan, Raft
from tester import dlog

# How often the monitor asks Raft for its term while Submits wait. A leader cut off in a
# minority keeps its term, so its Submits keep waiting; once the partition heals it learns the
# new term within a heartbeat, and its Submits fail within this interval after that.
TERM_CHECK_INTERVAL_S = 0.05

# Snapshot when Raft's persisted state reaches this fraction of maxraftstate, so the state
# stays below maxraftstate even while the snapshot is being installed.
SNAPSHOT_THRESHOLD = 0.9
# The least one log entry takes in Raft's state (a term, an Op's ids): the floor of the
# pacing's bytes-per-entry estimate, which a snapshot taken while the log grew measures near 0.
MIN_ENTRY_BYTES = 8


@dataclass
class Op:
    """What the RSM puts in the Raft log: the request, and who proposed it (server Me, op Id)."""

    Me: int = 0
    Id: int = 0
    Req: Any = None


labgob.Register(Op)


class StateMachine(abc.ABC):
    """The replicated service: the RSM calls DoOp for each committed request, in log order."""

    @abc.abstractmethod
    def DoOp(self, req: Any) -> Any:
        """Execute req and return its result (handed back by the Submit that proposed it)."""

    @abc.abstractmethod
    def Snapshot(self) -> bytes:
        """Encode the whole state (labgob), for Raft to store as a snapshot."""

    @abc.abstractmethod
    def Restore(self, data: bytes) -> None:
        """Replace the whole state by one previously produced by Snapshot()."""

    # Optional, Python-only (see the module docstring):
    #     def SnapshotLater(self) -> Callable[[], bytes]
    # cheap, on the apply thread: captures the state; the function it returns may run on any
    # thread, after later DoOps, and returns what Snapshot() would have returned at the capture.


class _Waiter:
    """One pending Submit. `index`/`term` are None until Raft's Start has answered."""

    __slots__ = ("id", "index", "term", "done", "err", "result", "cond")

    def __init__(self, op_id: int, cond: threading.Condition) -> None:
        self.id = op_id
        self.index: int | None = None
        self.term: int | None = None
        self.done = False
        self.err: rpc.Err = rpc.ErrWrongLeader
        self.result: Any = None
        # Notified (under the RSM lock) when done becomes True.
        self.cond = cond


class RSM:
    """A replicated state machine: Submit(req) runs req on every replica through Raft."""

    def __init__(self, me: int, maxraftstate: int, sm: StateMachine) -> None:
        self.me = me
        self.maxraftstate = maxraftstate
        self.sm = sm
        self.applyCh: Chan = Chan()
        self.rf: Raft | None = None
        self.mu = threading.Lock()
        # Notified when by_index stops being empty (the monitor sleeps while it is) and when
        # the RSM stops.
        self.pending = threading.Condition(self.mu)
        # wait_applied's callers, a heap of (index, seq, Event): each Event is set once
        # last_applied reaches its index, or when the RSM stops (one wake per waiter, not one
        # per applied entry for every waiter).
        self.apply_waiters: list[tuple[int, int, threading.Event]] = []
        self.apply_waiter_seq = itertools.count()
        self.waiters: dict[int, _Waiter] = {}      # op Id -> waiter
        self.by_index: dict[int, _Waiter] = {}     # log index -> waiter (once Start answered)
        self.last_applied = 0
        self.dead = False
        # Op ids count up from a random start, so a restarted server does not reuse the ids of
        # ops its previous incarnation left in the log; below 2**32 they encode in 5 bytes.
        self.ids = itertools.count(random.getrandbits(31))
        self.snapshots_taken = 0
        # Snapshot pacing (reader thread only): commands applied since the last snapshot, and
        # how many bytes of Raft state one applied command took (unknown at first: infinite).
        self.applied_since_snapshot = 0
        self.bytes_per_entry = float("inf")
        # A SnapshotLater encoding is running: set by the reader, cleared by that encoding.
        self.snapshotting = False

    # -- the service side -------------------------------------------------------------------

    def Raft(self) -> Raft:
        return self.rf  # type: ignore[return-value]

    def Submit(self, req: Any, timeout: float | None = None) -> tuple[rpc.Err, Any]:
        """Run req through Raft; (OK, DoOp(req)) once committed, else (ErrWrongLeader, None).

        timeout (seconds, not in Go's API): answer ErrWrongLeader if req has not committed by
        then; it may still commit later, with nobody waiting for its result.
        """
        with self.mu:
            if self.dead:
                return rpc.ErrWrongLeader, None
            w = _Waiter(next(self.ids), threading.Condition(self.mu))
            self.waiters[w.id] = w
        try:
            index, term, is_leader = self.rf.Start(Op(Me=self.me, Id=w.id, Req=req))
        except BaseException:
            with self.mu:   # e.g. req's class is not registered with labgob
                self.waiters.pop(w.id, None)
            raise
        dlog.DPrintf(dlog.RSM, self.me, "op %d: Start gave index %d term %d leader=%s", w.id, index, term,
                     is_leader)
        with self.mu:
            if not w.done:
                if not is_leader or self.dead or index <= self.last_applied:
                    # Not leader, or the reader already went past index without our op there.
                    self._finish(w, rpc.ErrWrongLeader, None)
                else:
                    w.index, w.term = index, term
                    if not self.by_index:
                        self.pending.notify()
                    self.by_index[index] = w
            if not w.cond.wait_for(lambda: w.done, timeout):
                self._abandon(w)
            self.waiters.pop(w.id, None)
            return w.err, w.result

    def wait_applied(self, index: int, timeout: float) -> bool:
        """Wait until the state machine has applied the log through index (not in Go's API).

        With Raft's read_index, a service answers a linearizable read without a log entry.
        False on timeout or once the RSM has stopped.
        """
        with self.mu:
            if self.last_applied >= index or self.dead:
                return not self.dead
            done = threading.Event()
            heapq.heappush(self.apply_waiters, (index, next(self.apply_waiter_seq), done))
        return done.wait(timeout) and not self.dead

    def _wake_applied(self) -> None:
        """Set the Events of the wait_applied callers that last_applied has reached (mu held)."""
        while self.apply_waiters and (self.apply_waiters[0][0] <= self.last_applied or self.dead):
            heapq.heappop(self.apply_waiters)[2].set()

    # -- the reader ---------------------------------------------------------------------------

    def _reader(self) -> None:
        try:
            for msg in self.applyCh:
                if msg.CommandValid:
                    self._apply_command(msg)
                elif msg.SnapshotValid:
                    self._apply_snapshot(msg)
        finally:
            with self.mu:
                self._stop()

    def _apply_command(self, msg: ApplyMsg) -> None:
        op = msg.Command
        if not isinstance(op, Op):
            raise TypeError(f"rsm: log entry {msg.CommandIndex} holds a {type(op).__name__}, not an rsm.Op; "
                            "only RSM.Submit may call Start on an RSM's Raft")
        result = self.sm.DoOp(op.Req)
        dlog.DPrintf(dlog.RSM, self.me, "applied index %d: op %d of S%d", msg.CommandIndex, op.Id, op.Me)
        with self.mu:
            self.last_applied = msg.CommandIndex
            self._wake_applied()
            w = self.by_index.pop(msg.CommandIndex, None)
            mine = self.waiters.get(op.Id) if op.Me == self.me else None
            if mine is not None and not mine.done:
                if mine.index is not None:
                    self.by_index.pop(mine.index, None)
                self._finish(mine, rpc.OK, result)
            if w is not None and w is not mine:
                # Another leader's entry took the index our op was meant for.
                self._finish(w, rpc.ErrWrongLeader, None)
        if self.maxraftstate > 0:
            self._maybe_snapshot(msg.CommandIndex)

    def _maybe_snapshot(self, index: int) -> None:
        """Snapshot through index if Raft's state is near maxraftstate and trimming pays off."""
        self.applied_since_snapshot += 1
        size = self.rf.PersistBytes()
        threshold = SNAPSHOT_THRESHOLD * self.maxraftstate
        if size < threshold:
            return
        # When this reader lags behind Raft, most of the log is entries not applied yet: a
        # snapshot then frees little yet makes Raft rewrite all the rest, and one per applied
        # entry would keep the reader lagging. So wait until it frees half a threshold.
        if self.applied_since_snapshot * self.bytes_per_entry < threshold / 2:
            return
        later = getattr(self.sm, "SnapshotLater", None)
        if later is None:
            self._snapshot(index, size, self.sm.Snapshot(), self.applied_since_snapshot)
        elif not self.snapshotting:
            self.snapshotting = True
            threading.Thread(target=self._snapshot_later, name=f"rsm-{self.me}-snapshot",
                             args=(index, size, later(), self.applied_since_snapshot),
                             daemon=True).start()
        else:
            return   # the one under way will trim the log; pacing counts on from here
        self.applied_since_snapshot = 0

    def _snapshot(self, index: int, size: int, data: bytes, applied: int) -> None:
        """Hand Raft the state through index, and learn what one applied entry costs."""
        self.rf.Snapshot(index, data)
        dlog.DPrintf(dlog.RSM, self.me, "snapshot through %d (Raft state was %d bytes)", index, size)
        self.snapshots_taken += 1
        freed = size - self.rf.PersistBytes()
        if freed > 0:
            self.bytes_per_entry = max(MIN_ENTRY_BYTES, freed / applied)

    def _snapshot_later(self, index: int, size: int, encode: Callable[[], bytes],
                        applied: int) -> None:
        """A SnapshotLater encoding, off the reader thread."""
        try:
            data = encode()
            if not self.dead:
                self._snapshot(index, size, data, applied)
        finally:
            self.snapshotting = False

    def _apply_snapshot(self, msg: ApplyMsg) -> None:
        with self.mu:
            if msg.SnapshotIndex <= self.last_applied:
                return
        self.sm.Restore(msg.Snapshot)
        dlog.DPrintf(dlog.RSM, self.me, "restored a snapshot through %d", msg.SnapshotIndex)
        self.applied_since_snapshot = 0
        with self.mu:
            self.last_applied = msg.SnapshotIndex
            self._wake_applied()
            # Whatever our ops at these indices became, their results are folded into the
            # snapshot and lost to us: let the clients retry.
            for index in [i for i in self.by_index if i <= msg.SnapshotIndex]:
                self._finish(self.by_index.pop(index), rpc.ErrWrongLeader, None)

    # -- the monitor --------------------------------------------------------------------------

    def _monitor(self) -> None:
        with self.mu:
            while not self.dead:
                if not self.by_index:
                    self.pending.wait()
                    continue
                self.pending.wait(TERM_CHECK_INTERVAL_S)
                if not self.by_index or self.dead:
                    continue
                self.mu.release()
                try:
                    term, is_leader = self.rf.GetState()
                finally:
                    self.mu.acquire()
                for index in [i for i, w in self.by_index.items() if w.term != term or not is_leader]:
                    self._finish(self.by_index.pop(index), rpc.ErrWrongLeader, None)

    # -- helpers (called with self.mu held) ---------------------------------------------------

    def _finish(self, w: _Waiter, err: rpc.Err, result: Any) -> None:
        w.done, w.err, w.result = True, err, result
        w.cond.notify()

    def _abandon(self, w: _Waiter) -> None:
        """w's Submit timed out: forget it, so its op's result goes nowhere if it commits."""
        if w.index is not None and self.by_index.get(w.index) is w:
            del self.by_index[w.index]
        self._finish(w, rpc.ErrWrongLeader, None)

    def _stop(self) -> None:
        self.dead = True
        for w in self.waiters.values():
            if not w.done:
                self._finish(w, rpc.ErrWrongLeader, None)
        self.by_index.clear()
        self.pending.notify_all()
        self._wake_applied()


def MakeRSM(servers: list, me: int, persister: Any, maxraftstate: int, sm: StateMachine) -> RSM:
    """Start a Raft peer (raft1.raft.Make) and the RSM threads on top of it; returns at once.

    The state machine is first restored from persister's snapshot, if there is one.
    """
    from raft1 import raft  # imported here: raft1 may import rsm-independent modules only

    rsm = RSM(me, maxraftstate, sm)
    rsm.rf = raft.Make(servers, me, persister, rsm.applyCh)
    snapshot = persister.ReadSnapshot()
    if snapshot:
        sm.Restore(snapshot)
    threading.Thread(target=rsm._reader, name=f"rsm-{me}-reader", daemon=True).start()
    threading.Thread(target=rsm._monitor, name=f"rsm-{me}-monitor", daemon=True).start()
    return rsm


__all__ = ["MakeRSM", "RSM", "Op", "StateMachine", "TERM_CHECK_INTERVAL_S"]
