"""MUTANT of kvraft1/client.py: the clerk answers ErrMaybe to an ErrVersion after any retry, also after mere ErrWrongLeader ones.

ErrMaybe is always allowed by the linearizability model, so Go's tests can only see this
as more uncertain Puts (a weaker answer, not a wrong one): expected to survive.

Run the lab tests against it:
    KUBEKV_MUTANT=client_maybe_after_wrongleader python -m pytest -p tests.mutants.plugin kvraft1 -k 4B
"""

from tests.mutants import plant

UNREACHABLE = "ErrMaybe is always allowed: a weaker answer, never a wrong one"
PART = "4B"
REPLACEMENTS = [(
    """            if reply.Err != rpc.ErrWrongLeader:
                maybe_ran = True""",
    """            if True:  # MUTANT: an ErrWrongLeader copy counted as maybe run
                maybe_ran = True""")]

plant(globals(), "kvraft1/client.py", REPLACEMENTS)
