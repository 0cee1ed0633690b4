"""The etcd v3 gRPC API of a KubeKV server: KV, Watch, Lease, Cluster and Maintenance.

Usage (kubekv/server.py does this when the server has etcd on):
    api = EtcdAPI(server)              # server: a started-up KubeKVServer with an MVCCStore
    api.register(grpc_server)          # adds the five etcd services to the gRPC server
    api.start(); ...; api.stop()       # the leader-only lease clock

    etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 put k v

Writes (Put, DeleteRange, Txn, Compact, LeaseGrant, LeaseRevoke) go through the Raft log as
kubekv.etcd.mvcc.EtcdOps. A member that is not the leader forwards them to the leader over the
peer transport (Etcd.Forward), as etcd's members do, so a client may talk to any member.

Reads: Range with serializable=true is served from this member's state at once. A
linearizable Range takes Raft's read_index (commitIndex, on a leader that has committed in its
term), confirms with a round of Control.Status calls that a majority is still in that term,
waits until the state machine has applied commitIndex and reads locally: no log entry and no
fsync (Raft thesis section 6.4). Concurrent reads share one confirmation round. When
read_index is unavailable (a new leader) the read goes through the log instead.

Leases: granted and revoked through the log; the leader alone keeps the clock. It gives each
lease a deadline (granted TTL from when it became leader or from the last keep-alive), and
revokes an expired lease through the log, so every member deletes its keys at the same
revision and watchers see the deletions. Keep-alives and TimeToLive go to the leader.

Watch: each stream's watchers read this member's MVCCStore; events arrive in revision order,
once each, as this member applies them.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import random
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import grpc

import labgob
from kubekv.etcd.mvcc import EtcdError, EtcdOp, MVCCStore, check_request
from kubekv.etcd.pb import etcd_rpc_pb2 as pb
from kubekv.etcd.pb import etcd_rpc_pb2_grpc as pb_grpc
from kvraft1 import rpc

log = logging.getLogger("kubekv.etcd")

# The version Maintenance.Status reports (etcdctl prints it). The wire format follows etcd v3.5;
# Kubernetes asks for watch progress (consistent list from its watch cache) only from 3.5.13 on,
# the release that fixed progress notices overtaking events (etcd #15220), as Watch here does.
ETCD_VERSION = "3.5.13"
# How long a write or a read may look for a leader before the client is told to retry.
LEADER_WAIT_S = 5.0
# rsm.Submit's own bound: a leader that cannot commit in this time waits for the request's result
# only while it keeps its term (a leader cut off in a minority keeps it; it is not asked again).
SUBMIT_TIMEOUT_S = 0.5
# A leader answers a forwarded request within this, before the forwarding member's call times out.
FORWARD_WAIT_S = LEADER_WAIT_S - 1.0
# How often a wait for a request's result looks at the leader's term.
RESULT_POLL_S = 0.05
# How often the leader's lease clock looks at its leases (the finest expiry it resolves).
LEASE_TICK_S = 0.1
# A watch with progress_notify gets an empty response after this long without events (etcd's
# default interval is 10 minutes).
PROGRESS_NOTIFY_S = 600.0
WATCH_POLL_S = 0.5

_REQUEST_TYPES = {
    "put": pb.PutRequest, "delete_range": pb.DeleteRangeRequest, "txn": pb.TxnRequest,
    "compact": pb.CompactionRequest, "range": pb.RangeRequest,
    "lease_grant": pb.LeaseGrantRequest, "lease_revoke": pb.LeaseRevokeRequest,
}
_RESPONSE_TYPES = {
    "put": pb.PutResponse, "delete_range": pb.DeleteRangeResponse, "txn": pb.TxnResponse,
    "compact": pb.CompactionResponse, "range": pb.RangeResponse,
    "lease_grant": pb.LeaseGrantResponse, "lease_revoke": pb.LeaseRevokeResponse,
    "keepalive": pb.LeaseKeepAliveResponse, "timetolive": pb.LeaseTimeToLiveResponse,
}


@dataclass
class ForwardArgs:
    Method: str = ""      # an EtcdOp kind, or "range" (linearizable), "keepalive", "timetolive"
    Body: bytes = b""     # the request message
    Id: int = 0           # the client request's ID: a copy proposed twice is applied once


@dataclass
class ForwardReply:
    Err: str = ""         # rpc.OK, rpc.ErrWrongLeader, or "etcd" (Code/Message hold the error)
    Body: bytes = b""     # the response message
    Code: int = 0         # a grpc.StatusCode's value[0]
    Message: str = ""
    Index: int = 0        # the leader's applied index after the request: the forwarder waits for it


labgob.Register(ForwardArgs)
labgob.Register(ForwardReply)
_CODES = {c.value[0]: c for c in grpc.StatusCode}


def member_id(address: str) -> int:
    """A member's etcd ID: stable, nonzero, from its peer address."""
    return int.from_bytes(hashlib.sha256(address.encode()).digest()[:8], "big") or 1


class _NotLeader(Exception):
    pass


class Etcd:
    """The peer-side handler: a member that is not leader forwards requests here."""

    def __init__(self, api: "EtcdAPI") -> None:
        self._api = api

    def Forward(self, args: ForwardArgs, reply: ForwardReply) -> None:
        try:
            resp = self._api.run_here(args.Method, args.Body, args.Id)
        except _NotLeader:
            reply.Err = rpc.ErrWrongLeader
            return
        except EtcdError as exc:
            reply.Err, reply.Code, reply.Message = "etcd", exc.code.value[0], exc.message
            reply.Index = self._api.server.rsm.last_applied
            return
        reply.Err, reply.Body = rpc.OK, resp.SerializeToString()
        reply.Index = self._api.server.rsm.last_applied


class LeaderCheck:
    """Confirms, for many readers at once, that this leader's term still holds a majority."""

    def __init__(self, api: "EtcdAPI") -> None:
        self._api = api
        self._mu = threading.Lock()
        # Notified when a confirmation round ends (waiters check whether it covered them).
        self._round_done = threading.Condition(self._mu)
        self._started = 0       # rounds started
        self._finished = 0      # the last round finished ...
        self._confirmed = 0     # ... and the term it confirmed (0: none)
        self._running = False
        self._pool = futures.ThreadPoolExecutor(max_workers=max(1, len(api.server.peers) - 1),
                                                thread_name_prefix="leadercheck")

    def confirm(self, term: int) -> bool:
        """True once a round that began after this call found a majority in term."""
        with self._mu:
            need = self._started + 1   # a round that starts from now on covers this call
            while True:
                if self._finished >= need:
                    if self._confirmed == term:
                        return True
                    need = self._started + 1   # that round was for another term: run ours
                if not self._running:
                    self._running = True
                    self._started += 1
                    rnd = self._started
                    break
                self._round_done.wait()
        confirmed = self._round(term)
        with self._mu:
            self._finished, self._confirmed = rnd, term if confirmed else 0
            self._running = False
            self._round_done.notify_all()
        return confirmed

    def _round(self, term: int) -> bool:
        from kubekv.server import StatusArgs, StatusReply
        s = self._api.server
        others = [i for i in range(len(s.peers)) if i != s.me]
        need = len(s.peers) // 2   # the others it takes for a majority with ourselves

        def ask(i: int) -> int:
            reply = StatusReply()
            return reply.Term if s.ends[i].Call("Control.Status", StatusArgs(), reply) else -1

        if need <= 0:
            return True
        votes = 0
        for term_seen in self._pool.map(ask, others):
            if term_seen > term:
                return False
            votes += term_seen == term
        return votes >= need

    def stop(self) -> None:
        self._pool.shutdown(wait=False)


class EtcdAPI:
    """The etcd services of one KubeKV server (see the module docstring)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.cluster_id = member_id(",".join(server.peers))
        self.member_ids = [member_id(a) for a in server.peers]
        self.me_id = self.member_ids[server.me]
        self.leader_check = LeaderCheck(self)
        self.read_index = True   # linearizable reads by ReadIndex; False: through the log
        self._leader_guess = 0
        self._mu = threading.Lock()
        self._deadlines: dict[int, float] = {}   # lease ID -> expiry (monotonic), on the leader
        self._lease_term = -1                    # the term the deadlines were set in
        self._stop = threading.Event()
        self._lease_thread = threading.Thread(target=self._lease_clock, name="etcd-leases", daemon=True)

    @property
    def store(self) -> MVCCStore:
        return self.server.mvcc

    def ready(self, context: grpc.ServicerContext) -> None:
        """Abort a call that arrives while the server is still recovering its state."""
        if self.server.raft is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "etcdserver: not ready yet (recovering)")

    def register(self, grpc_server: grpc.Server) -> None:
        """Add the etcd services; before the gRPC server starts (gRPC's rule)."""
        pb_grpc.add_KVServicer_to_server(_KV(self), grpc_server)
        pb_grpc.add_WatchServicer_to_server(_Watch(self), grpc_server)
        pb_grpc.add_LeaseServicer_to_server(_Lease(self), grpc_server)
        pb_grpc.add_ClusterServicer_to_server(_Cluster(self), grpc_server)
        pb_grpc.add_MaintenanceServicer_to_server(_Maintenance(self), grpc_server)

    def start(self) -> None:
        self._lease_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.leader_check.stop()

    # -- headers ----------------------------------------------------------------------------

    def header(self, revision: int | None = None) -> pb.ResponseHeader:
        term, _ = self.server.raft.GetState()
        return pb.ResponseHeader(cluster_id=self.cluster_id, member_id=self.me_id,
                                 revision=self.store.revision if revision is None else revision,
                                 raft_term=term)

    def _stamp(self, resp: Any) -> Any:
        h = resp.header
        h.cluster_id, h.member_id = self.cluster_id, self.me_id
        h.raft_term = self.server.raft.GetState()[0]
        if not h.revision:
            h.revision = self.store.revision
        return resp

    # -- running a request where it can run ---------------------------------------------------

    def call(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        """Run request here if this member leads, else on the leader; abort as etcd would."""
        self.ready(context)
        try:
            check_request(method, request)   # as etcd: a bad request never reaches the log
        except EtcdError as exc:
            context.abort(exc.code, exc.message)
        deadline = time.monotonic() + LEADER_WAIT_S
        body = request.SerializeToString()
        # One ID for every copy this loop may propose (after a timeout, on another leader): the
        # store applies the request once and answers later copies with its first result.
        op_id = random.getrandbits(63) or 1
        while True:
            try:
                return self._stamp(self.run_here(method, body, op_id, deadline))
            except EtcdError as exc:
                context.abort(exc.code, exc.message)
            except _NotLeader:
                pass
            resp = self._forward(method, body, op_id, context)
            if resp is not None:
                return self._stamp(resp)
            if time.monotonic() > deadline or not context.is_active():
                context.abort(grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
            time.sleep(0.02)

    def _forward(self, method: str, body: bytes, op_id: int, context: grpc.ServicerContext) -> Any:
        """The leader's response, once this member has applied as far (etcd answers so too:
        a client's next serializable read here sees its write); None if no leader answered."""
        s = self.server
        n = len(s.peers)
        known = s.raft.leader_id
        start = known if known is not None else self._leader_guess
        for k in range(n):
            i = (start + k) % n
            if i == s.me:
                continue
            reply = ForwardReply()
            if not s.ends[i].Call("Etcd.Forward", ForwardArgs(Method=method, Body=body, Id=op_id), reply,
                                  timeout_s=LEADER_WAIT_S):
                continue
            if reply.Err in (rpc.OK, "etcd"):
                self._leader_guess = i
                s.rsm.wait_applied(reply.Index, LEADER_WAIT_S)
            if reply.Err == rpc.OK:
                return _RESPONSE_TYPES[method].FromString(reply.Body)
            if reply.Err == "etcd":
                context.abort(_CODES.get(reply.Code, grpc.StatusCode.UNKNOWN), reply.Message)
        return None

    def run_here(self, method: str, body: bytes, op_id: int = 0, deadline: float | None = None) -> Any:
        """Run a request on this member as leader, by deadline; raises _NotLeader or EtcdError."""
        s = self.server
        if not s.raft.GetState()[1]:
            raise _NotLeader()
        if method == "range":
            return self._linearizable_range(pb.RangeRequest.FromString(body), op_id, deadline)
        if method == "keepalive":
            return self._keepalive(pb.LeaseKeepAliveRequest.FromString(body))
        if method == "timetolive":
            return self._time_to_live(pb.LeaseTimeToLiveRequest.FromString(body))
        if method not in _REQUEST_TYPES:
            raise EtcdError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown request {method!r}")
        return self._submit(method, body, op_id, deadline)

    def _submit(self, kind: str, body: bytes, op_id: int = 0, deadline: float | None = None) -> Any:
        term, _ = self.server.raft.GetState()
        err, result = self.server.groups.Submit(EtcdOp(Kind=kind, Body=body, Id=op_id), timeout=SUBMIT_TIMEOUT_S)
        if err != rpc.OK:
            if not op_id:
                raise _NotLeader()
            result = self._await_result(op_id, term, deadline or time.monotonic() + FORWARD_WAIT_S)
        if isinstance(result, EtcdError):
            raise result
        return result

    def _await_result(self, op_id: int, term: int, deadline: float) -> Any:
        """The result of a request that did not commit within SUBMIT_TIMEOUT_S, once it does.

        While this member still leads the term it proposed the request in, the entry is in its
        log and may yet commit: wait for it. Giving up instead sent the client's member looking
        for another leader, found none, and proposed the request again: under overload, more
        load, and after LEADER_WAIT_S a "no leader" error.
        """
        while time.monotonic() < deadline:
            now_term, leader = self.server.raft.GetState()
            if not leader or now_term != term:
                break
            done, result = self.store.result_of(op_id, RESULT_POLL_S)
            if done:
                return result
        raise _NotLeader()

    def _linearizable_range(self, req: pb.RangeRequest, op_id: int = 0, deadline: float | None = None) -> Any:
        s = self.server
        ri = s.raft.read_index() if self.read_index else None
        if ri is None:   # no commit of this term yet (or told to): through the log
            return self._submit("range", req.SerializeToString(), op_id, deadline)
        index, term = ri
        if not self.leader_check.confirm(term):
            raise _NotLeader()
        if not s.rsm.wait_applied(index, SUBMIT_TIMEOUT_S):
            raise _NotLeader()
        return self.store.range(req)

    # -- leases (on the leader) ---------------------------------------------------------------

    def _lease_clock(self) -> None:
        while not self._stop.wait(LEASE_TICK_S):
            term, leader = self.server.raft.GetState()
            now = time.monotonic()
            expired = []
            with self._mu:
                if not leader:
                    self._deadlines.clear()
                    self._lease_term = -1
                    continue
                if term != self._lease_term:   # a new leader gives every lease its full TTL
                    self._deadlines.clear()
                    self._lease_term = term
                live = set(self.store.lease_ids())
                for lid in list(self._deadlines):
                    if lid not in live:
                        del self._deadlines[lid]
                for lid in live:
                    if lid not in self._deadlines:
                        info = self.store.lease(lid)
                        if info is not None:
                            self._deadlines[lid] = now + info[0]
                    elif self._deadlines[lid] <= now:
                        expired.append(lid)
            for lid in expired:
                try:
                    self._submit("lease_revoke", pb.LeaseRevokeRequest(ID=lid).SerializeToString())
                    log.info("lease %x expired: revoked", lid)
                except (EtcdError, _NotLeader):
                    pass   # revoked meanwhile, or no longer leader: the next tick decides

    def _keepalive(self, req: pb.LeaseKeepAliveRequest) -> Any:
        info = self.store.lease(req.ID)
        if info is None:
            return pb.LeaseKeepAliveResponse(ID=req.ID, TTL=0)
        with self._mu:
            self._deadlines[req.ID] = time.monotonic() + info[0]
        return pb.LeaseKeepAliveResponse(ID=req.ID, TTL=info[0])

    def _time_to_live(self, req: pb.LeaseTimeToLiveRequest) -> Any:
        info = self.store.lease(req.ID)
        if info is None:
            return pb.LeaseTimeToLiveResponse(ID=req.ID, TTL=-1)
        granted, keys = info
        with self._mu:
            deadline = self._deadlines.get(req.ID, time.monotonic() + granted)
        remaining = max(0, int(round(deadline - time.monotonic())))
        return pb.LeaseTimeToLiveResponse(ID=req.ID, TTL=remaining, grantedTTL=granted,
                                          keys=keys if req.keys else [])


def _aborting(fn: Callable) -> Callable:
    """A servicer method: turn EtcdError into the gRPC status etcd gives."""
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except EtcdError as exc:
            context.abort(exc.code, exc.message)
    wrapper.__name__ = fn.__name__
    return wrapper


class _KV(pb_grpc.KVServicer):
    def __init__(self, api: EtcdAPI) -> None:
        self.api = api

    @_aborting
    def Range(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.api.ready(context)
        if request.serializable:
            return self.api._stamp(self.api.store.range(request))
        return self.api.call("range", request, context)

    def Put(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.api.call("put", request, context)

    def DeleteRange(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.api.call("delete_range", request, context)

    def Txn(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.api.call("txn", request, context)

    def Compact(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.api.call("compact", request, context)


class _Watch(pb_grpc.WatchServicer):
    def __init__(self, api: EtcdAPI) -> None:
        self.api = api

    def Watch(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        """One watch stream: every response is yielded here, by one thread, in a safe order.

        A thread reads the client's requests into a queue; this loop runs them in order, then
        hands out each watcher's new events, then the progress notices. A notice reports a
        revision only once every event up to it has been yielded (etcd #15220): a watcher's
        periodic notice (progress_notify) its own synced revision, the stream's requested one
        (progress_request) the lowest over its watchers, and it waits while any has events queued.
        """
        api = self.api
        api.ready(context)
        requests: queue.SimpleQueue = queue.SimpleQueue()
        wake = threading.Event()

        def reader() -> None:
            try:
                for req in request_iterator:
                    requests.put(req)
                    wake.set()
            except grpc.RpcError:
                pass
            finally:
                requests.put(None)
                wake.set()

        threading.Thread(target=reader, name="watch-reader", daemon=True).start()
        watchers: dict[int, Any] = {}
        progress_due: dict[int, float] = {}   # progress_notify watchers: when a notice is due
        progress_asked = False                # a progress_request awaits its answer
        ids = iter(range(1, 1 << 62))
        try:
            while context.is_active():
                wake.wait(WATCH_POLL_S)
                wake.clear()
                while True:
                    try:
                        req = requests.get_nowait()
                    except queue.Empty:
                        break
                    if req is None:
                        return
                    kind = req.WhichOneof("request_union")
                    if kind == "create_request":
                        c = req.create_request
                        wid = c.watch_id if c.watch_id else next(ids)
                        if wid in watchers:
                            yield pb.WatchResponse(header=api.header(), watch_id=wid, canceled=True,
                                                   cancel_reason="etcdserver: duplicate watch ID")
                            continue
                        watchers[wid] = api.store.watch(c.key, c.range_end, c.start_revision, c.prev_kv,
                                                        list(c.filters), wake=wake.set)
                        if c.progress_notify:
                            progress_due[wid] = time.monotonic() + PROGRESS_NOTIFY_S
                        yield pb.WatchResponse(header=api.header(), watch_id=wid, created=True)
                    elif kind == "cancel_request":
                        wid = req.cancel_request.watch_id
                        w = watchers.pop(wid, None)
                        progress_due.pop(wid, None)
                        if w is not None:
                            w.cancel()
                            yield pb.WatchResponse(header=api.header(), watch_id=wid, canceled=True)
                    elif kind == "progress_request":
                        progress_asked = True
                for wid, w in list(watchers.items()):
                    events, compact = w.get(0)
                    if compact:
                        del watchers[wid]
                        progress_due.pop(wid, None)
                        yield pb.WatchResponse(
                            header=api.header(), watch_id=wid, canceled=True, compact_revision=compact,
                            cancel_reason="etcdserver: mvcc: required revision has been compacted")
                    elif events:
                        yield pb.WatchResponse(header=api.header(max(e.kv.mod_revision for e in events)),
                                               watch_id=wid, events=events)
                        if wid in progress_due:
                            progress_due[wid] = time.monotonic() + PROGRESS_NOTIFY_S
                now = time.monotonic()
                for wid, due in list(progress_due.items()):
                    rev = watchers[wid].synced_revision() if due <= now else None
                    if rev is not None:
                        yield pb.WatchResponse(header=api.header(rev), watch_id=wid)
                        progress_due[wid] = now + PROGRESS_NOTIFY_S
                if progress_asked:
                    revs = [w.synced_revision() for w in watchers.values()]
                    if None not in revs:   # else events wait: they go first, the notice next time
                        yield pb.WatchResponse(header=api.header(min(revs, default=api.store.revision)),
                                               watch_id=-1)
                        progress_asked = False
        finally:
            for w in watchers.values():
                w.cancel()
            watchers.clear()


class _Lease(pb_grpc.LeaseServicer):
    def __init__(self, api: EtcdAPI) -> None:
        self.api = api

    def LeaseGrant(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.ID == 0:   # chosen here, so that every replica applies the same ID
            request = pb.LeaseGrantRequest(TTL=request.TTL, ID=random.getrandbits(62) + 1)
        return self.api.call("lease_grant", request, context)

    def LeaseRevoke(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.api.call("lease_revoke", request, context)

    def LeaseKeepAlive(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for req in request_iterator:
            yield self.api.call("keepalive", req, context)

    def LeaseTimeToLive(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.api.call("timetolive", request, context)

    def LeaseLeases(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.api.ready(context)
        return pb.LeaseLeasesResponse(header=self.api.header(),
                                      leases=[pb.LeaseStatus(ID=i) for i in self.api.store.lease_ids()])


class _Cluster(pb_grpc.ClusterServicer):
    def __init__(self, api: EtcdAPI) -> None:
        self.api = api

    def MemberList(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.api.ready(context)
        s = self.api.server
        members = [pb.Member(ID=self.api.member_ids[i], name=f"kubekv-{i}",
                             peerURLs=[f"http://{s.peers[i]}"], clientURLs=[f"http://{s.clients[i]}"])
                   for i in range(len(s.peers))]
        return pb.MemberListResponse(header=self.api.header(), members=members)


class _Maintenance(pb_grpc.MaintenanceServicer):
    def __init__(self, api: EtcdAPI) -> None:
        self.api = api

    def Status(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.api.ready(context)
        s = self.api.server
        term, leader = s.raft.GetState()
        known = s.raft.leader_id
        leader_id = self.api.member_ids[known] if known is not None else 0
        size = s.persister.RaftStateSize() + s.persister.SnapshotSize()
        return pb.StatusResponse(header=self.api.header(), version=ETCD_VERSION, dbSize=size,
                                 dbSizeInUse=size, leader=leader_id, raftIndex=s.rsm.last_applied,
                                 raftTerm=term, raftAppliedIndex=s.rsm.last_applied)

    def Alarm(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.api.ready(context)
        return pb.AlarmResponse(header=self.api.header())
