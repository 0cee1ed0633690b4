"""Histories and models for the porcupine linearizability checker.

Usage:
    from porcupine import Model, Operation, CheckOperations

    register = Model(
        Init=lambda: 0,
        Step=lambda state, inp, out: ((True, inp[1]) if inp[0] == "put"
                                      else (out == state, state)),
    )
    ops = [Operation(ClientId=0, Input=("put", 1), Call=0, Output=None, Return=10),
           Operation(ClientId=1, Input=("get",), Call=5, Output=1, Return=15)]
    assert CheckOperations(register, ops)

A history is a list of `Operation` (a call and its return, with timestamps) or a
list of `Event` (calls and returns in real-time order, matched by `Id`). A
`Model` is the sequential specification: `Init()` gives the initial state and
`Step(state, input, output)` returns `(ok, new_state)`; Step must not mutate
`state`. Field names follow Go porcupine so code ports line by line.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, List, Optional


@dataclass(slots=True)
class Operation:
    """One call/return pair of a history.

    [Call, Return] is a closed interval: an operation returning at t is
    concurrent with one called at t. ClientId (zero-based) only matters for
    the visualization; Metadata is shown there and ignored by the checker.
    """

    ClientId: int = 0
    Input: Any = None
    Call: int = 0
    Output: Any = None
    Return: int = 0
    Metadata: Any = None


class EventKind(enum.Enum):
    """Tags an Event as a call or a return (Go: CallEvent = false, ReturnEvent = true)."""

    CallEvent = False
    ReturnEvent = True


CallEvent = EventKind.CallEvent
ReturnEvent = EventKind.ReturnEvent


@dataclass(slots=True)
class Event:
    """One call or return of a history given as an ordered list of events.

    `Id` (any hashable value) pairs a call with its return; each id is used by
    exactly one call and one return. A call's Value is the operation's input,
    a return's Value its output.
    """

    ClientId: int = 0
    Kind: EventKind = CallEvent
    Value: Any = None
    Id: Any = 0
    Metadata: Any = None


class CheckResult(str, enum.Enum):
    """Outcome of a check: Unknown means the timeout hit before a verdict."""

    Unknown = "Unknown"
    Ok = "Ok"
    Illegal = "Illegal"

    def __str__(self) -> str:
        return self.value


class ModelError(TypeError):
    """A model or a history is unusable (missing Init/Step, bad Step result, malformed history)."""


def _default_describe_operation(inp: Any, out: Any) -> str:
    return f"{inp!r} -> {out!r}"


def _default_describe_state(state: Any) -> str:
    return repr(state)


def _default_describe_metadata(meta: Any) -> str:
    return "" if meta is None else str(meta)


@dataclass
class Model:
    """A sequential specification (Go: porcupine.Model); use keyword arguments.

    Init() -> state and Step(state, input, output) -> (ok: bool, new_state) are
    required. Partition(ops) -> list of lists (and PartitionEvent for events)
    split a history into independently checkable parts, e.g. one per key; with
    them, Init/Step may model a single part. Equal(s1, s2) compares states
    (default ==, so states should be hashable values such as tuples, strings
    or frozen dataclasses; unhashable states work too, just slower). Hash(state)
    -> int must agree with Equal and speeds up the cache when Equal is given.
    Describe* make the HTML view readable.

    ReadOnly(input, output) -> bool is a Python-only addition: True for an
    operation that leaves the state unchanged wherever Step accepts it (a read, a
    conditional write that failed). The checker then takes such an operation as
    soon as it is legal and never searches the orders that postpone it; an
    exchange argument shows those orders can add no linearization. Verdicts are
    the same as without it, but a read-heavy history with many clients checks
    thousands of times faster (a 20-client one-key kvraft history: 9 s to 4 ms).
    A Step that changes the state for such an operation raises ModelError.
    """

    Partition: Optional[Callable[[List[Operation]], List[List[Operation]]]] = None
    PartitionEvent: Optional[Callable[[List[Event]], List[List[Event]]]] = None
    Init: Optional[Callable[[], Any]] = None
    Step: Optional[Callable[[Any, Any, Any], Any]] = None
    Equal: Optional[Callable[[Any, Any], bool]] = None
    Hash: Optional[Callable[[Any], int]] = None
    DescribeOperation: Optional[Callable[[Any, Any], str]] = None
    DescribeState: Optional[Callable[[Any], str]] = None
    DescribeOperationMetadata: Optional[Callable[[Any], str]] = None
    ReadOnly: Optional[Callable[[Any, Any], bool]] = None

    def __post_init__(self) -> None:
        for name in ("Init", "Step"):
            if getattr(self, name) is None:
                raise ModelError(
                    f"porcupine.Model needs {name}: pass Model(Init=lambda: initial_state, "
                    "Step=lambda state, input, output: (ok, new_state), ...)")
        for name in ("Partition", "PartitionEvent", "Init", "Step", "Equal", "Hash",
                     "DescribeOperation", "DescribeState", "DescribeOperationMetadata", "ReadOnly"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ModelError(f"porcupine.Model.{name} must be a function, got {value!r}")

    # Helpers used by the checker and the view, so defaults live in one place.
    def describe_operation(self, inp: Any, out: Any) -> str:
        return (self.DescribeOperation or _default_describe_operation)(inp, out)

    def describe_state(self, state: Any) -> str:
        return (self.DescribeState or _default_describe_state)(state)

    def describe_metadata(self, meta: Any) -> str:
        return (self.DescribeOperationMetadata or _default_describe_metadata)(meta)


def _merge(states: List[Any], equal: Callable[[Any, Any], bool]) -> List[Any]:
    unique: List[Any] = []
    for state in states:
        if not any(equal(state, seen) for seen in unique):
            unique.append(state)
    return unique


def _eq(a: Any, b: Any) -> bool:
    return a == b


@dataclass
class NondeterministicModel:
    """A model whose Step returns every possible next state (Go: NondeterministicModel).

    Init() -> list of initial states; Step(state, input, output) -> list of next
    states (empty when the step is impossible). ToModel() turns it into a Model
    whose state is the set of possible states (a power-set construction).
    """

    Partition: Optional[Callable[[List[Operation]], List[List[Operation]]]] = None
    PartitionEvent: Optional[Callable[[List[Event]], List[List[Event]]]] = None
    Init: Optional[Callable[[], List[Any]]] = None
    Step: Optional[Callable[[Any, Any, Any], List[Any]]] = None
    Equal: Optional[Callable[[Any, Any], bool]] = None
    Hash: Optional[Callable[[Any], int]] = None
    DescribeOperation: Optional[Callable[[Any, Any], str]] = None
    DescribeState: Optional[Callable[[Any], str]] = None
    DescribeOperationMetadata: Optional[Callable[[Any], str]] = None
    ReadOnly: Optional[Callable[[Any, Any], bool]] = None

    def __post_init__(self) -> None:
        for name in ("Init", "Step"):
            if getattr(self, name) is None:
                raise ModelError(f"porcupine.NondeterministicModel needs {name}")

    def ToModel(self) -> Model:
        """Return an equivalent deterministic Model over tuples of possible states."""
        equal = self.Equal or _eq
        nd_step = self.Step
        nd_init = self.Init
        describe_state = self.DescribeState or _default_describe_state

        def init() -> tuple:
            return tuple(_merge(list(nd_init()), equal))

        def step(states: tuple, inp: Any, out: Any) -> tuple:
            following: List[Any] = []
            for state in states:
                following.extend(nd_step(state, inp, out))
            merged = tuple(_merge(following, equal))
            return bool(merged), merged

        def set_equal(states1: tuple, states2: tuple) -> bool:
            # Both sides are already merged, so one inclusion plus equal sizes suffices.
            if len(states1) != len(states2):
                return False
            return all(any(equal(a, b) for b in states2) for a in states1)

        set_hash = None
        if self.Hash is not None:
            member_hash = self.Hash

            def set_hash(states: tuple) -> int:
                # XOR: the state is a set, so its hash must not depend on order.
                h = 0
                for state in states:
                    h ^= member_hash(state)
                return h

        def describe(states: tuple) -> str:
            return "{" + ", ".join(describe_state(s) for s in states) + "}"

        return Model(
            Partition=self.Partition,
            PartitionEvent=self.PartitionEvent,
            Init=init,
            Step=step,
            Equal=set_equal,
            Hash=set_hash,
            DescribeOperation=self.DescribeOperation,
            DescribeState=describe,
            DescribeOperationMetadata=self.DescribeOperationMetadata,
        )
