"""Counts of porcupine checks over a test session, so the suite can report how many timed out.

Usage:
    from tester import porcupine_summary, porcupine_unknown_count
    print(porcupine_summary())   # "porcupine: 12 checks, 12 ok, 0 illegal, 0 unknown (timed out)"

kvtest.CheckPorcupineT records every result here (and logs it). tester.pytest_plugin adds the
session total to pytest's terminal summary, also under xdist (conftest.py:
`pytest_plugins = ["tester.pytest_plugin"]`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

_mu = threading.Lock()


@dataclass
class _Counts:
    checks: int = 0
    ok: int = 0
    illegal: int = 0
    unknown: int = 0
    unknown_tests: list = field(default_factory=list)  # names of tests with an Unknown result


_counts = _Counts()


def record_porcupine(result: str, test_name: str) -> None:
    """Count one check; result is "Ok", "Illegal" or "Unknown"."""
    with _mu:
        _counts.checks += 1
        if result == "Ok":
            _counts.ok += 1
        elif result == "Illegal":
            _counts.illegal += 1
        else:
            _counts.unknown += 1
            _counts.unknown_tests.append(test_name)


def snapshot() -> dict:
    """The counts so far, as a plain (picklable) dict."""
    with _mu:
        return {"checks": _counts.checks, "ok": _counts.ok, "illegal": _counts.illegal,
                "unknown": _counts.unknown}


def porcupine_unknown_count() -> int:
    """How many porcupine checks timed out (Unknown, counted as a pass as in Go) so far."""
    with _mu:
        return _counts.unknown


def porcupine_summary() -> str:
    with _mu:
        c = _counts
        text = (f"porcupine: {c.checks} checks, {c.ok} ok, {c.illegal} illegal, "
                f"{c.unknown} unknown (timed out, assumed ok)")
        if c.unknown_tests:
            text += "; timed out in: " + ", ".join(c.unknown_tests)
        return text


__all__ = ["record_porcupine", "porcupine_unknown_count", "porcupine_summary"]
