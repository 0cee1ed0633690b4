"""DurablePersister: a server's Raft state, log and snapshot in a data directory (WAL + snapshots).

Usage:
    p = DurablePersister("/var/lib/kubekv/m2", identity="cluster=abc member=2")
    p.Save(raftstate, snapshot)            # Go's contract (tester/persister.py); no disk I/O
    p.SaveLog(state, base, first, entries, snapshot)   # incremental form, O(change); no I/O
    p.Sync()                               # outside your locks: all saves before it are durable
    p.PrepareSnapshot(snapshot)            # optional, outside locks: write a big snapshot's file
                                           # now, not in the Sync after the save that names it
    raftstate = p.ReadRaftState()          # after a restart, for Save's form
    state, base, entries = p.ReadLog()     # after a restart, for SaveLog's form
    p.Close()                              # syncs, then releases the directory

    python -m kubekv.storage [--dir DIR]   # append latency at 100 and 100,000 entries

Save/SaveLog only encode records into an in-memory buffer (Raft calls them under its own lock);
Sync writes the buffer with one write and one fdatasync, with no lock held, and concurrent Syncs
share one fdatasync (group commit).  An OSError while writing or syncing is fatal: the persister
refuses every later call, because after a failed fsync the kernel may have dropped the dirty pages
and a retry could report success for data that is gone.

Data directory:
    LOCK                 flock'ed for the persister's life; holds the owner's pid
    IDENTITY             e.g. "cluster=abc member=2", written once; a mismatch refuses to start
    FORMAT               e.g. "kubekv 1": what the records' payloads are, written once (given
                         data_format); a mismatch refuses to start, naming both formats
    wal-<seq:016x>.log   append-only segments of records; normally one, the last is appended to
    snap-<seq:016x>.snap snapshots, each written tmp -> fsync -> rename -> fsync(dir) before any
                         record that references it; deleted once a newer reference is durable
                         (one that no record references, e.g. prepared but never saved, is
                         deleted at the next start, or once a newer snapshot is saved)

A record is a 16-byte header (magic b"KW", version 1, a pad byte, payload length, CRC32 of the
payload, CRC32 of the header's first 12 bytes) and a msgpack payload:
    [1, raftstate, snapref]            FULL: Save's whole state
    [3, first, [entry, ...]]           ENTRIES: drop saved entries >= first, then append these
    [2, state, base, snapref]          STATE: commits the ENTRIES records before it (SaveLog's
                                       group), drops entries <= base
snapref is None (empty snapshot) or [seq, length].  A SaveLog writes ENTRIES (when it appends or
truncates) then STATE, so a write torn between them replays as if that SaveLog never happened.
A snapshot file is a 24-byte header (magic b"KKVSNAP1", length, payload CRC32, header CRC32)
followed by the raw snapshot bytes.

When a segment outgrows the live state (bytes > COMPACT_RATIO * live + COMPACT_SLACK), the next
Sync writes a checkpoint segment restating the live state instead of appending, then deletes the
older segment.  Recovery replays every segment in order, repairs a torn tail of the last one and
raises CorruptionError (naming file and offset) for anything else.
"""

from __future__ import annotations

import argparse
import collections
import errno
import fcntl
import logging
import os
import re
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import msgpack

log = logging.getLogger(__name__)

BytesLike = Union[bytes, bytearray, memoryview, None]

_REC_MAGIC = b"KW"
_REC_VERSION = 1
_REC_PREFIX = struct.Struct("<2sBxII")  # magic, version, pad, payload length, payload CRC
_REC_HEADER = struct.Struct("<2sBxIII")  # ... + CRC of the prefix
HEADER_SIZE = _REC_HEADER.size  # 16
_MAX_PAYLOAD = 0xFFFFFFFF

_SNAP_MAGIC = b"KKVSNAP1"
_SNAP_PREFIX = struct.Struct("<8sQI")  # magic, length, payload CRC
_SNAP_HEADER = struct.Struct("<8sQII")  # ... + CRC of the prefix
SNAP_HEADER_SIZE = _SNAP_HEADER.size  # 24

FULL, STATE, ENTRIES = 1, 2, 3
_FRESH, _FULL_MODE, _LOG_MODE = 0, 1, 2

_SEG_RE = re.compile(r"^wal-([0-9a-f]{16})\.log$")
_SNAP_RE = re.compile(r"^snap-([0-9a-f]{16})\.snap$")
_TMP_RE = re.compile(r"^(wal-[0-9a-f]{16}|snap-[0-9a-f]{16}|IDENTITY)\.tmp$")

SnapRef = Optional[tuple[int, int]]  # (seq, length); None: the empty snapshot, no file


class StorageError(Exception):
    """A fatal storage failure: an fsync or I/O error, or use of a closed or failed persister."""


class CorruptionError(StorageError):
    """Bytes on disk that are neither valid nor a torn tail; .path and .offset say where."""

    def __init__(self, path: str, offset: int, detail: str) -> None:
        self.path = path
        self.offset = offset
        self.detail = detail
        super().__init__(
            f"{path}: corrupt data at offset {offset}: {detail}. This member's storage cannot be "
            f"trusted: restore the member from a peer (copy a healthy member's data directory), or "
            f"remove the data directory {os.path.dirname(path) or '.'} so it rejoins empty and "
            f"catches up from the leader"
        )

    def __reduce__(self) -> Any:
        return (CorruptionError, (self.path, self.offset, self.detail))


class DataDirError(StorageError):
    """The data directory is locked by another process, belongs to another identity, or is
    unusable."""


class _Malformed(Exception):
    """A record whose checksums are fine but whose payload makes no sense (internal)."""


def _as_bytes(b: BytesLike, what: str) -> bytes:
    if b is None:
        return b""
    if isinstance(b, bytes):
        return b
    if isinstance(b, (bytearray, memoryview)):
        return bytes(b)
    raise TypeError(f"DurablePersister: {what} must be bytes (e.g. labgob's w.getvalue()), "
                    f"got {type(b).__name__}")


def _check_index(name: str, v: Any) -> int:
    if type(v) is not int:
        raise TypeError(f"SaveLog: {name} must be an int log index, got {type(v).__name__}")
    if v < 0:
        raise ValueError(f"SaveLog: {name} must be >= 0, got {v}")
    return v


def _record(payload: bytes) -> bytes:
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"DurablePersister: a record of {len(payload)} bytes exceeds the 4 GiB "
                         f"limit; save fewer entries per SaveLog call")
    prefix = _REC_PREFIX.pack(_REC_MAGIC, _REC_VERSION, len(payload), zlib.crc32(payload))
    return prefix + struct.pack("<I", zlib.crc32(prefix)) + payload


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _ref_out(ref: SnapRef) -> Optional[list[int]]:
    return None if ref is None else [ref[0], ref[1]]


def _is_index(v: Any) -> bool:
    return type(v) is int and v >= 0


def _ref_in(v: Any) -> SnapRef:
    if v is None:
        return None
    if (isinstance(v, list) and len(v) == 2 and _is_index(v[0]) and _is_index(v[1])
            and v[0] >= 1 and v[1] >= 1):
        return (v[0], v[1])
    raise _Malformed(f"bad snapshot reference {v!r}")


def _decode(payload: memoryview) -> list[Any]:
    """The record's fields, type-checked: [FULL, raftstate, ref] / [STATE, state, base, ref] /
    [ENTRIES, first, entries]."""
    try:
        obj = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    except Exception as e:  # msgpack raises several types; all mean "not a record"
        raise _Malformed(f"payload is not valid msgpack ({type(e).__name__}: {e})") from None
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int:
        raise _Malformed("payload is not a [type, ...] array")
    tag = obj[0]
    if tag == FULL:
        if len(obj) != 3 or type(obj[1]) is not bytes:
            raise _Malformed("malformed FULL record")
        return [FULL, obj[1], _ref_in(obj[2])]
    if tag == STATE:
        if len(obj) != 4 or type(obj[1]) is not bytes or not _is_index(obj[2]):
            raise _Malformed("malformed STATE record")
        return [STATE, obj[1], obj[2], _ref_in(obj[3])]
    if tag == ENTRIES:
        if (len(obj) != 3 or not _is_index(obj[1]) or obj[1] < 1 or not isinstance(obj[2], list)
                or not all(type(e) is bytes for e in obj[2])):
            raise _Malformed("malformed ENTRIES record")
        return obj
    raise _Malformed(f"unknown record type {tag!r}")


def _seg_name(seq: int) -> str:
    return f"wal-{seq:016x}.log"


def _snap_name(seq: int) -> str:
    return f"snap-{seq:016x}.snap"


def _write_all(fd: int, data: Union[bytes, bytearray]) -> None:
    mv = memoryview(data)
    while mv:
        n = os.write(fd, mv)
        if n <= 0:
            raise OSError(errno.EIO, "write wrote nothing")
        mv = mv[n:]


@dataclass
class _Batch:
    """What one Sync writes: taken from the pending buffer under the lock, written without it."""
    upto: int                                  # covers Save/SaveLog calls numbered <= upto
    data: bytearray
    nrecords: int
    snaps: list[tuple[int, bytes]]             # snapshot files the records reference, in order
    ref: SnapRef                               # the snapshot in effect after the batch
    checkpoint: Optional[tuple[Any, ...]] = None  # the live state, when compacting instead


class DurablePersister:
    """A Persister (Save/ReadRaftState/ReadSnapshot/...) whose contents survive kill -9 and power
    loss once Sync returns, plus the incremental SaveLog/ReadLog form. Thread-safe."""

    COMPACT_RATIO = 4          # checkpoint when segment bytes > RATIO * live bytes + SLACK
    COMPACT_SLACK = 4 << 20
    CHECKPOINT_CHUNK = 1 << 20  # entry bytes per ENTRIES record in a checkpoint segment
    # A new file (a snapshot, a checkpoint) is flushed this many bytes at a time: under ext4's
    # ordered mode another file's fsync waits for all dirty data, so a WAL fdatasync that came
    # during a 15 MB snapshot write waited 0.1-0.2 s; now for at most this much.
    FILE_SYNC_CHUNK_BYTES = 1 << 20

    def __init__(self, data_dir: Union[str, os.PathLike], identity: Optional[str] = None,
                 data_format: Optional[str] = None) -> None:
        self._dir = os.fsdecode(os.fspath(data_dir))
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        # The in-memory view: what the last Save/SaveLog left.
        self._mode = _FRESH
        self._raftstate = b""
        self._state = b""
        self._base = 0
        self._entries: collections.deque[bytes] = collections.deque()
        self._entries_bytes = 0
        self._snapshot = b""
        self._snap_ref: SnapRef = None
        self._next_snap_seq = 1
        # Not yet written: records, and the snapshot files they reference.
        self._pending = bytearray()
        self._pending_records = 0
        # (seq, bytes), or (seq, None) for a file PrepareSnapshot wrote already.
        self._pending_snaps: list[tuple[int, bytes | None]] = []
        self._prepared: dict[int, bytes] = {}   # seq -> snapshot: files written, not yet saved
        self._preparing = 0                     # PrepareSnapshot calls writing (Close waits)
        self._queued = 0    # Save/SaveLog calls so far
        self._durable = 0   # of which durable
        self._syncing = False
        self._failed: Optional[StorageError] = None
        self._closed = False
        # Disk state, used only by recovery and by the one thread inside a sync.
        self._lock_fd = -1
        self._dir_fd = -1
        self._seg_fd = -1
        self._seg_seq = 0
        self._seg_size = 0
        self._snap_files: set[int] = set()
        self._where = ""
        self._stats = {"fsyncs": 0, "syncs": 0, "records": 0, "bytes": 0}
        try:
            try:
                self._open_dir(identity)
                if data_format is not None:
                    self._check_format(data_format)
                self._recover()
            except OSError as e:
                raise StorageError(f"opening data directory {self._dir} failed: {e}") from e
        except BaseException:
            self._release()
            raise

    def __repr__(self) -> str:
        return f"DurablePersister({self._dir!r})"

    def __enter__(self) -> "DurablePersister":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.Close()

    # ---- Go's contract ----

    def Save(self, raftstate: BytesLike, snapshot: BytesLike) -> None:
        """Queue the whole state (a FULL record); Sync makes it durable. No disk I/O."""
        rs = _as_bytes(raftstate, "raftstate")
        sn = _as_bytes(snapshot, "snapshot")
        with self._mu:
            self._check_usable("Save")
            ref = self._snapshot_ref(sn)
            self._queue(_record(_pack([FULL, rs, _ref_out(ref)])))
            self._adopt_snapshot(sn, ref)
            self._mode = _FULL_MODE
            self._raftstate = rs
            self._state = b""
            self._base = 0
            self._entries.clear()
            self._entries_bytes = 0
            self._queued += 1

    def ReadRaftState(self) -> bytes:
        """The state last given to Save; b"" when fresh."""
        with self._mu:
            self._check_usable("ReadRaftState")
            if self._mode == _LOG_MODE:
                raise StorageError(f"{self._dir}: the current state was written by SaveLog; read "
                                   f"it with ReadLog(), not ReadRaftState()")
            return self._raftstate

    def ReadSnapshot(self) -> bytes:
        with self._mu:
            self._check_usable("ReadSnapshot")
            return self._snapshot

    def RaftStateSize(self) -> int:
        """len(raftstate) after Save; len(state) + the live entries' bytes after SaveLog."""
        with self._mu:
            self._check_usable("RaftStateSize")
            return self._raft_size()

    def SnapshotSize(self) -> int:
        with self._mu:
            self._check_usable("SnapshotSize")
            return len(self._snapshot)

    # ---- the incremental form ----

    def SaveLog(self, state: BytesLike, base: int, first: int, entries: Sequence[BytesLike],
                snapshot: BytesLike) -> None:
        """Queue Raft's hard state and a log change: entries >= first are replaced by `entries`
        (indices first, first+1, ...); entries <= base (covered by `snapshot`) are dropped.
        Requires base+1 <= first <= last+1. O(len(entries) + bytes dropped). No disk I/O."""
        st = _as_bytes(state, "state")
        sn = _as_bytes(snapshot, "snapshot")
        _check_index("base", base)
        _check_index("first", first)
        ents = [_as_entry(e, i) for i, e in enumerate(entries)]
        ents_rec = _record(_pack([ENTRIES, first, ents])) if ents else None  # outside the lock
        with self._mu:
            self._check_usable("SaveLog")
            log_mode = self._mode == _LOG_MODE
            if log_mode and base < self._base and first != base + 1:
                raise ValueError(
                    f"SaveLog: base moved back from {self._base} to {base}; that is only allowed "
                    f"when the whole log is rewritten (first == base+1 = {base + 1}), got "
                    f"first={first}")
            if log_mode and base >= self._base:
                last = max(base, self._base + len(self._entries))
            else:
                last = base  # fresh, after Save, or rewriting all: no entries after base survive
            if not base + 1 <= first <= last + 1:
                raise ValueError(
                    f"SaveLog: first={first} is outside [base+1, last+1] = [{base + 1}, "
                    f"{last + 1}] (base={base}, last saved index {last}); entries must continue "
                    f"the saved log or overwrite part of it, with no gap")
            ref = self._snapshot_ref(sn)
            if ents_rec is None and first <= last:
                ents_rec = _record(_pack([ENTRIES, first, []]))  # a pure truncation
            state_rec = _record(_pack([STATE, st, base, _ref_out(ref)]))
            if ents_rec is not None:
                self._queue(ents_rec)
            self._queue(state_rec)
            self._adopt_snapshot(sn, ref)
            self._state = st
            self._set_base(base)
            self._put_entries(first, ents)
            self._queued += 1

    def ReadLog(self) -> tuple[bytes, int, list[bytes]]:
        """(state, base, live entries base+1..) as last given to SaveLog; (b"", 0, []) when
        fresh."""
        with self._mu:
            self._check_usable("ReadLog")
            if self._mode == _FULL_MODE:
                raise StorageError(f"{self._dir}: the current state was written by Save; read it "
                                   f"with ReadRaftState(), not ReadLog()")
            return self._state, self._base, list(self._entries)

    # ---- durability ----

    def Sync(self) -> None:
        """Make every Save/SaveLog made before this call durable. Call it without holding locks.
        Raises StorageError if the persister failed (then every later call raises too)."""
        self._sync(closing=False)

    def PrepareSnapshot(self, snapshot: BytesLike) -> None:
        """Write snapshot's file now, durably, for the Save/SaveLog that will pass this very
        object (e.g. Raft.Snapshot's); that save's Sync then writes only its record. Without it a
        new snapshot is written inside the Sync, and every caller of Sync waits for it (a 15 MB
        snapshot: 0.2-0.8 s here). Call it without locks held. Raises StorageError as Sync does.
        """
        sn = _as_bytes(snapshot, "snapshot")
        if not sn:
            return
        with self._cv:
            self._check_usable("PrepareSnapshot")
            seq = self._next_snap_seq
            self._next_snap_seq += 1
            self._preparing += 1
        step = [""]
        try:
            self._write_snapshot(seq, sn, step.append)
            step.append(f"fsync of directory {self._dir}")
            self._fsync(self._dir_fd)
        except BaseException as e:
            err = self._failure(step[-1], e)
            with self._cv:
                self._failed = err
                self._preparing -= 1
                self._cv.notify_all()
            raise err from e
        with self._cv:
            self._prepared[seq] = sn
            self._preparing -= 1
            self._cv.notify_all()

    def Close(self) -> None:
        """Sync, close the files and release the data directory. Idempotent. Raises StorageError
        (after releasing) if the persister failed, so unsynced data is never lost silently."""
        with self._cv:
            if self._closed:
                return
            self._closed = True  # refuses new Save/SaveLog from here on
        err: Optional[StorageError] = None
        try:
            self._sync(closing=True)
        except StorageError as e:
            err = e
        with self._cv:
            while self._syncing or self._preparing:
                self._cv.wait()
            self._release()
        if err is not None:
            raise err

    def stats(self) -> dict[str, int]:
        """fsyncs: fsync/fdatasync calls (files and directory); syncs: Sync calls that did I/O;
        records, bytes: WAL records and bytes (WAL + snapshot files) written."""
        with self._mu:
            return dict(self._stats)

    # ---- internals: the in-memory view (called with self._mu held, or during recovery) ----

    def _check_usable(self, op: str) -> None:
        if self._failed is not None:
            raise StorageError(str(self._failed)) from self._failed
        if self._closed:
            raise StorageError(f"DurablePersister.{op}: the persister for {self._dir} is closed; "
                               f"open a new DurablePersister on the directory")

    def _raft_size(self) -> int:
        if self._mode == _LOG_MODE:
            return len(self._state) + self._entries_bytes
        return len(self._raftstate)

    def _snapshot_ref(self, sn: bytes) -> SnapRef:
        if sn is self._snapshot or sn == self._snapshot:
            return self._snap_ref
        if not sn:
            return None
        for seq, prepared in self._prepared.items():
            if prepared is sn:
                return (seq, len(sn))
        return (self._next_snap_seq, len(sn))

    def _adopt_snapshot(self, sn: bytes, ref: SnapRef) -> None:
        if ref == self._snap_ref:
            return
        self._snapshot = sn
        self._snap_ref = ref
        if ref is not None:
            self._next_snap_seq = max(self._next_snap_seq, ref[0] + 1)
            written = self._prepared.pop(ref[0], None) is not None
            self._pending_snaps.append((ref[0], None if written else sn))
            # Prepared files older than this snapshot will never be saved: the Sync drops them.
            for seq in [s for s in self._prepared if s < ref[0]]:
                del self._prepared[seq]
                self._pending_snaps.append((seq, None))

    def _queue(self, rec: bytes) -> None:
        self._pending += rec
        self._pending_records += 1

    def _set_base(self, base: int) -> None:
        if self._mode != _LOG_MODE or base < self._base:
            self._entries.clear()
            self._entries_bytes = 0
        else:
            drop = min(base - self._base, len(self._entries))
            popleft = self._entries.popleft
            for _ in range(drop):
                self._entries_bytes -= len(popleft())
        self._mode = _LOG_MODE
        self._raftstate = b""
        self._base = base

    def _put_entries(self, first: int, ents: list[bytes]) -> None:
        pop = self._entries.pop
        for _ in range(self._base + len(self._entries) - first + 1):
            self._entries_bytes -= len(pop())
        self._entries.extend(ents)
        self._entries_bytes += sum(map(len, ents))

    def _live_bytes(self) -> int:
        # What a checkpoint would write: the state, the entries and their framing.
        return self._raft_size() + 8 * len(self._entries) + 64

    # ---- internals: syncing ----

    def _sync(self, closing: bool) -> None:
        with self._cv:
            if not closing:
                self._check_usable("Sync")
            target = self._queued
            while True:
                if self._failed is not None:
                    raise StorageError(str(self._failed)) from self._failed
                if self._durable >= target:
                    return
                if not self._syncing:
                    break
                self._cv.wait()
            batch = self._take_batch()
        try:
            self._write_batch(batch)
        except BaseException as e:
            err = self._failure(self._where, e)
            with self._cv:
                self._failed = err
                self._syncing = False
                self._cv.notify_all()
            raise err from e
        with self._cv:
            self._durable = batch.upto
            self._syncing = False
            self._stats["syncs"] += 1
            self._cv.notify_all()

    def _failure(self, where: str, e: BaseException) -> StorageError:
        """The error that fails this persister for good: `where` (a step) raised e."""
        if isinstance(e, OSError):
            return StorageError(
                f"{where} failed: {e}. The persister for {self._dir} is now failed and refuses "
                f"every call (data after a failed write or fsync cannot be trusted, and retrying "
                f"could falsely succeed); restart the server, which recovers what was durable")
        return StorageError(f"{where} failed unexpectedly ({type(e).__name__}: {e}); the "
                            f"persister for {self._dir} is now failed; restart the server")

    def _take_batch(self) -> _Batch:
        b = _Batch(upto=self._queued, data=self._pending, nrecords=self._pending_records,
                   snaps=self._pending_snaps, ref=self._snap_ref)
        limit = self.COMPACT_RATIO * self._live_bytes() + self.COMPACT_SLACK
        if self._seg_size + len(b.data) > limit:
            # The list copy is O(live) under the lock, but only once per ~RATIO*live bytes written.
            b.checkpoint = (self._mode, self._raftstate, self._state, self._base,
                            list(self._entries))
        self._pending = bytearray()
        self._pending_records = 0
        self._pending_snaps = []
        self._syncing = True
        return b

    def _write_batch(self, b: _Batch) -> None:
        for seq, sn in b.snaps:
            if sn is None:
                self._snap_files.add(seq)   # on disk already (PrepareSnapshot)
        if b.checkpoint is None:
            written = False
            for seq, sn in b.snaps:  # every one: a torn WAL write may keep any prefix of records
                if sn is not None:
                    self._write_snapshot(seq, sn)
                    written = True
            if written:
                self._fsync_dir()
            self._where = f"write to {self._seg_path()}"
            _write_all(self._seg_fd, b.data)
            self._where = f"fdatasync of {self._seg_path()}"
            self._datasync(self._seg_fd)
            self._seg_size += len(b.data)
            self._count(b.nrecords, len(b.data))
        else:
            # The checkpoint restates the batch's result, so the batch itself is not written and
            # only the final snapshot is needed.
            if b.ref is not None and b.ref[0] not in self._snap_files:
                self._write_snapshot(b.ref[0], dict(b.snaps)[b.ref[0]])
                self._fsync_dir()
            self._write_checkpoint(b.checkpoint, b.ref)
        self._drop_snapshots(keep=b.ref)

    def _write_new_file(self, final: str, chunks: Sequence[bytes], what: str,
                        sync: Callable[[int], None],
                        where: Callable[[str], None] | None = None) -> None:
        """Write final whole or not at all: a temp file, synced, renamed (the caller syncs the dir).

        where(step) notes each step for the error message (default: self._where, the sync's)."""
        where = where or self._note_where
        tmp = os.path.splitext(final)[0] + ".tmp"
        where(f"write of {what} {tmp}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            step, unsynced = self.FILE_SYNC_CHUNK_BYTES, 0
            for chunk in chunks:
                mv = memoryview(chunk)
                for i in range(0, len(mv), step):
                    if unsynced >= step:
                        where(f"sync of {what} {tmp}")
                        self._datasync(fd)
                        where(f"write of {what} {tmp}")
                        unsynced = 0
                    piece = mv[i:i + step]
                    _write_all(fd, piece)
                    unsynced += len(piece)
            where(f"sync of {what} {tmp}")
            sync(fd)
        finally:
            os.close(fd)
        where(f"rename of {tmp} to {final}")
        os.rename(tmp, final)

    def _note_where(self, step: str) -> None:
        self._where = step

    def _write_snapshot(self, seq: int, sn: bytes,
                        where: Callable[[str], None] | None = None) -> None:
        """Write a snapshot file; from the sync (where None) it joins the files it may drop."""
        prefix = _SNAP_PREFIX.pack(_SNAP_MAGIC, len(sn), zlib.crc32(sn))
        self._write_new_file(os.path.join(self._dir, _snap_name(seq)),
                             [prefix + struct.pack("<I", zlib.crc32(prefix)), sn], "snapshot",
                             self._fsync, where)
        if where is None:
            self._snap_files.add(seq)
        self._count(0, SNAP_HEADER_SIZE + len(sn))

    def _drop_snapshots(self, keep: SnapRef) -> None:
        old = [s for s in self._snap_files if keep is None or s != keep[0]]
        for seq in old:
            path = os.path.join(self._dir, _snap_name(seq))
            self._where = f"delete of old snapshot {path}"
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            self._snap_files.discard(seq)
        if old:
            self._fsync_dir()

    def _write_checkpoint(self, cp: tuple[Any, ...], ref: SnapRef) -> None:
        mode, raftstate, state, base, entries = cp
        recs: list[bytes] = []
        if mode == _FULL_MODE:
            recs.append(_record(_pack([FULL, raftstate, _ref_out(ref)])))
        else:
            # At least one ENTRIES record, from base+1: it also truncates what older segments held.
            first, i = base + 1, 0
            chunk = self.CHECKPOINT_CHUNK
            while True:
                j, size = i, 0
                while j < len(entries) and (j == i or size + len(entries[j]) <= chunk):
                    size += len(entries[j])
                    j += 1
                recs.append(_record(_pack([ENTRIES, first + i, entries[i:j]])))
                i = j
                if i >= len(entries):
                    break
            recs.append(_record(_pack([STATE, state, base, _ref_out(ref)])))
        data = b"".join(recs)
        seq = self._seg_seq + 1
        final = os.path.join(self._dir, _seg_name(seq))
        self._write_new_file(final, [data], "checkpoint", self._datasync)
        self._fsync_dir()
        self._count(len(recs), len(data))
        old_path = self._seg_path()
        self._where = f"open of {final}"
        new_fd = os.open(final, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        os.close(self._seg_fd)
        self._seg_fd, self._seg_seq, self._seg_size = new_fd, seq, len(data)
        self._where = f"delete of old segment {old_path}"
        os.unlink(old_path)
        self._fsync_dir()

    def _seg_path(self) -> str:
        return os.path.join(self._dir, _seg_name(self._seg_seq))

    def _count(self, records: int, nbytes: int) -> None:
        with self._mu:
            self._stats["records"] += records
            self._stats["bytes"] += nbytes

    def _bump_fsyncs(self) -> None:
        with self._mu:
            self._stats["fsyncs"] += 1

    def _datasync(self, fd: int) -> None:
        sync = getattr(os, "fdatasync", None) or os.fsync  # looked up per call: tests patch it
        sync(fd)
        self._bump_fsyncs()

    def _fsync(self, fd: int) -> None:
        os.fsync(fd)
        self._bump_fsyncs()

    def _fsync_dir(self) -> None:
        self._where = f"fsync of directory {self._dir}"
        self._fsync(self._dir_fd)

    def _release(self) -> None:
        for name in ("_seg_fd", "_dir_fd", "_lock_fd"):  # closing LOCK's fd releases the flock
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ---- internals: opening and recovery ----

    def _open_dir(self, identity: Optional[str]) -> None:
        d = self._dir
        if identity is not None and (not isinstance(identity, str) or not identity.strip()
                                     or "\n" in identity or identity != identity.strip()):
            raise ValueError(f"DurablePersister: identity must be a non-empty one-line string "
                             f"without surrounding spaces (e.g. 'cluster=abc member=2'), got "
                             f"{identity!r}")
        try:
            existed = os.path.isdir(d)
            os.makedirs(d, exist_ok=True)
            self._dir_fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise DataDirError(f"cannot use data directory {d}: {e}; fix: pass a directory this "
                               f"process may create and write") from e
        if not existed:  # the new directory's own entry must be durable too
            parent = os.open(os.path.dirname(os.path.abspath(d)), os.O_RDONLY | os.O_DIRECTORY)
            try:
                self._fsync(parent)
            finally:
                os.close(parent)
        lock_path = os.path.join(d, "LOCK")
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DataDirError(f"cannot lock {lock_path}: {e}") from e
            try:
                pid = os.pread(self._lock_fd, 64, 0).decode("ascii", "replace").strip() or "?"
            except OSError:
                pid = "?"
            raise DataDirError(f"data directory {d} is in use by another process (pid {pid} in "
                               f"LOCK file); stop that process, or give this server another data "
                               f"directory") from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)
        if identity is not None:
            self._check_identity(identity)

    def _stamp(self, name: str, value: str) -> Optional[str]:
        """The one-line stamp file name holds; if there is none, write value there, return None."""
        path = os.path.join(self._dir, name)
        try:
            with open(path, "rb") as f:
                return f.read(4096).decode("utf-8", "replace").rstrip("\n")
        except FileNotFoundError:
            self._write_new_file(path, [value.encode() + b"\n"], name, self._fsync)
            self._fsync(self._dir_fd)
            return None

    def _check_format(self, data_format: str) -> None:
        """The FORMAT stamp: what wrote this directory's records (directories from before the
        stamp existed get it on their first open)."""
        if not isinstance(data_format, str) or not data_format.strip() or "\n" in data_format:
            raise ValueError(f"DurablePersister: data_format must be a one-line string, got {data_format!r}")
        existing = self._stamp("FORMAT", data_format)
        if existing is not None and existing != data_format:
            raise DataDirError(
                f"data directory {self._dir} holds data format {existing!r} (its FORMAT file), "
                f"and this program reads {data_format!r}; fix: run the version that wrote it, or "
                f"move {self._dir} away and let this member start empty (it catches up from the "
                f"others)")

    def _check_identity(self, identity: str) -> None:
        existing = self._stamp("IDENTITY", identity)
        if existing is not None and existing != identity:
            raise DataDirError(
                f"data directory {self._dir} belongs to {existing!r} (its IDENTITY file), not to "
                f"{identity!r}; fix: give this server its own data directory, or, if the old "
                f"member is gone for good, remove {self._dir} so this one starts empty")

    def _recover(self) -> None:
        segs: list[tuple[int, str]] = []
        snaps: dict[int, str] = {}
        removed = False
        for name in os.listdir(self._dir):
            if m := _SEG_RE.match(name):
                segs.append((int(m.group(1), 16), name))
            elif m := _SNAP_RE.match(name):
                snaps[int(m.group(1), 16)] = name
            elif _TMP_RE.match(name):
                os.unlink(os.path.join(self._dir, name))  # a write that never got renamed
                removed = True
        segs.sort()
        for i, (seq, name) in enumerate(segs):
            self._seg_size = self._replay(os.path.join(self._dir, name), last=i == len(segs) - 1)
        ref = self._snap_ref
        if ref is not None:
            self._snapshot = self._load_snapshot(ref)
            self._snap_files = {ref[0]}
        self._next_snap_seq = max([*snaps, ref[0] if ref else 0]) + 1
        for seq, name in snaps.items():
            if ref is None or seq != ref[0]:
                os.unlink(os.path.join(self._dir, name))  # written, but no durable record uses it
                removed = True
        for seq, name in segs[:-1]:  # a checkpoint (the last) restates them
            os.unlink(os.path.join(self._dir, name))
            removed = True
        if segs:
            self._seg_seq = segs[-1][0]
            self._seg_fd = os.open(self._seg_path(), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        else:
            self._seg_seq, self._seg_size = 1, 0
            self._seg_fd = os.open(self._seg_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                   | os.O_CLOEXEC, 0o644)
            removed = True
        if removed:
            self._fsync(self._dir_fd)

    def _replay(self, path: str, last: bool) -> int:
        """Apply one segment's records; returns its size after any torn tail is cut off."""
        with open(path, "rb") as f:
            data = f.read()
        mv = memoryview(data)
        n = len(data)
        off = 0
        group: list[tuple[int, list[Any]]] = []  # ENTRIES records awaiting their STATE
        torn: Optional[tuple[int, str]] = None
        while off < n:
            if n - off < HEADER_SIZE:
                torn = (off, f"a partial record header ({n - off} bytes)")
                break
            magic, version, length, pcrc, hcrc = _REC_HEADER.unpack_from(data, off)
            if zlib.crc32(mv[off:off + _REC_PREFIX.size]) != hcrc:
                if last and data.count(0, off) == n - off:
                    torn = (off, "a zero-filled tail")
                    break
                raise CorruptionError(path, off, "record header checksum mismatch")
            if magic != _REC_MAGIC or version != _REC_VERSION:
                raise CorruptionError(path, off, f"unknown record format (magic {magic!r}, "
                                                 f"version {version}); written by another program?")
            end = off + HEADER_SIZE + length
            if end > n:
                torn = (off, f"a record of {length} bytes cut short at {n - off - HEADER_SIZE}")
                break
            if zlib.crc32(mv[off + HEADER_SIZE:end]) != pcrc:
                if last and end == n:
                    torn = (off, "a last record whose payload checksum fails")
                    break
                raise CorruptionError(path, off, "record payload checksum mismatch")
            try:
                rec = _decode(mv[off + HEADER_SIZE:end])
                if rec[0] == ENTRIES:
                    group.append((off, rec))
                elif group and rec[0] == FULL:
                    raise _Malformed(f"a FULL record follows ENTRIES at offset {group[0][0]} "
                                     f"that no STATE record committed")
                else:
                    self._replay_record(rec, group)
                    group = []
            except _Malformed as e:
                raise CorruptionError(path, off, str(e)) from None
            off = end
        if group and torn is None:
            torn = (group[0][0], "log entries whose committing STATE record is missing")
        elif group:
            torn = (group[0][0], torn[1] + ", after log entries it would have committed")
        if torn is None:
            return n
        if not last:
            raise CorruptionError(path, torn[0], f"{torn[1]}, in a segment that is not the last")
        log.warning("%s: repairing a torn tail at offset %d (%s): truncating %d bytes",
                    path, torn[0], torn[1], n - torn[0])
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, torn[0])
            self._fsync(fd)
        finally:
            os.close(fd)
        return torn[0]

    def _replay_record(self, rec: list[Any], group: list[tuple[int, list[Any]]]) -> None:
        if rec[0] == FULL:
            self._mode = _FULL_MODE
            self._raftstate, self._snap_ref = rec[1], rec[2]
            self._state, self._base = b"", 0
            self._entries.clear()
            self._entries_bytes = 0
            return
        _, state, base, ref = rec
        self._set_base(base)
        self._state, self._snap_ref = state, ref
        for off, (_, first, ents) in group:
            last = self._base + len(self._entries)
            if not base + 1 <= first <= last + 1:
                raise _Malformed(f"ENTRIES record at offset {off} starts at index {first}, "
                                 f"outside [base+1, last+1] = [{base + 1}, {last + 1}]")
            self._put_entries(first, ents)

    def _load_snapshot(self, ref: tuple[int, int]) -> bytes:
        path = os.path.join(self._dir, _snap_name(ref[0]))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise CorruptionError(path, 0, "the snapshot the log references is missing") from None
        if len(data) < SNAP_HEADER_SIZE:
            raise CorruptionError(path, 0, f"snapshot file of {len(data)} bytes has no header")
        magic, length, pcrc, hcrc = _SNAP_HEADER.unpack_from(data, 0)
        if zlib.crc32(data[:_SNAP_PREFIX.size]) != hcrc or magic != _SNAP_MAGIC:
            raise CorruptionError(path, 0, "snapshot header checksum mismatch")
        if length != ref[1] or len(data) != SNAP_HEADER_SIZE + length:
            raise CorruptionError(path, 0, f"snapshot holds {len(data) - SNAP_HEADER_SIZE} bytes, "
                                           f"header says {length}, the log {ref[1]}")
        body = data[SNAP_HEADER_SIZE:]
        if zlib.crc32(body) != pcrc:
            raise CorruptionError(path, SNAP_HEADER_SIZE, "snapshot payload checksum mismatch")
        return body


def _as_entry(e: Any, i: int) -> bytes:
    if isinstance(e, bytes):
        return e
    if isinstance(e, (bytearray, memoryview)):
        return bytes(e)
    raise TypeError(f"SaveLog: entries[{i}] must be bytes (an encoded log entry), "
                    f"got {type(e).__name__}")


# ---- python -m kubekv.storage: append latency with a short and a long log ----

def _summary(ns: list[int]) -> str:
    us = sorted(x / 1000 for x in ns)

    def pct(q: float) -> float:
        return us[min(len(us) - 1, int(q * len(us)))]

    return f"mean {statistics.fmean(us):9.1f}  p50 {pct(0.50):9.1f}  p99 {pct(0.99):9.1f} us"


def main(argv: Optional[list[str]] = None) -> int:
    """Time single-entry SaveLog and SaveLog+Sync at 100 and 100,000 live entries."""
    ap = argparse.ArgumentParser(prog="python -m kubekv.storage", description=main.__doc__)
    ap.add_argument("--dir", default=None, help="where to make the temporary data directories "
                                                "(default: the system temp dir); use the disk "
                                                "you mean to measure")
    ap.add_argument("--appends", type=int, default=1000)
    ap.add_argument("--entry-bytes", type=int, default=100)
    args = ap.parse_args(argv)
    state = b"term=7 votedFor=2"
    entry = b"e" * args.entry_bytes
    for size in (100, 100_000):
        with tempfile.TemporaryDirectory(prefix="kubekv-storage-", dir=args.dir) as d:
            p = DurablePersister(d)
            last = 0
            while last < size:
                chunk = [entry] * min(1000, size - last)
                p.SaveLog(state, 0, last + 1, chunk, b"")
                last += len(chunk)
            p.Sync()
            before = p.stats()
            t_save: list[int] = []
            t_both: list[int] = []
            for _ in range(args.appends):
                t0 = time.perf_counter_ns()
                p.SaveLog(state, 0, last + 1, [entry], b"")
                t1 = time.perf_counter_ns()
                p.Sync()
                t2 = time.perf_counter_ns()
                last += 1
                t_save.append(t1 - t0)
                t_both.append(t2 - t0)
            after = p.stats()
            assert p.RaftStateSize() == len(state) + last * len(entry)
            p.Close()
            print(f"{size:>7} entries: {args.appends} appends of {len(entry)} bytes in {d}")
            print(f"    SaveLog        {_summary(t_save)}")
            print(f"    SaveLog+Sync   {_summary(t_both)}")
            print(f"    fsyncs {after['fsyncs'] - before['fsyncs']}, syncs "
                  f"{after['syncs'] - before['syncs']}, bytes written "
                  f"{after['bytes'] - before['bytes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
