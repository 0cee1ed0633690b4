"""pytest plugin: run the lab tests against a mutant (a planted-bug copy) of the reference Raft.

Usage (from the repository root, so that `tests` is importable):
    KUBEKV_MUTANT=raft_snapshot_race python -m pytest -p tests.mutants.plugin raft1 -k 3D

At configure time raft1.raft.Make is replaced by the mutant's Make.  raft1/server.py and
rsm/rsm.py call `raft.Make` through the module, so the raft, rsm and kvraft tests all get
the mutant without any change to the lab code.  Without KUBEKV_MUTANT the plugin does nothing.

Mutants (tests/mutants/<name>.py):
  raft_snapshot_race  InstallSnapshot sends the snapshot on applyCh from its own thread while
                      the applier sends entries: "apply out of order" in 3D, if the race shows.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

MUTANT_ENV = "KUBEKV_MUTANT"
MUTANTS = ("raft_snapshot_race",)

_original_make: Any = None
_active: str | None = None


def pytest_configure(config: Any) -> None:
    global _original_make, _active
    name = os.environ.get(MUTANT_ENV, "").strip()
    if not name:
        return
    if name not in MUTANTS:
        raise pytest.UsageError(f"{MUTANT_ENV}={name!r}: known mutants are {', '.join(MUTANTS)}")
    mutant = importlib.import_module(f"tests.mutants.{name}")
    from raft1 import raft

    _original_make, raft.Make = raft.Make, mutant.Make
    _active = name


def pytest_unconfigure(config: Any) -> None:
    global _original_make, _active
    if _active is not None:
        from raft1 import raft

        raft.Make, _original_make, _active = _original_make, None, None


def pytest_report_header(config: Any) -> str | None:
    if _active is None:
        return None
    return f"kubekv: MUTANT {_active}: raft1.raft.Make is tests/mutants/{_active}.py's"
