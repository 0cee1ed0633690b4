"""The etcd v3 key/value state machine: an MVCC store with leases and watchers, replicated by rsm.

Usage (the server submits EtcdOps through the Raft log; every replica applies them in order):

    store = MVCCStore()
    rsm = MakeRSM(servers, me, persister, maxraftstate, store)
    op = EtcdOp(Kind="put", Body=pb.PutRequest(key=b"k", value=b"v").SerializeToString())
    err, resp = rsm.Submit(op)          # resp: a PutResponse, or an EtcdError (returned, not raised)

    store.range(pb.RangeRequest(key=b"k"))        # a local (serializable) read; raises EtcdError
    store.revision, store.compact_revision
    store.lease_ids(); store.lease(lease_id)      # -> (granted TTL, [keys]) or None
    w = store.watch(b"k", b"", 0, prev_kv=False, filters=())
    events, compact_revision = w.get(timeout=1.0)  # [] on timeout; compact_revision > 0: ended
    w.cancel()

Kinds and their Body (an etcdserverpb message, serialized): "put" PutRequest, "delete_range"
DeleteRangeRequest, "txn" TxnRequest, "compact" CompactionRequest, "range" RangeRequest,
"lease_grant" LeaseGrantRequest, "lease_revoke" LeaseRevokeRequest. DoOp answers with the matching
response, header.revision set (the other header fields are the gRPC layer's), or an EtcdError.

Semantics follow etcd v3.5 (server/mvcc/kvstore_txn.go, server/etcdserver/apply.go,
server/etcdserver/api/v3rpc/key.go, server/lease/lessor.go, server/mvcc/watchable_store.go):
an empty store is at revision 1; each write transaction that changes something adds one
revision, its changes numbered by sub-revision; a Txn's compares and nested paths are decided on
the state before its writes; the checks etcd's gRPC layer makes before proposing (empty key,
duplicate keys in a txn, too many ops: check_request, which the server runs before proposing) are
made here again, since the Body may come from anywhere.
Lease expiry is not decided here: the leader submits a LeaseRevoke when a lease runs out.

State: per key a list of records (main rev, sub rev, create rev, version, value, lease), version 0
marking a deletion, kept until compaction; a sorted list of keys for range scans; leases with
their granted TTL and attached keys. Snapshot() is msgpack of exactly that, the keys' histories
in chunks; SnapshotLater() copies the state at once and encodes it later (see rsm.rsm).
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import grpc
import msgpack

import labgob
from kubekv.etcd.pb import etcd_kv_pb2 as mvccpb
from kubekv.etcd.pb import etcd_rpc_pb2 as pb
from rsm.rsm import StateMachine

# etcd's --max-txn-ops default: the most compares, or ops in one branch, of a Txn.
MAX_TXN_OPS = 128
# How many request IDs (and their results) the store remembers to answer a retried request.
DEDUP_ENTRIES = 10_000
# lease.MaxLeaseTTL: about 285 years.
MAX_LEASE_TTL_S = 9_000_000_000
# etcd raises a short TTL to ceil(1.5 election timeouts) (server.go: minTTL), so a lease outlives
# the failover after which a new leader gives it a fresh TTL. With our Raft (elections after
# 250-450 ms) that formula gives 1 s, too short for a Python cluster on a busy machine, where a
# keep-alive can also wait out a commit timeout and a retry at another member: take 5 s.
MIN_LEASE_TTL_S = 5
# Keys per msgpack call when a snapshot is encoded: each call holds the GIL (~2 ms for 1,000
# keys), so the threads serving requests run between chunks.
SNAPSHOT_CHUNK_KEYS = 1000

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_STATUS_BY_VALUE = {c.value[0]: c for c in grpc.StatusCode}
_OUT_OF_RANGE = grpc.StatusCode.OUT_OF_RANGE


@dataclass
class EtcdOp:
    """One etcd request as it travels through the Raft log: its kind and its serialized message."""

    Kind: str = ""
    Body: bytes = b""
    # The client request's ID (0: none). A request proposed again after a timeout or a lost
    # reply may commit twice; the store answers the second copy with the first one's result.
    Id: int = 0


labgob.Register(EtcdOp)


class EtcdError(Exception):
    """A request etcd refuses: the gRPC status code and etcd's exact error string."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EtcdError) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"EtcdError({self.code}, {self.message!r})"


# api/v3rpc/rpctypes/error.go (the strings and codes a client sees).
def _err_empty_key() -> EtcdError:
    return EtcdError(_INVALID, "etcdserver: key is not provided")


def _err_key_not_found() -> EtcdError:
    return EtcdError(_INVALID, "etcdserver: key not found")


def _err_compacted() -> EtcdError:
    return EtcdError(_OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")


def _err_future_rev() -> EtcdError:
    return EtcdError(_OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")


def _err_lease_not_found() -> EtcdError:
    return EtcdError(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")


def _err_duplicate_key() -> EtcdError:
    return EtcdError(_INVALID, "etcdserver: duplicate key given in txn request")


class _Rec(NamedTuple):
    """One version of one key; version 0 is a deletion (a tombstone: no value, lease, create)."""

    main: int
    sub: int
    create: int
    version: int
    value: bytes
    lease: int


def _main_of(rec: _Rec) -> int:
    return rec.main


def _kv(key: bytes, rec: _Rec) -> mvccpb.KeyValue:
    return mvccpb.KeyValue(key=key, create_revision=rec.create, mod_revision=rec.main,
                           version=rec.version, value=rec.value, lease=rec.lease)


def _header(revision: int) -> pb.ResponseHeader:
    return pb.ResponseHeader(revision=revision)


class _Write:
    """One write transaction in progress: changes so far (each at main = begin + 1) and their undo."""

    __slots__ = ("begin", "changes", "undo")

    def __init__(self, begin: int) -> None:
        self.begin = begin
        self.changes: list[tuple[bytes, _Rec]] = []
        self.undo: list[Callable[[], Any]] = []

    @property
    def rev(self) -> int:
        """The revision reads inside the txn see (etcd storeTxnWrite.Range)."""
        return self.begin + 1 if self.changes else self.begin


class _Path(NamedTuple):
    """compareToPath's outcome for one (possibly nested) Txn: the branch, then its nested Txns'."""

    ok: bool
    children: list


class Watcher:
    """Events for a key or range, in revision order, each once; see MVCCStore.watch.

    The buffer is unbounded, so a watcher that is read slowly never stalls the apply thread; it
    costs memory instead, until a compaction past its oldest unread event ends it.
    """

    def __init__(self, store: "MVCCStore", wid: int, key: bytes, range_end: bytes, prev_kv: bool,
                 filters: Sequence[int], wake: Callable[[], None] | None = None) -> None:
        self._store = store
        self._id = wid
        # Notified when events arrive or the watcher ends; wake (if given) is called then too,
        # with the store's lock held, so it must only set a flag (threading.Event.set).
        self._cond = threading.Condition(store._mu)
        self._wake = wake
        self.key = key
        self.range_end = range_end
        self.prev_kv = prev_kv
        self._noput = pb.WatchCreateRequest.NOPUT in filters
        self._nodelete = pb.WatchCreateRequest.NODELETE in filters
        self._next = 0          # the next revision whose events this watcher takes
        self._events: list[mvccpb.Event] = []
        self._compact = 0       # > 0 once ended by compaction
        self._ended = False

    def get(self, timeout: float | None = None) -> tuple[list[mvccpb.Event], int]:
        """The events buffered so far (waiting up to timeout for one) and the compact revision.

        compact_revision > 0 means the watcher has ended: the revisions it still needed were
        compacted away (etcd's WatchResponse.compact_revision); no events come with it.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._events or self._ended, timeout)
            events, self._events = self._events, []
            return events, self._compact

    def synced_revision(self) -> int | None:
        """The revision through which get() has handed out every event, or None while events
        wait in the buffer (or the watcher has ended): what a progress notice may report.

        Events arrive in revision order, so once the buffer is empty every event before the
        next revision this watcher takes has been handed out (etcd #15220: a progress notice
        must never overtake events it claims were sent).
        """
        with self._cond:
            if self._events or self._ended:
                return None
            return min(self._next - 1, self._store._rev)

    def cancel(self) -> None:
        """Stop watching; a pending or later get() returns at once with no events."""
        with self._cond:
            self._store._watchers.pop(self._id, None)
            self._ended = True
            self._events = []
            self._signal()

    @property
    def ended(self) -> bool:
        """True once cancelled or compacted."""
        with self._cond:
            return self._ended

    # -- called by the store, its lock held --------------------------------------------------

    def _matches(self, key: bytes) -> bool:
        end = self.range_end
        if not end:
            return key == self.key
        if end == b"\0":
            return key >= self.key
        return self.key <= key < end

    def _wants(self, rec: _Rec) -> bool:
        return not (self._nodelete if rec.version == 0 else self._noput)

    def _oldest(self) -> int:
        """The revision of the first event this watcher has yet to hand out."""
        return self._events[0].kv.mod_revision if self._events else self._next

    def _end_compacted(self, compact: int) -> None:
        self._store._watchers.pop(self._id, None)
        self._ended = True
        self._events = []
        self._compact = compact
        self._signal()

    def _signal(self) -> None:
        self._cond.notify_all()
        if self._wake is not None:
            self._wake()


class MVCCStore(StateMachine):
    """etcd's MVCC key/value store with leases and watchers, as an rsm StateMachine.

    DoOp runs on the rsm's apply thread; range, revision, compact_revision, lease_ids, lease and
    watch may be called from any thread. One lock guards everything and is never held while
    calling out of this module.
    """

    def __init__(self) -> None:
        self._mu = threading.Lock()
        # Notified when a request with an Id has been applied (result_of's waiters).
        self._done_cond = threading.Condition(self._mu)
        self._watchers: dict[int, Watcher] = {}
        self._watcher_ids = 0
        self._reset()

    def _reset(self) -> None:
        # Results of the last DEDUP_ENTRIES requests that had an Id, oldest first.
        self._done: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self._rev = 1
        # etcd's compactMainRev starts at -1 ("never compacted"): Compact(0) then succeeds.
        self._compact = -1
        self._hist: dict[bytes, list[_Rec]] = {}
        # Every key with a record, sorted: range scans bisect it. A new key costs an O(n) insert,
        # fine at this store's scale (a balanced tree would be the fix beyond ~10^6 keys).
        self._keys: list[bytes] = []
        self._leases: dict[int, tuple[int, set[bytes]]] = {}   # id -> (granted TTL, keys)

    # -- StateMachine ----------------------------------------------------------------------------

    def DoOp(self, op: Any) -> Any:
        """Apply one EtcdOp; returns its response message or an EtcdError (never raises)."""
        if not isinstance(op, EtcdOp):
            return EtcdError(_INVALID, f"etcdserver: expected an EtcdOp, got {type(op).__name__}")
        entry = _KINDS.get(op.Kind) if isinstance(op.Kind, str) else None
        if entry is None:
            return EtcdError(_INVALID, f"etcdserver: unknown request kind {op.Kind!r}")
        msg_class, method = entry
        op_id = op.Id if isinstance(op.Id, int) and not isinstance(op.Id, bool) else 0
        if op_id:
            with self._mu:
                if op_id in self._done:
                    return self._done[op_id]
        result = self._apply(op, msg_class, method)
        if op_id:
            with self._mu:
                self._done[op_id] = result
                while len(self._done) > DEDUP_ENTRIES:
                    self._done.popitem(last=False)
                self._done_cond.notify_all()
        return result

    def result_of(self, op_id: int, timeout: float) -> tuple[bool, Any]:
        """(True, its result) once the request with this Id has been applied, waiting up to
        timeout; (False, None) if not by then (or it is too old to be remembered)."""
        with self._mu:
            if not self._done_cond.wait_for(lambda: op_id in self._done, timeout):
                return False, None
            return True, self._done[op_id]

    def _apply(self, op: EtcdOp, msg_class: Any, method: Any) -> Any:
        if not isinstance(op.Body, (bytes, bytearray, memoryview)):
            return EtcdError(_INVALID, f"etcdserver: {op.Kind} body is a {type(op.Body).__name__}, not bytes")
        try:
            req = msg_class.FromString(bytes(op.Body))
        except Exception as exc:   # DecodeError (also for nesting beyond protobuf's limit)
            return EtcdError(_INVALID, f"etcdserver: malformed {msg_class.__name__}: {exc}")
        with self._mu:
            w = _Write(self._rev)
            try:
                resp = method(self, req, w)
            except EtcdError as exc:
                self._rollback(w)
                return exc
            except Exception as exc:   # a bug: keep the store as it was, on every replica alike
                self._rollback(w)
                return EtcdError(grpc.StatusCode.INTERNAL, f"etcdserver: {op.Kind}: {type(exc).__name__}: {exc}")
            if w.changes:
                self._rev += 1
                self._notify(w)
            return resp

    def Snapshot(self) -> bytes:
        """msgpack of the whole state: revisions, every key's history, leases, recent results."""
        return self.SnapshotLater()()

    def SnapshotLater(self) -> Callable[[], bytes]:
        """Snapshot() in two steps: copy the state now (O(keys), under the lock), and encode the
        copy when the returned function runs, on any thread, whatever was applied meanwhile."""
        with self._mu:
            # A key's list only grows between applies (compaction makes a new one), so its
            # length now bounds what the snapshot holds: no copy of 10^5 lists, no GC pass.
            hist, keys = dict(self._hist), list(self._keys)
            lengths = list(map(len, map(hist.__getitem__, keys)))
            leases = [[lid, ttl] for lid, (ttl, _) in sorted(self._leases.items())]
            done = list(self._done.items())
            head = {"v": 2, "rev": self._rev, "compact": self._compact, "leases": leases}

        def encode() -> bytes:
            chunks = []
            for i in range(0, len(keys), SNAPSHOT_CHUNK_KEYS):
                # Records pack as they are (tuples as arrays), tombstones too: half the time
                # of shortening each tombstone to [main, sub] in Python (format 1 did).
                chunk = [[key, hist[key][:n]] for key, n in zip(keys[i:i + SNAPSHOT_CHUNK_KEYS],
                                                                lengths[i:i + SNAPSHOT_CHUNK_KEYS])]
                chunks.append(msgpack.packb(chunk, use_bin_type=True))
                time.sleep(0)   # give the GIL away now, not after the 5 ms switch interval
            results = [[i, r.code.value[0], r.message] if isinstance(r, EtcdError)
                       else [i, type(r).__name__, r.SerializeToString()] for i, r in done]
            return msgpack.packb({**head, "done": results, "chunks": chunks}, use_bin_type=True)
        return encode

    def Restore(self, data: bytes) -> None:
        """Replace the state by a Snapshot() (b"": an empty store); watchers catch up from it.

        Raises ValueError for data that is not such a snapshot, leaving the state as it was.
        """
        fresh = MVCCStore()
        if data:
            try:
                fresh._load(msgpack.unpackb(data, raw=False))
            except Exception as exc:
                raise ValueError(f"MVCCStore.Restore: not an MVCCStore snapshot ({exc})") from exc
        with self._mu:
            self._rev, self._compact = fresh._rev, fresh._compact
            self._hist, self._keys, self._leases = fresh._hist, fresh._keys, fresh._leases
            self._done = fresh._done
            self._resync_watchers()

    def _load(self, state: dict) -> None:
        if state["v"] not in (1, 2):
            raise ValueError(f"snapshot format {state['v']!r}")
        self._rev = int(state["rev"])
        self._compact = int(state["compact"])
        self._leases = {int(lid): (int(ttl), set()) for lid, ttl in state["leases"]}
        for op_id, what, body in state.get("done", []):
            if isinstance(what, int):
                self._done[int(op_id)] = EtcdError(_STATUS_BY_VALUE[what], str(body))
            else:
                cls = getattr(pb, what) if what.endswith("Response") else None
                if cls is None:
                    raise ValueError(f"unknown response type {what!r}")
                self._done[int(op_id)] = cls.FromString(bytes(body))
        # Format 1 (kubekv 2 data directories) lists the keys whole, format 2 in chunks.
        keys = state["keys"] if state["v"] == 1 else \
            (kr for chunk in state["chunks"] for kr in msgpack.unpackb(chunk, raw=False))
        for key, recs in keys:
            hist = []
            for r in recs:
                if len(r) == 2:
                    hist.append(_Rec(int(r[0]), int(r[1]), 0, 0, b"", 0))
                else:
                    hist.append(_Rec(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bytes(r[4]), int(r[5])))
            key = bytes(key)
            self._hist[key] = hist
            self._keys.append(key)
            last = hist[-1]
            # A key's lease is in its live record: the leases' key sets follow from them.
            if last.version and last.lease in self._leases:
                self._leases[last.lease][1].add(key)
        self._keys.sort()

    # -- thread-safe views for the gRPC layer -----------------------------------------------------

    def range(self, req: pb.RangeRequest) -> pb.RangeResponse:
        """A read of this replica's state (a serializable Range); raises EtcdError."""
        if not req.key:
            raise _err_empty_key()
        with self._mu:
            return self._range(req, self._rev)

    @property
    def revision(self) -> int:
        """The revision of the last write (1 for an empty store)."""
        with self._mu:
            return self._rev

    @property
    def compact_revision(self) -> int:
        """The revision of the last compaction, 0 if none (etcd's -1 for "never")."""
        with self._mu:
            return max(self._compact, 0)

    def lease_ids(self) -> list[int]:
        """The IDs of the leases granted and not revoked, sorted."""
        with self._mu:
            return sorted(self._leases)

    def lease(self, lease_id: int) -> tuple[int, list[bytes]] | None:
        """(granted TTL in seconds, the attached keys sorted) or None for an unknown lease."""
        with self._mu:
            entry = self._leases.get(lease_id)
            return None if entry is None else (entry[0], sorted(entry[1]))

    def watch(self, key: bytes, range_end: bytes, start_revision: int, prev_kv: bool = False,
              filters: Sequence[int] = (), wake: Callable[[], None] | None = None) -> Watcher:
        """A Watcher of key (range_end as in Range) from start_revision on; wake() is called
        (store lock held: set a flag, no more) whenever it has something new for get().

        start_revision <= 0: from the next revision; a revision still in history: replays from
        there, then live; below the compact revision: the watcher has already ended, reporting
        the compact revision; beyond the current revision: from that revision when it comes.
        """
        with self._mu:
            self._watcher_ids += 1
            w = Watcher(self, self._watcher_ids, bytes(key), bytes(range_end), bool(prev_kv), list(filters),
                        wake)
            if start_revision <= 0 or start_revision > self._rev:
                w._next = max(start_revision, self._rev + 1)
            elif start_revision < self._compact:
                w._ended = True
                w._compact = self._compact
                return w
            else:
                w._events = self._history_events(w, start_revision)
                w._next = self._rev + 1
            self._watchers[w._id] = w
            return w

    # -- reads (lock held) ------------------------------------------------------------------------

    def _at(self, key: bytes, rev: int) -> _Rec | None:
        """key's live record as of revision rev, or None (absent or deleted then)."""
        recs = self._hist.get(key)
        if not recs:
            return None
        rec = recs[-1]
        if rec.main > rev:
            i = bisect.bisect_right(recs, rev, key=_main_of)
            if i == 0:
                return None
            rec = recs[i - 1]
        return rec if rec.version else None

    def _keys_in(self, key: bytes, range_end: bytes) -> list[bytes]:
        """The keys with history in etcd's range: one key, [key, end), or >= key (end b"\\0")."""
        if not range_end:
            return [key] if key in self._hist else []
        lo = bisect.bisect_left(self._keys, key)
        if range_end == b"\0":
            return self._keys[lo:]
        hi = bisect.bisect_left(self._keys, range_end)
        return self._keys[lo:hi]

    def _range(self, r: pb.RangeRequest, cur: int) -> pb.RangeResponse:
        """applierV3backend.Range over mvcc rangeKeys, reading as of cur (the txn's revision)."""
        rev = r.revision
        if rev > cur:
            raise _err_future_rev()
        if rev <= 0:
            rev = cur
        if rev < self._compact:
            raise _err_compacted()
        found = []
        for key in self._keys_in(r.key, r.range_end):
            rec = self._at(key, rev)
            if rec is not None:
                found.append((key, rec))
        resp = pb.RangeResponse(header=_header(cur), count=len(found))
        if r.count_only:
            return resp
        if r.max_mod_revision:
            found = [f for f in found if f[1].main <= r.max_mod_revision]
        if r.min_mod_revision:
            found = [f for f in found if f[1].main >= r.min_mod_revision]
        if r.max_create_revision:
            found = [f for f in found if f[1].create <= r.max_create_revision]
        if r.min_create_revision:
            found = [f for f in found if f[1].create >= r.min_create_revision]
        order, target = r.sort_order, r.sort_target
        if target != pb.RangeRequest.KEY and order == pb.RangeRequest.NONE:
            order = pb.RangeRequest.ASCEND   # etcd's default when only a target is given
        if order in (pb.RangeRequest.ASCEND, pb.RangeRequest.DESCEND):
            sort_key = _SORT_KEYS.get(target)
            if sort_key is None:   # etcd would panic on a nil sorter
                raise EtcdError(_INVALID, f"etcdserver: unknown sort target {target}")
            # Stable: ties stay in key order (Go's sort.Sort leaves their order unspecified).
            found.sort(key=sort_key, reverse=order == pb.RangeRequest.DESCEND)
        if r.limit > 0 and len(found) > r.limit:
            found = found[:r.limit]
            resp.more = True
        for key, rec in found:
            kv = _kv(key, rec)
            if r.keys_only:
                kv.value = b""
            resp.kvs.append(kv)
        return resp

    # -- writes (lock held) -----------------------------------------------------------------------

    def _append(self, w: _Write, key: bytes, rec: _Rec) -> None:
        recs = self._hist.get(key)
        if recs is None:
            recs = self._hist[key] = []
            bisect.insort(self._keys, key)
            w.undo.append(lambda: (self._hist.pop(key), self._keys.remove(key)))
        recs.append(rec)
        w.undo.append(recs.pop)
        w.changes.append((key, rec))

    def _attach(self, w: _Write, lease_id: int, key: bytes) -> None:
        keys = self._leases[lease_id][1]
        if key not in keys:
            keys.add(key)
            w.undo.append(lambda: keys.discard(key))

    def _detach(self, w: _Write, lease_id: int, key: bytes) -> None:
        entry = self._leases.get(lease_id)
        if entry is not None and key in entry[1]:
            entry[1].discard(key)
            w.undo.append(lambda: entry[1].add(key))

    def _write_put(self, w: _Write, key: bytes, value: bytes, lease_id: int) -> None:
        """storeTxnWrite.put: the key's next version, in the current generation or a new one."""
        main = w.begin + 1
        cur = self._at(key, main)
        if cur is None:
            create, version, old_lease = main, 1, 0
        else:
            create, version, old_lease = cur.create, cur.version + 1, cur.lease
        self._append(w, key, _Rec(main, len(w.changes), create, version, value, lease_id))
        if old_lease:
            self._detach(w, old_lease, key)
        if lease_id:
            self._attach(w, lease_id, key)

    def _write_delete(self, w: _Write, key: bytes) -> None:
        cur = self._at(key, w.begin + 1)
        self._append(w, key, _Rec(w.begin + 1, len(w.changes), 0, 0, b"", 0))
        if cur is not None and cur.lease:
            self._detach(w, cur.lease, key)

    def _rollback(self, w: _Write) -> None:
        for undo in reversed(w.undo):
            undo()
        w.changes.clear()

    # -- requests ---------------------------------------------------------------------------------

    def _check_put_state(self, p: pb.PutRequest, rev: int) -> None:
        """checkRequestPut: the lease must exist; ignore_value/ignore_lease need the key."""
        if (p.ignore_value or p.ignore_lease) and self._at(p.key, rev) is None:
            raise _err_key_not_found()
        if p.lease and p.lease not in self._leases:
            raise _err_lease_not_found()

    def _do_put(self, p: pb.PutRequest, w: _Write) -> pb.PutResponse:
        cur = self._at(p.key, w.rev)
        value, lease_id = p.value, p.lease
        if p.ignore_value or p.ignore_lease:
            if cur is None:
                raise _err_key_not_found()
            if p.ignore_value:
                value = cur.value
            if p.ignore_lease:
                lease_id = cur.lease
        resp = pb.PutResponse(header=_header(w.begin + 1))
        if p.prev_kv and cur is not None:
            resp.prev_kv.CopyFrom(_kv(p.key, cur))
        self._write_put(w, p.key, value, lease_id)
        return resp

    def _do_delete(self, d: pb.DeleteRangeRequest, w: _Write) -> pb.DeleteRangeResponse:
        rev = w.rev
        live = [(k, rec) for k in self._keys_in(d.key, d.range_end)
                if (rec := self._at(k, rev)) is not None]
        resp = pb.DeleteRangeResponse(deleted=len(live))
        if d.prev_kv:
            resp.prev_kvs.extend(_kv(k, rec) for k, rec in live)
        for k, _ in live:
            self._write_delete(w, k)
        resp.header.revision = w.rev
        return resp

    def _op_put(self, p: pb.PutRequest, w: _Write) -> pb.PutResponse:
        check_request("put", p)
        if p.lease and p.lease not in self._leases:
            raise _err_lease_not_found()
        return self._do_put(p, w)

    def _op_delete_range(self, d: pb.DeleteRangeRequest, w: _Write) -> pb.DeleteRangeResponse:
        check_request("delete_range", d)
        return self._do_delete(d, w)

    def _op_range(self, r: pb.RangeRequest, w: _Write) -> pb.RangeResponse:
        check_request("range", r)
        return self._range(r, w.rev)

    def _op_txn(self, t: pb.TxnRequest, w: _Write) -> pb.TxnResponse:
        # v3rpc kvServer.Txn's checks, then applierV3backend.Txn's: all before the first write,
        # so a txn either fails whole or applies whole.
        check_request("txn", t)
        path = self._decide(t)
        self._check_path(t, path, self._check_put_op)
        self._check_path(t, path, self._check_range_op)
        resp = self._apply_txn(t, path, w)
        resp.header.revision = w.rev
        return resp

    def _op_compact(self, c: pb.CompactionRequest, w: _Write) -> pb.CompactionResponse:
        rev = c.revision
        if rev <= self._compact:
            raise _err_compacted()
        if rev > self._rev:
            raise _err_future_rev()
        self._compact_to(rev)
        return pb.CompactionResponse(header=_header(self._rev))

    def _op_lease_grant(self, g: pb.LeaseGrantRequest, w: _Write) -> pb.LeaseGrantResponse:
        if g.ID == 0:   # lessor.Grant: the gRPC layer picks an ID before proposing
            raise _err_lease_not_found()
        if g.TTL > MAX_LEASE_TTL_S:
            raise EtcdError(_OUT_OF_RANGE, "etcdserver: too large lease TTL")
        if g.ID in self._leases:
            raise EtcdError(grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists")
        ttl = max(g.TTL, MIN_LEASE_TTL_S)
        self._leases[g.ID] = (ttl, set())
        w.undo.append(lambda: self._leases.pop(g.ID, None))
        return pb.LeaseGrantResponse(header=_header(self._rev), ID=g.ID, TTL=ttl)

    def _op_lease_revoke(self, r: pb.LeaseRevokeRequest, w: _Write) -> pb.LeaseRevokeResponse:
        entry = self._leases.get(r.ID)
        if entry is None:
            raise _err_lease_not_found()
        # lessor.Revoke: the keys deleted in sorted order, in one write txn.
        for key in sorted(entry[1]):
            if self._at(key, w.rev) is not None:
                self._write_delete(w, key)
        del self._leases[r.ID]
        w.undo.append(lambda: self._leases.__setitem__(r.ID, entry))
        return pb.LeaseRevokeResponse(header=_header(w.rev))

    # -- txn pieces -------------------------------------------------------------------------------

    def _decide(self, t: pb.TxnRequest) -> _Path:
        """compareToPath: every compare of the chosen branches, on the state before any write."""
        ok = all(self._compare(c) for c in t.compare)
        children = [self._decide(op.request_txn) for op in (t.success if ok else t.failure)
                    if op.WhichOneof("request") == "request_txn"]
        return _Path(ok, children)

    def _compare(self, c: pb.Compare) -> bool:
        """applyCompare: every live key in the compare's range must satisfy it."""
        recs = [rec for k in self._keys_in(c.key, c.range_end) if (rec := self._at(k, self._rev)) is not None]
        if not recs:
            if c.target == pb.Compare.VALUE:
                return False   # a missing key has no value to compare (not even b"")
            return _compare_one(c, _Rec(0, 0, 0, 0, b"", 0))
        return all(_compare_one(c, rec) for rec in recs)

    def _check_path(self, t: pb.TxnRequest, path: _Path, check: Callable[[pb.RequestOp], None]) -> None:
        """checkRequests: check the ops on the chosen path, nested txns included."""
        children = iter(path.children)
        for op in t.success if path.ok else t.failure:
            if op.WhichOneof("request") == "request_txn":
                self._check_path(op.request_txn, next(children), check)
            else:
                check(op)

    def _check_put_op(self, op: pb.RequestOp) -> None:
        if op.WhichOneof("request") == "request_put":
            self._check_put_state(op.request_put, self._rev)

    def _check_range_op(self, op: pb.RequestOp) -> None:
        """checkRequestRange (its compare with the compact revision is etcd's: < firstRev)."""
        if op.WhichOneof("request") != "request_range":
            return
        rev = op.request_range.revision
        if rev == 0:
            return
        if rev > self._rev:
            raise _err_future_rev()
        if rev < self._compact:
            raise _err_compacted()

    def _apply_txn(self, t: pb.TxnRequest, path: _Path, w: _Write) -> pb.TxnResponse:
        # A nested TxnResponse keeps an empty header, as etcd's newTxnResp leaves it.
        resp = pb.TxnResponse(header=pb.ResponseHeader(), succeeded=path.ok)
        children = iter(path.children)
        for op in t.success if path.ok else t.failure:
            which = op.WhichOneof("request")
            if which == "request_range":
                resp.responses.add().response_range.CopyFrom(self._range(op.request_range, w.rev))
            elif which == "request_put":
                resp.responses.add().response_put.CopyFrom(self._do_put(op.request_put, w))
            elif which == "request_delete_range":
                resp.responses.add().response_delete_range.CopyFrom(self._do_delete(op.request_delete_range, w))
            elif which == "request_txn":
                resp.responses.add().response_txn.CopyFrom(self._apply_txn(op.request_txn, next(children), w))
        return resp

    # -- compaction -------------------------------------------------------------------------------

    def _compact_to(self, rev: int) -> None:
        """Drop history before rev: per key keep the newest record <= rev unless a deletion."""
        self._compact = rev
        emptied = False
        for key in self._keys:
            recs = self._hist[key]
            if recs[0].main > rev:
                continue
            i = bisect.bisect_right(recs, rev, key=_main_of)
            # A new list, never `del recs[:i]`: a snapshot being encoded may hold the old one.
            recs = recs[i:] if recs[i - 1].version == 0 else recs[i - 1:]
            if recs:
                self._hist[key] = recs
            else:
                del self._hist[key]
                emptied = True
        if emptied:
            self._keys = [k for k in self._keys if k in self._hist]
        for w in list(self._watchers.values()):
            if w._oldest() < rev:
                w._end_compacted(rev)

    # -- watchers (lock held) ---------------------------------------------------------------------

    def _event(self, w: Watcher, key: bytes, rec: _Rec) -> mvccpb.Event:
        if rec.version == 0:
            # kvsToEvents: a deletion's kv holds the key and the deleting revision only.
            ev = mvccpb.Event(type=mvccpb.Event.DELETE, kv=mvccpb.KeyValue(key=key, mod_revision=rec.main))
        else:
            ev = mvccpb.Event(type=mvccpb.Event.PUT, kv=_kv(key, rec))
        # v3rpc's watch stream: prev_kv is the key as of the revision before, except for a
        # creation (version 1), and not when that revision is compacted.
        if w.prev_kv and rec.version != 1 and rec.main - 1 >= self._compact:
            prev = self._at(key, rec.main - 1)
            if prev is not None:
                ev.prev_kv.CopyFrom(_kv(key, prev))
        return ev

    def _history_events(self, w: Watcher, start: int) -> list[mvccpb.Event]:
        found = []
        for key in self._keys_in(w.key, w.range_end):
            for rec in self._hist[key]:
                if rec.main >= start and w._wants(rec):
                    found.append((rec.main, rec.sub, key, rec))
        found.sort(key=lambda f: (f[0], f[1]))
        return [self._event(w, key, rec) for _, _, key, rec in found]

    def _notify(self, wr: _Write) -> None:
        """Hand a committed write's changes to the watchers that match them; never blocks."""
        main = wr.begin + 1
        for w in self._watchers.values():
            if main < w._next:
                continue
            events = [self._event(w, key, rec) for key, rec in wr.changes
                      if w._matches(key) and w._wants(rec)]
            w._next = main + 1
            if events:
                w._events.extend(events)
                w._signal()

    def _resync_watchers(self) -> None:
        """After Restore: like etcd's watchableStore.Restore, catch each watcher up from history."""
        for w in list(self._watchers.values()):
            if w._next > self._rev:
                continue
            if w._oldest() < self._compact:
                w._end_compacted(self._compact)
                continue
            events = self._history_events(w, w._next)
            w._next = self._rev + 1
            if events:
                w._events.extend(events)
                w._signal()


# -- helpers ---------------------------------------------------------------------------------------

_SORT_KEYS: dict[int, Callable[[tuple[bytes, _Rec]], Any]] = {
    pb.RangeRequest.KEY: lambda f: f[0],
    pb.RangeRequest.VERSION: lambda f: f[1].version,
    pb.RangeRequest.CREATE: lambda f: f[1].create,
    pb.RangeRequest.MOD: lambda f: f[1].main,
    pb.RangeRequest.VALUE: lambda f: f[1].value,
}

# Compare target -> (the target_union field etcd reads for it, the record's field).
_COMPARE_FIELDS: dict[int, tuple[str, Callable[[_Rec], Any]]] = {
    pb.Compare.VERSION: ("version", lambda r: r.version),
    pb.Compare.CREATE: ("create_revision", lambda r: r.create),
    pb.Compare.MOD: ("mod_revision", lambda r: r.main),
    pb.Compare.VALUE: ("value", lambda r: r.value),
    pb.Compare.LEASE: ("lease", lambda r: r.lease),
}


def _compare_one(c: pb.Compare, rec: _Rec) -> bool:
    """compareKV: a target_union of another kind than the target counts as its zero value."""
    fields = _COMPARE_FIELDS.get(c.target)
    if fields is None:
        have = want = 0    # an unknown target compares equal, as in etcd
    else:
        name, get = fields
        have = get(rec)
        if c.WhichOneof("target_union") == name:
            want = getattr(c, name)
        else:
            want = b"" if name == "value" else 0
    if c.result == pb.Compare.EQUAL:
        return have == want
    if c.result == pb.Compare.NOT_EQUAL:
        return have != want
    if c.result == pb.Compare.GREATER:
        return have > want
    if c.result == pb.Compare.LESS:
        return have < want
    return True


def check_request(kind: str, req: Any) -> None:
    """Refuse what etcd's gRPC layer refuses before proposing (v3rpc key.go); raises EtcdError.

    The server calls it before a request goes into the log; DoOp makes the same checks again,
    since a log entry's Body may come from anywhere.
    """
    if kind == "put":
        _check_put_request(req)
    elif kind in ("range", "delete_range"):
        if not req.key:
            raise _err_empty_key()
    elif kind == "txn":
        _check_txn_request(req, MAX_TXN_OPS)
        _check_intervals(req.success)
        _check_intervals(req.failure)


def _check_put_request(p: pb.PutRequest) -> None:
    """v3rpc checkPutRequest: what etcd's gRPC layer refuses before proposing."""
    if not p.key:
        raise _err_empty_key()
    if p.ignore_value and p.value:
        raise EtcdError(_INVALID, "etcdserver: value is provided")
    if p.ignore_lease and p.lease:
        raise EtcdError(_INVALID, "etcdserver: lease is provided")


def _check_txn_request(t: pb.TxnRequest, max_ops: int) -> None:
    """v3rpc checkTxnRequest: op counts (a nested txn gets what its parent leaves), empty keys."""
    opc = max(len(t.compare), len(t.success), len(t.failure))
    if opc > max_ops:
        raise EtcdError(_INVALID, "etcdserver: too many operations in txn request")
    for c in t.compare:
        if not c.key:
            raise _err_empty_key()
    for op in list(t.success) + list(t.failure):
        which = op.WhichOneof("request")
        if which == "request_range":
            if not op.request_range.key:
                raise _err_empty_key()
        elif which == "request_put":
            _check_put_request(op.request_put)
        elif which == "request_delete_range":
            if not op.request_delete_range.key:
                raise _err_empty_key()
        elif which == "request_txn":
            _check_txn_request(op.request_txn, max_ops - opc)
        else:
            raise _err_key_not_found()   # an empty RequestOp: etcd's answer too


def _deleted(dels: Iterable[tuple[bytes, bytes]], key: bytes) -> bool:
    return any(lo <= key < hi for lo, hi in dels)


def _check_intervals(ops: Sequence[pb.RequestOp]) -> tuple[set[bytes], list[tuple[bytes, bytes]]]:
    """v3rpc checkIntervals: no key put twice, or put and deleted, on any path of a txn.

    Deletions are half-open intervals [key, range_end), a single key [key, key + b"\\0"); like
    etcd's, a range_end of b"\\0" ("every key >= key") is taken literally and so overlaps no put.
    """
    dels: list[tuple[bytes, bytes]] = []
    for op in ops:
        if op.WhichOneof("request") == "request_delete_range":
            d = op.request_delete_range
            dels.append((d.key, d.range_end) if d.range_end else (d.key, d.key + b"\0"))
    puts: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        puts_then, dels_then = _check_intervals(op.request_txn.success)
        puts_else, dels_else = _check_intervals(op.request_txn.failure)
        for k in puts_then:
            if k in puts or _deleted(dels, k):
                raise _err_duplicate_key()
            puts.add(k)
        for k in puts_else:
            if (k in puts and k not in puts_then) or _deleted(dels, k):
                raise _err_duplicate_key()
            puts.add(k)
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        if op.WhichOneof("request") != "request_put":
            continue
        k = op.request_put.key
        if k in puts or _deleted(dels, k):
            raise _err_duplicate_key()
        puts.add(k)
    return puts, dels


_KINDS: dict[str, tuple[Any, Callable[[MVCCStore, Any, _Write], Any]]] = {
    "put": (pb.PutRequest, MVCCStore._op_put),
    "delete_range": (pb.DeleteRangeRequest, MVCCStore._op_delete_range),
    "txn": (pb.TxnRequest, MVCCStore._op_txn),
    "compact": (pb.CompactionRequest, MVCCStore._op_compact),
    "range": (pb.RangeRequest, MVCCStore._op_range),
    "lease_grant": (pb.LeaseGrantRequest, MVCCStore._op_lease_grant),
    "lease_revoke": (pb.LeaseRevokeRequest, MVCCStore._op_lease_revoke),
}

__all__ = ["EtcdOp", "EtcdError", "MVCCStore", "Watcher", "check_request", "MAX_TXN_OPS", "MIN_LEASE_TTL_S", "MAX_LEASE_TTL_S"]
