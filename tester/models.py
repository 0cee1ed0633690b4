"""The porcupine model of the versioned key/value service (Go: models1/kv.go).

Usage:
    from tester.models import KvInput, KvOutput, KvModel
    ops = [porcupine.Operation(ClientId=0, Input=KvInput(Op=1, Key="k", Value="x", Version=0),
                               Output=KvOutput(Err="OK"), Call=0, Return=10), ...]
    res, info = porcupine.CheckOperationsVerbose(KvModel, ops, 1.0)

Op 0 is Get, Op 1 is Put. The history is partitioned by key (one state per key, sorted key
order); a missing key looks like ("", version 0). A Get is legal iff it returns the current
value (its version and Err are not checked, as in Go). A Put whose Version matches is legal iff
it returns OK or ErrMaybe and bumps the version; one whose Version does not match is legal iff
it returns ErrVersion or ErrMaybe and changes nothing. So ErrMaybe is accepted either way.

ReadOnly (porcupine's Python-only hint) marks Gets and ErrVersion Puts: many clients racing on
one key make hundreds of such operations overlap, and without the hint the search tries 2^n
subsets of them (TestSnapshotRecoverManyClients4C's histories: 7-20 s in Go porcupine, Unknown
at the labs' 1 s limit; with it, a few milliseconds).

Inputs, outputs and states are NamedTuples: hashable, compared by value (Go's ==), and cheap
to make, which matters for the checker's speed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import porcupine

from tester.gofmt import Sprintf


class KvInput(NamedTuple):
    Op: int = 0  # 0 => get, 1 => put
    Key: str = ""
    Value: str = ""
    Version: int = 0


class KvOutput(NamedTuple):
    Value: str = ""
    Version: int = 0
    Err: str = ""


class KvState(NamedTuple):
    Value: str = ""
    Version: int = 0


def _partition(history: list) -> list:
    by_key: dict[str, list] = {}
    for op in history:
        by_key.setdefault(op.Input.Key, []).append(op)
    return [by_key[k] for k in sorted(by_key)]


def _init() -> KvState:
    # One key's state: we partition by key.
    return KvState("", 0)


def _step(state: KvState, inp: KvInput, out: KvOutput) -> tuple[bool, Any]:
    if inp.Op == 0:
        return out.Value == state.Value, state
    if inp.Op == 1:
        if state.Version == inp.Version:
            return out.Err in ("OK", "ErrMaybe"), KvState(inp.Value, state.Version + 1)
        return out.Err in ("ErrVersion", "ErrMaybe"), state
    return False, "<invalid>"


def _describe_operation(inp: KvInput, out: KvOutput) -> str:
    if inp.Op == 0:
        return Sprintf("get('%s') -> ('%s', '%d', '%s')", inp.Key, out.Value, out.Version, out.Err)
    if inp.Op == 1:
        return Sprintf("put('%s', '%s', '%d') -> ('%s')", inp.Key, inp.Value, inp.Version, out.Err)
    return "<invalid>"


def _read_only(inp: KvInput, out: KvOutput) -> bool:
    # A Get, or a Put refused for its version: legal or not, neither changes the state.
    return inp.Op == 0 or out.Err == "ErrVersion"


KvModel = porcupine.Model(
    Partition=_partition,
    Init=_init,
    Step=_step,
    DescribeOperation=_describe_operation,
    ReadOnly=_read_only,
)

__all__ = ["KvInput", "KvOutput", "KvState", "KvModel"]
