"""Hand-made histories and API behaviour of the porcupine checker.

Run: python -m pytest porcupine/test_porcupine.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from porcupine import (CallEvent, CheckEvents, CheckEventsTimeout, CheckEventsVerbose,
                       CheckOperations, CheckOperationsTimeout, CheckOperationsVerbose, CheckResult,
                       Event, Illegal, Model, ModelError, NondeterministicModel, Ok, Operation,
                       ReturnEvent, Unknown)

# ---- models used below ----------------------------------------------------------------


def register_step(state, inp, out):
    """A register: inp is ("put", v) or ("get",); a get's output is the value read."""
    if inp[0] == "put":
        return True, inp[1]
    return out == state, state


REGISTER = Model(Init=lambda: 0, Step=register_step)


def kv_partition(ops):
    keys = sorted({op.Input[1] for op in ops})
    return [[op for op in ops if op.Input[1] == k] for k in keys]


def kv_partition_events(events):
    key_of = {}
    parts = {}
    for ev in events:
        if ev.Kind is CallEvent:
            key_of[ev.Id] = ev.Value[1]
        parts.setdefault(key_of[ev.Id], []).append(ev)
    return [parts[k] for k in sorted(parts)]


def kv_step(state, inp, out):
    """One key of a KV store: inp is ("put", key, v) or ("get", key)."""
    if inp[0] == "put":
        return True, inp[2]
    return out == state, state


KV = Model(Partition=kv_partition, PartitionEvent=kv_partition_events, Init=lambda: "", Step=kv_step)


def op(client, inp, call, out, ret):
    return Operation(ClientId=client, Input=inp, Call=call, Output=out, Return=ret)


def put(client, value, call, ret):
    return op(client, ("put", value), call, None, ret)


def get(client, value, call, ret):
    return op(client, ("get",), call, value, ret)


# ---- hand-made histories ----------------------------------------------------------------


def TestEmptyHistory():
    assert CheckOperations(REGISTER, []) is True
    assert CheckEvents(REGISTER, []) is True
    res, info = CheckOperationsVerbose(REGISTER, [], 0)
    assert res is Ok
    assert info.PartialLinearizations() == [[]]
    # A partition function may return no partitions at all.
    assert CheckOperationsTimeout(KV, [], 1) is Ok


def TestOneOperation():
    assert CheckOperations(REGISTER, [put(0, 5, 0, 10)])
    assert CheckOperations(REGISTER, [get(0, 0, 0, 10)])
    assert not CheckOperations(REGISTER, [get(0, 7, 0, 10)])


def TestSequentialHistory():
    ops = [put(0, 1, 0, 10), get(0, 1, 20, 30), put(0, 2, 40, 50), get(0, 2, 60, 70)]
    assert CheckOperations(REGISTER, ops)
    ops[3] = get(0, 1, 60, 70)
    assert not CheckOperations(REGISTER, ops)


def TestOverlappingOperations():
    # A get overlapping a put may see the old or the new value.
    assert CheckOperations(REGISTER, [put(0, 1, 0, 100), get(1, 1, 10, 50)])
    assert CheckOperations(REGISTER, [put(0, 1, 0, 100), get(1, 0, 10, 50)])
    # Two gets inside one put: the first returning sees new, the later-starting one old: not ok.
    ops = [put(0, 100, 0, 100), get(1, 100, 10, 30), get(2, 0, 40, 90)]
    assert not CheckOperations(REGISTER, ops)
    # ...but if the gets overlap each other, either order works.
    ops = [put(0, 100, 0, 100), get(1, 100, 25, 75), get(2, 0, 30, 60)]
    assert CheckOperations(REGISTER, ops)


def TestClosedIntervals():
    # [Call, Return] is closed: an op returning at t is concurrent with one called at t.
    ops = [get(0, 1, 0, 10), put(1, 1, 10, 20)]
    assert CheckOperations(REGISTER, ops)
    ops = [get(0, 1, 0, 9), put(1, 1, 10, 20)]
    assert not CheckOperations(REGISTER, ops)


def TestZeroDurationOperations():
    ops = [put(0, 100, 0, 100), get(1, 100, 25, 75), get(2, 0, 30, 30), get(3, 0, 30, 30)]
    assert CheckOperationsVerbose(REGISTER, ops, 0)[0] is Ok
    ops = [put(0, 200, 0, 100), get(1, 200, 10, 10), get(2, 200, 10, 10), get(3, 0, 40, 90)]
    assert CheckOperationsVerbose(REGISTER, ops, 0)[0] is Illegal


def TestStaleRead():
    # The write of 2 completed before the read started; reading 1 is stale.
    ops = [put(0, 1, 0, 10), put(1, 2, 20, 30), get(2, 1, 40, 50)]
    assert not CheckOperations(REGISTER, ops)
    res, info = CheckOperationsVerbose(REGISTER, ops, 0)
    assert res is Illegal
    # The longest prefix is put 1, put 2; the get cannot follow.
    assert sorted(map(tuple, info.PartialLinearizations()[0]), key=len)[-1] == (0, 1)


def TestLostWrite():
    # Two completed appends, a later read sees only one of them.
    def step(state, inp, out):
        if inp[0] == "append":
            return True, state + inp[1]
        return out == state, state

    m = Model(Init=lambda: "", Step=step)
    ops = [op(0, ("append", "a"), 0, None, 10), op(1, ("append", "b"), 5, None, 15),
           op(2, ("get",), 20, "b", 30)]
    assert not CheckOperations(m, ops)
    ops[2] = op(2, ("get",), 20, "ab", 30)
    assert CheckOperations(m, ops)
    ops[2] = op(2, ("get",), 20, "ba", 30)
    assert CheckOperations(m, ops)


def TestPartitionedIllegalKey():
    ops = [op(0, ("put", "x", "1"), 0, None, 10), op(1, ("get", "x"), 20, "1", 30),
           op(0, ("put", "y", "2"), 0, None, 10), op(1, ("get", "y"), 20, "", 30)]
    res, info = CheckOperationsVerbose(KV, ops, 0)
    assert res is Illegal
    assert len(info.PartialLinearizations()) == 2
    # Partition "x" is complete; "y" stops after the put.
    full_x = [p for p in info.PartialLinearizations()[0] if len(p) == 2]
    assert full_x and sorted(full_x[0]) == [0, 1]
    assert max(len(p) for p in info.PartialLinearizations()[1]) == 1


def TestEventsRegister():
    events = [
        Event(ClientId=0, Kind=CallEvent, Value=("put", 100), Id="a"),
        Event(ClientId=1, Kind=CallEvent, Value=("get",), Id="b"),
        Event(ClientId=2, Kind=CallEvent, Value=("get",), Id="c"),
        Event(ClientId=2, Kind=ReturnEvent, Value=0, Id="c"),
        Event(ClientId=1, Kind=ReturnEvent, Value=100, Id="b"),
        Event(ClientId=0, Kind=ReturnEvent, Value=None, Id="a"),
    ]
    assert CheckEvents(REGISTER, events)
    events = [
        Event(ClientId=0, Kind=CallEvent, Value=("put", 200), Id=0),
        Event(ClientId=1, Kind=CallEvent, Value=("get",), Id=1),
        Event(ClientId=1, Kind=ReturnEvent, Value=200, Id=1),
        Event(ClientId=2, Kind=CallEvent, Value=("get",), Id=2),
        Event(ClientId=2, Kind=ReturnEvent, Value=0, Id=2),
        Event(ClientId=0, Kind=ReturnEvent, Value=None, Id=0),
    ]
    assert not CheckEvents(REGISTER, events)
    assert CheckEventsTimeout(REGISTER, events, 5) is Illegal
    res, info = CheckEventsVerbose(REGISTER, events, 0)
    assert res is Illegal and info.PartialLinearizations()


def TestEventsPartitioned():
    events = [
        Event(ClientId=0, Kind=CallEvent, Value=("put", "x", "1"), Id=0),
        Event(ClientId=1, Kind=CallEvent, Value=("get", "y"), Id=1),
        Event(ClientId=0, Kind=ReturnEvent, Value=None, Id=0),
        Event(ClientId=1, Kind=ReturnEvent, Value="", Id=1),
        Event(ClientId=1, Kind=CallEvent, Value=("get", "x"), Id=2),
        Event(ClientId=1, Kind=ReturnEvent, Value="1", Id=2),
    ]
    assert CheckEvents(KV, events)
    events[-1] = Event(ClientId=1, Kind=ReturnEvent, Value="", Id=2)
    assert not CheckEvents(KV, events)


def TestVerboseLinearizationIsValid():
    ops = [put(0, 1, 0, 50), get(1, 1, 10, 60), put(2, 2, 20, 70), get(0, 2, 80, 90)]
    res, info = CheckOperationsVerbose(REGISTER, ops, 0)
    assert res is Ok
    [partials] = info.PartialLinearizations()
    assert len(partials) == 1 and sorted(partials[0]) == [0, 1, 2, 3]
    state = 0
    for o in info.PartialLinearizationsOperations()[0][0]:
        ok, state = register_step(state, o.Input, o.Output)
        assert ok


def TestResultEnum():
    assert Ok == CheckResult.Ok and str(Ok) == "Ok"
    assert {Ok.value, Illegal.value, Unknown.value} == {"Ok", "Illegal", "Unknown"}


# ---- nondeterministic and Equal-based models -------------------------------------------


def _maybe_put_step(state, inp, out):
    # ("maybe", v): a write whose outcome is unknown: it may or may not have happened.
    if inp[0] == "put":
        return [inp[1]]
    if inp[0] == "maybe":
        return [state, inp[1]]
    return [state] if out == state else []


def TestNondeterministicModel():
    nd = NondeterministicModel(Init=lambda: [0], Step=_maybe_put_step)
    m = nd.ToModel()
    ops = [op(0, ("maybe", 5), 0, None, 10), get(1, 5, 20, 30)]
    assert CheckOperations(m, ops)
    ops = [op(0, ("maybe", 5), 0, None, 10), get(1, 0, 20, 30)]
    assert CheckOperations(m, ops)
    ops = [op(0, ("maybe", 5), 0, None, 10), get(1, 5, 20, 30), get(1, 0, 40, 50)]
    assert not CheckOperations(m, ops)
    ops = [op(0, ("maybe", 5), 0, None, 10), get(1, 7, 20, 30)]
    assert not CheckOperations(m, ops)


def TestNondeterministicModelWithHashAndEqual():
    nd = NondeterministicModel(Init=lambda: [0], Step=_maybe_put_step,
                               Equal=lambda a, b: a == b, Hash=lambda s: s)
    m = nd.ToModel()
    ops = [op(0, ("maybe", 5), 0, None, 10), op(1, ("maybe", 6), 0, None, 10), get(2, 6, 20, 30),
           get(2, 6, 40, 50)]
    assert CheckOperations(m, ops)
    ops.append(get(2, 5, 60, 70))
    assert not CheckOperations(m, ops)
    assert m.DescribeState((1, 2)) == "{1, 2}"


@dataclass
class MutableState:
    """A state type that is not hashable (eq=True without frozen)."""

    values: list


def TestEqualModelWithUnhashableStates():
    def step(state, inp, out):
        if inp[0] == "add":
            return True, MutableState(sorted(state.values + [inp[1]]))
        return out == state.values, state

    calls = []

    def equal(a, b):
        calls.append(1)
        return a.values == b.values

    m = Model(Init=lambda: MutableState([]), Step=step, Equal=equal)
    ops = [op(0, ("add", 1), 0, None, 10), op(1, ("add", 2), 0, None, 10), op(2, ("read",), 20, [1, 2], 30)]
    assert CheckOperations(m, ops)
    ops[2] = op(2, ("read",), 20, [2], 30)
    assert not CheckOperations(m, ops)
    # Both orders of the adds reach the same set with equal states: a cache hit via Equal.
    assert calls, "Equal was never consulted"


def TestUnhashableStatesWithoutEqual():
    # Lists as states and no Equal: the checker falls back to == within a bucket.
    def step(state, inp, out):
        if inp[0] == "push":
            return True, state + [inp[1]]
        return out == state, state

    m = Model(Init=list, Step=step)
    ops = [op(0, ("push", 1), 0, None, 10), op(1, ("push", 2), 5, None, 15), op(2, ("read",), 20, [2, 1], 30)]
    assert CheckOperations(m, ops)
    ops[2] = op(2, ("read",), 20, [1], 30)
    assert not CheckOperations(m, ops)


def TestHashOnlyModel():
    m = Model(Init=lambda: 0, Step=register_step, Hash=lambda s: s % 7)
    ops = [put(0, 1, 0, 50), put(1, 8, 0, 50), get(2, 8, 60, 70)]
    assert CheckOperations(m, ops)
    ops.append(get(2, 1, 80, 90))
    assert not CheckOperations(m, ops)


# ---- timeouts ------------------------------------------------------------------------------


def _append_step(state, inp, out):
    if inp[0] == "append":
        return True, state + inp[1]
    return out == state, state


def explosive_history(k: int, client_base: int = 0, key=None):
    """k concurrent appends of distinct letters and a concurrent impossible read: every one of
    the k! orders gives a new state, so the search only ends after exploring them all."""
    ops = [op(client_base + i, ("append", chr(97 + i)) if key is None else ("append", key, chr(97 + i)),
              0, None, 100) for i in range(k)]
    ops.append(op(client_base + k, ("get",) if key is None else ("get", key), 0, "impossible", 100))
    return ops


APPEND = Model(Init=lambda: "", Step=_append_step)


def TestTimeoutGivesUnknown():
    ops = explosive_history(14)
    start = time.monotonic()
    res = CheckOperationsTimeout(APPEND, ops, 0.3)
    elapsed = time.monotonic() - start
    assert res is Unknown
    assert elapsed < 0.3 + 0.5, f"the check overran its 0.3 s timeout by {elapsed - 0.3:.2f} s"
    res, info = CheckOperationsVerbose(APPEND, ops, 0.2)
    assert res is Unknown
    assert info.PartialLinearizations()[0], "partial linearizations are kept on timeout"


def TestSmallExplosiveHistoryFinishes():
    assert CheckOperationsTimeout(APPEND, explosive_history(4), 0) is Illegal


def _kv_append_step(state, inp, out):
    if inp[0] == "append":
        return True, state + inp[2]
    return out == state, state


KV_APPEND = Model(Partition=kv_partition, Init=lambda: "", Step=_kv_append_step)


def TestIllegalPartitionFoundDespiteExplosiveOne():
    # Partition "a" would take practically forever; partition "b" is quickly Illegal.
    ops = explosive_history(14, key="a")
    ops += [op(50, ("append", "b", "x"), 0, None, 10), op(51, ("get", "b"), 20, "y", 30)]
    start = time.monotonic()
    assert CheckOperations(KV_APPEND, ops) is False
    assert CheckOperationsTimeout(KV_APPEND, ops, 5) is Illegal
    assert time.monotonic() - start < 2
    # Verbose mode waits for the other partitions, like Go, but still says Illegal at the timeout.
    res, info = CheckOperationsVerbose(KV_APPEND, ops, 0.3)
    assert res is Illegal
    assert time.monotonic() - start < 4


# ---- Model.ReadOnly ---------------------------------------------------------------------------


def _cas_register_step(state, inp, out):
    if inp[0] == "write":
        return True, inp[1]
    if inp[0] == "read":
        return out == state, state
    # ("cas", old, new) -> False: a failed compare-and-set, legal whenever state != old.
    if out:
        return state == inp[1], inp[2]
    return state != inp[1], state


def _cas_read_only(inp, out):
    return inp[0] == "read" or (inp[0] == "cas" and not out)


CAS_REGISTER = Model(Init=lambda: 0, Step=_cas_register_step)
CAS_REGISTER_RO = Model(Init=lambda: 0, Step=_cas_register_step, ReadOnly=_cas_read_only)


def subset_explosive_history(k: int, identical: bool = False):
    """The shape of many clients on one versioned key: a write called first, a read called
    just after it that must still come before it, and k failed CASes called in between that fit
    either side. Without ReadOnly, the search tries all 2^k subsets of the CASes before it
    undoes the write. identical=True: all CASes the same (pruned as identical operations)."""
    ops = [op(0, ("write", 1), 0, None, 100)]
    ops += [op(1 + i, ("cas", 5 if identical else 5 + i, 6), 1, False, 200) for i in range(k)]
    ops.append(op(1 + k, ("read",), 2, 0, 50))
    return ops


def TestReadOnlyPrunesSubsetExplosion():
    ops = subset_explosive_history(30)
    assert CheckOperationsTimeout(CAS_REGISTER, ops, 0.3) is Unknown   # 2^30 subsets
    start = time.monotonic()
    assert CheckOperationsTimeout(CAS_REGISTER_RO, ops, 0) is Ok
    assert time.monotonic() - start < 0.5
    small = subset_explosive_history(6)
    assert CheckOperations(CAS_REGISTER, small) is True
    assert CheckOperations(CAS_REGISTER_RO, small) is True
    # Make the read impossible: both must now say Illegal.
    bad = small[:-1] + [op(7, ("read",), 2, 9, 50)]
    assert CheckOperations(CAS_REGISTER, bad) is False
    assert CheckOperations(CAS_REGISTER_RO, bad) is False


def TestIdenticalOperationsPruneSubsetExplosion():
    """Identical operations (equal input and output) are tried in one order only: k equal
    failed CASes give k + 1 subsets to try, not 2^k, without any hint from the model."""
    ops = subset_explosive_history(30, identical=True)
    start = time.monotonic()
    assert CheckOperationsTimeout(CAS_REGISTER, ops, 0) is Ok
    assert time.monotonic() - start < 0.5
    bad = subset_explosive_history(12, identical=True)[:-1] + [op(13, ("read",), 2, 9, 50)]
    assert CheckOperations(CAS_REGISTER, bad) is False
    res, info = CheckOperationsVerbose(CAS_REGISTER, bad, 0)
    assert res is Illegal
    # The view's prefixes come from the unpruned search, as without the pruning.
    assert max(len(p) for p in info.PartialLinearizations()[0]) == 13


def TestReadOnlyStepMustNotChangeState():
    lying = Model(Init=lambda: 0, Step=register_step, ReadOnly=lambda inp, out: True)
    with pytest.raises(ModelError, match="ReadOnly"):
        CheckOperations(lying, [put(0, 1, 0, 10)])
    with pytest.raises(ModelError, match="ReadOnly"):
        Model(Init=lambda: 0, Step=register_step, ReadOnly=True)


# ---- bad input ------------------------------------------------------------------------------


def TestModelNeedsInitAndStep():
    with pytest.raises(ModelError, match="needs Init"):
        Model(Step=register_step)
    with pytest.raises(ModelError, match="needs Step"):
        Model(Init=lambda: 0)
    with pytest.raises(ModelError, match="must be a function"):
        Model(Init=lambda: 0, Step=register_step, Equal=3)
    with pytest.raises(ModelError, match="needs Step"):
        NondeterministicModel(Init=lambda: [0])


def TestStepMustReturnPair():
    bad = Model(Init=lambda: 0, Step=lambda s, i, o: True)
    with pytest.raises(ModelError, match="must return a pair"):
        CheckOperations(bad, [put(0, 1, 0, 10)])
    triple = Model(Init=lambda: 0, Step=lambda s, i, o: (True, s, s))
    with pytest.raises(ModelError, match="must return a pair"):
        CheckOperations(triple, [put(0, 1, 0, 10)])
    swapped = Model(Init=lambda: 0, Step=lambda s, i, o: (s, True))
    with pytest.raises(ModelError, match="ok a bool"):
        CheckOperations(swapped, [put(0, 1, 0, 10)])


def TestStepErrorsAreWrapped():
    """An exception in Step comes back as a ModelError naming the operation and the state,
    with the original as its cause."""
    def step(state, inp, out):
        if inp[0] == "put":
            raise KeyError("boom")
        return out == state, state

    with pytest.raises(ModelError, match=r"Model\.Step raised KeyError: 'boom' for operation 1 "
                       r"\(input \('put', 1\), output None\) in state 0") as err:
        CheckOperationsTimeout(Model(Init=lambda: 0, Step=step), [get(0, 0, 0, 1), put(0, 1, 2, 10)], 1)
    assert isinstance(err.value.__cause__, KeyError)


def TestReturnWithoutCall():
    events = [Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1)]
    with pytest.raises(ModelError, match="return without a call"):
        CheckEvents(REGISTER, events)


def TestDuplicateIds():
    events = [Event(ClientId=0, Kind=CallEvent, Value=("get",), Id=1),
              Event(ClientId=1, Kind=CallEvent, Value=("get",), Id=1),
              Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1),
              Event(ClientId=1, Kind=ReturnEvent, Value=0, Id=1)]
    with pytest.raises(ModelError, match="duplicate call id"):
        CheckEvents(REGISTER, events)
    events = [Event(ClientId=0, Kind=CallEvent, Value=("get",), Id=1),
              Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1),
              Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1)]
    with pytest.raises(ModelError, match="second return"):
        CheckEvents(REGISTER, events)
    events = [Event(ClientId=0, Kind=CallEvent, Value=("get",), Id=1),
              Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1),
              Event(ClientId=0, Kind=CallEvent, Value=("get",), Id=1),
              Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1)]
    with pytest.raises(ModelError, match="duplicate call id"):
        CheckEvents(REGISTER, events)


def TestCallWithoutReturn():
    events = [Event(ClientId=0, Kind=CallEvent, Value=("get",), Id=1)]
    with pytest.raises(ModelError, match="without a return"):
        CheckEventsTimeout(REGISTER, events, 1)


def TestBadOperations():
    with pytest.raises(ModelError, match="before its call"):
        CheckOperations(REGISTER, [put(0, 1, 10, 5)])
    with pytest.raises(ModelError, match="not a porcupine.Operation"):
        CheckOperations(REGISTER, [("put", 1)])
    with pytest.raises(ModelError, match="ToModel"):
        CheckOperations(NondeterministicModel(Init=lambda: [0], Step=_maybe_put_step), [])
    with pytest.raises(ModelError, match="timeout"):
        CheckOperationsTimeout(REGISTER, [], -1)


def _error(call) -> ModelError:
    with pytest.raises(ModelError) as err:
        call()
    return err.value


def TestBadOperationFields():
    """A malformed Operation is refused up front, naming its index, the field, what it holds
    and what it should hold."""
    good = put(0, 1, 0, 10)
    cases = [
        (Operation(ClientId=1, Input=("get",), Call=None, Output=1, Return=15),
         "operation 1: Call is None; expected a timestamp, an int"),
        (Operation(ClientId=1, Input=("get",), Call=5, Output=1, Return="15"),
         "operation 1: Return is '15'; expected a timestamp"),
        (Operation(ClientId=1, Input=("get",), Call=5, Output=1, Return=float("nan")),
         "operation 1: Return is nan; expected a timestamp"),
        (Operation(ClientId="c", Input=("get",), Call=5, Output=1, Return=15),
         "operation 1: ClientId is 'c'; expected an int"),
        (Operation(ClientId=None, Input=("get",), Call=5, Output=1, Return=15),
         "operation 1: ClientId is None; expected an int"),
        (Event(ClientId=1, Kind=CallEvent, Value=("get",), Id=1),
         "operation 1 is Event.*not a porcupine.Operation .that is an Event: check it with CheckEvents"),
    ]
    for bad, message in cases:
        for check in (lambda h: CheckOperations(REGISTER, h),
                      lambda h: CheckOperationsTimeout(REGISTER, h, 1),
                      lambda h: CheckOperationsVerbose(REGISTER, h, 1)):
            with pytest.raises(ModelError, match=message):
                check([good, bad])
    # Floats are timestamps too.
    assert CheckOperations(REGISTER, [op(0, ("put", 1), 0.5, None, 1.5), op(1, ("get",), 2.0, 1, 3.0)])


def TestBadHistory():
    for history in (None, 3, put(0, 1, 0, 10), "ops"):
        with pytest.raises(ModelError, match="the history must be a list of porcupine.Operation"):
            CheckOperations(REGISTER, history)
        with pytest.raises(ModelError, match="the history must be a list of porcupine.Event"):
            CheckEvents(REGISTER, history)
    assert CheckOperations(REGISTER, (o for o in [put(0, 1, 0, 10)]))  # any iterable will do


def TestBadEventFields():
    ret = Event(ClientId=0, Kind=ReturnEvent, Value=0, Id=1)
    cases = [
        ([Event(ClientId=0, Kind="call", Value=("get",), Id=1), ret],
         "event 0: Kind is 'call'; expected porcupine.CallEvent or porcupine.ReturnEvent"),
        ([Event(ClientId=0, Kind=CallEvent, Value=("get",), Id=[1]), ret],
         r"event 0: Id is \[1\], which is not hashable; expected a value such as an int or a str"),
        ([Event(ClientId=None, Kind=CallEvent, Value=("get",), Id=1), ret],
         "event 0: ClientId is None; expected an int"),
        ([put(0, 1, 0, 10)],
         "event 0 is Operation.*not a porcupine.Event .that is an Operation: check it with CheckOperations"),
    ]
    for events, message in cases:
        for check in (lambda h: CheckEvents(REGISTER, h), lambda h: CheckEventsTimeout(REGISTER, h, 1),
                      lambda h: CheckEventsVerbose(REGISTER, h, 1)):
            with pytest.raises(ModelError, match=message):
                check(events)


def TestBadTimeout():
    for timeout in (-1, float("nan"), "1", None, True):
        for check in (CheckOperationsTimeout, CheckOperationsVerbose, CheckEventsTimeout, CheckEventsVerbose):
            with pytest.raises(ModelError, match=r"timeout must be a number of seconds >= 0 \(0 = none\)"):
                check(REGISTER, [], timeout)


def TestModelChangedAfterConstruction():
    model = Model(Init=lambda: 0, Step=register_step)
    model.Step = None
    with pytest.raises(ModelError, match="porcupine.Model.Step must be a function, got None"):
        CheckOperations(model, [put(0, 1, 0, 10)])
    model = Model(Init=lambda: 0, Step=register_step)
    model.Partition = "by key"
    with pytest.raises(ModelError, match="porcupine.Model.Partition must be a function or None"):
        CheckOperations(model, [put(0, 1, 0, 10)])


def TestModelFunctionsThatRaiseAreNamed():
    """Every model function that raises comes back as a ModelError naming the function and
    what it was given, caused by the original exception."""
    ops = [put(0, 1, 0, 10), get(1, 1, 20, 30)]
    err = _error(lambda: CheckOperations(Model(Init=lambda: 1 / 0, Step=register_step), ops))
    assert str(err).startswith("Model.Init raised ZeroDivisionError: division by zero")
    assert isinstance(err.__cause__, ZeroDivisionError)

    err = _error(lambda: CheckOperations(Model(Init=lambda: 0, Step=register_step,
                                               ReadOnly=lambda inp, out: inp.op), ops))
    assert str(err).startswith("Model.ReadOnly raised AttributeError: 'tuple' object has no attribute "
                               "'op' for operation 0 (input ('put', 1), output None)")

    def dict_step(state, inp, out):
        return (True, {"v": inp[1]}) if inp[0] == "put" else (out == state.get("v"), state)

    err = _error(lambda: CheckOperations(Model(Init=dict, Step=dict_step, Hash=lambda s: s["w"]), ops))
    assert str(err).startswith("Model.Hash raised KeyError: 'w' on ")
    assert "Hash(state) must return an int for every state Step returns" in str(err)

    def equal(a, b):
        raise ValueError("no")

    # Two puts of 1 in either order reach the same configuration (the search gets there
    # twice, since the read of 5 fails): Equal is needed.
    twice = [put(0, 1, 0, 10), op(1, ("put", 1, "again"), 0, None, 10), get(2, 5, 20, 30)]
    err = _error(lambda: CheckOperations(Model(Init=dict, Step=dict_step, Equal=equal), twice))
    assert str(err).startswith("Model.Equal raised ValueError: no on the state after operation 0")

    err = _error(lambda: CheckOperations(Model(Init=lambda: 0, Step=register_step,
                                               Partition=lambda h: [o.Input.key for o in h]), ops))
    assert str(err).startswith("Model.Partition raised AttributeError: 'tuple' object has no attribute "
                               "'key' on the history (2 elements)")
    assert isinstance(err.__cause__, AttributeError)

    err = _error(lambda: CheckEvents(Model(Init=lambda: 0, Step=register_step,
                                           PartitionEvent=lambda h: h[0].Value.key), _events(ops)))
    assert str(err).startswith("Model.PartitionEvent raised AttributeError")


def _events(ops):
    events = []
    for i, o in enumerate(ops):
        events += [Event(ClientId=o.ClientId, Kind=CallEvent, Value=o.Input, Id=i),
                   Event(ClientId=o.ClientId, Kind=ReturnEvent, Value=o.Output, Id=i)]
    return events


def TestBadPartitions():
    ops = [put(0, 1, 0, 10), get(1, 1, 20, 30)]
    for parts, message in (
            (lambda h: 3, "Model.Partition must return a list of lists of porcupine.Operation, got 3"),
            (lambda h: [h, [("x",)]],
             r"element 0 in Model.Partition's partition 1 is \('x',\), not a porcupine.Operation")):
        with pytest.raises(ModelError, match=message):
            CheckOperations(Model(Init=lambda: 0, Step=register_step, Partition=parts), ops)
    split = Model(Init=lambda: 0, Step=register_step, PartitionEvent=lambda h: [h[:1], h[1:]])
    with pytest.raises(ModelError, match=r"Model.PartitionEvent's partition 0 \(it must keep each call with "
                                         r"its return\) has calls without a return, ids \['0'\]"):
        CheckEvents(split, _events(ops))
    split = Model(Init=lambda: 0, Step=register_step, PartitionEvent=lambda h: [h[1:2], h[:1] + h[2:]])
    with pytest.raises(ModelError, match="event 1 in Model.PartitionEvent's partition 0: a return without "
                                         "a call for id 0"):
        CheckEvents(split, _events(ops))


def TestStepErrorsNameTheOperation():
    events = _events([put(0, 1, 0, 10)])
    err = _error(lambda: CheckEvents(Model(Init=lambda: 0, Step=lambda s, i, o: (True, s, 1)), events))
    assert str(err) == ("Model.Step must return a pair (ok, new_state), got (True, 0, 1) for the operation "
                        "called at event 0 (input ('put', 1), output None) in state 0")
    err = _error(lambda: CheckEvents(Model(Init=lambda: 0, Step=lambda s, i, o: (1, s)), events))
    assert str(err).startswith("Model.Step must return (ok, new_state) with ok a bool, got (1, 0) for the "
                               "operation called at event 0")
    err = _error(lambda: CheckEvents(Model(Init=lambda: 0, Step=lambda s, i, o: s[0]), events))
    assert str(err).startswith("Model.Step raised TypeError: 'int' object is not subscriptable for the "
                               "operation called at event 0 (input ('put', 1), output None) in state 0; "
                               "Step(state, input, output) must return (ok, new_state)")
    assert isinstance(err.__cause__, TypeError)


def TestGarbageCollectorRestored():
    import gc

    assert gc.isenabled()
    CheckOperations(REGISTER, [put(0, 1, 0, 10)])
    assert gc.isenabled()
    with pytest.raises(ModelError):
        CheckOperations(Model(Init=lambda: 0, Step=lambda s, i, o: {}["x"]), [put(0, 1, 0, 10)])
    assert gc.isenabled(), "an exception in Step must not leave the collector paused"
    gc.disable()
    try:
        CheckOperations(REGISTER, [put(0, 1, 0, 10)])
        assert not gc.isenabled(), "a collector the caller paused stays paused"
    finally:
        gc.enable()
