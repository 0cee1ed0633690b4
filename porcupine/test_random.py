"""Randomized histories: simulated linearizable KV stores (must be Ok), mutated ones (must be
Illegal), and a brute-force checker to cross-check verdicts on small histories.

Run: python -m pytest porcupine/test_random.py      (PORCUPINE_SEED=n replays one seed)
"""

from __future__ import annotations

import itertools
import os
import random

from porcupine import checker
from porcupine import (CallEvent, CheckEvents, CheckOperations, CheckOperationsTimeout,
                       CheckOperationsVerbose, Event, Illegal, Model, Ok, Operation, ReturnEvent)

SEEDS = [int(os.environ["PORCUPINE_SEED"])] if "PORCUPINE_SEED" in os.environ else list(range(40))
NEVER_WRITTEN = "never-written"


def _partition(ops):
    keys = sorted({op.Input[1] for op in ops})
    return [[op for op in ops if op.Input[1] == k] for k in keys]


def _step_one_key(state, inp, out):
    kind = inp[0]
    if kind == "get":
        return out == state, state
    if kind == "put":
        return True, inp[2]
    return True, state + inp[2]


def _step_whole_store(state, inp, out):
    # state: a sorted tuple of (key, value) pairs, so it is hashable.
    d = dict(state)
    kind, key = inp[0], inp[1]
    if kind == "get":
        return out == d.get(key, ""), state
    d[key] = inp[2] if kind == "put" else d.get(key, "") + inp[2]
    return True, tuple(sorted(d.items()))


KV_BY_KEY = Model(Partition=_partition, Init=lambda: "", Step=_step_one_key)
KV_WHOLE = Model(Init=tuple, Step=_step_whole_store)
KV_WHOLE_EQUAL = Model(Init=dict, Step=lambda s, i, o: _dict_step(s, i, o), Equal=lambda a, b: a == b)


def _dict_step(state, inp, out):
    kind, key = inp[0], inp[1]
    if kind == "get":
        return out == state.get(key, ""), state
    new = dict(state)
    new[key] = inp[2] if kind == "put" else new.get(key, "") + inp[2]
    return True, new


def simulate(rng: random.Random, n_clients: int, n_ops: int, n_keys: int):
    """A linearizable history: every operation takes effect at a random instant inside its
    [call, return] interval, on a real store; outputs are what that store returned."""
    pending = []
    clock = [0] * n_clients
    for i in range(n_ops):
        c = rng.randrange(n_clients)
        call = clock[c] + rng.randrange(0, 5)
        ret = call + rng.randrange(0, 12)
        clock[c] = ret + 1
        lp = rng.uniform(call, ret)
        key = f"k{rng.randrange(n_keys)}"
        kind = rng.choice(("get", "get", "put", "append"))
        inp = (kind, key) if kind == "get" else (kind, key, f"{c}.{i};")
        pending.append((lp, c, inp, call, ret))
    store = {}
    ops = []
    for lp, c, inp, call, ret in sorted(pending):
        kind, key = inp[0], inp[1]
        out = None
        if kind == "get":
            out = store.get(key, "")
        elif kind == "put":
            store[key] = inp[2]
        else:
            store[key] = store.get(key, "") + inp[2]
        ops.append(Operation(ClientId=c, Input=inp, Call=call, Output=out, Return=ret))
    rng.shuffle(ops)  # the checker must not rely on input order
    return ops


def corrupt(rng: random.Random, ops):
    """Make a get return a value nobody wrote: never linearizable. None if there is no get."""
    gets = [i for i, op in enumerate(ops) if op.Input[0] == "get"]
    if not gets:
        return None
    i = rng.choice(gets)
    bad = list(ops)
    o = bad[i]
    bad[i] = Operation(ClientId=o.ClientId, Input=o.Input, Call=o.Call, Output=NEVER_WRITTEN, Return=o.Return)
    return bad


def perturb(rng: random.Random, ops):
    """A plausible mistake: a get returns a value written elsewhere in the history, or a
    prefix/suffix of the truth; may or may not still be linearizable."""
    gets = [i for i, op in enumerate(ops) if op.Input[0] == "get"]
    if not gets:
        return list(ops)
    i = rng.choice(gets)
    o = ops[i]
    written = [op.Input[2] for op in ops if op.Input[0] != "get"] + [""]
    choice = rng.choice(written)
    if o.Output and rng.random() < 0.3:
        cut = rng.randrange(len(o.Output))
        choice = o.Output[:cut]
    bad = list(ops)
    bad[i] = Operation(ClientId=o.ClientId, Input=o.Input, Call=o.Call, Output=choice, Return=o.Return)
    return bad


def brute_force(model: Model, ops) -> bool:
    """Try every order consistent with real time (a precedes b when a returns before b calls)."""
    n = len(ops)
    for order in itertools.permutations(range(n)):
        position = {op_index: k for k, op_index in enumerate(order)}
        if any(ops[a].Return < ops[b].Call and position[a] > position[b]
               for a in range(n) for b in range(n)):
            continue
        state = model.Init()
        for k in order:
            ok, state = model.Step(state, ops[k].Input, ops[k].Output)
            if not ok:
                break
        else:
            return True
    return False


def to_events(ops):
    stamped = []
    for i, op in enumerate(ops):
        stamped.append((op.Call, 0, Event(ClientId=op.ClientId, Kind=CallEvent, Value=op.Input, Id=i)))
        stamped.append((op.Return, 1, Event(ClientId=op.ClientId, Kind=ReturnEvent, Value=op.Output, Id=i)))
    stamped.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in stamped]


def TestSimulatedHistoriesAreLinearizable():
    for seed in SEEDS:
        rng = random.Random(seed)
        ops = simulate(rng, n_clients=rng.randrange(1, 8), n_ops=rng.randrange(1, 120), n_keys=rng.randrange(1, 5))
        assert CheckOperations(KV_BY_KEY, ops), f"seed {seed}"
        assert CheckOperationsTimeout(KV_WHOLE, ops, 0) is Ok, f"seed {seed}"
        assert CheckEvents(KV_WHOLE, to_events(ops)), f"seed {seed}"
        res, info = CheckOperationsVerbose(KV_BY_KEY, ops, 0)
        assert res is Ok, f"seed {seed}"
        # Every partition's reported linearization is complete and valid.
        for part in info.PartialLinearizationsOperations():
            assert len(part) == 1
            state = ""
            for o in part[0]:
                ok, state = _step_one_key(state, o.Input, o.Output)
                assert ok, f"seed {seed}: reported linearization is invalid"


def TestCorruptedHistoriesAreIllegal():
    checked = 0
    for seed in SEEDS:
        rng = random.Random(1000 + seed)
        ops = simulate(rng, n_clients=rng.randrange(1, 8), n_ops=rng.randrange(2, 120), n_keys=rng.randrange(1, 5))
        bad = corrupt(rng, ops)
        if bad is None:
            continue
        checked += 1
        assert not CheckOperations(KV_BY_KEY, bad), f"seed {seed}"
        assert CheckOperationsTimeout(KV_WHOLE, bad, 0) is Illegal, f"seed {seed}"
        assert not CheckEvents(KV_WHOLE_EQUAL, to_events(bad)), f"seed {seed}"
        res, info = CheckOperationsVerbose(KV_BY_KEY, bad, 0)
        assert res is Illegal
    assert checked >= len(SEEDS) // 2


def TestAgreesWithBruteForce():
    """Small histories (<= 7 ops), correct and perturbed, against exhaustive search."""
    agree_with_brute_force(KV_BY_KEY, KV_WHOLE, KV_WHOLE_EQUAL)


def TestAgreesWithBruteForceEagerPruning(monkeypatch):
    """The same, with identical operations skipped and Step memoized from the start."""
    _eager(monkeypatch)
    agree_with_brute_force(KV_BY_KEY, KV_WHOLE, KV_WHOLE_EQUAL)


def random_histories(count: int, seed_base: int, clients: tuple, n_ops: tuple, keys: tuple,
                     perturbed: float):
    """(seed, history) pairs: simulated histories, a fraction of them perturbed. With
    PORCUPINE_SEED set, just that one seed."""
    for seed in range(count if len(SEEDS) > 1 else 1):
        s = seed if len(SEEDS) > 1 else SEEDS[0]
        rng = random.Random(seed_base + s)
        ops = simulate(rng, n_clients=rng.randrange(*clients), n_ops=rng.randrange(*n_ops),
                       n_keys=rng.randrange(*keys))
        if rng.random() < perturbed:
            ops = perturb(rng, ops)
        yield s, ops


def agree_with_brute_force(by_key: Model, whole: Model, whole_equal: Model) -> None:
    verdicts = {True: 0, False: 0}
    for s, ops in random_histories(300, 5000, (1, 5), (1, 8), (1, 3), 0.7):
        want = brute_force(KV_WHOLE, ops)
        verdicts[want] += 1
        assert CheckOperations(by_key, ops) == want, f"seed {s}: partitioned, want {want}"
        assert CheckOperations(whole, ops) == want, f"seed {s}: whole store, want {want}"
        assert CheckOperations(whole_equal, ops) == want, f"seed {s}: Equal-based, want {want}"
        assert CheckEvents(whole, to_events(ops)) == want, f"seed {s}: events, want {want}"
    if len(SEEDS) > 1:
        # The generator must exercise both verdicts, or the comparison proves little.
        assert verdicts[True] > 30 and verdicts[False] > 30, verdicts


def reference_partials(model: Model, ops):
    """The longest-prefix bookkeeping done the direct way (record the whole stack for every
    operation on it at each backtrack), over the same search, for one partition."""
    from porcupine.checker import _make_entries
    entries = _make_entries(ops)
    n = len(ops)
    # A plain doubly-linked list of dict nodes.
    nodes = [{"e": e, "next": None, "prev": None, "match": None} for e in entries]
    head = {"next": None, "prev": None, "match": None, "e": None}
    chain = [head] + nodes
    for a, b in zip(chain, chain[1:]):
        a["next"], b["prev"] = b, a
    ret_of = {nd["e"].id: nd for nd in nodes if nd["e"].is_return}
    for nd in nodes:
        if not nd["e"].is_return:
            nd["match"] = ret_of[nd["e"].id]
    longest = [None] * n
    cache = set()
    calls = []
    state, lin = model.Init(), 0
    entry = head["next"]
    while head["next"] is not None:
        if entry["match"] is not None:
            ok, new_state = model.Step(state, entry["e"].value, entry["match"]["e"].value)
            key = (lin | (1 << entry["e"].id), new_state)
            if ok and key not in cache:
                cache.add(key)
                calls.append((entry, state, lin))
                state, lin = new_state, key[0]
                for nd in (entry, entry["match"]):
                    nd["prev"]["next"] = nd["next"]
                    if nd["next"] is not None:
                        nd["next"]["prev"] = nd["prev"]
                entry = head["next"]
            else:
                entry = entry["next"]
        else:
            if not calls:
                break
            seq = tuple(c[0]["e"].id for c in calls)
            for i in seq:
                if longest[i] is None or len(seq) > len(longest[i]):
                    longest[i] = seq
            entry, state, lin = calls.pop()
            for nd in (entry["match"], entry):
                nd["prev"]["next"] = nd
                if nd["next"] is not None:
                    nd["next"]["prev"] = nd
            entry = entry["next"]
    else:
        full = tuple(c[0]["e"].id for c in calls)
        return {full}
    return {s for s in longest if s is not None}


def TestPartialLinearizationsMatchDirectBookkeeping():
    """The checker's O(1)-per-backtrack records give exactly the direct method's prefixes."""
    compared = 0
    for seed in range(200 if len(SEEDS) > 1 else 1):
        s = seed if len(SEEDS) > 1 else SEEDS[0]
        rng = random.Random(7000 + s)
        ops = simulate(rng, n_clients=rng.randrange(2, 7), n_ops=rng.randrange(2, 40), n_keys=1)
        ops = perturb(rng, ops) if rng.random() < 0.8 else ops
        res, info = CheckOperationsVerbose(KV_WHOLE, ops, 0)
        got = {tuple(p) for p in info.PartialLinearizations()[0]}
        want = reference_partials(KV_WHOLE, ops)
        assert got == want, f"seed {s}: {res}"
        compared += res is Illegal
    if len(SEEDS) > 1:
        assert compared > 40


# ---- Model.ReadOnly (Python-only pruning) must never change a verdict ---------------------------

def _read_only(inp, out):
    return inp[0] == "get"


KV_BY_KEY_RO = Model(Partition=_partition, Init=lambda: "", Step=_step_one_key, ReadOnly=_read_only)
KV_WHOLE_RO = Model(Init=tuple, Step=_step_whole_store, ReadOnly=_read_only)
KV_WHOLE_EQUAL_RO = Model(Init=dict, Step=lambda s, i, o: _dict_step(s, i, o), Equal=lambda a, b: a == b,
                          ReadOnly=_read_only)


def TestReadOnlyAgreesWithBruteForce():
    """The same small histories as TestAgreesWithBruteForce, checked with the ReadOnly hint."""
    agree_with_brute_force(KV_BY_KEY_RO, KV_WHOLE_RO, KV_WHOLE_EQUAL_RO)


def TestReadOnlyAgreesWithBruteForceEagerPruning(monkeypatch):
    """With the hint, and identical operations skipped and Step memoized from the start."""
    _eager(monkeypatch)
    agree_with_brute_force(KV_BY_KEY_RO, KV_WHOLE_RO, KV_WHOLE_EQUAL_RO)


def TestReadOnlyAgreesWithoutIt():
    """Bigger histories with many concurrent readers, correct and perturbed: the same verdict
    with and without the hint, and with it a valid complete linearization when Ok."""
    verdicts = {True: 0, False: 0}
    for s, ops in random_histories(150, 9000, (2, 12), (5, 60), (1, 3), 0.6):
        want = CheckOperations(KV_BY_KEY, ops)
        verdicts[want] += 1
        assert CheckOperations(KV_BY_KEY_RO, ops) == want, f"seed {s}: want {want}"
        assert CheckOperations(KV_WHOLE_RO, ops) == want, f"seed {s}: whole store, want {want}"
        res, info = CheckOperationsVerbose(KV_BY_KEY_RO, ops, 0)
        assert res is (Ok if want else Illegal), f"seed {s}"
        if want:
            for part in info.PartialLinearizationsOperations():
                state = ""
                for o in part[0]:
                    ok, state = _step_one_key(state, o.Input, o.Output)
                    assert ok, f"seed {s}: reported linearization is invalid"
        else:
            # Illegal: the view's prefixes are recomputed without the hint, so they are Go's.
            _, plain = CheckOperationsVerbose(KV_BY_KEY, ops, 0)
            assert sorted(map(sorted, info.PartialLinearizations())) == \
                sorted(map(sorted, plain.PartialLinearizations())), f"seed {s}"
    if len(SEEDS) > 1:
        assert verdicts[True] > 20 and verdicts[False] > 20, verdicts


# ---- identical operations (pruned by the checker) must never change a verdict ------------------

def _register_step(state, inp, out):
    """A register of small ints, like Jepsen's etcd: ("read",) -> value, ("write", v),
    ("cas", old, new) -> succeeded. inp[-1] may be a tag that the model ignores."""
    kind = inp[0]
    if kind == "read":
        return out == state, state
    if kind == "write":
        return True, inp[1]
    if out:
        return state == inp[1], inp[2]
    return state != inp[1], state


REGISTER = Model(Init=lambda: 0, Step=_register_step)
REGISTER_RO = Model(Init=lambda: 0, Step=_register_step,
                    ReadOnly=lambda inp, out: inp[0] == "read" or (inp[0] == "cas" and not out))


def simulate_register(rng: random.Random, n_clients: int, n_ops: int, n_values: int):
    """A linearizable register history over values 0..n_values-1, so many operations are
    identical (same input and output); perturbed half the time (may stay linearizable)."""
    clock = [0] * n_clients
    pending = []
    for _ in range(n_ops):
        c = rng.randrange(n_clients)
        call = clock[c] + rng.randrange(0, 4)
        ret = call + rng.randrange(0, 15)
        clock[c] = ret + 1
        kind = rng.choice(("read", "read", "write", "cas"))
        inp = (("read",) if kind == "read" else ("write", rng.randrange(n_values)) if kind == "write"
               else ("cas", rng.randrange(n_values), rng.randrange(n_values)))
        pending.append((rng.uniform(call, ret), c, inp, call, ret))
    state = 0
    ops = []
    for _, c, inp, call, ret in sorted(pending):
        out = None
        if inp[0] == "read":
            out = state
        elif inp[0] == "write":
            state = inp[1]
        else:
            out = state == inp[1]
            if out:
                state = inp[2]
        ops.append(Operation(ClientId=c, Input=inp, Call=call, Output=out, Return=ret))
    if ops and rng.random() < 0.5:
        i = rng.randrange(len(ops))
        o = ops[i]
        out = (rng.randrange(n_values) if o.Input[0] == "read" else
               (not o.Output) if o.Input[0] == "cas" else None)
        ops[i] = Operation(ClientId=o.ClientId, Input=o.Input, Call=o.Call, Output=out, Return=o.Return)
    rng.shuffle(ops)
    return ops


def _tagged(ops):
    """The same history with every input made unique: no two operations are identical."""
    return [Operation(ClientId=o.ClientId, Input=o.Input + (i,), Call=o.Call, Output=o.Output,
                      Return=o.Return) for i, o in enumerate(ops)]


def _eager(monkeypatch) -> None:
    """Identical operations and the Step memo from a search's start (by default they wait
    for a slice or two, so these small histories would never meet them)."""
    monkeypatch.setattr(checker, "TWINS_FROM_SLICE", 0)
    monkeypatch.setattr(checker, "MEMO_FROM_SLICE", 0)


def TestIdenticalOperationsAgreeWithBruteForce(monkeypatch):
    _eager(monkeypatch)
    verdicts = {True: 0, False: 0}
    for seed in range(300 if len(SEEDS) > 1 else 1):
        s = seed if len(SEEDS) > 1 else SEEDS[0]
        rng = random.Random(13000 + s)
        ops = simulate_register(rng, rng.randrange(1, 6), rng.randrange(1, 8), rng.randrange(1, 4))
        want = brute_force(REGISTER, ops)
        verdicts[want] += 1
        assert CheckOperations(REGISTER, ops) == want, f"seed {s}: want {want}"
        assert CheckEvents(REGISTER, to_events(ops)) == want, f"seed {s}: events, want {want}"
    if len(SEEDS) > 1:
        assert verdicts[True] > 30 and verdicts[False] > 30, verdicts


def TestIdenticalOperationsAgreeWithoutThem(monkeypatch):
    """Bigger register histories with many identical operations: the same verdict as the same
    history with every operation made distinct, and a valid linearization when Ok."""
    _eager(monkeypatch)
    verdicts = {True: 0, False: 0}
    for seed in range(200 if len(SEEDS) > 1 else 1):
        s = seed if len(SEEDS) > 1 else SEEDS[0]
        rng = random.Random(17000 + s)
        ops = simulate_register(rng, rng.randrange(2, 10), rng.randrange(5, 40), rng.randrange(1, 4))
        want = CheckOperations(REGISTER, _tagged(ops))
        verdicts[want] += 1
        res, info = CheckOperationsVerbose(REGISTER, ops, 0)
        assert res is (Ok if want else Illegal), f"seed {s}: want {want}"
        assert CheckOperations(REGISTER_RO, ops) == want, f"seed {s}: with ReadOnly, want {want}"
        if want:
            state = 0
            for o in info.PartialLinearizationsOperations()[0][0]:
                ok, state = _register_step(state, o.Input, o.Output)
                assert ok, f"seed {s}: reported linearization is invalid"
            assert len(info.PartialLinearizations()[0][0]) == len(ops)
    if len(SEEDS) > 1:
        assert verdicts[True] > 20 and verdicts[False] > 20, verdicts
