"""MUTANT of kvraft1/client.py: the clerk keeps retrying the same server; it never moves on to another one.

Once that server is not (or no longer) the leader, or is cut off, the clerk never finishes.

Run the lab tests against it:
    KUBEKV_MUTANT=client_stuck_on_server python -m pytest -p tests.mutants.plugin kvraft1 -k 4B
"""

from tests.mutants import plant

PART = "4B"
REPLACEMENTS = [(
    """        self.lost_here = 0
        self.leader = (i + 1) % len(self.servers)
        return False
""",
    """        self.lost_here = 0
        return False  # MUTANT: never tries the next server
""")]

plant(globals(), "kvraft1/client.py", REPLACEMENTS)
