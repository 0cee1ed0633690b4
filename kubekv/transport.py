"""The lab's ClientEnd over gRPC: how KubeKV's server processes (and clients) reach each other.

Usage:
    end = PeerEnd("127.0.0.1:7001", me=0, before_send=persister.Sync)
    ok = end.Call("Raft.AppendEntries", args, reply)   # labrpc's contract, over the network
    end.Close()

    server = RpcServer(me=1, after_handler=persister.Sync)
    server.AddService(labrpc.MakeService(raft))    # the lab's own handler lookup and types
    server.AddService(labrpc.MakeService(kv), clients=True)
    server.serve("127.0.0.1:7001")                # binds, or raises AddressInUse
    server.stop()

Two gRPC methods carry every call. /kubekv.Rpc/Call carries one: its request is a msgpack
array [caller, "Svc.Method", labgob bytes of args] and its response [ok, labgob bytes of the
reply or an error message]. /kubekv.Rpc/Batch carries several: [caller, [["Svc.Method", args
bytes], ...]] in, one [ok, payload] per call out. The PeerEnds of a process share one
connection per address; while BATCHES_IN_FLIGHT calls are on the wire, later calls queue and
leave together in one Batch when a slot frees (a gRPC call costs ~0.4 ms of CPU on each side
here, so 32 clients' Puts cost the leader a few calls, not 32). Raft's own calls never queue.
Nothing is unpickled: labgob decodes only registered classes and checks their fields. A caller
that is a peer (caller >= 0) may call the peer services (Raft.*); clients (caller -1) only the
services added with clients=True.

Call keeps labrpc's contract: True only when the handler ran and `reply` now holds its answer;
False on any failure (no server, timeout, a refused call), within CALL_TIMEOUT_S; it never
raises into Raft. Connections are made once and reused; a restarted peer is reached again
within RECONNECT_BACKOFF_MAX_MS.

Durability: before_send runs before a request leaves (the caller's Raft state must be on disk
before a peer can act on it: a vote asked for), except for the methods in unsynced_methods (a
leader's AppendEntries: Raft syncs its own new entries while they travel and counts them only
once synced); after_handler runs after a peer's call returns and before its reply leaves (a
vote granted, entries accepted). A client's call skips it: what a client is told was committed,
so it is on a majority's disks already (a leader counts its own entries only once synced). With
a DurablePersister both are its Sync(), which groups concurrent callers into one fdatasync.

Faults (tests only; the server enables them with faults=True): Control.Block makes the server
refuse calls from, and fail calls to, the peers it names, which is a network partition.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import Any, Callable, Sequence

import grpc
import msgpack

import labgob
import labrpc

log = logging.getLogger("kubekv.transport")

# A call to a dead or partitioned peer gives up after this long; Raft retries on its own clock.
CALL_TIMEOUT_S = 1.0
# Raft's heartbeats are 100 ms apart: a restarted peer is reached again within a second.
RECONNECT_BACKOFF_MAX_MS = 500
RECONNECT_BACKOFF_MIN_MS = 50
# Requests and replies are bounded: an InstallSnapshot of a big state must still fit.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
CLIENT = -1          # the caller id of a client (not a peer)
_METHOD = "/kubekv.Rpc/Call"
_BATCH_METHOD = "/kubekv.Rpc/Batch"
# Calls on the wire at once per connection before the next ones queue and leave together: a
# gRPC call costs ~0.4 ms of CPU on each side here, a queued call in a batch ~1/10 of that.
# With the server's groups (kubekv.groups), 4 let more requests reach each log entry than 2.
BATCHES_IN_FLIGHT = 4
_DIRECT_PREFIX = "Raft."     # the methods that never queue
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MIN_MS),
    ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MIN_MS),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MAX_MS),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_retries", 0),
]


class AddressInUse(OSError):
    """The server's address is taken (another server, or another program)."""


class TransportFaults:
    """The peers this process pretends it cannot reach (a partition a test drives)."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._blocked: frozenset[int] = frozenset()

    def set_blocked(self, peers: Sequence[int]) -> None:
        with self._mu:
            self._blocked = frozenset(int(p) for p in peers)

    def blocked(self, peer: int) -> bool:
        return peer in self._blocked


class _Queued:
    """One call waiting to ride in the next batch: its request item, then its [ok, payload]."""

    __slots__ = ("item", "timeout_s", "done", "result")

    def __init__(self, item: list, timeout_s: float) -> None:
        self.item = item
        self.timeout_s = timeout_s
        self.done = threading.Lock()
        self.done.acquire()        # released once result is set
        self.result: list | None = None


class _Connection:
    """One channel to an address, shared by the PeerEnds of a process that name it.

    Concurrent calls ride together: at most BATCHES_IN_FLIGHT calls are on the wire at once, and
    the calls that arrive meanwhile queue and leave as one Batch when a slot frees. A lone caller
    sends at once, so batching costs nothing without contention.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.users = 0
        self.channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self.call = self.channel.unary_unary(_METHOD)          # bytes in, bytes out
        self.batch = self.channel.unary_unary(_BATCH_METHOD)
        self._mu = threading.Lock()
        self._in_flight = 0
        self._queue: list[_Queued] = []

    def send(self, caller: int, item: list, timeout_s: float) -> list | None:
        """[ok, payload] from the server for item ([svcMeth, args bytes]), or None on failure."""
        with self._mu:
            if self._in_flight >= BATCHES_IN_FLIGHT:
                queued = _Queued(item, timeout_s)
                self._queue.append(queued)
            else:
                queued = None
                self._in_flight += 1
        if queued is not None:
            if not queued.done.acquire(timeout=timeout_s):
                return None            # its batch may still answer: nobody reads it then
            return queued.result
        try:
            return self.send_alone(caller, item, timeout_s)
        finally:
            self._next_batch(caller)

    def send_alone(self, caller: int, item: list, timeout_s: float) -> list | None:
        """send() as one Call of its own, whatever is queued or in flight."""
        try:
            return msgpack.unpackb(self.call(msgpack.packb([caller, *item]), timeout=timeout_s))
        except grpc.RpcError:
            return None                # unreachable, timed out, or the server went away mid-call

    def _next_batch(self, caller: int) -> None:
        """A slot freed: send what queued meanwhile as one Batch, or give the slot back."""
        with self._mu:
            batch, self._queue = self._queue, []
            if not batch:
                self._in_flight -= 1
                return
        request = msgpack.packb([caller, [q.item for q in batch]])
        try:
            future = self.batch.future(request, timeout=max(q.timeout_s for q in batch))
        except (ValueError, RuntimeError):      # the channel was closed meanwhile
            for q in batch:
                q.done.release()                # result None: the call failed
            with self._mu:
                self._in_flight -= 1
            return
        future.add_done_callback(lambda f: self._batch_done(caller, batch, f))

    def _batch_done(self, caller: int, batch: list[_Queued], future: grpc.Future) -> None:
        """gRPC's thread: hand each caller its result, then send the next batch."""
        try:
            results = msgpack.unpackb(future.result())
            if not isinstance(results, list) or len(results) != len(batch):
                raise ValueError(f"{len(batch)} calls, an answer of another shape")
        except grpc.RpcError:
            results = [None] * len(batch)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            log.warning("bad batch reply from %s: %s", self.address, exc)
            results = [None] * len(batch)
        for q, result in zip(batch, results):
            q.result = result
            q.done.release()
        self._next_batch(caller)


_connections: dict[str, _Connection] = {}
_connections_mu = threading.Lock()


def _connect(address: str) -> _Connection:
    with _connections_mu:
        conn = _connections.get(address)
        if conn is None:
            conn = _connections[address] = _Connection(address)
        conn.users += 1
        return conn


def _disconnect(conn: _Connection) -> None:
    with _connections_mu:
        conn.users -= 1
        if conn.users > 0:
            return
        if _connections.get(conn.address) is conn:
            del _connections[conn.address]
    conn.channel.close()


class PeerEnd:
    """A ClientEnd whose Call(svcMeth, args, reply) -> bool goes over gRPC to one address."""

    def __init__(self, address: str, me: int = CLIENT, peer: int = CLIENT,
                 before_send: Callable[[], None] | None = None,
                 faults: TransportFaults | None = None,
                 timeout_s: float = CALL_TIMEOUT_S,
                 unsynced_methods: frozenset[str] = frozenset()) -> None:
        self.address = address
        self.me = me
        self.peer = peer
        self.before_send = before_send
        self.unsynced_methods = unsynced_methods
        self.faults = faults
        self.timeout_s = timeout_s
        self._conn = _connect(address)
        self._closed = False

    def __repr__(self) -> str:
        return f"PeerEnd({self.address})"

    def Call(self, svcMeth: str, args: Any, reply: Any, timeout_s: float | None = None) -> bool:
        """Send an RPC and wait; True means `reply` now holds the server's answer."""
        if self.faults is not None and self.faults.blocked(self.peer):
            return False
        try:
            item = [svcMeth, labgob.dumps(args)]
            if self.before_send is not None and svcMeth not in self.unsynced_methods:
                self.before_send()
            timeout_s = timeout_s or self.timeout_s
            # Raft's own calls never wait behind clients' (a heartbeat must not be late).
            send = self._conn.send_alone if svcMeth.startswith(_DIRECT_PREFIX) else self._conn.send
            result = send(self.me, item, timeout_s)
            if result is None:
                return False
            ok, payload = result
            if not ok:
                log.debug("%s refused %s: %s", self.address, svcMeth, payload)
                return False
            if type(reply) is labrpc.Ref:
                reply.Value = labgob.loads(payload)
            else:
                labgob.loads(payload, into=reply)
            return True
        except (labgob.LabgobError, ValueError, TypeError) as exc:
            log.warning("bad reply to %s from %s: %s", svcMeth, self.address, exc)
            return False

    def Close(self) -> None:
        if not self._closed:
            self._closed = True
            _disconnect(self._conn)


class RpcServer:
    """Serves labrpc services over gRPC to peers and clients of one server process."""

    def __init__(self, me: int, after_handler: Callable[[], None] | None = None,
                 faults: TransportFaults | None = None, max_workers: int = 1024) -> None:
        self.me = me
        self.after_handler = after_handler
        self.faults = faults
        self._services: dict[str, tuple[labrpc.Service, bool]] = {}
        self._stats_mu = threading.Lock()
        self._stats = {"calls": 0, "batches": 0, "batched_calls": 0}
        # Each call holds a thread until it is answered (a write waits for its commit), so
        # the pool is sized for hundreds of concurrent clients: queued calls time out instead.
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                              thread_name_prefix=f"rpc{me}"),
                                   options=_CHANNEL_OPTIONS + [("grpc.so_reuseport", 0)])
        # A batch's calls run side by side (each may wait for its commit): all but one here.
        self._batch_pool = futures.ThreadPoolExecutor(max_workers=max_workers,
                                                      thread_name_prefix=f"batch{me}")
        self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("kubekv.Rpc", {
            "Call": grpc.unary_unary_rpc_method_handler(self._handle),
            "Batch": grpc.unary_unary_rpc_method_handler(self._handle_batch)})])

    def AddService(self, svc: labrpc.Service, clients: bool = False) -> None:
        """Serve svc's handlers to peers, and also to clients when clients is True."""
        self._services[svc.name] = (svc, clients)

    @property
    def grpc_server(self) -> grpc.Server:
        """The gRPC server, for services of its own (added before serve())."""
        return self._server

    def serve(self, *addresses: str) -> None:
        """Listen on every address (e.g. a peer port and a client port) and start serving."""
        for address in dict.fromkeys(addresses):
            try:
                port = self._server.add_insecure_port(address)
            except RuntimeError as exc:
                port, detail = 0, f": {exc}"
            else:
                detail = ""
            if port == 0:
                raise AddressInUse(f"cannot listen on {address}{detail}: the port is in use; is "
                                   "another kubekv server (or another program) using it? Pick "
                                   "other ports (--peers, --clients)")
        self._server.start()

    def stats(self) -> dict[str, int]:
        """calls: requests that came alone; batches, and the calls they carried."""
        with self._stats_mu:
            return dict(self._stats)

    def stop(self, grace_s: float = 0.5) -> None:
        self._server.stop(grace_s).wait()
        self._batch_pool.shutdown(wait=False)

    def _handle(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            caller, svcMeth, args_bytes = msgpack.unpackb(request)
            if not isinstance(caller, int):
                raise ValueError("a request is [caller id, 'Svc.Method', args bytes]")
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            return msgpack.packb([False, f"malformed request: {exc}"])
        self._check_caller(caller, context)
        with self._stats_mu:
            self._stats["calls"] += 1
        result = self._run(caller, svcMeth, args_bytes)
        if result[0] and caller >= 0 and self.after_handler is not None:
            self.after_handler()
        return msgpack.packb(result)

    def _handle_batch(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        """[caller, [[svcMeth, args bytes], ...]] -> [[ok, payload], ...], one per call."""
        try:
            caller, items = msgpack.unpackb(request)
            if not isinstance(caller, int) or not isinstance(items, list) or not items \
                    or not all(isinstance(it, list) and len(it) == 2 for it in items):
                raise ValueError("a batch is [caller id, [['Svc.Method', args bytes], ...]]")
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed batch: {exc}")
        self._check_caller(caller, context)
        with self._stats_mu:
            self._stats["batches"] += 1
            self._stats["batched_calls"] += len(items)
        others = [self._batch_pool.submit(self._run, caller, *it) for it in items[1:]]
        results = [self._run(caller, *items[0])] + [f.result() for f in others]
        if caller >= 0 and self.after_handler is not None and any(ok for ok, _ in results):
            self.after_handler()
        return msgpack.packb(results)

    def _check_caller(self, caller: int, context: grpc.ServicerContext) -> None:
        if caller >= 0 and self.faults is not None and self.faults.blocked(caller):
            context.abort(grpc.StatusCode.UNAVAILABLE, "partitioned")

    def _run(self, caller: int, svcMeth: Any, args_bytes: Any) -> list:
        """[True, reply bytes], or [False, why]: one call's answer."""
        if not isinstance(svcMeth, str) or not isinstance(args_bytes, bytes):
            return [False, "malformed request: a call is ['Svc.Method', args bytes]"]
        try:
            return [True, self._dispatch(caller, svcMeth, args_bytes)]
        except labrpc.LabrpcError as exc:
            return [False, str(exc)]
        except Exception as exc:   # a handler's bug: the caller sees a failed call, we a trace
            log.exception("%s failed", svcMeth)
            return [False, f"{svcMeth} failed: {exc!r}"]

    def _dispatch(self, caller: int, svcMeth: str, args_bytes: bytes) -> bytes:
        """Find, check and run the handler (labrpc's rules), returning the encoded reply."""
        service_name, _, method_name = svcMeth.rpartition(".")
        entry = self._services.get(service_name)
        if entry is None or (caller < 0 and not entry[1]):
            raise labrpc.LabrpcError(f"unknown service {service_name!r} in {svcMeth!r}")
        svc, _ = entry
        fn = svc.methods.get(method_name)
        if fn is None:
            raise labrpc.LabrpcError(f"unknown method {svcMeth!r}")
        args_t, reply_t = svc.types[method_name]
        try:
            args = labgob.loads(args_bytes)
        except labgob.LabgobError as exc:
            raise labrpc.LabrpcError(f"cannot decode the args of {svcMeth}: {exc}") from exc
        if args_t is not None and not isinstance(args, args_t):
            raise labrpc.LabrpcError(f"{svcMeth} takes {args_t.__name__}, got {type(args).__name__}")
        if reply_t is None:
            raise labrpc.LabrpcError(f"{svcMeth}'s reply parameter has no class annotation")
        reply = labgob.zero_instance(reply_t)
        fn(args, reply)
        return labgob.dumps(reply)
