"""MUTANT of raft1/raft.py: a follower truncates its log after PrevLogIndex on every AppendEntries, even on a matching prefix.

A delayed (reordered) RPC, or a heartbeat overtaken by an append, drops entries a later RPC
appended and the leader already counted in matchIndex.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_truncate_on_match python -m pytest -p tests.mutants.plugin raft1 -k 3C
"""

from tests.mutants import plant

PART = "3C"
REPLACEMENTS = [(
    """        for i, entry in enumerate(entries):
            index = prev + 1 + i
""",
    """        # MUTANT: cut after prev whatever follows, then append
        if entries or self.last_index() > prev:
            del self.log[prev + 1 - self.log_base:]
            self.log.extend(entries)
            self.persist()
        return
        for i, entry in enumerate(entries):
            index = prev + 1 + i
""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
