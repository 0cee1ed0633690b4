"""Copies of the reference solution with planted bugs, to check that the lab tests catch them.

A mutant is a module here that names a reference module and the replacements that plant its
bug; `mutate` builds it at import from the reference's current source, so a mutant never
drifts from the reference and a replacement that no longer applies fails loudly:

    # tests/mutants/raft_xyz.py
    from tests.mutants import mutate
    REPLACEMENTS = [("old text, found exactly once", "new text")]
    exec(mutate("raft1/raft.py", REPLACEMENTS, __name__), globals())   # defines Make, Raft, ...

Run the lab tests against one with the plugin (tests/mutants/plugin.py):
    KUBEKV_MUTANT=raft_snapshot_race python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from __future__ import annotations

import os
from types import CodeType

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mutate(path: str, replacements: list[tuple[str, str]], name: str) -> CodeType:
    """The code of path (relative to the repository) with each old text replaced by its new one."""
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        source = f.read()
    for old, new in replacements:
        found = source.count(old)
        if found != 1:
            raise RuntimeError(f"mutant {name}: {path} holds the text to replace {found} times, not once; "
                               f"update the mutant to the reference's current code:\n{old}")
        source = source.replace(old, new)
    return compile(source, f"<{path}, mutant {name}>", "exec")
