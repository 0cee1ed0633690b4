"""MUTANT of kvraft1/server.py: Put does not compare versions: a retried (or conflicting) Put executes again.

Every Put of an existing key succeeds, so a resent Put runs twice and ErrVersion never comes.

Run the lab tests against it:
    KUBEKV_MUTANT=kv_put_no_version_check python -m pytest -p tests.mutants.plugin kvraft1 -k 4B
"""

from tests.mutants import plant

PART = "4B"
REPLACEMENTS = [(
    """        if entry[1] != args.Version:
            return rpc.ErrVersion
""",
    '        # MUTANT: no version check\n')]

plant(globals(), "kvraft1/server.py", REPLACEMENTS)
