"""The Clerk's retry rules, against scripted servers (no Raft): when a Put that ends in
ErrVersion must be reported as ErrMaybe, and when ErrVersion can be trusted.

Run: python -m pytest tests/reference/test_kv_clerk.py
"""

from __future__ import annotations

from kvraft1 import rpc
from kvraft1.client import MakeClerk


class ScriptedClnt:
    """Answers each Call with the next scripted outcome: an Err string, or None for a lost RPC."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    def Call(self, server: str, method: str, args, reply) -> bool:
        self.calls.append(server)
        outcome = self.outcomes.pop(0)
        if outcome is None:
            return False
        reply.Err = outcome
        return True


def put_with(outcomes: list) -> tuple[str, ScriptedClnt]:
    clnt = ScriptedClnt(outcomes)
    ck = MakeClerk(clnt, ["s0", "s1", "s2"])
    return ck.Put("k", "v", 3), clnt


def TestFollowerRefusalsLeaveErrVersionTrusted():
    err, clnt = put_with([rpc.ErrWrongLeader, rpc.ErrWrongLeader, rpc.ErrVersion])
    assert err == rpc.ErrVersion
    assert clnt.calls == ["s0", "s1", "s2"]


def TestLostRpcMakesErrVersionMaybe():
    err, _ = put_with([None, rpc.ErrVersion])
    assert err == rpc.ErrMaybe


def TestProposedThenDeposedMakesErrVersionMaybe():
    # s0 proposed the Put and lost leadership (server's ErrMaybe); s1 then refuses by version.
    err, clnt = put_with([rpc.ErrMaybe, rpc.ErrVersion])
    assert err == rpc.ErrMaybe
    assert clnt.calls == ["s0", "s1"]


def TestFirstAnswerIsReturnedAsIs():
    for answer in (rpc.OK, rpc.ErrVersion, rpc.ErrNoKey):
        err, _ = put_with([answer])
        assert err == answer


def TestOkAfterResendIsOk():
    err, _ = put_with([None, None, rpc.ErrMaybe, rpc.OK])
    assert err == rpc.OK
