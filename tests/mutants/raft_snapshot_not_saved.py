"""MUTANT of raft1/raft.py: Snapshot() trims the log but does not keep the service's snapshot.

persist() then saves the previous snapshot with the trimmed log, and the leader sends the
old snapshot to followers in InstallSnapshot.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_snapshot_not_saved python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

PART = "3D"
REPLACEMENTS = [(
    """            self.compact_log(index, self.term_at(index))
            self.snapshot = snapshot
""",
    '            self.compact_log(index, self.term_at(index))  # MUTANT: snapshot not kept\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
