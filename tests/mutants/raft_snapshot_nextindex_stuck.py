"""MUTANT of raft1/raft.py: after a successful InstallSnapshot the leader advances neither nextIndex nor matchIndex.

It keeps sending the same snapshot; the follower never gets the entries after it.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_snapshot_nextindex_stuck python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

PART = "3D"
REPLACEMENTS = [(
    """                self.matchIndex[peer] = max(self.matchIndex[peer], args.LastIncludedIndex)
                self.nextIndex[peer] = max(self.nextIndex[peer], args.LastIncludedIndex + 1)
""",
    '                pass  # MUTANT: nextIndex and matchIndex not advanced\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
