"""Reader for porcupine's Jepsen etcd histories (test_data/jepsen/etcd_000.log ... etcd_102.log).

Usage:
    from porcupine.tools.jepsen import parse_etcd_log, ETCD_MODEL, ETCD_VERDICTS
    CheckEvents(ETCD_MODEL, parse_etcd_log("/path/to/test_data/jepsen/etcd_002.log"))

A register with read, write and compare-and-set, as recorded by Jepsen against etcd.
A read that timed out and any operation still open at the end of the log get an
"unknown" output that the model accepts either way. The logs are not part of this
repository; see tools/kvlog.py for how to point the tests at them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import List, NamedTuple, Optional

from ..model import CallEvent, Event, Model, ReturnEvent

# Go porcupine's verdicts (porcupine_test.go); log 95 does not exist (etcd failed to start).
_LINEARIZABLE = {2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102}
ETCD_VERDICTS = {n: n in _LINEARIZABLE for n in range(103) if n != 95}

READ, WRITE, CAS = 0, 1, 2
NIL = None


class EtcdInput(NamedTuple):
    op: int
    arg1: int = 0   # the written value, or CAS's expected value
    arg2: int = 0   # CAS's new value


class EtcdOutput(NamedTuple):
    ok: bool = False        # CAS succeeded
    exists: bool = False    # a read found a value
    value: int = 0          # what a read found
    unknown: bool = False   # the outcome is not known (timeout)


_PREFIX = r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+"
_INVOKE_READ = re.compile(_PREFIX + r":invoke\s+:read\s+nil$")
_INVOKE_WRITE = re.compile(_PREFIX + r":invoke\s+:write\s+(\d+)$")
_INVOKE_CAS = re.compile(_PREFIX + r":invoke\s+:cas\s+\[(\d+)\s+(\d+)\]$")
_OK_READ = re.compile(_PREFIX + r":ok\s+:read\s+(nil|\d+)$")
_OK_WRITE = re.compile(_PREFIX + r":ok\s+:write\s+(\d+)$")
_DONE_CAS = re.compile(_PREFIX + r":(ok|fail)\s+:cas\s+\[(\d+)\s+(\d+)\]$")
_TIMEOUT_READ = re.compile(_PREFIX + r":fail\s+:read\s+:timed-out$")


def parse_etcd_log(path: str) -> List[Event]:
    """Events of one Jepsen etcd log."""
    events: List[Event] = []
    open_ids = {}
    next_id = 0

    def call(proc: int, inp: EtcdInput) -> None:
        nonlocal next_id
        events.append(Event(ClientId=proc, Kind=CallEvent, Value=inp, Id=next_id))
        open_ids[proc] = next_id
        next_id += 1

    def ret(proc: int, out: EtcdOutput) -> None:
        events.append(Event(ClientId=proc, Kind=ReturnEvent, Value=out, Id=open_ids.pop(proc)))

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if m := _INVOKE_READ.match(line):
                call(int(m[1]), EtcdInput(READ))
            elif m := _INVOKE_WRITE.match(line):
                call(int(m[1]), EtcdInput(WRITE, int(m[2])))
            elif m := _INVOKE_CAS.match(line):
                call(int(m[1]), EtcdInput(CAS, int(m[2]), int(m[3])))
            elif m := _OK_READ.match(line):
                found = m[2] != "nil"
                ret(int(m[1]), EtcdOutput(exists=found, value=int(m[2]) if found else 0))
            elif m := _OK_WRITE.match(line):
                ret(int(m[1]), EtcdOutput())
            elif m := _DONE_CAS.match(line):
                ret(int(m[1]), EtcdOutput(ok=m[2] == "ok"))
            elif m := _TIMEOUT_READ.match(line):
                ret(int(m[1]), EtcdOutput(unknown=True))
    for proc in list(open_ids):
        ret(proc, EtcdOutput(unknown=True))
    return events


def _step(state, inp, out):
    if inp.op == READ:
        seen = (not out.exists and state is NIL) or (out.exists and state == out.value)
        return seen or out.unknown, state
    if inp.op == WRITE:
        return True, inp.arg1
    matches = state == inp.arg1
    return (matches == out.ok) or out.unknown, inp.arg2 if matches else state


def _describe(inp, out):
    if inp.op == READ:
        return f"read() -> {out.value if out.exists else 'null'}"
    if inp.op == WRITE:
        return f"write({inp.arg1})"
    result = "unknown" if out.unknown else "ok" if out.ok else "fail"
    return f"cas({inp.arg1}, {inp.arg2}) -> {result}"


# The register holds None until the first write.
ETCD_MODEL = Model(Init=lambda: NIL, Step=_step, DescribeOperation=_describe)


def _read_only(inp, out):
    # A read, or a CAS known to have failed; a timed-out CAS may have written.
    return inp.op == READ or (inp.op == CAS and not out.ok and not out.unknown)


# With the Python-only ReadOnly hint: same verdicts (the reference tests run both).
ETCD_MODEL_RO = dataclasses.replace(ETCD_MODEL, ReadOnly=_read_only)


def jepsen_dir() -> Optional[str]:
    """Folder with etcd_000.log etc., found from $PORCUPINE_TEST_DATA, or None."""
    root = os.environ.get("PORCUPINE_TEST_DATA")
    if not root:
        return None
    for cand in (root, os.path.join(root, "jepsen"), os.path.join(root, "..", "jepsen"),
                 os.path.join(root, "test_data", "jepsen")):
        if os.path.isfile(os.path.join(cand, "etcd_000.log")):
            return os.path.normpath(cand)
    return None
