"""MUTANT of raft1/raft.py: RequestVote grants a vote regardless of votedFor (double voting).

Two candidates of one term can both win a majority: two leaders in a term.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_double_vote python -m pytest -p tests.mutants.plugin raft1 -k 3A
"""

from tests.mutants import plant

PART = "3A"
REPLACEMENTS = [(
    """            if self.votedFor in (None, args.CandidateId) and self.candidate_is_up_to_date(args):
""",
    '            if self.candidate_is_up_to_date(args):  # MUTANT: votedFor not consulted\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
