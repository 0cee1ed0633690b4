"""MUTANT of raft1/raft.py: Start checks leadership and picks the new entry's index before taking the lock; not a solution.

A check-then-act race: two Start() calls at once can both read the same last index, append
one entry each, and both return the same index, so a caller waits on an index that holds
another command. Under the GIL the gap is a few bytecodes and next to never shows; any
scheduler that may switch at the lock acquire finds it. Run the lab tests against it with
    KUBEKV_MUTANT=raft_start_unlocked python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import mutate

_DOC = __doc__
PART = "3B"
REPLACEMENTS = [(
    """        with self.mu:
            if self.dead or self.state != LEADER:
                return -1, self.currentTerm, False
            self.log.append(LogEntry(self.currentTerm, command))
            self.persist()
            index = self.last_index()
""",
    """        # MUTANT: the check and the index are taken outside the lock.
        if self.dead or self.state != LEADER:
            return -1, self.currentTerm, False
        index = self.last_index() + 1
        with self.mu:
            self.log.append(LogEntry(self.currentTerm, command))
            self.persist()
""")]

exec(mutate("raft1/raft.py", REPLACEMENTS, __name__), globals())
__doc__ = _DOC
