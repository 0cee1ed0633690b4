"""MUTANT of raft1/raft.py: a candidate does not step down when a RequestVote reply carries a higher term.

It stays candidate in its stale term until its next timeout or a leader's heartbeat;
since a higher-term RPC from anyone also makes it a follower, the tests may not notice.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_candidate_ignores_higher_term python -m pytest -p tests.mutants.plugin raft1 -k 3A
"""

from tests.mutants import plant

UNREACHABLE = "liveness only: the next incoming RPC carries the higher term, within an election timeout"
PART = "3A"
REPLACEMENTS = [(
    '                    if not self.dead and not self.observe_term(reply.Term):\n',
    "                    if not self.dead:  # MUTANT: the reply's term is not observed\n")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
