"""MUTANT of raft1/raft.py: InstallSnapshot does not check LastIncludedIndex against commitIndex: a stale snapshot is installed.

A reordered or late InstallSnapshot older than what the follower committed rolls its log,
commitIndex and the service back (and an index below the log base indexes from the end).

Run the lab tests against it:
    KUBEKV_MUTANT=raft_stale_install_snapshot python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

PART = "3D"
REPLACEMENTS = [(
    """            if args.LastIncludedIndex <= self.commitIndex:
                return  # we have all of it already (perhaps a reordered RPC)
""",
    '            # MUTANT: no check of LastIncludedIndex against commitIndex\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
