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
"""

from __future__ import annotations

import collections
import gc
import time
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

from .model import (CallEvent, CheckResult, Event, Model, ModelError, Operation,
                    ReturnEvent)

# How many lift/backtrack steps a search runs before it yields, so the caller can
# switch partitions and look at the clock. A step is about a microsecond, so a
# slice is well under a millisecond (measured: at most 19 ms on a loaded machine),
# and the clock stays out of the hot loop.
CHECK_EVERY_STEPS = 256


class _Entry(NamedTuple):
    """A call or return of one partition, as kept in LinearizationInfo."""

    is_return: bool
    value: Any
    id: int
    time: int
    client_id: int
    metadata: Any


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
# Turning histories into entries


def _make_entries(history: Sequence[Operation]) -> List[_Entry]:
    entries = []
    for i, op in enumerate(history):
        if not isinstance(op, Operation):
            raise ModelError(f"history element {i} is {op!r}, not a porcupine.Operation")
        if op.Return < op.Call:
            raise ModelError(
                f"operation {i} ({op!r}) returns at {op.Return}, before its call at {op.Call}")
        entries.append(_Entry(False, op.Input, i, op.Call, op.ClientId, op.Metadata))
        entries.append(_Entry(True, op.Output, i, op.Return, op.ClientId, op.Metadata))
    # Equal timestamps: calls first, since [Call, Return] is a closed interval.
    entries.sort(key=lambda e: (e.time, e.is_return))
    return entries


def _validate_events(history: Sequence[Event]) -> None:
    open_ids = set()
    done_ids = set()
    for i, ev in enumerate(history):
        if not isinstance(ev, Event):
            raise ModelError(f"history element {i} is {ev!r}, not a porcupine.Event")
        if ev.Kind is CallEvent:
            if ev.Id in open_ids or ev.Id in done_ids:
                raise ModelError(f"event {i}: duplicate call id {ev.Id!r}; every operation "
                                 "needs its own Id, shared by its call and its return only")
            open_ids.add(ev.Id)
        elif ev.Kind is ReturnEvent:
            if ev.Id not in open_ids:
                what = "a second return for" if ev.Id in done_ids else "a return without a call for"
                raise ModelError(f"event {i}: {what} id {ev.Id!r}")
            open_ids.remove(ev.Id)
            done_ids.add(ev.Id)
        else:
            raise ModelError(f"event {i}: Kind must be CallEvent or ReturnEvent, got {ev.Kind!r}")
    if open_ids:
        raise ModelError(f"calls without a return, ids {sorted(map(repr, open_ids))[:10]}: give "
                         "every call a ReturnEvent (for an operation whose outcome is unknown, "
                         "return an output the model accepts either way)")


def _event_entries(history: Sequence[Event]) -> List[_Entry]:
    renumbered = {}
    entries = []
    for i, ev in enumerate(history):
        rid = renumbered.setdefault(ev.Id, len(renumbered))
        # The position stands in for time: only the order of events matters.
        entries.append(_Entry(ev.Kind is ReturnEvent, ev.Value, rid, i, ev.ClientId, ev.Metadata))
    return entries


# ---------------------------------------------------------------------------
# The search over one partition


def _check_single(model: Model, entries: List[_Entry], compute_partial: bool, longest: list,
                  prune: bool = True):
    """Generator searching one partition; yields every CHECK_EVERY_STEPS steps so the
    caller can interleave partitions and watch the clock; returns True or False.

    longest[i] is kept as the longest linearizable prefix found that includes
    operation i (lists shared between operations), also when the caller gives up.
    prune: use model.ReadOnly, if given (see the module docstring).
    """
    read_only = model.ReadOnly if prune else None
    if model.Equal is None and model.Hash is None:
        try:
            return (yield from _search(model, entries, compute_partial, True, longest, read_only))
        except _UnhashableState:
            longest[:] = [None] * len(longest)
    return (yield from _search(model, entries, compute_partial, False, longest, read_only))


def _search(model: Model, entries: List[_Entry], compute_partial: bool, use_set: bool,
            longest: list, read_only: Optional[Callable[[Any, Any], bool]]):
    """The search proper (see _check_single). use_set: cache (linearized, state) pairs in
    a set, for hashable states compared with ==; otherwise buckets of states per
    (linearized[, Hash(state)]) compared with Equal."""
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
    if read_only is not None:
        for pos in range(1, size - 1):
            if match[pos]:
                fixed[pos] = bool(read_only(inputs[pos], outputs[pos]))

    step = model.Step
    equal = model.Equal or _eq
    hasher = model.Hash
    cache_set: set = set()
    cache_buckets: dict = {}
    calls: list = []          # stack of (call node, state before it, linearized before it)
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

    state = model.Init()
    linearized = 0
    entry = nxt[head]
    ticks = CHECK_EVERY_STEPS
    # The list is empty (all linearized) exactly when the head is followed by the tail;
    # that can only change by a lift, so it is tested there.
    while entry != tail:
        ret = match[entry]
        if ret:
            result = step(state, inputs[entry], outputs[entry])
            try:
                ok, new_state = result
            except (TypeError, ValueError):
                raise ModelError(f"Model.Step must return a pair (ok, new_state), got {result!r}") from None
            if ok is True:
                if fixed[entry] and new_state is not state and not equal(new_state, state):
                    raise ModelError(
                        f"Model.ReadOnly says {inputs[entry]!r} -> {outputs[entry]!r} leaves the state "
                        f"unchanged, but Step took {state!r} to {new_state!r}: fix ReadOnly or Step")
                new_lin = linearized | bits[entry]
                if use_set:
                    key = (new_lin, new_state)
                    try:
                        seen = key in cache_set
                    except TypeError:
                        raise _UnhashableState() from None
                    if not seen:
                        cache_set.add(key)
                else:
                    key = new_lin if hasher is None else (new_lin, hasher(new_state))
                    bucket = cache_buckets.get(key)
                    if bucket is None:
                        cache_buckets[key] = [new_state]
                        seen = False
                    else:
                        seen = False
                        for old in bucket:
                            if equal(old, new_state):
                                seen = True
                                break
                        if not seen:
                            bucket.append(new_state)
                if seen:
                    # A read-only op whose configuration failed before: so do the later calls.
                    entry = ret if fixed[entry] else nxt[entry]
                    continue
                calls.append((entry, state, linearized))
                if compute_partial:
                    top_cell = (op_id[entry], top_cell)
                    pending.append(None)
                state = new_state
                linearized = new_lin
                # Lift the call and its return out of the list.
                p, q = prv[entry], nxt[entry]
                nxt[p] = q
                prv[q] = p
                p, q = prv[ret], nxt[ret]
                nxt[p] = q
                prv[q] = p
                entry = nxt[head]
                pushed_since_pop = True
            elif ok is False:
                entry = nxt[entry]
                continue
            else:
                raise ModelError(f"Model.Step must return (ok, new_state) with ok a bool, got {result!r}")
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
            entry, state, linearized = calls.pop()
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
            try:
                yield
            except GeneratorExit:  # the caller gave up (timeout): keep what was found
                _finish_partials(calls, pending, op_id, longest, best_len)
                raise
    seq = [op_id[c[0]] for c in calls]
    longest[:] = [seq] * n
    return True


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


def _check_parallel(model: Model, partitions: List[List[_Entry]], compute_info: bool,
                    timeout_s: float) -> Tuple[CheckResult, LinearizationInfo]:
    """Check every partition, interleaved, until a verdict or the deadline.

    The searches are generators run round-robin in this thread, a slice of
    CHECK_EVERY_STEPS steps each. That is Go's goroutine-per-partition schedule
    without threads: under the GIL, threads would run one at a time anyway, and
    round-robin keeps what matters, that a partition whose search explodes cannot
    starve an Illegal one (porcupine's c50-bad history has such a partition).
    Without compute_info the first Illegal partition ends the check, as in Go.
    """
    if not isinstance(timeout_s, (int, float)) or timeout_s < 0:
        raise ModelError(f"timeout must be a number of seconds >= 0 (0 = none), got {timeout_s!r}")
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
    results: List[Optional[bool]] = [None] * len(partitions)
    longest = [[None] * (len(p) // 2) for p in partitions]
    active = collections.deque(
        (i, _check_single(model, p, compute_info, longest[i])) for i, p in enumerate(partitions))
    # The search allocates millions of short-lived acyclic tuples; the cyclic collector
    # would rescan the growing cache again and again (15% of the time on big histories),
    # so it is paused during the check and restored after (only if it was on, so that
    # with nested or concurrent checks the outermost one turns it back on).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        illegal, timed_out = _round_robin(active, results, compute_info, deadline)
        if illegal and compute_info and model.ReadOnly is not None:
            _redo_partials_unpruned(model, partitions, results, longest, deadline)
    finally:
        for _, search in active:
            search.close()
        if gc_was_enabled:
            gc.enable()
    if illegal:
        result = CheckResult.Illegal
    elif timed_out:
        result = CheckResult.Unknown
    else:
        result = CheckResult.Ok
    info = LinearizationInfo()
    if compute_info:
        info.history = partitions
        info.partial_linearizations = [_unique_partials(l) for l in longest]
        info.partition_results = [CheckResult.Ok if r is True else
                                  CheckResult.Illegal if r is False else CheckResult.Unknown
                                  for r in results]
    return result, info


def _redo_partials_unpruned(model: Model, partitions: List[List[_Entry]], results: list,
                            longest: list, deadline: Optional[float]) -> None:
    """Search the Illegal partitions again without ReadOnly, for the view: the orders
    that pruning skips cannot complete, but they can reach longer prefixes, and
    those are what Go's view shows. Kept only if done before the deadline."""
    for i, part in enumerate(partitions):
        if results[i] is not False:
            continue
        redo = [None] * (len(part) // 2)
        active = collections.deque([(i, _check_single(model, part, True, redo, prune=False))])
        again: list = list(results)
        _, timed_out = _round_robin(active, again, True, deadline)
        for _, search in active:
            search.close()
        if not timed_out:
            longest[i][:] = redo


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


def _partition_operations(model: Model, history: Sequence[Operation]) -> List[List[_Entry]]:
    history = list(history)
    parts = model.Partition(history) if model.Partition is not None else [history]
    return [_make_entries(p) for p in parts]


def _partition_events(model: Model, history: Sequence[Event]) -> List[List[_Entry]]:
    history = list(history)
    _validate_events(history)
    parts = model.PartitionEvent(history) if model.PartitionEvent is not None else [history]
    entries = []
    for p in parts:
        _validate_events(p)
        entries.append(_event_entries(p))
    return entries


def _require_model(model: Any) -> Model:
    if not isinstance(model, Model):
        hint = " (call .ToModel() first)" if hasattr(model, "ToModel") else ""
        raise ModelError(f"expected a porcupine.Model, got {type(model).__name__}{hint}")
    return model


# ---------------------------------------------------------------------------
# Public API (Go: porcupine.go)


def CheckOperations(model: Model, history: Sequence[Operation]) -> bool:
    """True iff the history of Operations is linearizable (no timeout)."""
    m = _require_model(model)
    return _check_parallel(m, _partition_operations(m, history), False, 0)[0] is CheckResult.Ok


def CheckOperationsTimeout(model: Model, history: Sequence[Operation], timeout: float) -> CheckResult:
    """Check with a timeout in seconds (0 = none); Unknown if it hit."""
    m = _require_model(model)
    return _check_parallel(m, _partition_operations(m, history), False, timeout)[0]


def CheckOperationsVerbose(model: Model, history: Sequence[Operation],
                           timeout: float) -> Tuple[CheckResult, LinearizationInfo]:
    """Check with a timeout (0 = none), also returning the data Visualize needs."""
    m = _require_model(model)
    return _check_parallel(m, _partition_operations(m, history), True, timeout)


def CheckEvents(model: Model, history: Sequence[Event]) -> bool:
    """True iff the history of Events is linearizable (no timeout)."""
    m = _require_model(model)
    return _check_parallel(m, _partition_events(m, history), False, 0)[0] is CheckResult.Ok


def CheckEventsTimeout(model: Model, history: Sequence[Event], timeout: float) -> CheckResult:
    """Check events with a timeout in seconds (0 = none); Unknown if it hit."""
    m = _require_model(model)
    return _check_parallel(m, _partition_events(m, history), False, timeout)[0]


def CheckEventsVerbose(model: Model, history: Sequence[Event],
                       timeout: float) -> Tuple[CheckResult, LinearizationInfo]:
    """Check events with a timeout (0 = none), also returning the data Visualize needs."""
    m = _require_model(model)
    return _check_parallel(m, _partition_events(m, history), True, timeout)
