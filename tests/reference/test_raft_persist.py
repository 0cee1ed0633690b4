"""The reference Raft refuses persisted state that its persist() cannot have written."""

from __future__ import annotations

import io

import pytest

import labgob
import tester
from raft1.chan import Chan
from raft1.raft import LogEntry, Make


def _persister(term, voted_for, base, log, snapshot: bytes = b"") -> tester.Persister:
    w = io.BytesIO()
    e = labgob.NewEncoder(w)
    for x in (term, voted_for, base, log):
        e.Encode(x)
    p = tester.MakePersister()
    p.Save(w.getvalue(), snapshot)
    return p


def _make(p: tester.Persister):
    return Make([None, None, None], 0, p, Chan())


@pytest.mark.parametrize("state, message", [
    ((1, None, 0, [LogEntry(0, None), 5]), r"holds 5 \(a int\) at log index 1, not a LogEntry"),
    ((1, None, 100, [LogEntry(1, None)]), r"starts its log at index 100 but there is no snapshot"),
    ((1, 7, 0, [LogEntry(0, None)]), r"votedFor 7, not None or a peer number below 3"),
    (("1", None, 0, [LogEntry(0, None)]), r"currentTerm '1', not an int"),
    ((1, None, 0, []), r"a log of type list \(length 0\)"),
    ((2, None, 0, [LogEntry(0, None), LogEntry(2, 1), LogEntry(1, 2)]), r"term 1 at log index 2"),
    ((1, None, 0, [LogEntry(0, None), LogEntry(3, 1)]), r"never exceed currentTerm 1"),
])
def TestBadPersistedStateIsRefused(state, message):
    with pytest.raises(labgob.LabgobError, match=message):
        _make(_persister(*state))


def TestGoodPersistedStateRestarts():
    rf = _make(_persister(3, 1, 10, [LogEntry(2, None), LogEntry(3, "x")], snapshot=b"snap"))
    try:
        assert rf.GetState() == (3, False)
    finally:
        rf.Kill()
