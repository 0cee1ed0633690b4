"""MUTANT of raft1/raft.py: on success the leader sets matchIndex to its own last index, not PrevLogIndex + len(Entries).

Entries Start()ed after the RPC went out count as replicated: the leader commits entries
a majority does not hold, and nextIndex skips them for that follower.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_match_from_last_index python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

PART = "3B"
REPLACEMENTS = [(
    '            match = args.PrevLogIndex + len(args.Entries)\n',
    "            match = self.last_index()  # MUTANT: the leader's log now, not what was sent\n")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
