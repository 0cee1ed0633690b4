"""MUTANT of raft1/raft.py: heartbeats every 300 ms, above the 250 ms lower bound of the election timeout.

A follower whose timeout falls below the heartbeat interval starts an election although
the leader is healthy: the term keeps changing without any failure.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_slow_heartbeat python -m pytest -p tests.mutants.plugin raft1 -k 3A
"""

from tests.mutants import plant

PART = "3A"
REPLACEMENTS = [(
    'HEARTBEAT_INTERVAL_MS = 100\n',
    "HEARTBEAT_INTERVAL_MS = 300  # MUTANT: longer than the election timeout's minimum\n")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
