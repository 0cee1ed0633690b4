"""Reader for porcupine's reference KV histories (Jepsen-style c01-ok.txt ... c50-bad.txt).

Usage:
    from porcupine.tools.kvlog import parse_kv_log, KV_MODEL, KV_NO_PARTITION_MODEL
    events = parse_kv_log("/path/to/test_data/kv/c10-ok.txt")
    CheckEvents(KV_MODEL, events)                  # partitioned by key
    CheckEvents(KV_NO_PARTITION_MODEL, events)     # one partition, dict state

The files are not part of this repository (they belong to Go porcupine); point
PORCUPINE_TEST_DATA at a directory holding them (either the files themselves or
a porcupine checkout's test_data/kv). The two models mirror the ones in Go
porcupine's tests: get/put/append on string values.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import List, NamedTuple, Optional

from ..model import CallEvent, Event, Model, ReturnEvent

REFERENCE_HISTORIES = {  # name -> linearizable?, as in Go porcupine's tests
    "c01-ok": True, "c01-bad": False,
    "c10-ok": True, "c10-bad": False,
    "c50-ok": True, "c50-bad": False,
}

GET, PUT, APPEND = 0, 1, 2


class KvInput(NamedTuple):
    op: int
    key: str
    value: str


class KvOutput(NamedTuple):
    value: str


_INVOKE = re.compile(r'\{:process (\d+), :type :invoke, :f :(get|put|append), :key "(.*)", :value (nil|"(.*)")\}')
_OK = re.compile(r'\{:process (\d+), :type :ok, :f :(get|put|append), :key ".*", :value "(.*)"\}')
_OPS = {"get": GET, "put": PUT, "append": APPEND}


def parse_kv_log(path: str) -> List[Event]:
    """Events of one reference history; an operation still open at the end gets an empty return."""
    events: List[Event] = []
    open_ids = {}
    next_id = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = _INVOKE.search(line)
            if m:
                proc = int(m.group(1))
                op = _OPS[m.group(2)]
                value = m.group(5) if op != GET and m.group(5) is not None else ""
                events.append(Event(ClientId=proc, Kind=CallEvent,
                                    Value=KvInput(op, m.group(3), value), Id=next_id))
                open_ids[proc] = next_id
                next_id += 1
                continue
            m = _OK.search(line)
            if m:
                proc = int(m.group(1))
                out = m.group(3) if m.group(2) == "get" else ""
                events.append(Event(ClientId=proc, Kind=ReturnEvent, Value=KvOutput(out),
                                    Id=open_ids.pop(proc)))
    for proc, open_id in open_ids.items():
        events.append(Event(ClientId=proc, Kind=ReturnEvent, Value=KvOutput(""), Id=open_id))
    return events


def _partition(history):
    by_key = {}
    for op in history:
        by_key.setdefault(op.Input.key, []).append(op)
    return [by_key[k] for k in sorted(by_key)]


def _partition_event(history):
    by_key = {}
    key_of = {}
    for ev in history:
        if ev.Kind is CallEvent:
            key = ev.Value.key
            key_of[ev.Id] = key
        else:
            key = key_of[ev.Id]
        by_key.setdefault(key, []).append(ev)
    return list(by_key.values())


def _step(state, inp, out):
    op = inp.op
    if op == GET:
        return out.value == state, state
    if op == PUT:
        return True, inp.value
    return True, state + inp.value


def _describe(inp, out):
    if inp.op == GET:
        return f"get('{inp.key}') -> '{out.value}'"
    if inp.op == PUT:
        return f"put('{inp.key}', '{inp.value}')"
    if inp.op == APPEND:
        return f"append('{inp.key}', '{inp.value}')"
    return "<invalid>"


# One key's value per partition; the state is a str, so the checker's set cache applies.
KV_MODEL = Model(Partition=_partition, PartitionEvent=_partition_event, Init=lambda: "",
                 Step=_step, DescribeOperation=_describe)


def _np_step(state, inp, out):
    op = inp.op
    if op == GET:
        return out.value == state.get(inp.key, ""), state
    new = dict(state)
    new[inp.key] = inp.value if op == PUT else new.get(inp.key, "") + inp.value
    return True, new


def _np_hash(state):
    # Independent of the order of the items, like Go's XOR of per-pair hashes (and faster
    # than that loop in Python).
    return hash(frozenset(state.items()))


# The whole store as one dict (unhashable), compared with Equal and hashed with Hash,
# like Go's kvNoPartitionModel: deliberately the slow way, for testing and benchmarks.
KV_NO_PARTITION_MODEL = Model(Init=dict, Step=_np_step, Equal=lambda a, b: a == b,
                              Hash=_np_hash, DescribeOperation=_describe)

# The same two with the Python-only ReadOnly hint (gets change nothing): same verdicts, expected
# faster; the reference tests run both.
KV_MODEL_RO = dataclasses.replace(KV_MODEL, ReadOnly=lambda inp, out: inp.op == GET)
KV_NO_PARTITION_MODEL_RO = dataclasses.replace(KV_NO_PARTITION_MODEL, ReadOnly=lambda inp, out: inp.op == GET)


def reference_dir() -> Optional[str]:
    """Directory with c01-ok.txt etc. from $PORCUPINE_TEST_DATA, or None."""
    root = os.environ.get("PORCUPINE_TEST_DATA")
    if not root:
        return None
    for cand in (root, os.path.join(root, "kv"), os.path.join(root, "test_data", "kv")):
        if os.path.isfile(os.path.join(cand, "c01-ok.txt")):
            return cand
    return None
