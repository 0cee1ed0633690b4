"""MUTANT of kvraft1/server.py: the KV snapshot holds only the values; a restored key restarts at version 1.

The versions are the KV service's duplicate detection: after a restore, Puts with the
right version get ErrVersion and stale ones may succeed.

Run the lab tests against it:
    KUBEKV_MUTANT=kv_snapshot_no_versions python -m pytest -p tests.mutants.plugin rsm kvraft1 -k 4C
"""

from tests.mutants import plant

PART = "4C"
REPLACEMENTS = [(
    '            labgob.NewEncoder(w).Encode(self.data)\n',
    """            labgob.NewEncoder(w).Encode({k: v[0] for k, v in self.data.items()})  # MUTANT: no versions
"""), (
    '            self.data = {k: [v[0], v[1]] for k, v in decoded.items()}\n',
    '            self.data = {k: [v, 1] for k, v in decoded.items()}  # MUTANT: version 1\n')]

plant(globals(), "kvraft1/server.py", REPLACEMENTS)
