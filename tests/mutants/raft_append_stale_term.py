"""MUTANT of raft1/raft.py: AppendEntries does not reject a leader whose term is older than currentTerm.

A deposed leader that rejoins overwrites the new leader's (committed) entries on the
followers it reaches, before its reply's term makes it step down.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_append_stale_term python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

PART = "3B"
REPLACEMENTS = [(
    """            if args.Term < self.currentTerm:
                return
            self.follow_leader(args.LeaderId)
            prev, prev_term, entries""",
    """            # MUTANT: no check of args.Term < currentTerm
            self.follow_leader(args.LeaderId)
            prev, prev_term, entries""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
