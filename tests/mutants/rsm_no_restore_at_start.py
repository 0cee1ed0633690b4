"""MUTANT of rsm/rsm.py: MakeRSM does not restore the state machine from the persisted snapshot at start.

Raft starts after its snapshot and does not deliver it again, so a restarted server lacks
everything the snapshot covered.

Run the lab tests against it:
    KUBEKV_MUTANT=rsm_no_restore_at_start python -m pytest -p tests.mutants.plugin rsm kvraft1 -k 4C
"""

from tests.mutants import plant

PART = "4C"
REPLACEMENTS = [(
    """    if snapshot:
        sm.Restore(snapshot)
""",
    '    # MUTANT: the persisted snapshot is not restored\n')]

plant(globals(), "rsm/rsm.py", REPLACEMENTS)
