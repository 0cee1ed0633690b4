"""MUTANT of raft1/raft.py: a heartbeat (no entries) succeeds without checking PrevLogIndex/PrevLogTerm.

The follower then takes leaderCommit up to PrevLogIndex on a log that may not match the
leader's (or is too short), applying wrong or missing entries.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_heartbeat_skips_prev_check python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

PART = "3B"
REPLACEMENTS = [(
    '            if not self.log_matches(prev, prev_term, reply):\n',
    """            if entries and not self.log_matches(prev, prev_term, reply):  # MUTANT: heartbeats always match
""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
