"""MUTANT of raft1/raft.py: a new leader does not reset nextIndex[] to its last index + 1.

nextIndex keeps what an earlier term of leadership (or the initial 1) left; past the
leader's log it points at entries the leader no longer has.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_nextindex_not_reset python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

PART = "3B"
REPLACEMENTS = [(
    '            self.nextIndex[p] = self.last_index() + 1\n',
    '            pass  # MUTANT: nextIndex[p] is not reset\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
