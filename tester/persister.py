"""Persister: where Raft saves its state and the service its snapshot (Go: tester1/persister.go).

Usage (from Raft / the rsm):
    persister.Save(raftstate, snapshot)   # both parts, atomically; there is no "save raft state only"
    data = persister.ReadRaftState()      # b"" before the first Save
    snap = persister.ReadSnapshot()
    persister.RaftStateSize(), persister.SnapshotSize()

Saving b"" (or None) as the snapshot erases the snapshot, as in Go: a Raft that persists its
state after a snapshot must pass the current snapshot again (TestSnapshotInit3D checks this).

Python bytes are immutable, so Copy() and the reads share the stored objects safely; Save
converts bytearray/memoryview arguments to bytes so later mutation by the caller cannot leak in.
Thread-safe.
"""

from __future__ import annotations

import threading
from typing import Union

BytesLike = Union[bytes, bytearray, memoryview, None]


def _as_bytes(b: BytesLike, what: str) -> bytes:
    if b is None:
        return b""
    if isinstance(b, bytes):
        return b
    if isinstance(b, (bytearray, memoryview)):
        return bytes(b)
    raise TypeError(
        f"Persister.Save: {what} must be bytes (e.g. from labgob's encoder: w.getvalue()), "
        f"got {type(b).__name__}"
    )


class Persister:
    """Holds one server's persisted Raft state and snapshot across crashes and restarts."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._raftstate = b""
        self._snapshot = b""

    def Copy(self) -> "Persister":
        """A new Persister with the same contents (the tester gives one to each restarted instance)."""
        with self._mu:
            np = Persister()
            np._raftstate = self._raftstate
            np._snapshot = self._snapshot
            return np

    def ReadRaftState(self) -> bytes:
        with self._mu:
            return self._raftstate

    def RaftStateSize(self) -> int:
        with self._mu:
            return len(self._raftstate)

    def Save(self, raftstate: BytesLike, snapshot: BytesLike) -> None:
        """Save both Raft state and snapshot as one atomic action, so they never get out of sync."""
        rs = _as_bytes(raftstate, "raftstate")
        sn = _as_bytes(snapshot, "snapshot")
        with self._mu:
            self._raftstate = rs
            self._snapshot = sn

    def ReadSnapshot(self) -> bytes:
        with self._mu:
            return self._snapshot

    def SnapshotSize(self) -> int:
        with self._mu:
            return len(self._snapshot)


def MakePersister() -> Persister:
    return Persister()


__all__ = ["Persister", "MakePersister"]
