"""MUTANT of raft1/raft.py: a follower sets commitIndex = min(leaderCommit, its last index), not the last NEW entry's index.

Figure 2 says index of last new entry: entries after the ones the leader just checked may
be a deposed leader's, and get committed and applied.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_commit_no_min python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

UNREACHABLE = "equivalent: an AppendEntries always carries the leader's whole suffix, so LeaderCommit <= its last new index"
PART = "3B"
REPLACEMENTS = [(
    """            if args.LeaderCommit > self.commitIndex and last_new > self.commitIndex:
                self.commitIndex = min(args.LeaderCommit, last_new)
""",
    """            # MUTANT: bounded by our whole log, not by the entries this RPC vouched for
            if args.LeaderCommit > self.commitIndex and self.last_index() > self.commitIndex:
                self.commitIndex = min(args.LeaderCommit, self.last_index())
""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
