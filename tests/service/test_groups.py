"""kubekv.groups: concurrent Submits share log entries, and each caller gets its own answer.

Usage:
    python -m pytest tests/service/test_groups.py -q
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import labgob
from kubekv.etcd.mvcc import MVCCStore
from kubekv.groups import Batch, SubmitGroups
from kubekv.server import ServiceState
from kvraft1 import rpc
from kvraft1.server import KVServer

WAIT_S = 10.0   # generous bounds on waits that end at once when the code is right


class FakeRSM:
    """rsm.Submit's shape: runs reqs through `apply`, holding each Submit until `gate` opens."""

    def __init__(self, err: rpc.Err = rpc.OK, exc: BaseException | None = None) -> None:
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)     # released as each Submit starts
        self.entries: list[Any] = []
        self.err = err
        self.exc = exc
        self._mu = threading.Lock()

    def Raft(self) -> str:
        return "the raft"

    def Submit(self, req: Any, timeout: float | None = None) -> tuple[rpc.Err, Any]:
        with self._mu:
            self.entries.append(req)
        self.entered.release()
        assert self.gate.wait(WAIT_S)
        if self.exc is not None:
            raise self.exc
        if self.err != rpc.OK:
            return self.err, None
        if isinstance(req, Batch):
            return rpc.OK, [f"done {r}" for r in req.Reqs]
        return rpc.OK, f"done {req}"


def _submit_all(groups: SubmitGroups, reqs: list, timeout: float | None = None) -> tuple[dict, list]:
    """Start one thread per request; their answers by request, and the threads."""
    answers: dict = {}
    threads = [threading.Thread(target=lambda r=r: answers.__setitem__(r, _call(groups, r, timeout)))
               for r in reqs]
    for th in threads:
        th.start()
    return answers, threads


def _call(groups: SubmitGroups, req: Any, timeout: float | None) -> Any:
    try:
        return groups.Submit(req, timeout=timeout)
    except BaseException as exc:  # noqa: BLE001 - the test looks at what each caller saw
        return exc


def _wait_queued(groups: SubmitGroups, n: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while sum(len(g.reqs) for g in groups._queue) < n:
        assert time.monotonic() < deadline, "requests never queued"
        time.sleep(0.001)


def TestALoneRequestGoesIntoTheLogAsItself():
    rsm = FakeRSM()
    rsm.gate.set()
    groups = SubmitGroups(rsm)
    assert groups.Submit("a", timeout=1.0) == (rpc.OK, "done a")
    assert rsm.entries == ["a"] and groups.stats() == {"entries": 1, "requests": 1}
    assert groups.Raft() == "the raft"


def TestRequestsThatWaitShareOneEntryAndGetTheirOwnResults():
    rsm = FakeRSM()
    groups = SubmitGroups(rsm, in_flight=1)
    first, t1 = _submit_all(groups, ["first"])
    assert rsm.entered.acquire(timeout=WAIT_S)          # "first" holds the only slot
    answers, threads = _submit_all(groups, [f"r{i}" for i in range(10)])
    _wait_queued(groups, 10)
    rsm.gate.set()
    for th in t1 + threads:
        th.join(WAIT_S)
    assert first == {"first": (rpc.OK, "done first")}
    assert answers == {f"r{i}": (rpc.OK, f"done r{i}") for i in range(10)}
    assert len(rsm.entries) == 2 and isinstance(rsm.entries[1], Batch)
    assert sorted(rsm.entries[1].Reqs) == sorted(answers)
    assert groups.stats() == {"entries": 2, "requests": 11}


def TestAGroupHoldsAtMostMaxGroupRequests():
    rsm = FakeRSM()
    groups = SubmitGroups(rsm, in_flight=1, max_group=4)
    _, t1 = _submit_all(groups, ["first"])
    assert rsm.entered.acquire(timeout=WAIT_S)
    answers, threads = _submit_all(groups, [f"r{i}" for i in range(10)])
    _wait_queued(groups, 10)
    assert [len(g.reqs) for g in groups._queue] == [4, 4, 2]
    rsm.gate.set()
    for th in t1 + threads:
        th.join(WAIT_S)
    assert answers == {f"r{i}": (rpc.OK, f"done r{i}") for i in range(10)}
    assert [len(e.Reqs) if isinstance(e, Batch) else 1 for e in rsm.entries] == [1, 4, 4, 2]


@pytest.mark.parametrize("err", [rpc.ErrWrongLeader, rpc.ErrMaybe])
def TestAGroupThatFailsFailsEveryMember(err):
    rsm = FakeRSM(err=err)
    groups = SubmitGroups(rsm, in_flight=1)
    _, t1 = _submit_all(groups, ["first"])
    assert rsm.entered.acquire(timeout=WAIT_S)
    answers, threads = _submit_all(groups, ["a", "b", "c"])
    _wait_queued(groups, 3)
    rsm.gate.set()
    for th in t1 + threads:
        th.join(WAIT_S)
    assert answers == {r: (err, None) for r in "abc"}


def TestAnExceptionReachesEveryMember():
    rsm = FakeRSM(exc=labgob.LabgobError("class not registered"))
    groups = SubmitGroups(rsm, in_flight=1)
    first, t1 = _submit_all(groups, ["first"])
    assert rsm.entered.acquire(timeout=WAIT_S)
    answers, threads = _submit_all(groups, ["a", "b"])
    _wait_queued(groups, 2)
    rsm.gate.set()
    for th in t1 + threads:
        th.join(WAIT_S)
    assert all(isinstance(v, labgob.LabgobError) for v in [*first.values(), *answers.values()])
    assert groups._in_flight == 0 and not groups._queue     # the slot came back


def TestAWaitForASlotOutlastsTheTimeoutAndStillSubmits():
    # Failing unproposed would look like "may have committed" to the etcd API, which then waits
    # seconds for a result that never comes.
    rsm = FakeRSM()
    groups = SubmitGroups(rsm, in_flight=1)
    _, t1 = _submit_all(groups, ["first"])
    assert rsm.entered.acquire(timeout=WAIT_S)
    answers, threads = _submit_all(groups, ["a", "b"], timeout=0.05)
    _wait_queued(groups, 2)
    time.sleep(0.1)                          # past their timeout, still waiting for the slot
    assert not answers
    rsm.gate.set()
    for th in t1 + threads:
        th.join(WAIT_S)
    assert answers == {"a": (rpc.OK, "done a"), "b": (rpc.OK, "done b")}
    assert len(rsm.entries) == 2 and groups._in_flight == 0


def TestTheStateMachineRunsABatchInOrder():
    state = ServiceState(KVServer(0), MVCCStore())
    put = state.DoOp(Batch(Reqs=[rpc.PutArgs(Key="k", Value="1", Version=0),
                                 rpc.PutArgs(Key="k", Value="2", Version=1),
                                 rpc.PutArgs(Key="k", Value="3", Version=1),
                                 rpc.GetArgs(Key="k")]))
    assert [r.Err for r in put] == [rpc.OK, rpc.OK, rpc.ErrVersion, rpc.OK]
    assert (put[3].Value, put[3].Version) == ("2", 2)
    with pytest.raises(TypeError, match="list of requests"):
        state.DoOp(Batch(Reqs="not a list"))


def TestABatchSurvivesTheLogEncoding():
    reqs = [rpc.PutArgs(Key="k", Value="v", Version=0), rpc.GetArgs(Key="k")]
    back = labgob.loads(labgob.dumps(Batch(Reqs=reqs)))
    assert isinstance(back, Batch) and back.Reqs == reqs
