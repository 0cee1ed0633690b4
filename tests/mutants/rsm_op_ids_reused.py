"""MUTANT of rsm/rsm.py: op ids count from 1 in every incarnation, so a restarted server reuses its predecessor's ids.

Replaying the log after a restart, an old op with the same Me and Id completes a new Submit
with the old op's result.

Run the lab tests against it:
    KUBEKV_MUTANT=rsm_op_ids_reused python -m pytest -p tests.mutants.plugin rsm -k 4A
"""

from tests.mutants import plant

PART = "4A"
REPLACEMENTS = [(
    '        self.ids = itertools.count(random.getrandbits(31))\n',
    '        self.ids = itertools.count(1)  # MUTANT: ids repeat across restarts\n')]

plant(globals(), "rsm/rsm.py", REPLACEMENTS)
