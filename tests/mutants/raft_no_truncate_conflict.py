"""MUTANT of raft1/raft.py: a follower overwrites conflicting entries in place but keeps the rest of its old suffix.

Entries of a deposed leader's term survive after the new leader's last entry, so the
follower's log no longer matches the leader's although AppendEntries said Success.

Run the lab tests against it:
    KUBEKV_MUTANT=raft_no_truncate_conflict python -m pytest -p tests.mutants.plugin raft1 -k 3B
"""

from tests.mutants import plant

PART = "3B"
REPLACEMENTS = [(
    """            del self.log[index - self.log_base:]
            self.log.extend(entries[i:])
            self.persist()
            return
""",
    """            # MUTANT: no truncation: the leader's entries overwrite ours one by one and the
            # entries after the last of them are kept.
            pos = index - self.log_base
            for j, new in enumerate(entries[i:]):
                if pos + j < len(self.log):
                    self.log[pos + j] = new
                else:
                    self.log.append(new)
            self.persist()
            return
""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
