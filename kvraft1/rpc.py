"""RPC types of the versioned key/value service (Go: kvsrv1/rpc).

Usage:
    from kvraft1 import rpc
    args = rpc.PutArgs(Key="k", Value="v", Version=0)
    reply = rpc.PutReply()
    ok = clnt.Call(server, "KVServer.Put", args, reply)   # reply.Err is then rpc.OK, rpc.ErrVersion, ...

Err values are plain strings, as Go's `type Err string`; Tversion is an int.

This module stands for Go's kvsrv1/rpc and registers its own classes with labgob: Go's gob
needs registration only for values sent as interfaces, so a Go StartKVServer registers Op,
PutArgs and GetArgs but never the replies, which labgob here must know too. A solution may add
fields to these structs (a client id, a sequence number), as Go solutions do.
"""

from __future__ import annotations

from dataclasses import dataclass

import labgob

Err = str
Tversion = int

OK: Err = "OK"
ErrNoKey: Err = "ErrNoKey"
ErrVersion: Err = "ErrVersion"
# From the Clerk: a resent Put got ErrVersion, so it may or may not have run. From a KVServer to
# the Clerk: the Put was proposed but its leader lost office; it may still commit elsewhere.
ErrMaybe: Err = "ErrMaybe"
ErrWrongLeader: Err = "ErrWrongLeader"
ErrWrongGroup: Err = "ErrWrongGroup"


@dataclass
class PutArgs:
    Key: str = ""
    Value: str = ""
    Version: Tversion = 0


@dataclass
class PutReply:
    Err: Err = ""


@dataclass
class GetArgs:
    Key: str = ""


@dataclass
class GetReply:
    Value: str = ""
    Version: Tversion = 0
    Err: Err = ""


for _cls in (PutArgs, PutReply, GetArgs, GetReply):
    labgob.Register(_cls)
