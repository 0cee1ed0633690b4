"""The KubeKV server: a versioned key/value store replicated with rsm (Go: kvraft1/server.go).

Usage (what the tester's start-server callback does):
    kv, rf = StartKVServer(servers, gid, me, persister, maxraftstate)
    # two labrpc services on one server: "KVServer.Get"/"KVServer.Put" and "Raft.*"

Semantics of Put(key, value, version), decided when the request commits:
  * key present and version matches: store value, version + 1 -> OK
  * key present, version differs                               -> ErrVersion
  * key missing and version == 0: create it with version 1     -> OK
  * key missing and version != 0                               -> ErrNoKey
Get(key) returns (value, version, OK) or ErrNoKey. Both go through the Raft log (rsm.Submit), so
a server that is not leader answers ErrWrongLeader, and so does a leader that cannot commit the
request within COMMIT_WAIT_S (when the rsm's Submit takes a timeout; Go's Submit(req) does not,
and with such an rsm, a student's, the server waits as Go's does).

A Put that reached Raft's Start and then lost its leader (or timed out) answers ErrMaybe
instead: it sits in some log and may still commit. The distinction lets the Clerk resend a Put
that only met followers and still trust an ErrVersion answer; otherwise nearly every first Put
of a fresh Clerk would come back ErrMaybe, and porcupine's search grows 2^n in such uncertain
Puts.
"""

from __future__ import annotations

import inspect
import io
import threading
from typing import Any

import labgob
from kvraft1 import rpc
from rsm.rsm import MakeRSM, Op, StateMachine
from tester import dlog

# How long a request waits for its op to commit before the server answers ErrWrongLeader
# (a Put: ErrMaybe) and the Clerk tries the next server. A leader cut off in a minority keeps
# accepting requests it cannot commit; without a bound its clients would wait for the
# partition to heal. A majority elects a new leader 250-450 ms after losing the old one, so by
# then there is usually one to find. Measured on TestPersistPartition4B (clients stuck at such a
# leader in 13 of 36 iterations, 1.1-3.2 s each): unbounded, 12.4-18.2 s a run; with this
# bound, 12.3-13.7 s (Go 12.3-13.6 s).
COMMIT_WAIT_S = 0.5


class KVServer(StateMachine):
    """One replica of the KV store; its state is `data`: key -> [value, version]."""

    def __init__(self, me: int) -> None:
        self.me = me
        self.mu = threading.Lock()
        self.data: dict[str, list] = {}
        self.dead = False
        self.rsm: Any = None
        # {"timeout": COMMIT_WAIT_S} when the rsm's Submit takes one (ours); {} for Go's
        # Submit(req), e.g. a student's rsm, which then waits as long as Go's does.
        self.submit_kwargs: dict[str, float] = {}

    # -- StateMachine: run by the rsm reader thread, in log order ----------------------------

    def DoOp(self, req: Any) -> Any:
        with self.mu:
            if isinstance(req, rpc.GetArgs):
                entry = self.data.get(req.Key)
                if entry is None:
                    return rpc.GetReply(Err=rpc.ErrNoKey)
                return rpc.GetReply(Value=entry[0], Version=entry[1], Err=rpc.OK)
            if isinstance(req, rpc.PutArgs):
                err = self._put(req)
                dlog.DPrintf(dlog.KV, self.me, "Put %r version %d: %s", req.Key, req.Version, err)
                return rpc.PutReply(Err=err)
        raise TypeError(f"KVServer.DoOp: expected rpc.GetArgs or rpc.PutArgs, got {type(req).__name__}")

    def _put(self, args: rpc.PutArgs) -> rpc.Err:
        entry = self.data.get(args.Key)
        if entry is None:
            if args.Version != 0:
                return rpc.ErrNoKey
            self.data[args.Key] = [args.Value, 1]
            return rpc.OK
        if entry[1] != args.Version:
            return rpc.ErrVersion
        self.data[args.Key] = [args.Value, args.Version + 1]
        return rpc.OK

    def Snapshot(self) -> bytes:
        # One map, keys to [value, version] pairs: a one-key store snapshots in a few dozen bytes.
        with self.mu:
            w = io.BytesIO()
            labgob.NewEncoder(w).Encode(self.data)
            return w.getvalue()

    def Restore(self, data: bytes) -> None:
        decoded = labgob.NewDecoder(io.BytesIO(data)).Decode()
        if not isinstance(decoded, dict):
            raise labgob.LabgobError(f"KVServer {self.me}: snapshot holds a {type(decoded).__name__}, not a dict")
        with self.mu:
            self.data = {k: [v[0], v[1]] for k, v in decoded.items()}

    # -- RPC handlers -------------------------------------------------------------------------

    def Get(self, args: rpc.GetArgs, reply: rpc.GetReply) -> None:
        err, rep = self.rsm.Submit(args, **self.submit_kwargs)
        if err != rpc.OK:
            reply.Err = err
            return
        reply.Value, reply.Version, reply.Err = rep.Value, rep.Version, rep.Err

    def Put(self, args: rpc.PutArgs, reply: rpc.PutReply) -> None:
        if not self.rsm.Raft().GetState()[1]:
            reply.Err = rpc.ErrWrongLeader   # never proposed: a resend cannot run it twice
            return
        err, rep = self.rsm.Submit(args, **self.submit_kwargs)
        if err == rpc.ErrWrongLeader:
            # Start may have put it in the log before leadership was lost (or Start itself
            # refused after GetState said leader: then ErrMaybe is merely cautious).
            reply.Err = rpc.ErrMaybe
            return
        reply.Err = rep.Err

    def Kill(self) -> None:
        """Called by the tester when this instance is shut down; its Raft is killed separately.

        Go's rsm has no Kill: pending Submits end when the killed Raft closes applyCh.
        """
        self.dead = True

    def killed(self) -> bool:
        return self.dead


def _takes_timeout(submit: Any) -> bool:
    try:
        return "timeout" in inspect.signature(submit).parameters
    except (TypeError, ValueError):  # no signature to read: call it the Go way
        return False


def StartKVServer(servers: list, gid: int, me: int, persister: Any, maxraftstate: int) -> list:
    """Start one KV replica; returns [kv, raft] for the tester to register as labrpc services."""
    # As Go's StartKVServer; rpc.py registers the replies itself.
    labgob.Register(Op)
    labgob.Register(rpc.PutArgs)
    labgob.Register(rpc.GetArgs)
    kv = KVServer(me)
    kv.rsm = MakeRSM(servers, me, persister, maxraftstate, kv)
    kv.submit_kwargs = {"timeout": COMMIT_WAIT_S} if _takes_timeout(kv.rsm.Submit) else {}
    return [kv, kv.rsm.Raft()]
