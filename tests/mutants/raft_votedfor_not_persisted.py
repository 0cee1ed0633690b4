"""MUTANT of raft1/raft.py: votedFor is not persisted: after a restart a peer can vote again in the same term.

persist() saves None in its place, so a peer that crashes after voting may hand a second
vote in that term to another candidate: two leaders in one term.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_votedfor_not_persisted python -m pytest -p tests.mutants.plugin raft1 -k 3C
"""

from tests.mutants import plant

PART = "3C"
REPLACEMENTS = [(
    '        e.Encode(self.votedFor)\n',
    '        e.Encode(None)  # MUTANT: votedFor is not saved\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
