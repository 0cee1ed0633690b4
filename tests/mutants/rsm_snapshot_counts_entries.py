"""MUTANT of rsm/rsm.py: the rsm compares the number of applied entries, not Raft's state size in bytes, to maxraftstate.

With maxraftstate = 1000 it snapshots every ~900 commands, so Raft's state grows far above
maxraftstate.

Run the lab tests against it:
    KUBEKV_MUTANT=rsm_snapshot_counts_entries python -m pytest -p tests.mutants.plugin rsm kvraft1 -k 4C
"""

from tests.mutants import plant

PART = "4C"
REPLACEMENTS = [(
    """        size = self.rf.PersistBytes()
        threshold""",
    """        size = self.applied_since_snapshot  # MUTANT: entries, not bytes
        threshold""")]

plant(globals(), "rsm/rsm.py", REPLACEMENTS)
