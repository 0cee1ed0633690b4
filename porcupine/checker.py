"""The linearizability checker (Go: porcupine's checker.go and porcupine.go).

Usage:
    ok = CheckOperations(model, ops)                          # -> bool, no timeout
    res = CheckOperationsTimeout(model, ops, 1.0)             # -> CheckResult
    res, info = CheckOperationsVerbose(model, ops, 1.0)       # + data for Visualize
    (and the same three for Event histories: CheckEvents...)

A timeout is in seconds; 0 means none. Unknown means the timeout hit before a
verdict (callers usually treat it as "no violation found").

How it works: the history is split by model.Partition (P-compositionality: a
history is linearizable iff every partition is) and each partition is searched
with the just-in-time linearization algorithm of Lowe, as refined by Horn and
Kroening: calls and returns sit in one doubly-linked list in time order; the
search walks it, tries to linearize a call (Step the model), and on success
lifts the call and its return out of the list and starts again from the front;
reaching a return means every pending call failed, so it backtracks. A cache of
(set of linearized operations, state) pairs prunes configurations already seen.
Operations are bits of a Python int, which makes the set cheap to copy and hash.

With model.ReadOnly (a Python-only addition) an operation that cannot change the
state is taken as soon as it is legal: when the search backtracks over it, or meets
it again in a configuration already seen, it backtracks further at once instead of
trying the calls after it. Why that loses nothing: any linearization that puts such
an operation R later can move R to this point (R has been called, every operation
that returned before R's call is already linearized, and R changes no state), so if
the branch taking R now failed, so do the branches that postpone it.

Identical operations (equal input and output; Python-only, no hint needed) are
tried in one order: a call is skipped while an identical one that was called and
returned before it is still pending. Why that loses nothing: both are in the
window, so any linearization that takes the later one next can swap the two (the
states are the same, and the earlier one's interval ends first, so the real-time
order still holds). Jepsen's register histories, whose few values repeat, need a
third of the steps (etcd_002: 1.2 million Step calls to 0.36 million); a verbose
check that is Illegal searches its Illegal partitions again without either pruning,
so that the view shows the prefixes Go's would.

Bad input raises ModelError before the search starts: the element, the field, what
it is and what it should be. A model function that raises is reported as a
ModelError naming the function, the operation and the state, with the original
exception as its __cause__.
"""

from __future__ import annotations

import collections
import gc
import math
import reprlib
import time
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from .model import (CallEvent, CheckResult, Event, Model, ModelError, Operation,
                    ReturnEvent)

# How many lift/backtrack steps a search runs before it yields, so the caller can
# switch partitions and look at the clock. A step is about a microsecond, so a
# slice is well under a millisecond (measured: at most 19 ms on a loaded machine),
# and the clock stays out of the hot loop.
CHECK_EVERY_STEPS = 256

# Step's results are remembered per call node (state -> result) when states are hashable:
# a search calls Step again and again on the same few (operation, state) pairs (Jepsen's
# etcd register: 1.2 million calls on 241 pairs), and a dict lookup is cheaper than a
# call (30% off the Jepsen checks). Where most states are new (an append-only store: a
# miss for 6 calls in 7) it only costs. So it starts at slice MEMO_FROM_SLICE, and only if
# the configurations seen so far hold few distinct states, at most MEMO_MAX_STATES per
# configuration (measured there: Jepsen's logs at most 0.022, the partitions of Go's kv
# histories at least 0.30); and it is dropped for good if, from MEMO_TRIAL_SLICES slices
# after its start, it has missed more than MEMO_MAX_MISSES times per lift or backtrack
# (a Jepsen log's search misses at most 264 times in all).
MEMO_FROM_SLICE = 2
MEMO_MAX_STATES = 0.1
MEMO_TRIAL_SLICES = 6
MEMO_MAX_MISSES = 0.25

# Identical operations are looked for once a search has run this many slices (0: at once):
# most searches end sooner, and skipping them is sound from any point on.
TWINS_FROM_SLICE = 1


class _Entry(NamedTuple):
    """A call or return of one partition, as kept in LinearizationInfo."""

    is_return: bool
    value: Any
    id: int
    time: int
    client_id: int
    metadata: Any


# _Entry(...) goes through a Python-level __new__; this builds one in C (partitioning
# kv c50-bad: 14% fewer instructions).
_new_entry = tuple.__new__


class _UnhashableState(Exception):
    """A state is not hashable: redo the search with the list-compare cache."""


class LinearizationInfo:
    """What a verbose check found, for Visualize.

    For each partition: its calls and returns, and the longest partial
    linearizations found (lists of operation ids in linearization order; a
    complete one when the partition is linearizable). Annotations are added
    with AddAnnotations and drawn under the timelines.
    """

    def __init__(self, history: Optional[List[List[_Entry]]] = None,
                 partial_linearizations: Optional[List[List[List[int]]]] = None) -> None:
        self.history: List[List[_Entry]] = history or []
        self.partial_linearizations: List[List[List[int]]] = partial_linearizations or []
        self.annotations: list = []
        # Per partition: Ok, Illegal, or Unknown (its search was cut off by the timeout).
        self.partition_results: List[CheckResult] = []

    def PartialLinearizations(self) -> List[List[List[int]]]:
        """Per partition, the set of longest partial linearizations as lists of ids."""
        return self.partial_linearizations

    def PartialLinearizationsOperations(self) -> List[List[List[Operation]]]:
        """Like PartialLinearizations, with each id turned back into its Operation."""
        result = []
        for entries, partials in zip(self.history, self.partial_linearizations):
            ops = _operations_of(entries)
            result.append([[ops[i] for i in seq] for seq in partials])
        return result

    def AddAnnotations(self, annotations: Sequence[Any]) -> None:
        """Add annotations (porcupine.Annotation) to show in the visualization.

        An End before Start (e.g. left at 0) makes a point-in-time annotation.
        """
        from .visualization import Annotation
        for a in annotations:
            if not isinstance(a, Annotation):
                raise ModelError(f"AddAnnotations expects porcupine.Annotation values, got {a!r}")
            end = a.End if a.End >= a.Start else a.Start
            self.annotations.append(Annotation(
                ClientId=a.ClientId, Tag=a.Tag, Start=a.Start, End=end,
                Description=a.Description, Details=a.Details,
                TextColor=a.TextColor, BackgroundColor=a.BackgroundColor))


def _operations_of(entries: List[_Entry]) -> dict:
    calls = {e.id: e for e in entries if not e.is_return}
    ops = {}
    for e in entries:
        if e.is_return:
            c = calls[e.id]
            meta = e.metadata if e.metadata is not None else c.metadata
            ops[e.id] = Operation(ClientId=c.client_id, Input=c.value, Call=c.time,
                                  Output=e.value, Return=e.time, Metadata=meta)
    return ops


# ---------------------------------------------------------------------------
# Checking the input, up front (so that the search itself checks nothing)


def _short(value: Any) -> str:
    """A repr short enough for an error message."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def _as_list(history: Any, kind: str) -> list:
    if isinstance(history, (str, bytes, dict, Operation, Event)) or not isinstance(history, Iterable):
        raise ModelError(f"the history must be a list of porcupine.{kind}, got {type(history).__name__} "
                         f"{_short(history)}")
    return list(history)


def _check_client_id(where: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ModelError(f"{where}: ClientId is {_short(value)}; expected an int (a zero-based "
                         "client number)")


def _check_time(where: str, field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ModelError(f"{where}: {field} is {_short(value)}; expected a timestamp, an int "
                         "(e.g. time.monotonic_ns()) or a float")


def _check_operation(where: str, op: Any) -> None:
    """Raise the ModelError that says what is wrong with op, if anything."""
    if not isinstance(op, Operation):
        hint = " (that is an Event: check it with CheckEvents)" if isinstance(op, Event) else ""
        raise ModelError(f"{where} is {_short(op)}, not a porcupine.Operation{hint}")
    _check_client_id(where, op.ClientId)
    _check_time(where, "Call", op.Call)
    _check_time(where, "Return", op.Return)
    if op.Return < op.Call:
        raise ModelError(f"{where} ({_short(op)}) returns at {op.Return}, before its call at "
                         f"{op.Call}: Return must be >= Call")


def _check_operations(ops: list, where: Callable[[int], str]) -> None:
    for i, op in enumerate(ops):
        # The common case in one test; anything else gets the detailed look.
        if (type(op) is not Operation or type(op.ClientId) is not int or type(op.Call) is not int
                or type(op.Return) is not int or op.Return < op.Call):
            _check_operation(where(i), op)


def _check_event(where: str, ev: Any) -> None:
    """Raise the ModelError that says what is wrong with ev, if anything."""
    if not isinstance(ev, Event):
        hint = " (that is an Operation: check it with CheckOperations)" if isinstance(ev, Operation) else ""
        raise ModelError(f"{where} is {_short(ev)}, not a porcupine.Event{hint}")
    if ev.Kind is not CallEvent and ev.Kind is not ReturnEvent:
        raise ModelError(f"{where}: Kind is {_short(ev.Kind)}; expected porcupine.CallEvent or "
                         "porcupine.ReturnEvent")
    _check_client_id(where, ev.ClientId)
    try:
        hash(ev.Id)
    except TypeError:
        raise ModelError(f"{where}: Id is {_short(ev.Id)}, which is not hashable; expected a value "
                         "such as an int or a str, shared by a call and its return") from None


def _check_events(events: list, where: Callable[[int], str], whole: str = "the history") -> None:
    """Every event well-formed, every Id called once and returned once, after its call."""
    call, ret = CallEvent, ReturnEvent
    is_open: dict = {}   # Id -> True while called and not returned, False once returned
    n_open = 0
    for i, ev in enumerate(events):
        # The common case in a few tests; anything else gets the detailed look.
        if type(ev) is not Event or type(ev.ClientId) is not int:
            _check_event(where(i), ev)
        kind = ev.Kind
        try:
            if kind is call:
                if ev.Id in is_open:
                    raise ModelError(f"{where(i)}: duplicate call id {ev.Id!r}; every operation "
                                     "needs its own Id, shared by its call and its return only")
                is_open[ev.Id] = True
                n_open += 1
            elif kind is ret:
                if is_open.get(ev.Id) is not True:
                    what = "a second return for" if ev.Id in is_open else "a return without a call for"
                    raise ModelError(f"{where(i)}: {what} id {ev.Id!r}")
                is_open[ev.Id] = False
                n_open -= 1
            else:
                _check_event(where(i), ev)
        except ModelError:
            raise
        except TypeError:  # an unhashable Id
            _check_event(where(i), ev)
            raise
    if n_open:
        ids = [i for i, still in is_open.items() if still]
        raise ModelError(f"{whole} has calls without a return, ids {sorted(map(repr, ids))[:10]}: "
                         "give every call a ReturnEvent (for an operation whose outcome is unknown, "
                         "return an output the model accepts either way)")


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        hint = " (call .ToModel() first)" if hasattr(model, "ToModel") else ""
        raise ModelError(f"expected a porcupine.Model, got {type(model).__name__}{hint}")
    # Checked again here, not only by Model(): its fields may have been set since.
    for name in ("Init", "Step"):
        if not callable(getattr(model, name)):
            raise ModelError(f"porcupine.Model.{name} must be a function, got {getattr(model, name)!r}")
    for name in ("Partition", "PartitionEvent", "Equal", "Hash", "ReadOnly"):
        value = getattr(model, name)
        if value is not None and not callable(value):
            raise ModelError(f"porcupine.Model.{name} must be a function or None, got {value!r}")
    return model


def _check_timeout(timeout_s: Any) -> None:
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
            or math.isnan(timeout_s) or timeout_s < 0):
        raise ModelError(f"timeout must be a number of seconds >= 0 (0 = none), got {timeout_s!r}")


_CONTRACTS = {
    "Init": "Init() must return the initial state",
    "Step": "Step(state, input, output) must return (ok, new_state) for every operation of the "
            "history, from any state",
    "ReadOnly": "ReadOnly(input, output) must return a bool for every operation of the history",
    "Hash": "Hash(state) must return an int for every state Step returns",
    "Equal": "Equal(a, b) must return a bool for any two states Step returns",
    "Partition": "Partition(history) must return a list of lists of the history's operations",
    "PartitionEvent": "PartitionEvent(history) must return a list of lists of the history's events",
}


def _model_failed(function: str, exc: BaseException, where: str) -> ModelError:
    """The error for a model function that raised: which function, on what, and the contract."""
    return ModelError(f"Model.{function} raised {type(exc).__name__}: {exc} {where}; "
                      f"{_CONTRACTS[function]}")


def _partitions(model: Model, function: str, history: list, kind: type) -> List[list]:
    """model.Partition(history) (or PartitionEvent), checked to be a list of lists."""
    split = getattr(model, function)
    if split is None:
        return [history]
    try:
        parts = split(history)
    except Exception as exc:
        raise _model_failed(function, exc, f"on the history ({len(history)} elements)") from exc
    try:
        parts = [list(p) for p in parts]
    except TypeError:
        raise ModelError(f"Model.{function} must return a list of lists of porcupine.{kind.__name__}, "
                         f"got {_short(parts)}") from None
    return parts


def _element_name(history: list, x: Any, unit: str, otherwise: str) -> str:
    """How an error message names x: by its index in the caller's history (a scan by
    identity: this is only for errors), else (made up by a partition function) otherwise."""
    for i, y in enumerate(history):
        if y is x:
            return f"{unit} {i}"
    return otherwise


# ---------------------------------------------------------------------------
# Turning histories into entries


class _Partition(NamedTuple):
    """A partition's entries, and what error messages need to name its operations."""

    entries: List[_Entry]
    calls: list      # per operation id, its Operation or its call Event
    history: list    # the caller's history
    k: int           # which partition

    def name(self, op: int) -> str:
        x = self.calls[op]
        if isinstance(x, Operation):
            return _element_name(self.history, x, "operation",
                                 f"Model.Partition's element {op} of partition {self.k}")
        return "the operation called at " + _element_name(
            self.history, x, "event", f"Model.PartitionEvent's event with Id {x.Id!r} in partition {self.k}")

    def where(self, node: int) -> str:
        """The operation whose call is at a search node (entries[node - 1]), with its
        input and output."""
        call = self.entries[node - 1]
        out = next(e.value for e in self.entries if e.is_return and e.id == call.id)
        return f"{self.name(call.id)} (input {_short(call.value)}, output {_short(out)})"


def _operation_partitions(model: Model, history: Sequence[Operation]) -> List[_Partition]:
    ops = _as_list(history, "Operation")
    _check_operations(ops, lambda i: f"operation {i}")
    result = []
    for k, part in enumerate(_partitions(model, "Partition", ops, Operation)):
        _check_operations(part, lambda j: _element_name(ops, part[j], "operation", f"element {j}")
                          + f" in Model.Partition's partition {k}")
        result.append(_Partition(_make_entries(part), part, ops, k))
    return result


def _make_entries(history: List[Operation]) -> List[_Entry]:
    entries = []
    for i, op in enumerate(history):
        entries.append(_new_entry(_Entry, (False, op.Input, i, op.Call, op.ClientId, op.Metadata)))
        entries.append(_new_entry(_Entry, (True, op.Output, i, op.Return, op.ClientId, op.Metadata)))
    # Equal timestamps: calls first, since [Call, Return] is a closed interval.
    entries.sort(key=lambda e: (e.time, e.is_return))
    return entries


def _event_partitions(model: Model, history: Sequence[Event]) -> List[_Partition]:
    events = _as_list(history, "Event")
    _check_events(events, lambda i: f"event {i}")
    result = []
    for k, part in enumerate(_partitions(model, "PartitionEvent", events, Event)):
        # Again for the partition: it must keep each call with its return.
        _check_events(part,
                      lambda j: _element_name(events, part[j], "event", f"element {j}")
                      + f" in Model.PartitionEvent's partition {k}",
                      f"Model.PartitionEvent's partition {k} (it must keep each call with its return)")
        entries = []
        calls: list = []     # operation id (numbered in call order) -> its call event
        open_ids: dict = {}  # Id of a call not returned yet -> its operation id
        for j, ev in enumerate(part):
            # The position stands in for time: only the order of events matters.
            if ev.Kind is CallEvent:
                rid = open_ids[ev.Id] = len(calls)
                calls.append(ev)
                entries.append(_new_entry(_Entry, (False, ev.Value, rid, j, ev.ClientId, ev.Metadata)))
            else:
                entries.append(_new_entry(_Entry, (True, ev.Value, open_ids.pop(ev.Id), j, ev.ClientId,
                                                   ev.Metadata)))
        result.append(_Partition(entries, calls, events, k))
    return result


# ---------------------------------------------------------------------------
# The search over one partition


def _check_single(model: Model, part: _Partition, compute_partial: bool, longest: list,
                  prune: bool = True):
    """Generator searching one partition; yields every CHECK_EVERY_STEPS steps so the
    caller can interleave partitions and watch the clock; returns True or False.

    longest[i] is kept as the longest linearizable prefix found that includes
    operation i (lists shared between operations), also when the caller gives up.
    prune: skip the orders that cannot add a linearization, with model.ReadOnly if
    given and identical operations (see the module docstring).
    """
    if model.Equal is None and model.Hash is None:
        try:
            return (yield from _search(model, part, compute_partial, True, longest, prune))
        except _UnhashableState:
            longest[:] = [None] * len(longest)
    return (yield from _search(model, part, compute_partial, False, longest, prune))


def _search(model: Model, part: _Partition, compute_partial: bool, use_set: bool,
            longest: list, prune: bool):
    """The search proper (see _check_single). use_set: cache (linearized, state) pairs in
    a set, for hashable states compared with ==; otherwise buckets of states per
    (linearized[, Hash(state)]) compared with Equal."""
    entries = part.entries
    n = len(entries) // 2
    # Node 0 is the head sentinel, nodes 1..2n the entries, node 2n+1 the tail.
    size = 2 * n + 2
    head, tail = 0, size - 1
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    match = [0] * size          # call node -> its return node; 0 for returns
    inputs = [None] * size
    outputs = [None] * size
    op_id = [0] * size
    return_node = {}
    for pos, e in enumerate(entries, 1):
        op_id[pos] = e.id
        if e.is_return:
            return_node[e.id] = pos
            outputs[pos] = e.value
    for pos, e in enumerate(entries, 1):
        if not e.is_return:
            r = return_node[e.id]
            match[pos] = r
            inputs[pos] = e.value
            outputs[pos] = outputs[r]
    bits = [1 << i for i in op_id]

    # fixed[call node]: a read-only operation, taken as soon as it is legal.
    fixed = [False] * size
    read_only = model.ReadOnly if prune else None
    if read_only is not None:
        for pos in range(1, size - 1):
            if match[pos]:
                try:
                    fixed[pos] = bool(read_only(inputs[pos], outputs[pos]))
                except Exception as exc:
                    raise _model_failed("ReadOnly", exc, f"for {part.where(pos)}") from exc
    # twin[call node]: an identical operation called and returning before it, or 0; while
    # that twin is pending, this call is not tried (see the module docstring). Found after
    # TWINS_FROM_SLICE slices.
    twin = _twins(match, inputs, outputs) if prune and TWINS_FROM_SLICE == 0 else [0] * size

    step = model.Step
    equal = model.Equal or _eq
    equal_is_eq = model.Equal is None
    hasher = model.Hash
    cache_set: set = set()
    cache_add = cache_set.add
    cache_buckets: dict = {}
    calls: list = []          # stack of (call node, state, linearized, state hash) before it
    push = calls.append
    # memo[call node]: state -> Step's result, kept while it saves work (see MEMO_*).
    memoize = use_set and MEMO_FROM_SLICE == 0
    memo = [{} if match[pos] else None for pos in range(size)] if memoize else None
    misses = 0
    slices = 0
    # Longest prefixes (verbose mode). Go records the whole stack at every backtrack, for
    # each operation on it: O(depth) a time. Here a record costs O(1): the stack is also a
    # persistent list of cells (id, parent), a record is the top cell, and it is kept
    # lazily per stack slot (pending[k]: the deepest record made while slot k was on the
    # stack) and handed down a slot at each pop, where the popped operation keeps it if it
    # beats that operation's best.
    best_len = [0] * n
    pending: list = []
    top_cell = None
    pushed_since_pop = False

    try:
        state = model.Init()
    except Exception as exc:
        raise _model_failed("Init", exc, "(called with no arguments)") from exc
    state_hash = new_hash = None
    if use_set:
        try:
            hash(state)
        except TypeError:
            raise _UnhashableState() from None
    elif hasher is not None:
        try:
            state_hash = hasher(state)
        except Exception as exc:
            raise _model_failed("Hash", exc, f"on Init()'s state {_short(state)}") from exc
    if not n:
        return True
    linearized = 0
    entry = nxt[head]
    ticks = CHECK_EVERY_STEPS
    # The list is empty (all linearized) exactly when the head is followed by the tail;
    # that can only change by a lift, so it is tested there (and the scan meets the tail
    # only then: a pending call's return comes after it).
    while True:
        ret = match[entry]
        if ret:
            t = twin[entry]
            # (A node is in the list iff its predecessor points to it: lifting t leaves
            # t's own links for the unlift, and nothing else points to t until then.)
            if t and nxt[prv[t]] == t:
                entry = nxt[entry]
                continue
            if memoize:
                node_memo = memo[entry]
                result = node_memo.get(state)
                if result is None:
                    result = node_memo[state] = _step(step, part, entry, state, inputs[entry], outputs[entry])
                    misses += 1
                ok, new_state = result
            else:
                try:
                    ok, new_state = step(state, inputs[entry], outputs[entry])
                except Exception:
                    # Step raised, or did not return a pair: _step tells which.
                    ok, new_state = _step(step, part, entry, state, inputs[entry], outputs[entry])
            if ok is True:
                if fixed[entry] and new_state is not state and not _equal(equal, new_state, state):
                    raise ModelError(
                        f"Model.ReadOnly says {part.where(entry)} leaves the state unchanged, but Step "
                        f"took {_short(state)} to {_short(new_state)}: fix ReadOnly or Step")
                new_lin = linearized | bits[entry]
                if use_set:
                    key = (new_lin, new_state)
                    try:
                        if key in cache_set:
                            # A read-only op whose configuration failed before: so do the later calls.
                            entry = ret if fixed[entry] else nxt[entry]
                            continue
                    except TypeError:
                        raise _UnhashableState() from None
                    cache_add(key)
                else:
                    if hasher is None:
                        key = new_lin
                    else:
                        # A Step that returns its state (a read) needs no new hash.
                        if new_state is not state:
                            try:
                                new_hash = hasher(new_state)
                            except Exception as exc:
                                raise _model_failed("Hash", exc, f"on the state after {part.where(entry)}: "
                                                    f"{_short(new_state)}") from exc
                        else:
                            new_hash = state_hash
                        key = (new_lin, new_hash)
                    bucket = cache_buckets.get(key)
                    if bucket is None:
                        cache_buckets[key] = [new_state]
                    else:
                        if equal_is_eq:
                            seen = new_state in bucket
                        else:
                            seen = False
                            try:
                                for old in bucket:
                                    # The same object: the same configuration, whatever Equal says.
                                    if old is new_state or equal(old, new_state):
                                        seen = True
                                        break
                            except Exception as exc:
                                raise _model_failed("Equal", exc, f"on the state after {part.where(entry)}: "
                                                    f"{_short(new_state)}") from exc
                        if seen:
                            entry = ret if fixed[entry] else nxt[entry]
                            continue
                        bucket.append(new_state)
                push((entry, state, linearized, state_hash))
                if compute_partial:
                    top_cell = (op_id[entry], top_cell)
                    pending.append(None)
                    pushed_since_pop = True
                state = new_state
                linearized = new_lin
                state_hash = new_hash
                # Lift the call and its return out of the list.
                p, q = prv[entry], nxt[entry]
                nxt[p] = q
                prv[q] = p
                p, q = prv[ret], nxt[ret]
                nxt[p] = q
                prv[q] = p
                entry = nxt[head]
                if entry == tail:
                    break
            elif ok is False:
                entry = nxt[entry]
                continue
            else:
                raise ModelError(f"Model.Step must return (ok, new_state) with ok a bool, got "
                                 f"{_short((ok, new_state))} for {part.where(entry)} in state "
                                 f"{_short(state)}")
        else:
            if not calls:
                _finish_partials(calls, pending, op_id, longest, best_len)
                return False
            if compute_partial:
                depth = len(calls)
                rec = pending.pop()
                # Only a pop right after a push can set a record: at a second pop in a row
                # the stack is a prefix of the one just recorded.
                if pushed_since_pop and (rec is None or depth > rec[0]):
                    rec = (depth, top_cell)
                if rec is not None:
                    i = op_id[calls[-1][0]]
                    if rec[0] > best_len[i]:
                        best_len[i] = rec[0]
                        longest[i] = rec[1]
                    if pending:
                        below = pending[-1]
                        if below is None or rec[0] > below[0]:
                            pending[-1] = rec
                top_cell = top_cell[1]
                pushed_since_pop = False
            entry, state, linearized, state_hash = calls.pop()
            ret = match[entry]
            # Unlift: put the return back, then the call (reverse order of lifting).
            p, q = prv[ret], nxt[ret]
            nxt[p] = ret
            prv[q] = ret
            p, q = prv[entry], nxt[entry]
            nxt[p] = entry
            prv[q] = entry
            # Backtracking over a read-only op: the calls after it cannot succeed either,
            # so go to its return, which backtracks again.
            entry = ret if fixed[entry] else nxt[entry]
        ticks -= 1
        if not ticks:
            ticks = CHECK_EVERY_STEPS
            slices += 1
            if slices == TWINS_FROM_SLICE and prune:
                twin = _twins(match, inputs, outputs)
            if (slices == MEMO_FROM_SLICE and use_set
                    and len({key[1] for key in cache_set}) <= MEMO_MAX_STATES * len(cache_set)):
                memoize = True
                memo = [{} if match[pos] else None for pos in range(size)]
            elif (memoize and slices >= MEMO_FROM_SLICE + MEMO_TRIAL_SLICES
                    and misses > MEMO_MAX_MISSES * (slices - MEMO_FROM_SLICE) * CHECK_EVERY_STEPS):
                memoize = False
                memo = None
            try:
                yield
            except GeneratorExit:  # the caller gave up (timeout): keep what was found
                _finish_partials(calls, pending, op_id, longest, best_len)
                raise
    seq = [op_id[c[0]] for c in calls]
    longest[:] = [seq] * n
    return True


def _twins(match: List[int], inputs: list, outputs: list) -> List[int]:
    """Per call node, an identical operation (equal input and output) called earlier that
    also returns earlier, or 0: the latest such, or failing that the first found in a few
    hops along the earlier ones' twins. Unhashable inputs or outputs: no twins."""
    twin = [0] * len(match)
    latest: dict = {}   # (input, output) -> the latest call node of that operation so far
    try:
        for c in range(1, len(match) - 1):
            r = match[c]
            if r:
                key = (inputs[c], outputs[c])
                e = latest.get(key, 0)
                latest[key] = c
                hops = 8
                while e and match[e] > r and hops:
                    e = twin[e]
                    hops -= 1
                if e and match[e] < r:
                    twin[c] = e
    except TypeError:
        return [0] * len(match)
    return twin


def _step(step: Callable[[Any, Any, Any], Any], part: _Partition, node: int, state: Any,
          inp: Any, out: Any) -> Tuple[Any, Any]:
    """step(state, inp, out) checked to be a pair; a ModelError naming the operation if it
    is not, or if Step raises."""
    try:
        result = step(state, inp, out)
    except Exception as exc:
        raise _model_failed("Step", exc, f"for {part.where(node)} in state {_short(state)}") from exc
    try:
        ok, new_state = result
    except (TypeError, ValueError):
        raise ModelError(f"Model.Step must return a pair (ok, new_state), got {_short(result)} "
                         f"for {part.where(node)} in state {_short(state)}") from None
    return ok, new_state


def _equal(equal: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    try:
        return equal(a, b)
    except Exception as exc:
        raise _model_failed("Equal", exc, f"comparing {_short(a)} and {_short(b)}") from exc


def _finish_partials(calls: list, pending: list, op_id: list, longest: list, best_len: list) -> None:
    """Hand the pending records down the stack, then turn cells into lists of ids."""
    for k in range(len(pending) - 1, -1, -1):
        rec = pending[k]
        if rec is None:
            continue
        i = op_id[calls[k][0]]
        if rec[0] > best_len[i]:
            best_len[i] = rec[0]
            longest[i] = rec[1]
        if k > 0 and (pending[k - 1] is None or rec[0] > pending[k - 1][0]):
            pending[k - 1] = rec
    cells = list(longest)
    as_list: dict = {}
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        seq = as_list.get(id(cell))
        if seq is None:
            seq = []
            c = cell
            while c is not None:
                seq.append(c[0])
                c = c[1]
            seq.reverse()
            as_list[id(cell)] = seq
        longest[i] = seq


def _eq(a: Any, b: Any) -> bool:
    return a == b


# ---------------------------------------------------------------------------
# Checking all partitions


def _check_parallel(model: Model, partitions: List[_Partition], compute_info: bool,
                    timeout_s: float) -> Tuple[CheckResult, LinearizationInfo]:
    """Check every partition, interleaved, until a verdict or the deadline.

    The searches are generators run round-robin in this thread, a slice of
    CHECK_EVERY_STEPS steps each. That is Go's goroutine-per-partition schedule
    without threads: under the GIL, threads would run one at a time anyway, and
    round-robin keeps what matters, that a partition whose search explodes cannot
    starve an Illegal one (porcupine's c50-bad history has such a partition).
    Without compute_info the first Illegal partition ends the check, as in Go.
    """
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
    results: List[Optional[bool]] = [None] * len(partitions)
    longest = [[None] * (len(p.entries) // 2) for p in partitions]
    active = collections.deque(
        (i, _check_single(model, p, compute_info, longest[i])) for i, p in enumerate(partitions))
    try:
        illegal, timed_out = _round_robin(active, results, compute_info, deadline)
        if illegal and compute_info:
            _redo_partials_unpruned(model, partitions, results, longest, deadline)
    finally:
        for _, search in active:
            search.close()
    if illegal:
        result = CheckResult.Illegal
    elif timed_out:
        result = CheckResult.Unknown
    else:
        result = CheckResult.Ok
    info = LinearizationInfo()
    if compute_info:
        info.history = [p.entries for p in partitions]
        info.partial_linearizations = [_unique_partials(l) for l in longest]
        info.partition_results = [CheckResult.Ok if r is True else
                                  CheckResult.Illegal if r is False else CheckResult.Unknown
                                  for r in results]
    return result, info


def _redo_partials_unpruned(model: Model, partitions: List[_Partition], results: list,
                            longest: list, deadline: Optional[float]) -> None:
    """Search the Illegal partitions again without pruning, for the view: the orders
    that pruning skips cannot complete, but they can reach longer prefixes, and
    those are what Go's view shows. Kept only if done before the deadline."""
    for i, part in enumerate(partitions):
        if results[i] is not False or (model.ReadOnly is None and not _has_identical_operations(part)):
            continue
        redo = [None] * (len(part.entries) // 2)
        active = collections.deque([(i, _check_single(model, part, True, redo, prune=False))])
        again: list = list(results)
        _, timed_out = _round_robin(active, again, True, deadline)
        for _, search in active:
            search.close()
        if not timed_out:
            longest[i][:] = redo


def _has_identical_operations(part: _Partition) -> bool:
    """Whether two operations of the partition have equal inputs and outputs (so that the
    search may have skipped one); False if they are unhashable (it skipped none then)."""
    inputs = {e.id: e.value for e in part.entries if not e.is_return}
    try:
        pairs = {(inputs[e.id], e.value) for e in part.entries if e.is_return}
    except TypeError:
        return False
    return len(pairs) < len(inputs)


def _round_robin(active: collections.deque, results: list, compute_info: bool,
                 deadline: Optional[float]) -> Tuple[bool, bool]:
    """Run the searches a slice each in turn until all are done, one is Illegal (unless
    compute_info), or the deadline passes; return (illegal, timed_out)."""
    illegal = timed_out = False
    monotonic = time.monotonic
    while active:
        i, search = active.popleft()
        try:
            next(search)
        except StopIteration as done:
            results[i] = done.value
            if done.value is False:
                illegal = True
                if not compute_info:
                    break
        else:
            active.append((i, search))
        if deadline is not None and monotonic() >= deadline:
            timed_out = bool(active)
            break
    return illegal, timed_out


def _unique_partials(longest: list) -> List[List[int]]:
    seen = {}
    for seq in longest:
        if seq is not None and id(seq) not in seen:
            seen[id(seq)] = list(seq)
    return list(seen.values())


# ---------------------------------------------------------------------------
# Public API (Go: porcupine.go). Each checks its arguments before the search starts
# and raises ModelError naming the bad element, the field, what it is and what it
# should be; a model function that raises is reported with the operation it was given.


def _check(model: Any, history: Any, events: bool, compute_info: bool,
           timeout: Any) -> Tuple[CheckResult, LinearizationInfo]:
    m = _check_model(model)
    _check_timeout(timeout)
    # The check allocates millions of short-lived acyclic tuples; the cyclic collector
    # would rescan the growing cache again and again (15% of the time on big histories),
    # and the caller's live objects with it, so it is paused for the check and restored
    # after (only if it was on, so that with nested or concurrent checks the outermost one
    # turns it back on).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        partitions = _event_partitions(m, history) if events else _operation_partitions(m, history)
        return _check_parallel(m, partitions, compute_info, timeout)
    finally:
        if gc_was_enabled:
            gc.enable()


def CheckOperations(model: Model, history: Sequence[Operation]) -> bool:
    """True iff the history of Operations is linearizable (no timeout)."""
    return _check(model, history, False, False, 0)[0] is CheckResult.Ok


def CheckOperationsTimeout(model: Model, history: Sequence[Operation], timeout: float) -> CheckResult:
    """Check with a timeout in seconds (0 = none); Unknown if it hit."""
    return _check(model, history, False, False, timeout)[0]


def CheckOperationsVerbose(model: Model, history: Sequence[Operation],
                           timeout: float) -> Tuple[CheckResult, LinearizationInfo]:
    """Check with a timeout (0 = none), also returning the data Visualize needs."""
    return _check(model, history, False, True, timeout)


def CheckEvents(model: Model, history: Sequence[Event]) -> bool:
    """True iff the history of Events is linearizable (no timeout)."""
    return _check(model, history, True, False, 0)[0] is CheckResult.Ok


def CheckEventsTimeout(model: Model, history: Sequence[Event], timeout: float) -> CheckResult:
    """Check events with a timeout in seconds (0 = none); Unknown if it hit."""
    return _check(model, history, True, False, timeout)[0]


def CheckEventsVerbose(model: Model, history: Sequence[Event],
                       timeout: float) -> Tuple[CheckResult, LinearizationInfo]:
    """Check events with a timeout (0 = none), also returning the data Visualize needs."""
    return _check(model, history, True, True, timeout)
