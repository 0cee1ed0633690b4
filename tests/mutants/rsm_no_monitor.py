"""MUTANT of rsm/rsm.py: no term monitor: a Submit whose leader lost its term waits until its index is applied.

If the new leader's log never reaches that index (or until it does), the Submit hangs
instead of answering ErrWrongLeader.

Run the lab tests against it:
    KUBEKV_MUTANT=rsm_no_monitor python -m pytest -p tests.mutants.plugin rsm -k 4A
"""

from tests.mutants import plant

PART = "4A"
REPLACEMENTS = [(
    '    threading.Thread(target=rsm._monitor, name=f"rsm-{me}-monitor", daemon=True).start()\n',
    '    # MUTANT: the monitor thread is not started\n')]

plant(globals(), "rsm/rsm.py", REPLACEMENTS)
