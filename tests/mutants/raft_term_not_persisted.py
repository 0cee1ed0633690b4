"""MUTANT of raft1/raft.py: currentTerm is not persisted: a restarted peer starts again in term 0.

It can then accept a stale leader's AppendEntries, and on learning its old term again it
forgets the vote it cast in it (become_follower clears votedFor).

Run the lab tests against it:
    KUBEKV_MUTANT=raft_term_not_persisted python -m pytest -p tests.mutants.plugin raft1 -k 3C
"""

from tests.mutants import plant

PART = "3C"
REPLACEMENTS = [(
    """        self.currentTerm, self.votedFor, self.log_base, self.log = term, voted_for, base, log
""",
    """        self.currentTerm, self.votedFor, self.log_base, self.log = 0, voted_for, base, log  # MUTANT: term lost
""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
