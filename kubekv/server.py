"""One KubeKV server process: the lab's Raft, rsm and KV server behind gRPC, on a durable log.

Usage:
    kubekv serve --id 0 --peers 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 --data-dir d0

    srv = KubeKVServer(me=0, peers=[...], data_dir="d0")   # recovers from d0, binds its port
    srv.start(); srv.wait()                                # until stop() (SIGTERM, Ctrl-C)

A request walks: client -> gRPC -> KVServer.Put/Get -> kubekv.groups (concurrent requests share
one log entry) -> rsm.Submit -> Raft.Start -> peers over kubekv.transport -> commit -> applyCh ->
rsm -> ServiceState.DoOp -> KVServer.DoOp -> reply. KVServer, rsm and Raft are the lab's own
code (as kvraft1.server.StartKVServer wires them), given two seams: PeerEnds for its peers and
a DurablePersister for its state; kubekv.groups stands in front of the rsm as its Submit.

A server also answers Control.Status (term, leadership, log size, fsyncs) to anyone, and, when
started with faults=True (tests), Control.Block: the peers it must pretend it cannot reach.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import msgpack

import labgob
import labrpc
from kubekv.etcd.mvcc import EtcdOp, MVCCStore
from kubekv.etcd.server import Etcd, EtcdAPI
from kubekv.groups import Batch, SubmitGroups
from kubekv.placement import RolePlacement
from kubekv.storage import DataDirError, DurablePersister, StorageError
from kubekv.transport import PeerEnd, RpcServer, TransportFaults
from kvraft1 import rpc
from kvraft1.server import COMMIT_WAIT_S, KVServer
from rsm.rsm import MakeRSM, Op, StateMachine

log = logging.getLogger("kubekv.server")

# Raft state (log bytes) at which the rsm snapshots the KV state and trims the log. A snapshot
# encodes and writes the whole state (~0.2 s of CPU and 0.3-0.6 s of disk for 15 MB, beside the
# applies), so it should be rare, as etcd's are (one per 100,000 entries); a 32 MiB log replays
# in ~0.5 s on restart.
DEFAULT_MAXRAFTSTATE_BYTES = 32 * 1024 * 1024
# Member i snapshots at (1 + i * this) * maxraftstate: the members' snapshots, which stall each
# one's disk while the file is written, then rarely overlap (all three at once stalled commits).
SNAPSHOT_STAGGER = 0.15
EXIT_STORAGE_FAILED = 3   # the exit status of a server whose disk failed it
# What a data directory's records hold (its FORMAT file): Raft's LogEntry of rsm Ops of the
# request classes below (alone or in a kubekv.groups.Batch), the snapshot layout of
# ServiceState. Bump it whenever one of those changes, so an old directory is refused by name
# instead of failing to decode; a change that this code still reads both ways of (the MVCC
# snapshot's format 2, chunked, beside 1) keeps it.
DATA_FORMAT = "kubekv 2"
# How long a new entry waits for others before the leader sends it (Raft's BATCH_WINDOW_MS is
# the lab's 5 ms). Here an RPC costs less than that wait, and entries that arrive while an
# AppendEntries is in flight ride in the next one anyway.
DEFAULT_BATCH_WINDOW_MS = 0.0
# How long a commitIndex advance alone waits before the leader tells the followers (Raft's
# COMMIT_NEWS_DELAY_MS is the lab's 10 ms). Under load the next group's entries leave within
# ~1.5 ms and carry the news, which spares the followers an AppendEntries per entry; a member
# that forwarded a write answers once it has applied it, so the wait stays short.
COMMIT_NEWS_DELAY_MS = 2.0
# Election timeouts are the lab's (250-450 ms) times this: 1-1.8 s, near etcd's 1 s default.
# Under 200 clients heartbeats and their handling wait behind client threads for the GIL, and the
# lab's timeouts made followers start ~20 elections a minute.
ELECTION_TIMEOUT_FACTOR = 4.0
# A server process's collector looks at young objects only (see LongLivedObjects), with a
# full collection of everything this often.
FULL_GC_INTERVAL_S = 600.0
# Reused threads for a leader's RPCs, per peer (see KubeKVServer.raft_rpcs).
RAFT_RPC_THREADS_PER_PEER = 16


@dataclass
class StatusArgs:
    Verbose: bool = False


@dataclass
class StatusReply:
    Me: int = 0
    Term: int = 0
    IsLeader: bool = False
    RaftStateBytes: int = 0
    SnapshotBytes: int = 0
    Fsyncs: int = 0
    Cluster: str = ""
    # Requests this server submitted to its rsm, and the submissions (log entries) they took.
    Requests: int = 0
    Entries: int = 0


@dataclass
class BlockArgs:
    Peers: list = field(default_factory=list)


@dataclass
class BlockReply:
    Err: str = ""


for _cls in (StatusArgs, StatusReply, BlockArgs, BlockReply):
    labgob.Register(_cls)


def cluster_id(peers: Sequence[str]) -> str:
    """A name for the cluster made of these peer addresses (written into each data directory)."""
    return hashlib.sha256(",".join(peers).encode()).hexdigest()[:12]


class ServiceState(StateMachine):
    """A server's replicated state: the lab's KV store and the etcd MVCC store, side by side.

    Two keyspaces in one log: `kubekv put/get` (the lab's Clerk API) use the first, etcd
    clients the second.
    """

    def __init__(self, kv: KVServer, mvcc: MVCCStore,
                 prepare: Callable[[bytes], None] | None = None) -> None:
        self.kv = kv
        self.mvcc = mvcc
        self.prepare = prepare   # writes a snapshot's file ahead of its save (PrepareSnapshot)

    def DoOp(self, req: Any) -> Any:
        if isinstance(req, Batch):
            if not isinstance(req.Reqs, list):
                raise TypeError(f"a Batch holds a list of requests, not a {type(req.Reqs).__name__}")
            return [self._do_one(r) for r in req.Reqs]
        return self._do_one(req)

    def _do_one(self, req: Any) -> Any:
        return self.mvcc.DoOp(req) if isinstance(req, EtcdOp) else self.kv.DoOp(req)

    def Snapshot(self) -> bytes:
        return msgpack.packb([self.kv.Snapshot(), self.mvcc.Snapshot()])

    def SnapshotLater(self) -> Callable[[], bytes]:
        """The lab's KV state is encoded now (its own Snapshot), the etcd store's later; then
        the file is written, off the path of the syncs that acknowledge writes."""
        kv, mvcc = self.kv.Snapshot(), self.mvcc.SnapshotLater()

        def encode() -> bytes:
            data = msgpack.packb([kv, mvcc()])
            if self.prepare is not None:
                self.prepare(data)
            return data
        return encode

    def Restore(self, data: bytes) -> None:
        try:
            kv, mvcc = msgpack.unpackb(data)
            if not isinstance(kv, bytes) or not isinstance(mvcc, bytes):
                raise ValueError("not two byte strings")
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise labgob.LabgobError(f"a KubeKV snapshot is [kv bytes, mvcc bytes]: {exc}") from exc
        self.kv.Restore(kv)
        self.mvcc.Restore(mvcc)


class Control:
    """Control.* handlers: status for everyone, fault injection when enabled."""

    def __init__(self, server: "KubeKVServer") -> None:
        self._server = server

    def Status(self, args: StatusArgs, reply: StatusReply) -> None:
        s = self._server
        term, leader = s.raft.GetState()
        reply.Me, reply.Term, reply.IsLeader = s.me, term, leader
        reply.RaftStateBytes = s.persister.RaftStateSize()
        reply.SnapshotBytes = s.persister.SnapshotSize()
        reply.Fsyncs = s.persister.stats()["fsyncs"]
        reply.Cluster = s.cluster
        if s.groups is not None:
            grouped = s.groups.stats()
            reply.Requests, reply.Entries = grouped["requests"], grouped["entries"]

    def Block(self, args: BlockArgs, reply: BlockReply) -> None:
        if self._server.faults is None:
            reply.Err = "fault injection is off: start the server with --test-faults"
            return
        self._server.faults.set_blocked(args.Peers)
        log.info("server %d: now blocking peers %s", self._server.me, sorted(args.Peers))


class KubeKVServer:
    """One member of a KubeKV cluster: recovers from data_dir, then serves peers and clients."""

    def __init__(self, me: int, peers: Sequence[str], data_dir: str,
                 maxraftstate: int = DEFAULT_MAXRAFTSTATE_BYTES, faults: bool = False,
                 batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS,
                 clients: Sequence[str] | None = None, read_index: bool = True,
                 role_placement: bool = False) -> None:
        if not peers:
            raise ValueError("a server needs the list of all cluster members (--peers a,b,c), "
                             "itself included")
        if not 0 <= me < len(peers):
            raise ValueError(f"--id {me} is not a member of --peers (ids run 0..{len(peers) - 1})")
        if clients is not None and len(clients) != len(peers):
            raise ValueError(f"--clients names {len(clients)} addresses but --peers {len(peers)}: give "
                             "every member's client address, in the same order as --peers")
        self.me = me
        self.peers = list(peers)
        self.clients = list(clients) if clients else list(peers)
        self.address = self.peers[me]
        self.client_address = self.clients[me]
        self.cluster = cluster_id(self.peers)
        self.faults = TransportFaults() if faults else None
        self.data_dir = data_dir
        self.maxraftstate = maxraftstate
        self.batch_window_ms = batch_window_ms
        self.rpc = RpcServer(me, faults=self.faults)
        self.persister: DurablePersister | None = None
        self.ends: list[PeerEnd] = []
        # Threads for the leader's RPCs, reused. A call to a dead peer holds one for up to
        # CALL_TIMEOUT_S and heartbeats go every 100 ms: ~10 per unreachable peer.
        self.raft_rpcs = futures.ThreadPoolExecutor(max_workers=RAFT_RPC_THREADS_PER_PEER * len(peers),
                                                    thread_name_prefix=f"raft{me}-rpc")
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self.kv = self.raft = self.rsm = self.groups = None
        self.mvcc = MVCCStore()
        self.etcd = EtcdAPI(self)
        self.etcd.read_index = read_index
        self.etcd.register(self.rpc.grpc_server)
        self.role_placement = role_placement
        self.placement: RolePlacement | None = None

    def start(self) -> None:
        """Bind the port, recover from the data directory, then start Raft and the KV server.

        The port first: a server that cannot listen must not stamp the data directory as its own.
        """
        self.rpc.serve(self.address, self.client_address)
        try:
            self.persister = DurablePersister(
                self.data_dir, identity=f"cluster {self.cluster} ({','.join(self.peers)}) member {self.me}",
                data_format=DATA_FORMAT)
        except BaseException:
            self.rpc.stop()
            raise
        # A leader's AppendEntries leaves before its entries are synced: Raft's log_syncer
        # syncs them meanwhile and counts them only then.
        self.ends = [PeerEnd(addr, me=self.me, peer=i, before_send=self.sync, faults=self.faults,
                             unsynced_methods=frozenset({"Raft.AppendEntries"}))
                     for i, addr in enumerate(self.peers)]
        self.rpc.after_handler = self.sync
        # As kvraft1's StartKVServer, with both keyspaces in the state machine.
        for cls in (Op, rpc.PutArgs, rpc.GetArgs):
            labgob.Register(cls)
        kv = KVServer(self.me)
        try:
            kv.rsm = MakeRSM(self.ends, self.me, self.persister, self.rsm_maxraftstate(),
                             ServiceState(kv, self.mvcc, self.prepare_snapshot))
        except (labgob.LabgobError, ValueError) as exc:
            self.persister.Close()
            self.rpc.stop()
            raise DataDirError(
                f"data directory {self.data_dir} does not decode ({exc}): it is damaged, or a kubekv "
                f"with other log entry classes wrote it under the same FORMAT ({DATA_FORMAT!r}); fix: "
                f"move it away and let this member start empty (it catches up from the others)") from exc
        kv.submit_kwargs = {"timeout": COMMIT_WAIT_S}
        self.rsm = kv.rsm
        # Clients' concurrent requests (KV and etcd) share log entries.
        self.groups = kv.rsm = SubmitGroups(self.rsm)
        self.raft = kv.rsm.Raft()
        self.raft.batch_window_s = self.batch_window_ms / 1000
        self.raft.commit_news_delay_s = COMMIT_NEWS_DELAY_MS / 1000
        self.raft.sync_log = self.sync
        self.raft.election_timeout_factor = ELECTION_TIMEOUT_FACTOR
        self.raft.rpc_executor = self.raft_rpcs
        self.kv = kv
        self.rpc.AddService(labrpc.MakeService(self.raft))
        self.rpc.AddService(labrpc.MakeService(Etcd(self.etcd)))
        self.rpc.AddService(labrpc.MakeService(self.kv), clients=True)
        self.rpc.AddService(labrpc.MakeService(Control(self)), clients=True)
        self.etcd.start()
        if self.role_placement:
            self.placement = RolePlacement(self.me, len(self.peers), lambda: self.raft.GetState()[1])
            self.placement.start()
        log.info("server %d of cluster %s serving on %s", self.me, self.cluster, self.address)

    def rsm_maxraftstate(self) -> int:
        """This member's snapshot threshold: maxraftstate, staggered by member id."""
        if self.maxraftstate <= 0:
            return self.maxraftstate
        return int(self.maxraftstate * (1 + SNAPSHOT_STAGGER * self.me))

    def prepare_snapshot(self, data: bytes) -> None:
        """The persister's PrepareSnapshot; a storage failure ends the process, as in sync()."""
        try:
            self.persister.PrepareSnapshot(data)
        except StorageError as exc:
            if self._stopping.is_set():
                return          # closed under it: the snapshot is simply not taken
            log.critical("server %d: %s", self.me, exc)
            logging.shutdown()
            os._exit(EXIT_STORAGE_FAILED)

    def sync(self) -> None:
        """Make everything Raft saved durable; a storage failure ends the process at once.

        After a failed fsync nothing written since can be trusted, and this server must not
        answer anyone again: it exits, and a restart recovers what did reach the disk.
        """
        try:
            self.persister.Sync()
        except StorageError as exc:
            log.critical("server %d: %s", self.me, exc)
            logging.shutdown()
            os._exit(EXIT_STORAGE_FAILED)

    def wait(self) -> None:
        self._stopped.wait()

    def stop(self) -> None:
        """Stop serving, stop Raft, sync and close the data directory."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        try:
            if self.placement is not None:
                self.placement.stop()
            self.etcd.stop()
            self.rpc.stop()
            if self.raft is not None:
                self.raft.Kill()
                self.kv.Kill()
            self.raft_rpcs.shutdown(wait=False, cancel_futures=True)
            for end in self.ends:
                end.Close()
            if self.persister is not None:
                self.persister.Close()
        finally:
            self._stopped.set()


class LongLivedObjects:
    """A gc callback: what survives a collection of generation 1 or 2 leaves the collector's sight.

    A server holds its Raft log and its stores in memory: ~10^6 objects, none in a reference
    cycle, that a full collection walks each time they grow by a quarter: 60-250 ms pauses
    with every request waiting. Frozen (gc.freeze) they are still freed when unreferenced;
    only a cycle formed among them would wait for the full collection that runs every
    FULL_GC_INTERVAL_S (the callback then unfreezes everything until gen 2 has been collected).
    """

    def __init__(self, interval_s: float = FULL_GC_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.last_full = time.monotonic()
        self.sweeping = False

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "stop":
            return
        if info["generation"] == 2:
            self.last_full, self.sweeping = time.monotonic(), False
        if self.sweeping:
            return
        if time.monotonic() - self.last_full > self.interval_s:
            gc.unfreeze()
            self.sweeping = True
        elif info["generation"] >= 1:
            gc.freeze()


def serve(me: int, peers: Sequence[str], data_dir: str, maxraftstate: int = DEFAULT_MAXRAFTSTATE_BYTES,
          faults: bool = False, batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS,
          clients: Sequence[str] | None = None, read_index: bool = True,
          role_placement: bool = False) -> int:
    """Run one server until SIGTERM or SIGINT; the exit status."""
    srv = KubeKVServer(me, peers, data_dir, maxraftstate=maxraftstate, faults=faults,
                       batch_window_ms=batch_window_ms, clients=clients, read_index=read_index,
                       role_placement=role_placement)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=srv.stop, daemon=True).start())
    gc.callbacks.append(LongLivedObjects())
    srv.start()
    print(f"kubekv: server {me} serving on {srv.address}, clients on {srv.client_address} "
          f"(data in {data_dir})", flush=True)
    srv.wait()
    return 0
