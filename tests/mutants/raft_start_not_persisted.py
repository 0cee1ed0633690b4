"""MUTANT of raft1/raft.py: Start() appends the command to the leader's log without persisting it.

The leader counts its own copy towards a majority; if it crashes, the entry it may have
committed with one follower is gone from its log after the restart.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_start_not_persisted python -m pytest -p tests.mutants.plugin raft1 -k 3C
"""

from tests.mutants import plant

PART = "3C"
REPLACEMENTS = [(
    """            self.log.append(LogEntry(self.currentTerm, command))
            self.persist()
""",
    '            self.log.append(LogEntry(self.currentTerm, command))  # MUTANT: not persisted\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
