"""MUTANT of raft1/raft.py: the leader commits an entry of an earlier term by counting replicas (Figure 8).

Section 5.4.2: only an entry of the leader's own term may be committed that way; an older
one held by a majority can still be overwritten by a later leader.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_figure8_commit python -m pytest -p tests.mutants.plugin raft1 -k 3C
"""

from tests.mutants import plant

PART = "3C"
REPLACEMENTS = [(
    '        if n > self.commitIndex and self.term_at(n) == self.currentTerm:\n',
    '        if n > self.commitIndex:  # MUTANT: also an entry of an earlier term\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
