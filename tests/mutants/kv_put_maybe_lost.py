"""MUTANT of kvraft1/server.py: a Put whose Submit failed after Start answers ErrWrongLeader, not ErrMaybe.

The clerk then takes the first copy for never run, resends it and trusts the ErrVersion the
copy gets, although the first one executed.

Run the lab tests against it:
    KUBEKV_MUTANT=kv_put_maybe_lost python -m pytest -p tests.mutants.plugin kvraft1 -k 4B
"""

from tests.mutants import plant

PART = "4B"
REPLACEMENTS = [(
    '            reply.Err = rpc.ErrMaybe\n',
    '            reply.Err = rpc.ErrWrongLeader  # MUTANT: not ErrMaybe\n')]

plant(globals(), "kvraft1/server.py", REPLACEMENTS)
