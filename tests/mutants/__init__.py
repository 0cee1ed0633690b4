"""Copies of the reference solution with planted bugs, to check that the lab tests catch them.

A mutant is a module here that names a reference module and the replacements that plant its
bug; `mutate` builds it at import from the reference's current source, so a mutant never
drifts from the reference and a replacement that no longer applies fails loudly:

    # tests/mutants/raft_xyz.py
    # (module docstring: "MUTANT of raft1/raft.py: <the bug, in one line>")
    from tests.mutants import plant
    PART = "3B"                     # the part whose tests should catch it
    REPLACEMENTS = [("old text, found exactly once", "new text")]
    plant(globals(), "raft1/raft.py", REPLACEMENTS)   # defines Make, Raft, ... and MUTATES

Run the lab tests against one with the plugin (tests/mutants/plugin.py), or measure how many
the tests kill with the runner (tests/mutants/run.py):
    KUBEKV_MUTANT=raft_snapshot_race python -m pytest -p tests.mutants.plugin raft1 -k 3D
    python -m tests.mutants.run --sim --seeds 10
"""

from __future__ import annotations

import os
from types import CodeType
from typing import Any

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


def plant(module_globals: dict[str, Any], path: str, replacements: list[tuple[str, str]]) -> None:
    """Run the mutated path in a mutant module's namespace, keeping the mutant's own docstring.

    Afterwards the module holds everything the reference defines (with the bug planted) and
    MUTATES = path, which tells the plugin which reference module it stands in for.
    """
    doc = module_globals.get("__doc__")
    exec(mutate(path, replacements, module_globals["__name__"]), module_globals)
    module_globals["__doc__"] = doc
    module_globals["MUTATES"] = path
