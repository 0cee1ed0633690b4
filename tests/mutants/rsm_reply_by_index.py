"""MUTANT of rsm/rsm.py: a committed result goes to whichever Submit waits at that log index, whatever op is there.

A Submit whose op was overwritten by another leader's entry at the same index gets OK and
that entry's result, instead of ErrWrongLeader (reply matched by index, not by Me/Id).

Run the lab tests against it:
    KUBEKV_MUTANT=rsm_reply_by_index python -m pytest -p tests.mutants.plugin rsm -k 4A
"""

from tests.mutants import plant

PART = "4A"
REPLACEMENTS = [(
    '            mine = self.waiters.get(op.Id) if op.Me == self.me else None\n',
    '            mine = w  # MUTANT: matched by index only\n')]

plant(globals(), "rsm/rsm.py", REPLACEMENTS)
