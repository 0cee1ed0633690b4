"""The interface between Raft and the layers above it (Go: raft1/raftapi).

Usage:
    from raft1.raftapi import ApplyMsg, Raft, Chan

    applyCh = Chan()                       # unbuffered, like make(chan raftapi.ApplyMsg)
    rf = raft.Make(peers, me, persister, applyCh)
    index, term, isLeader = rf.Start(cmd)
    for msg in applyCh:                    # ends when Raft closes applyCh after Kill()
        if msg.CommandValid: ...
        elif msg.SnapshotValid: ...

Every service above Raft (the raft tester, rsm, kvraft1) sees Raft only through
this interface, so a student's Raft and the reference Raft are interchangeable.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from raft1.chan import Chan, ChanClosed


@dataclass
class ApplyMsg:
    """One message on applyCh: a committed command, or a snapshot to install.

    Exactly one of CommandValid and SnapshotValid is True.
    """

    CommandValid: bool = False
    Command: Any = None
    CommandIndex: int = 0

    SnapshotValid: bool = False
    Snapshot: bytes = b""
    SnapshotTerm: int = 0
    SnapshotIndex: int = 0


class Raft(abc.ABC):
    """What a Raft peer offers the service above it (Go: raftapi.Raft).

    Like a Go interface it is satisfied structurally: isinstance(x, Raft) holds for any object
    with the five methods below, whether or not its class derives from this one.
    """

    @classmethod
    def __subclasshook__(cls, C: type) -> Any:
        if cls is Raft and all(callable(getattr(C, m, None)) for m in _RAFT_METHODS):
            return True
        return NotImplemented

    @abc.abstractmethod
    def Start(self, command: Any) -> tuple[int, int, bool]:
        """Propose command; returns (index, term, isLeader) at once, without waiting for commit."""

    @abc.abstractmethod
    def GetState(self) -> tuple[int, bool]:
        """(currentTerm, isLeader)."""

    @abc.abstractmethod
    def Snapshot(self, index: int, snapshot: bytes) -> None:
        """The service has a snapshot covering everything up to and including index: trim the log."""

    @abc.abstractmethod
    def PersistBytes(self) -> int:
        """Size in bytes of the persisted Raft state (the rsm compares it to maxraftstate)."""

    @abc.abstractmethod
    def Kill(self) -> None:
        """Stop every thread of this peer and close applyCh, so a service reading it sees the end."""


_RAFT_METHODS = ("Start", "GetState", "Snapshot", "PersistBytes", "Kill")

__all__ = ["ApplyMsg", "Raft", "Chan", "ChanClosed"]
