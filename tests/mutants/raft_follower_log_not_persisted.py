"""MUTANT of raft1/raft.py: a follower does not persist the entries AppendEntries appended before replying Success.

The leader counts them as replicated; after a crash and restart the follower no longer has
them (until some later persist), so a committed entry can be lost.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_follower_log_not_persisted python -m pytest -p tests.mutants.plugin raft1 -k 3C
"""

from tests.mutants import plant

PART = "3C"
REPLACEMENTS = [(
    """            self.log.extend(entries[i:])
            self.persist()
""",
    '            self.log.extend(entries[i:])  # MUTANT: not persisted\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
