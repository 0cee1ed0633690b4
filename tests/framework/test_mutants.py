"""tests/mutants: mutants are built from the reference's current source, and refuse stale edits."""

from __future__ import annotations

import pytest

from tests.mutants import mutate


def TestSnapshotRaceMutantDiffersOnlyWhereItSays():
    from raft1 import raft
    from tests.mutants import raft_snapshot_race as m

    assert m.Make is not raft.Make and m.__name__ == "tests.mutants.raft_snapshot_race"
    assert hasattr(m.Raft, "send_snapshot_msg") and not hasattr(raft.Raft, "send_snapshot_msg")
    assert "MUTANT" in m.__doc__


def TestStaleReplacementIsRefused():
    with pytest.raises(RuntimeError, match=r"mutant stale: raft1/raft.py holds the text to replace 0 times"):
        mutate("raft1/raft.py", [("text the reference never had", "x")], "stale")
