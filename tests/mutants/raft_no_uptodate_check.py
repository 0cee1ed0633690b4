"""MUTANT of raft1/raft.py: RequestVote does not check that the candidate's log is up to date (section 5.4.1).

A peer that missed committed entries can win an election and overwrite them.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_no_uptodate_check python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

PART = "3B"
REPLACEMENTS = [(
    '        """Section 5.4.1: compare the last terms, then the lengths."""\n',
    '''        """Section 5.4.1: compare the last terms, then the lengths."""
        return True  # MUTANT: every candidate's log is good enough
''')]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
