"""Raft: a replicated log, the reference solution for labs 3A-3D.

Usage:
    from raft1.chan import Chan
    from raft1.raft import Make

    applyCh = Chan()                               # unbuffered, like make(chan raftapi.ApplyMsg)
    rf = Make(peers, me, persister, applyCh)       # returns at once; threads run in the background
    index, term, isLeader = rf.Start(command)      # propose; does not wait for the commit
    term, isLeader = rf.GetState()
    rf.Snapshot(index, data)                       # the service has compacted everything up to index
    rf.Kill()                                      # stop every thread; closes applyCh

Committed commands (and snapshots received from a leader) arrive on applyCh as
raftapi.ApplyMsg, in index order, without gaps.  applyCh is a raft1.chan.Chan
with Go's unbuffered semantics: each send waits until the service has taken the
message, so the service paces Raft.  Kill() closes applyCh; `for m in applyCh`
in the service then ends.

Where the code meets the paper (Ongaro & Ousterhout, "In Search of an
Understandable Consensus Algorithm", extended version):

  Figure 2, State ............ Raft.__init__: currentTerm, votedFor, log (persistent);
                               commitIndex, lastApplied (volatile); nextIndex[], matchIndex[]
                               (leaders).  The log starts with a sentinel entry that stands
                               for the snapshot: log[0] is index log_base, term base_term().
  Figure 2, RequestVote ...... receiver: RequestVote; candidate: start_election,
                               request_vote_from, count_vote.
  Figure 2, AppendEntries .... receiver: AppendEntries, merge_entries; leader: replicator,
                               replicate_to, send_append, handle_append_reply.
  Figure 2, Rules for Servers  all servers: the applier thread (apply committed entries) and
                               observe_term (a higher term turns anyone into a follower);
                               followers: ticker -> start_election on an election timeout;
                               candidates: become_leader on a majority of votes;
                               leaders: heartbeats and replication (one replicator per peer),
                               advance_commit_index.
  Section 5.4.2 .............. advance_commit_index commits only an entry of the current
                               term by counting replicas; earlier entries commit with it.
  Section 5.3 (end) .......... accelerated log backtracking: a follower that rejects an
                               AppendEntries reports XTerm/XIndex/XLen, and the leader skips
                               a whole term per round trip (next_index_after_conflict).
  Section 7, Figure 13 ....... Snapshot (the service compacts), InstallSnapshot (receiver),
                               send_snapshot (leader, for followers behind the snapshot).

Threads (all stop after Kill(); names start with "raft<me>-"):
  ticker ........ the election timer; waits on election_cond until the deadline.
  replicator[p] . one per peer; decides what to send to p and when (new entries within
                  BATCH_WINDOW_MS, otherwise a heartbeat every HEARTBEAT_INTERVAL_MS); waits
                  on replicate_cond[p].
  applier ....... sends committed entries and snapshots on applyCh; waits on apply_cond.
  log-syncer .... only with a log-keeping persister: syncs a leader's new entries to its
                  disk while they are sent, then counts them; waits on log_sync_cond.
  rpc threads ... one short-lived thread per RPC in flight (start_rpc(); a service may give
                  rpc_executor, whose threads are reused).  A Call to an unreachable peer
                  can take seconds to fail (labrpc's long delays), so no RPC is ever made by a
                  thread that has something else to do, and never while holding the lock.

Persistence: persist() gives the persister everything (Go's Save(raftstate, snapshot)), or,
when the persister keeps the log as records (SaveLog/ReadLog, as kubekv's write-ahead log
does), only the hard state and the entries changed since the last save.  A durable persister
may queue what it is given; the service syncs it before any reply leaves the server and before
any RPC but a leader's AppendEntries (kubekv/transport.py), so nothing is acted on before it is
on disk; a leader counts its own new entries only once log_syncer has synced them.

Debugging: tester.dlog's DPrintf logs each key event under its topic (term, timer, vote,
leader, append, commit, apply, persist, snapshot); off unless KUBEKV_DEBUG names the topic.

Concurrency rules: one lock (self.mu) guards all state; every Condition shares it.  The
lock is never held across an RPC, a thread start or an applyCh send: the service calls
Snapshot() from the thread that receives applyCh, so holding the lock while sending
would deadlock (lab 3D's classic bug).
"""

from __future__ import annotations

import io
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import labgob
from raft1 import raftapi
from tester import dlog
from raft1.chan import Chan, ChanClosed
from raft1.raftapi import ApplyMsg

# A leader sends at least one AppendEntries per peer this often: the lab handout's
# "no more than ten heartbeats per second" (TestCount3B alone would allow one per 33 ms).
# Idle heartbeats are most of the RPCs in the short tests.  Measured, TestConcurrentStarts3B
# (Go baseline 12), 30 runs: 80 ms gave 7-14 RPCs (8 runs over 12), 100 ms 9-12 (none
# over); wall times of the raft and kv suites did not change (60 ms gave 10-16).
HEARTBEAT_INTERVAL_MS = 100
# After the newest RPC to a peer failed, news for it waits this long (then goes as a
# probe, which a lost message on an unreliable network also needs); a heartbeat may
# come sooner.  Long enough that an unreachable peer costs few RPCs.
RETRY_AFTER_FAILURE_MS = 20
# New entries from Start() wait this long before going out, so that commands started
# close together (concurrent clients) share one AppendEntries per peer.  Raft cannot tell
# a lone client waiting on each command from several clients whose commands would batch,
# so this is a trade of one client's latency for fewer RPCs.  Measured, TestReliableChurn3C
# (3 clients, 6 runs each): 1 ms gave 1.66 RPCs per committed Start (4113-6905 RPCs a
# run), 5 ms 1.11 (2216-4631; Go's solution here: 1.28-1.58, baseline 4289).
# TestSpeed4B (one client) pays it once per Put: 1.8 ms/op at 1 ms, 6.1 at 5 ms (Go 6.9).
# TestUnreliableAgree3C, 16 runs each (before empty RPCs stopped holding entries back):
# mean 2.04 s at 1 ms, 2.07 s at 5 ms (Go 1.85 s).
BATCH_WINDOW_MS = 5.0
# A commitIndex advance alone waits this long for a new entry to ride along with
# (under steady load that halves the RPCs); the leader's own applies never wait.
COMMIT_NEWS_DELAY_MS = 10
# A follower that hears no leader (and grants no vote) for a random time in this
# range starts an election.  The lower bound spans 2.5 heartbeat intervals, so at least
# two heartbeats in a row must be lost (an unreliable network drops 10% of requests, so 1%
# of the time at the lower bound, less above it); the range is wide enough to
# make split votes rare, and a new leader usually appears before the tester's first
# look (450-549 ms after a failure).
ELECTION_TIMEOUT_MIN_MS = 250
ELECTION_TIMEOUT_MAX_MS = 450
# A RequestVote whose Call fails is sent again while the election lasts, at most this many
# times in all; an unreachable peer fails each within 0-99 ms, so this bounds the extra RPCs.
VOTE_TRIES = 3

FOLLOWER = "follower"
CANDIDATE = "candidate"
LEADER = "leader"


@dataclass
class LogEntry:
    """One log slot: the command and the term in which a leader received it.

    Never changed once in a log: persist() reuses an entry's encoding for as long as the log
    holds that object (a new entry means a new object).
    """

    Term: int = 0
    Command: Any = None


@dataclass
class RequestVoteArgs:
    """Figure 2, RequestVote arguments."""

    Term: int = 0
    CandidateId: int = 0
    LastLogIndex: int = 0
    LastLogTerm: int = 0


@dataclass
class RequestVoteReply:
    """Figure 2, RequestVote results."""

    Term: int = 0
    VoteGranted: bool = False


@dataclass
class AppendEntriesArgs:
    """Figure 2, AppendEntries arguments (Entries empty for a heartbeat)."""

    Term: int = 0
    LeaderId: int = 0
    PrevLogIndex: int = 0
    PrevLogTerm: int = 0
    Entries: list = field(default_factory=list)
    LeaderCommit: int = 0


@dataclass
class AppendEntriesReply:
    """Figure 2, AppendEntries results, plus the accelerated-backup hints of a rejection.

    XTerm  term of the follower's entry at PrevLogIndex, or -1 if its log is too short
           (the default is 0, as a reply must start out all-default for labgob);
    XIndex first index the follower holds for XTerm;
    XLen   the follower's log length (its last index + 1).
    """

    Term: int = 0
    Success: bool = False
    XTerm: int = 0
    XIndex: int = 0
    XLen: int = 0


@dataclass
class InstallSnapshotArgs:
    """Figure 13, InstallSnapshot arguments (the whole snapshot in one RPC: no offset/done)."""

    Term: int = 0
    LeaderId: int = 0
    LastIncludedIndex: int = 0
    LastIncludedTerm: int = 0
    Data: bytes = b""


@dataclass
class InstallSnapshotReply:
    """Figure 13, InstallSnapshot results."""

    Term: int = 0


for _cls in (LogEntry, RequestVoteArgs, RequestVoteReply, AppendEntriesArgs,
             AppendEntriesReply, InstallSnapshotArgs, InstallSnapshotReply):
    labgob.Register(_cls)


class Raft(raftapi.Raft):
    """One Raft peer.  Make() builds it; peers reach it as the labrpc service "Raft"."""

    def __init__(self, peers: list, me: int, persister: Any, applyCh: Chan) -> None:
        self.peers = peers
        self.me = me
        self.persister = persister
        self.applyCh = applyCh
        self.dead = False

        self.mu = threading.Lock()
        # Notified when this peer stops being leader (its election timer matters again) and by Kill.
        self.election_cond = threading.Condition(self.mu)
        # replicate_cond[p]: notified when there may be something to send to p at once: a new
        # entry (Start), a new leadership, a reply from p, a commitIndex advance; and by Kill.
        self.replicate_cond = [threading.Condition(self.mu) for _ in peers]
        # Notified when commitIndex advances, when a snapshot from the leader awaits delivery,
        # and by Kill.
        self.apply_cond = threading.Condition(self.mu)

        # Persistent state (Figure 2), saved by persist() before it is acted on.
        self.currentTerm = 0
        self.votedFor: int | None = None
        self.log: list[LogEntry] = [LogEntry(0, None)]  # log[0]: the snapshot's last entry
        self.log_base = 0                               # index of log[0]
        self.snapshot = b""
        self.log_encodings = labgob.ListCache()         # persist()'s encodings of log entries
        # A persister that keeps the log as records (SaveLog/ReadLog: kubekv's write-ahead log)
        # is given only what changed: the hard state and the entries from unsaved_from on.
        self.log_store = callable(getattr(persister, "SaveLog", None))
        self.unsaved_from = 1                           # lowest log index changed since then
        # Such a persister only queues what it is given until its Sync(), which the service
        # runs before each RPC but a leader's AppendEntries: a leader writes its new entries
        # in parallel with sending them (thesis, section 10.2.1), and the log_syncer thread
        # counts them toward a commit (matchIndex[me]) once its Sync() returns.
        self.sync_log: Callable[[], None] = getattr(persister, "Sync", lambda: None)
        # Notified when the leader has entries that its own disk may not hold yet, and by Kill.
        self.log_sync_cond = threading.Condition(self.mu)

        # Volatile state on all servers.
        self.state = FOLLOWER
        self.commitIndex = 0
        self.lastApplied = 0
        self.election_deadline = 0.0
        self.votes: set[int] = set()
        self.leader_id: int | None = None   # the leader of currentTerm, once heard from (for services)
        self.pending_snapshot: ApplyMsg | None = None   # from InstallSnapshot, for the applier

        # Volatile state on leaders, reinitialised by become_leader.
        n = len(peers)
        self.nextIndex = [1] * n
        self.matchIndex = [0] * n
        self.commit_sent = [0] * n        # LeaderCommit last sent to each peer
        self.unsent_since = [0.0] * n     # when Start() first gave a peer entries not yet sent (0: none)
        self.commit_time = 0.0            # when commitIndex last advanced
        self.last_sent = [0.0] * n        # time of the last RPC to each peer (heartbeat clock)
        # RPCs that carry entries or a snapshot are numbered.  Only the newest one's fate
        # steers the pipeline, so an old Call stuck for seconds (long delays) neither blocks
        # nor fails it later.  Empty RPCs (heartbeats, commitIndex news) are number 0 once
        # the peer has answered this leader: on an unreliable network one is in flight 0-27
        # ms, and holding new entries back for its reply made a lone client's commits wait
        # for it (TestUnreliableAgree3C).  Until then an empty RPC is a probe and holds the
        # pipeline too, so a crashed peer costs a new leader one failed RPC, not one per
        # Start (TestFigure83C's leaders live a few ms: 8% more RPCs without the probe).
        self.heard_from = [False] * n     # whether each peer has answered us as leader
        self.sent_seq = [0] * n           # number of the newest numbered RPC sent to each peer
        self.done_seq = [0] * n           # number of the newest numbered RPC whose Call returned
        self.done_ok = [True] * n         # ... and whether it got an answer
        self.done_time = [0.0] * n        # ... and when its Call returned
        # New entries wait this long for company (BATCH_WINDOW_MS); a service whose RPCs cost
        # less than the wait may lower it (kubekv serve --batch-window-ms).
        self.batch_window_s = BATCH_WINDOW_MS / 1000
        # A commitIndex advance alone waits this long for an entry to ride along
        # (COMMIT_NEWS_DELAY_MS); a service whose followers answer reads may want it sooner.
        self.commit_news_delay_s = COMMIT_NEWS_DELAY_MS / 1000
        # Election timeouts are ELECTION_TIMEOUT_MIN/MAX_MS times this; a service whose
        # heartbeats can be held up by load may want them longer (etcd's default is 1 s).
        self.election_timeout_factor = 1.0
        # The leader's AppendEntries/InstallSnapshot each run on a thread of their own, as a
        # goroutine each in Go; a service may give a concurrent.futures executor instead, to
        # reuse threads (starting one costs ~0.15 ms); once it is shut down, none are sent.
        self.rpc_executor: Any = None

    # ------------------------------------------------------------------ log indexing

    def base_term(self) -> int:
        return self.log[0].Term

    def last_index(self) -> int:
        return self.log_base + len(self.log) - 1

    def last_term(self) -> int:
        return self.log[-1].Term

    def term_at(self, index: int) -> int:
        return self.log[index - self.log_base].Term

    def entries_from(self, index: int) -> list[LogEntry]:
        return self.log[index - self.log_base:]

    # ------------------------------------------------------------------ persistence

    def persist(self) -> None:
        """Save currentTerm, votedFor and the log, always together with the current snapshot."""
        if self.log_store:
            self.persist_changes()
            return
        w = io.BytesIO()
        e = labgob.NewEncoder(w)
        e.Encode(self.currentTerm)
        e.Encode(self.votedFor)
        e.Encode(self.log_base)
        # Decodes like e.Encode(self.log), but only entries new since the last persist are
        # encoded (appends, truncations and compactions alike): re-encoding a 1000-entry log
        # took 5.4 ms, on every Start and AppendEntries; now 0.05 ms.
        e.EncodeGrowingList(self.log, self.log_encodings)
        self.persister.Save(w.getvalue(), self.snapshot)
        dlog.DPrintf(dlog.PERSIST, self.me, "saved T%d votedFor=%s log %d..%d", self.currentTerm,
                     self.votedFor, self.log_base, self.log_base + len(self.log) - 1)

    def persist_changes(self) -> None:
        """persist() for a log-keeping persister: an append costs the same at any log length.

        The hard state is small and saved whole; entries below unsaved_from are already saved
        (merge_entries and compact_log lower it when they replace saved entries).
        """
        state = labgob.dumps([self.currentTerm, self.votedFor, self.base_term()])
        first = max(self.unsaved_from, self.log_base + 1)
        entries = [labgob.dumps(e) for e in self.log[first - self.log_base:]]
        self.persister.SaveLog(state, self.log_base, first, entries, self.snapshot)
        self.unsaved_from = self.last_index() + 1
        dlog.DPrintf(dlog.PERSIST, self.me, "saved T%d votedFor=%s log %d..%d (%d new)",
                     self.currentTerm, self.votedFor, self.log_base, self.last_index(), len(entries))

    def read_log(self, state: bytes, base: int, entries: list[bytes], snapshot: bytes) -> None:
        """Restore the state saved by persist_changes(); empty state means a fresh peer."""
        if not state:
            return
        try:
            term, voted_for, base_term = labgob.loads(state)
            log = [LogEntry(base_term, None)] + [labgob.loads(e) for e in entries]
        except (labgob.LabgobError, TypeError, ValueError) as err:
            raise labgob.LabgobError(
                f"raft {self.me}: persisted Raft state is corrupt ({err}); "
                "it must be what persist_changes() saved") from err
        self.restore(term, voted_for, base, log, snapshot)

    def read_persist(self, data: bytes, snapshot: bytes) -> None:
        """Restore the state saved by persist(); empty data means a fresh peer."""
        if not data:
            return
        d = labgob.NewDecoder(io.BytesIO(data))
        try:
            term, voted_for, base, log = d.Decode(), d.Decode(), d.Decode(), d.Decode()
        except labgob.LabgobError as err:
            raise labgob.LabgobError(
                f"raft {self.me}: persisted Raft state is corrupt ({err}); "
                "it must be what persist() saved") from err
        self.restore(term, voted_for, base, log, snapshot)

    def restore(self, term: Any, voted_for: Any, base: Any, log: Any, snapshot: bytes) -> None:
        """Take on the state a read_* method decoded, once check_persisted has vetted it."""
        self.check_persisted(term, voted_for, base, log, snapshot)
        self.currentTerm, self.votedFor, self.log_base, self.log = term, voted_for, base, log
        self.snapshot = snapshot
        # Everything in the snapshot is committed, and the service restores it itself.
        self.commitIndex = self.lastApplied = base
        self.unsaved_from = self.last_index() + 1

    def check_persisted(self, term: Any, voted_for: Any, base: Any, log: Any, snapshot: bytes) -> None:
        """Refuse persisted state that persist() cannot have written, naming what is wrong.

        A peer started on such state would fail later and far away (its threads dying on an
        int where a LogEntry belongs), or silently treat missing entries as committed.
        """
        def bad(what: str) -> None:
            raise labgob.LabgobError(f"raft {self.me}: persisted Raft state {what}; it must be what "
                                     "persist() saved (currentTerm, votedFor, log base, log)")

        def is_int(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        if not is_int(term) or term < 0:
            bad(f"has currentTerm {term!r}, not an int >= 0")
        if voted_for is not None and not (is_int(voted_for) and 0 <= voted_for < len(self.peers)):
            bad(f"has votedFor {voted_for!r}, not None or a peer number below {len(self.peers)}")
        if not is_int(base) or base < 0:
            bad(f"has log base {base!r}, not an int >= 0")
        if not isinstance(log, list) or not log:
            bad(f"has a log of type {type(log).__name__} (length {len(log) if isinstance(log, list) else '-'}), "
                "not a list starting with the snapshot's sentinel entry")
        for i, entry in enumerate(log):
            if not isinstance(entry, LogEntry):
                bad(f"holds {entry!r} (a {type(entry).__name__}) at log index {base + i}, not a LogEntry")
            if not is_int(entry.Term) or entry.Term > term or (i and entry.Term < log[i - 1].Term):
                bad(f"has term {entry.Term!r} at log index {base + i}: terms must be ints that never "
                    f"decrease along the log and never exceed currentTerm {term}")
        if base > 0 and not snapshot:
            bad(f"starts its log at index {base} but there is no snapshot to stand for "
                f"entries 1..{base}")

    # ------------------------------------------------------------------ the service's API

    def GetState(self) -> tuple[int, bool]:
        with self.mu:
            return self.currentTerm, self.state == LEADER

    def Start(self, command: Any) -> tuple[int, int, bool]:
        """Append command to the leader's log and wake the replicators; (-1, term, False) if not leader."""
        with self.mu:
            if self.dead or self.state != LEADER:
                return -1, self.currentTerm, False
            self.log.append(LogEntry(self.currentTerm, command))
            self.persist()
            index = self.last_index()
            if self.log_store:
                self.log_sync_cond.notify()   # we count ourselves once it is on our disk
            else:
                self.matchIndex[self.me] = index
                self.advance_commit_index()  # only matters for a single-peer cluster
            now = time.monotonic()
            for p, cond in enumerate(self.replicate_cond):
                if not self.unsent_since[p]:
                    self.unsent_since[p] = now
                cond.notify()
            return index, self.currentTerm, True

    def Snapshot(self, index: int, snapshot: bytes) -> None:
        """The service saved everything through index in snapshot: drop those log entries."""
        with self.mu:
            if self.dead or index <= self.log_base or index > self.commitIndex:
                # Killed (its persister may be closed), already compacted further (e.g. by
                # InstallSnapshot), or not committed.
                return
            dropped = self.log   # freed once the lock is released: 10^5 entries took ~30 ms
            self.compact_log(index, self.term_at(index))
            self.snapshot = snapshot
            self.persist()
            dlog.DPrintf(dlog.SNAPSHOT, self.me, "service snapshot through %d", index)
        del dropped

    def read_index(self) -> tuple[int, int] | None:
        """(commitIndex, term) to serve a linearizable read at, without a log entry; or None.

        Raft thesis, section 6.4: only a leader that has committed an entry of its own term
        knows every earlier commit. The caller must still confirm that a majority is in this
        term after this call, and answer once the service has applied the log through
        commitIndex. None: not leader, or nothing of this term committed yet (use the log).
        """
        with self.mu:
            if self.state != LEADER or self.term_at(self.commitIndex) != self.currentTerm:
                return None
            return self.commitIndex, self.currentTerm

    def PersistBytes(self) -> int:
        return self.persister.RaftStateSize()

    def Kill(self) -> None:
        """Stop every thread and close applyCh (the service's `for m in applyCh` ends).

        Closing here, not only when the applier exits, also frees an applier blocked in
        applyCh.send() because the service stopped reading (it gets ChanClosed).  RPC
        threads finish when their Call returns and then find the peer dead.
        """
        with self.mu:
            self.dead = True
            self.election_cond.notify_all()
            self.apply_cond.notify_all()
            self.log_sync_cond.notify_all()
            for cond in self.replicate_cond:
                cond.notify_all()
        # A send blocked on a service that stopped reading must end too.
        self.applyCh.close()

    def killed(self) -> bool:
        with self.mu:
            return self.dead

    # ------------------------------------------------------------------ roles

    def observe_term(self, term: int) -> bool:
        """Any RPC with a higher term makes us a follower in that term (Figure 2, all servers)."""
        if term > self.currentTerm:
            self.become_follower(term)
            return True
        return False

    def become_follower(self, term: int) -> None:
        if term > self.currentTerm:
            dlog.DPrintf(dlog.TERM, self.me, "T%d -> T%d, follower", self.currentTerm, term)
            self.currentTerm = term
            self.votedFor = None
            self.leader_id = None
            self.persist()
        if self.state == LEADER:
            self.reset_election_timer()
            self.election_cond.notify()
        self.state = FOLLOWER

    def reset_election_timer(self) -> None:
        timeout_ms = random.uniform(ELECTION_TIMEOUT_MIN_MS, ELECTION_TIMEOUT_MAX_MS)
        self.election_deadline = time.monotonic() + timeout_ms * self.election_timeout_factor / 1000

    def become_candidate(self) -> None:
        self.state = CANDIDATE
        self.currentTerm += 1
        self.votedFor = self.me
        self.votes = {self.me}
        self.persist()
        self.reset_election_timer()
        dlog.DPrintf(dlog.TIMER, self.me, "election timeout: candidate in T%d", self.currentTerm)

    def become_leader(self) -> None:
        dlog.DPrintf(dlog.LEADER, self.me, "leader in T%d with votes %s, log ..%d", self.currentTerm,
                     sorted(self.votes), self.last_index())
        self.state = LEADER
        self.leader_id = self.me
        for p in range(len(self.peers)):
            self.nextIndex[p] = self.last_index() + 1
            self.matchIndex[p] = 0
            self.commit_sent[p] = 0
            self.heard_from[p] = False
            self.last_sent[p] = 0.0  # a heartbeat is due at once: announce the new leader
            self.replicate_cond[p].notify()
        self.matchIndex[self.me] = self.last_index()

    # ------------------------------------------------------------------ election

    def ticker(self) -> None:
        """The election timer: start an election whenever the deadline passes without a leader."""
        while True:
            with self.mu:
                while not self.dead and (self.state == LEADER
                                         or time.monotonic() < self.election_deadline):
                    if self.state == LEADER:
                        self.election_cond.wait()
                    else:
                        self.election_cond.wait(self.election_deadline - time.monotonic())
                if self.dead:
                    return
                args = self.start_election()
            for p in range(len(self.peers)):
                if p != self.me:
                    self.start_rpc(f"vote-{p}", self.request_vote_from, p, args)

    def start_election(self) -> RequestVoteArgs:
        """Become a candidate in a new term; returns the RequestVote to send to every peer."""
        self.become_candidate()
        if len(self.votes) > len(self.peers) // 2:  # a single-peer cluster
            self.become_leader()
        return RequestVoteArgs(self.currentTerm, self.me, self.last_index(), self.last_term())

    def request_vote_from(self, peer: int, args: RequestVoteArgs) -> None:
        """Ask peer for its vote; a lost request or reply is sent again, up to VOTE_TRIES times.

        With 3 of 5 peers reachable a candidate needs every vote, and an unreliable network
        loses ~19% of round trips: asking once, a third of such elections failed and cost a
        whole election timeout (TestOnePartition4B).
        """
        for _ in range(VOTE_TRIES):
            reply = RequestVoteReply()
            if self.peers[peer].Call("Raft.RequestVote", args, reply):
                with self.mu:
                    if not self.dead and not self.observe_term(reply.Term):
                        self.count_vote(peer, args.Term, reply.VoteGranted)
                return
            with self.mu:
                if self.dead or self.state != CANDIDATE or self.currentTerm != args.Term:
                    return

    def count_vote(self, peer: int, term: int, granted: bool) -> None:
        if self.state != CANDIDATE or self.currentTerm != term or not granted:
            return
        self.votes.add(peer)
        if len(self.votes) > len(self.peers) // 2:
            self.become_leader()

    def RequestVote(self, args: RequestVoteArgs, reply: RequestVoteReply) -> None:
        """RequestVote RPC handler (Figure 2, receiver implementation)."""
        with self.mu:
            if self.dead:
                return
            self.observe_term(args.Term)
            reply.Term = self.currentTerm
            if args.Term < self.currentTerm:
                return
            if self.votedFor in (None, args.CandidateId) and self.candidate_is_up_to_date(args):
                self.votedFor = args.CandidateId
                self.persist()
                self.reset_election_timer()
                reply.VoteGranted = True
                dlog.DPrintf(dlog.VOTE, self.me, "granting vote to S%d in T%d", args.CandidateId, args.Term)
            else:
                dlog.DPrintf(dlog.VOTE, self.me, "refusing S%d in T%d (voted for %s)", args.CandidateId,
                             args.Term, self.votedFor)

    def candidate_is_up_to_date(self, args: RequestVoteArgs) -> bool:
        """Section 5.4.1: compare the last terms, then the lengths."""
        if args.LastLogTerm != self.last_term():
            return args.LastLogTerm > self.last_term()
        return args.LastLogIndex >= self.last_index()

    # ------------------------------------------------------------------ replication (leader)

    def replicator(self, peer: int) -> None:
        """Keep peer's log in step with ours while we lead; each RPC goes out on its own thread."""
        while True:
            with self.mu:
                job = self.wait_for_replication_job(peer)
            if job is None:
                return
            name, target, args, seq = job
            if not self.start_rpc(name, target, peer, args, seq):
                return

    def wait_for_replication_job(self, peer: int) -> tuple[str, Callable, Any, int] | None:
        cond = self.replicate_cond[peer]
        while not self.dead:
            if self.state != LEADER:
                cond.wait()
                continue
            delay = self.time_until_next_send(peer)
            if delay > 0:
                cond.wait(delay)
                continue
            return self.replicate_to(peer)
        return None

    def time_until_next_send(self, peer: int) -> float:
        """Seconds until peer should get its next RPC (<= 0: now).

        News (new entries, a backed-up nextIndex, a new commitIndex) goes out at once,
        except: while the newest RPC to peer that carries entries (or a snapshot) is
        unanswered, its reply triggers the next send (which then carries everything new:
        a batch); after it failed, the news waits RETRY_AFTER_FAILURE_MS; new entries
        from Start() wait BATCH_WINDOW_MS for company; and a commitIndex advance alone
        waits COMMIT_NEWS_DELAY_MS for an entry to ride along.  Otherwise a heartbeat is
        sent HEARTBEAT_INTERVAL_MS after the previous RPC.
        """
        now = time.monotonic()
        heartbeat_due = self.last_sent[peer] + HEARTBEAT_INTERVAL_MS / 1000 - now
        if self.done_seq[peer] < self.sent_seq[peer]:
            return heartbeat_due
        news_at = now if self.done_ok[peer] else self.done_time[peer] + RETRY_AFTER_FAILURE_MS / 1000
        if self.unsent_since[peer]:
            news_at = max(news_at, self.unsent_since[peer] + self.batch_window_s)
        if self.last_index() < self.nextIndex[peer]:
            if self.commitIndex <= self.commit_sent[peer]:
                return heartbeat_due
            news_at = max(news_at, self.commit_time + self.commit_news_delay_s)
        return min(heartbeat_due, news_at - now)

    def replicate_to(self, peer: int) -> tuple[str, Callable, Any, int]:
        """Build the next RPC for peer: AppendEntries from nextIndex, or the snapshot if that is gone."""
        self.last_sent[peer] = time.monotonic()
        self.unsent_since[peer] = 0.0
        if self.nextIndex[peer] <= self.log_base:
            args = InstallSnapshotArgs(self.currentTerm, self.me, self.log_base,
                                       self.base_term(), self.snapshot)
            return "snapshot", self.send_snapshot, args, self.number_payload(peer)
        prev = self.nextIndex[peer] - 1
        args = AppendEntriesArgs(self.currentTerm, self.me, prev, self.term_at(prev),
                                 self.entries_from(prev + 1), self.commitIndex)
        self.commit_sent[peer] = self.commitIndex
        seq = self.number_payload(peer) if args.Entries or not self.heard_from[peer] else 0
        return "append", self.send_append, args, seq

    def number_payload(self, peer: int) -> int:
        self.sent_seq[peer] += 1
        return self.sent_seq[peer]

    def send_append(self, peer: int, args: AppendEntriesArgs, seq: int) -> None:
        reply = AppendEntriesReply()
        ok = self.peers[peer].Call("Raft.AppendEntries", args, reply)
        with self.mu:
            if self.rpc_done(peer, seq, ok, reply.Term, args.Term):
                self.handle_append_reply(peer, args, reply)

    def send_snapshot(self, peer: int, args: InstallSnapshotArgs, seq: int) -> None:
        reply = InstallSnapshotReply()
        ok = self.peers[peer].Call("Raft.InstallSnapshot", args, reply)
        with self.mu:
            if self.rpc_done(peer, seq, ok, reply.Term, args.Term):
                self.matchIndex[peer] = max(self.matchIndex[peer], args.LastIncludedIndex)
                self.nextIndex[peer] = max(self.nextIndex[peer], args.LastIncludedIndex + 1)

    def rpc_done(self, peer: int, seq: int, ok: bool, reply_term: int, sent_term: int) -> bool:
        """Book-keeping common to every leader RPC; True if the reply should be acted on.

        seq is the RPC's payload number, 0 for an empty one sent after the peer's first answer.
        """
        if seq > self.done_seq[peer]:
            self.done_seq[peer], self.done_ok[peer] = seq, ok
            self.done_time[peer] = time.monotonic()
        if seq == 0 or seq >= self.done_seq[peer]:
            self.replicate_cond[peer].notify()  # maybe more to send now
        if not ok or self.dead:
            return False
        if self.observe_term(reply_term):
            return False
        # Drop replies to an earlier term's RPCs, and those of a killed peer (Term 0).
        current = self.state == LEADER and self.currentTerm == sent_term == reply_term
        if current:
            self.heard_from[peer] = True
        return current

    def handle_append_reply(self, peer: int, args: AppendEntriesArgs,
                            reply: AppendEntriesReply) -> None:
        if reply.Success:
            match = args.PrevLogIndex + len(args.Entries)
            if match > self.matchIndex[peer]:
                self.matchIndex[peer] = match
                self.advance_commit_index()
            self.nextIndex[peer] = max(self.nextIndex[peer], match + 1)
            return
        # Rejected: back up over the conflict (replies may arrive out of order, so never
        # below what the peer is known to hold).
        backed = self.next_index_after_conflict(reply)
        self.nextIndex[peer] = max(self.matchIndex[peer] + 1, min(backed, self.last_index() + 1))

    def next_index_after_conflict(self, reply: AppendEntriesReply) -> int:
        """The accelerated backup: skip the follower's whole conflicting term at once."""
        if reply.XTerm == -1:
            return reply.XLen  # the follower's log is too short
        last = self.last_index_of_term(reply.XTerm)
        return last + 1 if last > 0 else reply.XIndex

    def last_index_of_term(self, term: int) -> int:
        """Our last index holding term (terms never decrease along the log), or 0."""
        for index in range(self.last_index(), self.log_base, -1):
            t = self.term_at(index)
            if t == term:
                return index
            if t < term:
                break
        return 0

    def advance_commit_index(self) -> None:
        """Section 5.4.2: commit the highest index a majority holds, if it is of our term."""
        matches = sorted(self.matchIndex, reverse=True)
        n = matches[len(self.peers) // 2]  # held by a majority (the leader counts itself)
        if n > self.commitIndex and self.term_at(n) == self.currentTerm:
            dlog.DPrintf(dlog.COMMIT, self.me, "leader commits %d..%d", self.commitIndex + 1, n)
            self.commitIndex = n
            self.commit_time = time.monotonic()
            self.apply_cond.notify()
            for cond in self.replicate_cond:
                cond.notify()  # followers learn the new commitIndex soon, not a heartbeat later

    def log_syncer(self) -> None:
        """A leader's own disk write (log_store only): matchIndex[me] is what Sync() made durable.

        A leader never truncates its log within its term, so once Sync() returns, everything
        up to the index read before it is on disk for as long as that term lasts.
        """
        while True:
            with self.mu:
                while not self.dead and (self.state != LEADER
                                         or self.matchIndex[self.me] >= self.last_index()):
                    self.log_sync_cond.wait()
                if self.dead:
                    return
                term, index = self.currentTerm, self.last_index()
            self.sync_log()
            with self.mu:
                if self.state == LEADER and self.currentTerm == term and index > self.matchIndex[self.me]:
                    self.matchIndex[self.me] = index
                    self.advance_commit_index()

    # ------------------------------------------------------------------ replication (follower)

    def AppendEntries(self, args: AppendEntriesArgs, reply: AppendEntriesReply) -> None:
        """AppendEntries RPC handler (Figure 2, receiver implementation)."""
        with self.mu:
            if self.dead:
                return
            self.observe_term(args.Term)
            reply.Term = self.currentTerm
            if args.Term < self.currentTerm:
                return
            self.follow_leader(args.LeaderId)
            prev, prev_term, entries = args.PrevLogIndex, args.PrevLogTerm, args.Entries
            if prev < self.log_base:
                # The start of the RPC is inside our snapshot: those entries are committed
                # and so match; keep only the part after the snapshot.
                entries = entries[self.log_base - prev:]
                prev, prev_term = self.log_base, self.base_term()
            if not self.log_matches(prev, prev_term, reply):
                dlog.DPrintf(dlog.APPEND, self.me, "rejecting S%d: no %d/T%d (XTerm %d XIndex %d XLen %d)",
                             args.LeaderId, prev, prev_term, reply.XTerm, reply.XIndex, reply.XLen)
                return
            self.merge_entries(prev, entries)
            last_new = prev + len(entries)
            if entries:
                dlog.DPrintf(dlog.APPEND, self.me, "from S%d: %d entries after %d", args.LeaderId,
                             len(entries), prev)
            if args.LeaderCommit > self.commitIndex and last_new > self.commitIndex:
                self.commitIndex = min(args.LeaderCommit, last_new)
                dlog.DPrintf(dlog.COMMIT, self.me, "follower commits through %d", self.commitIndex)
                self.apply_cond.notify()
            reply.Success = True

    def follow_leader(self, leader: int) -> None:
        """A current leader exists: be its follower and restart the election timer."""
        self.leader_id = leader
        if self.state != FOLLOWER:
            self.become_follower(self.currentTerm)
        self.reset_election_timer()

    def log_matches(self, prev: int, prev_term: int, reply: AppendEntriesReply) -> bool:
        """Does our log hold prev_term at prev?  If not, fill in the backup hints."""
        if prev > self.last_index():
            reply.XTerm, reply.XLen = -1, self.last_index() + 1
            return False
        if self.term_at(prev) == prev_term:
            return True
        reply.XTerm = self.term_at(prev)
        first = prev
        while first - 1 > self.log_base and self.term_at(first - 1) == reply.XTerm:
            first -= 1
        reply.XIndex, reply.XLen = first, self.last_index() + 1
        return False

    def merge_entries(self, prev: int, entries: list[LogEntry]) -> None:
        """Append entries after prev, truncating our log only at a real conflict.

        An RPC may be stale (reordered), so entries we already hold are kept:
        truncating them could drop entries a later RPC appended.
        """
        for i, entry in enumerate(entries):
            index = prev + 1 + i
            if index <= self.last_index() and self.term_at(index) == entry.Term:
                continue
            self.unsaved_from = min(self.unsaved_from, index)
            del self.log[index - self.log_base:]
            self.log.extend(entries[i:])
            self.persist()
            return

    # ------------------------------------------------------------------ snapshots

    def InstallSnapshot(self, args: InstallSnapshotArgs, reply: InstallSnapshotReply) -> None:
        """InstallSnapshot RPC handler (Figure 13, receiver implementation)."""
        with self.mu:
            if self.dead:
                return
            self.observe_term(args.Term)
            reply.Term = self.currentTerm
            if args.Term < self.currentTerm:
                return
            self.follow_leader(args.LeaderId)
            if args.LastIncludedIndex <= self.commitIndex:
                return  # we have all of it already (perhaps a reordered RPC)
            dlog.DPrintf(dlog.SNAPSHOT, self.me, "installing S%d's snapshot through %d/T%d", args.LeaderId,
                         args.LastIncludedIndex, args.LastIncludedTerm)
            self.compact_log(args.LastIncludedIndex, args.LastIncludedTerm)
            self.snapshot = args.Data
            self.persist()
            self.commitIndex = args.LastIncludedIndex
            self.pending_snapshot = ApplyMsg(SnapshotValid=True, Snapshot=args.Data,
                                             SnapshotTerm=args.LastIncludedTerm,
                                             SnapshotIndex=args.LastIncludedIndex)
            self.apply_cond.notify()

    def compact_log(self, index: int, term: int) -> None:
        """Make index the new log base; keep the entries after it if our log agrees there."""
        if index <= self.last_index() and self.term_at(index) == term:
            rest = self.log[index - self.log_base + 1:]
        else:
            rest = []  # Figure 13, step 7: discard the entire log
            self.unsaved_from = min(self.unsaved_from, index + 1)
        self.log = [LogEntry(term, None)] + rest
        self.log_base = index

    # ------------------------------------------------------------------ applying

    def applier(self) -> None:
        """Deliver committed entries and installed snapshots on applyCh, in order."""
        try:
            while True:
                with self.mu:
                    while not self.dead and self.pending_snapshot is None \
                            and self.lastApplied >= self.commitIndex:
                        self.apply_cond.wait()
                    if self.dead:
                        return
                    msgs = self.next_messages()
                if msgs[0].SnapshotValid:
                    dlog.DPrintf(dlog.APPLY, self.me, "delivering snapshot through %d", msgs[0].SnapshotIndex)
                else:
                    dlog.DPrintf(dlog.APPLY, self.me, "applying %d..%d", msgs[0].CommandIndex, msgs[-1].CommandIndex)
                for msg in msgs:
                    self.applyCh.send(msg)  # without the lock: the receiver may call Snapshot()
                applied = msgs[-1].SnapshotIndex if msgs[-1].SnapshotValid else msgs[-1].CommandIndex
                with self.mu:
                    self.lastApplied = max(self.lastApplied, applied)
        except ChanClosed:
            return  # Kill() closed applyCh
        finally:
            self.applyCh.close()

    def next_messages(self) -> list[ApplyMsg]:
        """What the applier should deliver next: a pending snapshot first, else committed entries."""
        if self.pending_snapshot is not None:
            msg, self.pending_snapshot = self.pending_snapshot, None
            return [msg]
        first = self.lastApplied + 1
        return [ApplyMsg(CommandValid=True, Command=entry.Command, CommandIndex=first + i)
                for i, entry in enumerate(self.log[first - self.log_base:
                                                   self.commitIndex - self.log_base + 1])]

    # ------------------------------------------------------------------ threads

    def spawn(self, name: str, target: Callable, *args: Any) -> None:
        threading.Thread(target=target, args=args, name=f"raft{self.me}-{name}", daemon=True).start()

    def start_rpc(self, name: str, target: Callable, *args: Any) -> bool:
        """Run one RPC in the background: a thread of its own, or the service's rpc_executor.
        False once that executor is shut down (the service is stopping)."""
        if self.rpc_executor is None:
            self.spawn(name, target, *args)
            return True
        try:
            self.rpc_executor.submit(target, *args)
        except RuntimeError:
            return False
        return True


def Make(peers: list, me: int, persister: Any, applyCh: Chan) -> Raft:
    """Create peer me of the cluster peers (labrpc ClientEnds; peers[me] is ourselves).

    Restores the state persister holds (if any), starts the background threads
    and returns at once.
    """
    rf = Raft(peers, me, persister, applyCh)
    if rf.log_store:
        rf.read_log(*persister.ReadLog(), persister.ReadSnapshot())
    else:
        rf.read_persist(persister.ReadRaftState(), persister.ReadSnapshot())
    with rf.mu:
        rf.reset_election_timer()
    rf.spawn("ticker", rf.ticker)
    rf.spawn("applier", rf.applier)
    if rf.log_store:
        rf.spawn("log-syncer", rf.log_syncer)
    for p in range(len(peers)):
        if p != me:
            rf.spawn(f"replicator-{p}", rf.replicator, p)
    return rf


__all__ = [
    "Make", "Raft", "LogEntry", "RequestVoteArgs", "RequestVoteReply", "AppendEntriesArgs",
    "AppendEntriesReply", "InstallSnapshotArgs", "InstallSnapshotReply",
    "HEARTBEAT_INTERVAL_MS", "ELECTION_TIMEOUT_MIN_MS", "ELECTION_TIMEOUT_MAX_MS",
]
