"""pytest plugin: run the lab tests against a mutant (a planted-bug copy) of a reference module.

Usage (from the repository root, so that `tests` is importable):
    KUBEKV_MUTANT=raft_snapshot_race python -m pytest -p tests.mutants.plugin raft1 -k 3D
    KUBEKV_MUTANT=rsm_reply_by_index python -m pytest -p tests.mutants.plugin rsm -k 4A
    KUBEKV_MUTANT=kv_get_local_read python -m pytest -p tests.mutants.plugin kvraft1 -k 4B

A mutant (tests/mutants/<name>.py) names the reference module it stands in for in its
docstring, "MUTANT of raft1/raft.py: ...": raft1/raft.py, rsm/rsm.py, kvraft1/server.py or
kvraft1/client.py.  At configure time every top-level function of that module (Make, MakeRSM,
StartKVServer, MakeClerk, ...) is replaced by the mutant's, in the module itself and wherever
a lab module bound it with `from ... import` (rsm/server.py's and kvraft1/server.py's MakeRSM,
kvraft1/harness.py's StartKVServer and MakeClerk).  raft1/server.py and rsm/rsm.py call
`raft.Make` through the module, so a Raft mutant reaches the raft, rsm and kvraft tests alike.
Classes are left alone: the mutant's entry points build the mutant's own.  Without
KUBEKV_MUTANT the plugin does nothing.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from typing import Any

import pytest

MUTANT_ENV = "KUBEKV_MUTANT"
HERE = os.path.dirname(os.path.abspath(__file__))
NOT_MUTANTS = {"__init__", "plugin", "run"}
# The lab modules that bind a mutable module's functions by name (imported before patching).
CONSUMERS = ("raft1.server", "raft1.harness", "rsm.server", "rsm.harness", "kvraft1.server",
             "kvraft1.client", "kvraft1.harness")
_DOC_RE = re.compile(r"^MUTANT of (\S+?\.py)\b")


def discover() -> tuple[str, ...]:
    """The mutants' names: every module in tests/mutants/ but the package's own."""
    return tuple(sorted(f[:-3] for f in os.listdir(HERE)
                        if f.endswith(".py") and f[:-3] not in NOT_MUTANTS))


MUTANTS = discover()


def load(name: str) -> Any:
    """Import mutant name (building it from the reference's current source)."""
    return importlib.import_module(f"tests.mutants.{name}")


def mutated_path(mutant: Any) -> str:
    """The reference file a mutant stands in for: its MUTATES, else its docstring's 'MUTANT of X:'."""
    path = getattr(mutant, "MUTATES", None)
    if path:
        return path
    match = _DOC_RE.match(mutant.__doc__ or "")
    if not match:
        raise ValueError(f"mutant {mutant.__name__}: its docstring must start 'MUTANT of <file>: <bug>'")
    return match.group(1)


def module_name(path: str) -> str:
    """raft1/raft.py -> raft1.raft"""
    return path[:-3].replace("/", ".")


def swap(mutant: Any) -> list[tuple[Any, str, Any]]:
    """Bind the mutant's functions wherever the reference's are bound; returns what to undo."""
    reference = importlib.import_module(module_name(mutated_path(mutant)))
    for consumer in CONSUMERS:
        importlib.import_module(consumer)
    functions = {name: obj for name, obj in vars(reference).items()
                 if inspect.isfunction(obj) and obj.__module__ == reference.__name__
                 and inspect.isfunction(getattr(mutant, name, None))}
    undo = []
    for module in list(sys.modules.values()):
        if module is None or module is mutant:
            continue
        namespace = getattr(module, "__dict__", {})
        for name, original in functions.items():
            if namespace.get(name) is original:
                undo.append((module, name, original))
                setattr(module, name, getattr(mutant, name))
    return undo


_undo: list[tuple[Any, str, Any]] = []
_active: str | None = None


def pytest_configure(config: Any) -> None:
    global _undo, _active
    name = os.environ.get(MUTANT_ENV, "").strip()
    if not name:
        return
    if name not in MUTANTS:
        raise pytest.UsageError(f"{MUTANT_ENV}={name!r}: known mutants are {', '.join(MUTANTS)}")
    _undo = swap(load(name))
    _active = name


def pytest_unconfigure(config: Any) -> None:
    global _undo, _active
    for module, name, original in reversed(_undo):
        setattr(module, name, original)
    _undo, _active = [], None


def pytest_report_header(config: Any) -> str | None:
    if _active is None:
        return None
    bound = sorted({f"{m.__name__}.{n}" for m, n, _ in _undo})
    return f"kubekv: MUTANT {_active} (tests/mutants/{_active}.py) bound as {', '.join(bound)}"
