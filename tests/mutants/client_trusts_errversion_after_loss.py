"""MUTANT of kvraft1/client.py: the clerk returns ErrVersion for a resent Put even though an earlier copy may have run.

After a lost RPC (or a server's ErrMaybe) the resend's ErrVersion may be the first copy's
own doing: the answer must be ErrMaybe.

Run the lab tests against it:
    KUBEKV_MUTANT=client_trusts_errversion_after_loss python -m pytest -p tests.mutants.plugin kvraft1 -k 4B
"""

from tests.mutants import plant

PART = "4B"
REPLACEMENTS = [(
    '                if reply.Err == rpc.ErrVersion and maybe_ran:\n',
    '                if reply.Err == rpc.ErrVersion and False:  # MUTANT: never ErrMaybe\n')]

plant(globals(), "kvraft1/client.py", REPLACEMENTS)
