"""A Python client of a KubeKV cluster, with the lab Clerk's API, and `kubekv put/get/status`.

Usage:
    from kubekv.client import Client
    c = Client(["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"])
    err = c.Put("k", "v", 0)                 # versioned, as in the lab: OK, ErrVersion, ErrNoKey, ErrMaybe
    value, version, err = c.Get("k")         # linearizable (through the Raft log); OK or ErrNoKey
    c.Close()

    kubekv put KEY VALUE [--version V] [--endpoints a,b,c]
    kubekv get KEY [--endpoints a,b,c]
    kubekv status [--endpoints a,b,c]

The client is the lab's own Clerk (kvraft1/client.py): it follows the leader, retries lost
RPCs and reports ErrMaybe exactly as in the lab, with PeerEnds over gRPC as its network. Where
the lab's Clerk waits for ever, this one gives up after timeout_s and raises
ClusterUnavailable, naming the endpoints it tried. The endpoints default to those that
`kubekv cluster` starts with its defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Sequence

from kvraft1 import rpc
from kvraft1.client import MakeClerk

# Where `kubekv cluster` listens for clients by default: etcd's local 3-member ports.
DEFAULT_ENDPOINTS = ["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"]
# A server answers within COMMIT_WAIT_S (0.5 s) or says it is not the leader.
CALL_TIMEOUT_S = 2.0
DEFAULT_TIMEOUT_S = 10.0


class ClusterUnavailable(Exception):
    """No server of the cluster answered the operation in time."""


class Client:
    """A client of a KubeKV cluster: Get and Put as the lab's Clerk, over gRPC."""

    def __init__(self, endpoints: Sequence[str] = DEFAULT_ENDPOINTS,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not endpoints:
            raise ValueError("a client needs the cluster's endpoints, e.g. 127.0.0.1:2379,...")
        from kubekv.transport import PeerEnd   # here: `kubekv demo` and the others need no gRPC

        self.endpoints = list(endpoints)
        self.timeout_s = timeout_s
        self._ends = {addr: PeerEnd(addr, timeout_s=CALL_TIMEOUT_S) for addr in self.endpoints}
        self._clerk = MakeClerk(self, self.endpoints)
        self._deadline = float("inf")

    # The Clerk's network: tester.Clnt's Call(server, method, args, reply).
    def Call(self, server: str, method: str, args: Any, reply: Any) -> bool:
        if time.monotonic() > self._deadline:
            raise ClusterUnavailable(
                f"no leader answered within {self.timeout_s:g} s (tried {', '.join(self.endpoints)}); "
                "is the cluster running (kubekv cluster), and are a majority of its servers up?")
        return self._ends[server].Call(method, args, reply)

    def Get(self, key: str) -> tuple[str, int, str]:
        """(value, version, err): err is OK or ErrNoKey."""
        self._deadline = time.monotonic() + self.timeout_s
        return self._clerk.Get(key)

    def Put(self, key: str, value: str, version: int) -> str:
        """OK, ErrVersion, ErrNoKey, or ErrMaybe (an earlier copy may have run)."""
        self._deadline = time.monotonic() + self.timeout_s
        return self._clerk.Put(key, value, version)

    def status(self, endpoint: str) -> Any:
        """The StatusReply of one server, or None if it does not answer."""
        from kubekv.server import StatusArgs, StatusReply
        reply = StatusReply()
        ok = self._ends[endpoint].Call("Control.Status", StatusArgs(), reply)
        return reply if ok else None

    def block(self, endpoint: str, peers: Sequence[int]) -> bool:
        """Tell a server started with faults on to cut itself off from these peers (tests)."""
        from kubekv.server import BlockArgs, BlockReply
        reply = BlockReply()
        ok = self._ends[endpoint].Call("Control.Block", BlockArgs(Peers=list(peers)), reply)
        if ok and reply.Err:
            raise RuntimeError(reply.Err)
        return ok

    def leader(self) -> str | None:
        """The endpoint of a server that believes it leads (the highest term wins), or None."""
        best = None
        for addr in self.endpoints:
            st = self.status(addr)
            if st is not None and st.IsLeader and (best is None or st.Term > best[0]):
                best = (st.Term, addr)
        return best[1] if best else None

    def Close(self) -> None:
        for end in self._ends.values():
            end.Close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.Close()


def endpoints_from(text: str | None) -> list[str]:
    """--endpoints a,b,c (or KUBEKV_ENDPOINTS), else the local cluster's defaults."""
    text = text or os.environ.get("KUBEKV_ENDPOINTS", "")
    return [e.strip() for e in text.split(",") if e.strip()] or list(DEFAULT_ENDPOINTS)


def add_parsers(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoints", default=None,
                        help="the cluster's servers, host:port,... (default: KUBEKV_ENDPOINTS, or the "
                             f"local cluster's {','.join(DEFAULT_ENDPOINTS)})")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds to wait for the cluster (default {DEFAULT_TIMEOUT_S:g})")
    p = sub.add_parser("put", parents=[common], help="write KEY=VALUE to a KubeKV cluster")
    p.add_argument("key")
    p.add_argument("value")
    p.add_argument("--version", type=int, default=None,
                   help="the version the key must have (0: create it); default: the key's current "
                        "version, read first (an unconditional write)")
    g = sub.add_parser("get", parents=[common], help="read KEY from a KubeKV cluster")
    g.add_argument("key")
    sub.add_parser("status", parents=[common], help="each server's term, role and log size")


def main(args: Any) -> int:
    try:
        client = Client(endpoints_from(args.endpoints), timeout_s=args.timeout)
    except ValueError as exc:
        print(f"kubekv {args.command}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "get":
            value, version, err = client.Get(args.key)
            if err == rpc.ErrNoKey:
                print(f"kubekv get: no key {args.key!r}", file=sys.stderr)
                return 1
            print(value)
            print(f"(version {version})", file=sys.stderr)
            return 0
        if args.command == "put":
            return _put(client, args)
        return _status(client)
    except ClusterUnavailable as exc:
        print(f"kubekv {args.command}: {exc}", file=sys.stderr)
        return 3
    finally:
        client.Close()


def _put(client: Client, args: Any) -> int:
    version = args.version
    while True:
        if args.version is None:
            _, current, err = client.Get(args.key)
            version = current if err == rpc.OK else 0
        err = client.Put(args.key, args.value, version)
        if err == rpc.OK:
            print(f"OK (version {version + 1})")
            return 0
        if err == rpc.ErrMaybe:
            _, current, _ = client.Get(args.key)
            print(f"ErrMaybe: the write may or may not have happened (the key is at version {current})",
                  file=sys.stderr)
            return 1
        if args.version is not None:
            print(f"{err}: the key is not at version {args.version}", file=sys.stderr)
            return 1
        version = None   # someone else wrote between our Get and Put: read again


def _status(client: Client) -> int:
    down = 0
    for addr in client.endpoints:
        st = client.status(addr)
        if st is None:
            print(f"{addr}  down")
            down += 1
        else:
            role = "leader" if st.IsLeader else "follower"
            print(f"{addr}  server {st.Me}  term {st.Term}  {role}  raft state {st.RaftStateBytes} B  "
                  f"snapshot {st.SnapshotBytes} B  fsyncs {st.Fsyncs}  "
                  f"requests {st.Requests} in {st.Entries} entries")
    return 0 if down * 2 < len(client.endpoints) else 3
