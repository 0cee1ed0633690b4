"""MUTANT of raft1/raft.py: InstallSnapshot only refuses snapshots older than its own: a duplicate is installed and delivered again.

The check is LastIncludedIndex < log_base instead of <= commitIndex, so a retried copy of
the snapshot just installed (or one of entries already applied) sets commitIndex back and
sends the service a snapshot behind what it applied.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_install_snapshot_reapplied python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

UNREACHABLE = ("equivalent for every check of the Go tests: the snapshot delivered again is at or behind "
               "what was applied, and the tester (as Go's) takes any snapshot's index as its new "
               "lastApplied, so the entries applied again arrive in order with the same commands")
PART = "3D"
REPLACEMENTS = [(
    '            if args.LastIncludedIndex <= self.commitIndex:\n',
    '            if args.LastIncludedIndex < self.log_base:  # MUTANT: not <= commitIndex\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
