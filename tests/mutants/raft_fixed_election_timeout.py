"""MUTANT of raft1/raft.py: every election timeout is ELECTION_TIMEOUT_MIN_MS, not random.

Peers that lost the same leader time out together, split the vote, and do it again in
the next term: elections need luck (network delays) to end.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_fixed_election_timeout python -m pytest -p tests.mutants.plugin raft1 -k 3A
"""

from tests.mutants import plant

PART = "3A"
REPLACEMENTS = [(
    '        timeout_ms = random.uniform(ELECTION_TIMEOUT_MIN_MS, ELECTION_TIMEOUT_MAX_MS)\n',
    '        timeout_ms = ELECTION_TIMEOUT_MIN_MS  # MUTANT: not randomized\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
