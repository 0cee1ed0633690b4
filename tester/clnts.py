"""Clerk-side network access (Go: tester1/clnts.go).

Usage:
    clnt = cfg.MakeClient()                  # may call every server
    clnt = cfg.MakeClientTo(["server-0-1"])  # may call only these ([] = none)
    ok = clnt.Call(tester.ServerName(tester.GRP0, 0), "KVServer.Get", args, reply)
    clnt.Disconnect(name); clnt.DisconnectAll(); clnt.ConnectTo(names); clnt.ConnectAll()
    cfg.DeleteClient(clnt)

A Clnt makes one labrpc end per server name on first use (random 20-character end name), so
it keeps working across server restarts. Its ends are separate from the servers' own ends:
group partitions never touch them. ConnectTo enables the newly allowed ends but (as in Go)
does not disable ends that are no longer allowed.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence


def _randstring(n: int) -> str:
    from tester.config import Randstring

    return Randstring(n)


class Clnt:
    """One clerk's ends to the servers, made lazily per server name."""

    def __init__(self, net: Any, srvs: Sequence[str] | None) -> None:
        # Guards ends and srvs.
        self._mu = threading.Lock()
        self._net = net
        self._ends: dict[str, tuple[str, Any]] = {}  # server name -> (end name, ClientEnd)
        # None: every server allowed; []: none.
        self._srvs: list[str] | None = None if srvs is None else list(srvs)

    def _allowed_locked(self, server: str) -> bool:
        return self._srvs is None or server in self._srvs

    def _make_end(self, server: str) -> Any:
        with self._mu:
            e = self._ends.get(server)
            if e is not None:
                return e[1]
            name = _randstring(20)
            end = self._net.MakeEnd(name)
            self._net.Connect(name, server)
            self._net.Enable(name, self._allowed_locked(server))
            self._ends[server] = (name, end)
            return end

    def Call(self, server: str, method: str, args: Any, reply: Any) -> bool:
        """Send an RPC to server (a name from ServerName); fills reply, True iff a reply came back."""
        return self._make_end(server).Call(method, args, reply)

    def ConnectAll(self) -> None:
        with self._mu:
            for name, _ in self._ends.values():
                self._net.Enable(name, True)
            self._srvs = None

    def ConnectTo(self, srvs: Sequence[str]) -> None:
        with self._mu:
            self._srvs = list(srvs)
            for server, (name, _) in self._ends.items():
                if self._allowed_locked(server):
                    self._net.Enable(name, True)

    def Disconnect(self, srv: str) -> None:
        with self._mu:
            e = self._ends.get(srv)
            if e is not None:
                self._net.Enable(e[0], False)

    def DisconnectAll(self) -> None:
        with self._mu:
            for name, _ in self._ends.values():
                self._net.Enable(name, False)
            self._srvs = []

    def remove(self) -> None:
        with self._mu:
            for name, _ in self._ends.values():
                self._net.DeleteEnd(name)


class Clnts:
    """Every Clnt of a test, so Cleanup can delete their ends."""

    def __init__(self, net: Any) -> None:
        self._mu = threading.Lock()
        self._net = net
        self._clerks: dict[int, Clnt] = {}

    def MakeClient(self) -> Clnt:
        return self.MakeClientTo(None)

    def MakeClientTo(self, srvs: Sequence[str] | None) -> Clnt:
        """A Clnt allowed to reach only the servers named in srvs (None: all of them)."""
        clnt = Clnt(self._net, srvs)
        with self._mu:
            self._clerks[id(clnt)] = clnt
        return clnt

    def DeleteClient(self, clnt: Clnt) -> None:
        with self._mu:
            found = self._clerks.pop(id(clnt), None)
        if found is not None:
            found.remove()

    def cleanup(self) -> None:
        with self._mu:
            clerks, self._clerks = list(self._clerks.values()), {}
        for clnt in clerks:
            clnt.remove()


__all__ = ["Clnt", "Clnts"]
