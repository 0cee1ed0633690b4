"""The KubeKV clerk: how an application talks to the replicated KV service (Go: kvraft1/client.go).

Usage:
    ck = MakeClerk(clnt, servers)             # clnt: a tester.Clnt; servers: server names
    value, version, err = ck.Get("k")         # err is OK or ErrNoKey
    err = ck.Put("k", "v", version)           # OK, ErrVersion, ErrNoKey or ErrMaybe

The clerk remembers which server last answered as leader and starts there. An ErrWrongLeader
or ErrMaybe answer, or a second lost RPC in a row, sends it on to the next server; after a whole
round without an answer it pauses briefly (an election is probably under way). Get retries until
it has an answer. A Put ends ErrMaybe when it gets ErrVersion after an earlier copy may have run:
one whose RPC was lost, or that a server proposed and then lost leadership over (the server's
ErrMaybe). Copies turned away by followers (ErrWrongLeader) never ran, so they leave ErrVersion
trustworthy.
"""

from __future__ import annotations

import time
from typing import Any

from kvraft1 import rpc

# Pause after trying every server without an answer: lets an election finish instead of
# spinning through ErrWrongLeader replies.
ROUND_BACKOFF_S = 0.020
# A lost RPC is most often the unreliable network, not a dead leader: ask the same server
# this many times more before moving on.
RETRIES_SAME_SERVER = 1


class Clerk:
    """A client of the KV service (implements tester.kvtest's IKVClerk)."""

    def __init__(self, clnt: Any, servers: list[str]) -> None:
        self.clnt = clnt
        self.servers = list(servers)
        self.leader = 0
        self.lost_here = 0   # lost RPCs to self.leader since it last answered

    def Leader(self) -> int:
        """The server this clerk will try first (Go 2026 exports this)."""
        return self.leader

    def Get(self, key: str) -> tuple[str, rpc.Tversion, rpc.Err]:
        args = rpc.GetArgs(Key=key)
        attempts = 0
        while True:
            reply = rpc.GetReply()
            if self._try("KVServer.Get", args, reply):
                return reply.Value, reply.Version, reply.Err
            attempts += 1
            self._pause_after_round(attempts)

    def Put(self, key: str, value: str, version: rpc.Tversion) -> rpc.Err:
        args = rpc.PutArgs(Key=key, Value=value, Version=version)
        attempts = 0
        maybe_ran = False   # some earlier copy may have been executed
        while True:
            reply = rpc.PutReply()
            answered = self._try("KVServer.Put", args, reply)
            if answered:
                if reply.Err == rpc.ErrVersion and maybe_ran:
                    return rpc.ErrMaybe
                return reply.Err
            if reply.Err != rpc.ErrWrongLeader:
                maybe_ran = True   # RPC lost (request or reply), or the server's ErrMaybe
            attempts += 1
            self._pause_after_round(attempts)

    def _try(self, method: str, args: Any, reply: Any) -> bool:
        """One RPC to the current leader guess; True with an answer, else move on to the next server."""
        i = self.leader
        ok = self.clnt.Call(self.servers[i], method, args, reply)
        if not ok:
            reply.Err = ""   # a lost RPC leaves no answer, whatever the reply object held
        if ok and reply.Err not in (rpc.ErrWrongLeader, rpc.ErrMaybe):
            self.lost_here = 0
            return True
        if not ok and self.lost_here < RETRIES_SAME_SERVER:
            self.lost_here += 1
            return False
        self.lost_here = 0
        self.leader = (i + 1) % len(self.servers)
        return False

    def _pause_after_round(self, attempts: int) -> None:
        if attempts % len(self.servers) == 0:
            time.sleep(ROUND_BACKOFF_S)


def MakeClerk(clnt: Any, servers: list[str]) -> Clerk:
    return Clerk(clnt, servers)
