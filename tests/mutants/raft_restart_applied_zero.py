"""MUTANT of raft1/raft.py: after a restart lastApplied and commitIndex start at 0, not at the snapshot's index.

The applier then delivers entries the snapshot already covers, slicing the trimmed log
with indices below its base.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_restart_applied_zero python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

PART = "3D"
REPLACEMENTS = [(
    '        self.commitIndex = self.lastApplied = base\n',
    "        pass  # MUTANT: commitIndex and lastApplied not set to the snapshot's index\n")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
