"""MUTANT of raft1/raft.py: compacting keeps the entry at the snapshot index after the new sentinel (off by one).

Every index after the snapshot is then one slot off: wrong terms and commands.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_compact_off_by_one python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

PART = "3D"
REPLACEMENTS = [(
    '            rest = self.log[index - self.log_base + 1:]\n',
    '            rest = self.log[index - self.log_base:]  # MUTANT: should start at + 1\n')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
