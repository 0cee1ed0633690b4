"""Server groups: start, crash, restart and partition the servers of a test (Go: tester1/group.go, srv.go).

Usage (through a Config, see tester/__init__.py):
    grp = cfg.Group(tester.GRP0)
    grp.ShutdownServer(i)        # crash server i: isolate it, drop it from the net, freeze its persister, Kill()
    grp.StartServer(i)           # restart it from a copy of its persister (not connected yet)
    grp.ConnectOne(i)            # ... then connect it
    p1, p2 = grp.MakePartition(leader); grp.Partition(p1, p2)   # leader ends up in the minority
    grp.DisconnectAll(i); grp.ConnectAll()
    grp.Services()[i]            # the objects mks returned for server i (None while it is shut down)
    grp.LogSize(), grp.SnapshotSize(), grp.RpcCount(i)

The start function a lab passes to MakeConfig is
    mks(ends: list[labrpc.ClientEnd], grp: int, srv: int, persister: Persister) -> list[IService]
`ends[j]` reaches server j of the same group (ends[srv] is the server itself). Every returned
object is registered with labrpc.MakeService (its public two-argument methods become RPCs named
"ClassName.Method") and gets Kill() when the server is shut down or the test ends.

Crash semantics as in Go: every start makes a fresh instance with fresh ends (random
20-character names, disabled until connected) and a fresh labrpc server (so RpcCount starts from
0), and a persister copied from the last one; ShutdownServer disconnects the server, deletes it
from the network (replies of handlers still running are dropped), copies the persister (so a
zombie instance writes into a persister nobody reads) and only then Kill()s the services.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Protocol, Sequence

import labrpc
from tester.persister import MakePersister, Persister

Tgid = int
GRP0: Tgid = 0


class IService(Protocol):
    """What mks returns: anything with Kill()."""

    def Kill(self) -> None: ...


FstartServer = Callable[[list, Tgid, int, Persister], Sequence[IService]]


def ServerName(gid: Tgid, i: int) -> str:
    """The network name of server i of group gid: "server-<gid>-<i>"."""
    return f"server-{gid}-{i}"


def _randstring(n: int) -> str:
    from tester.config import Randstring

    return Randstring(n)


class _Server:
    """One instance of one server: its outgoing ends, persister and services."""

    def __init__(self, net: Any, gid: Tgid, nsrv: int) -> None:
        self._mu = threading.Lock()
        self.net = net
        self.saved: Persister | None = None
        self.svcs: list[IService] | None = None
        self.endNames = [_randstring(20) for _ in range(nsrv)]
        self.clntEnds = []
        for j, name in enumerate(self.endNames):
            self.clntEnds.append(net.MakeEnd(name))
            net.Connect(name, ServerName(gid, j))

    def start_server(self, gid: Tgid) -> "_Server":
        """A new instance: fresh ends, and a copy of this instance's persister (or a new one)."""
        srv = _Server(self.net, gid, len(self.endNames))
        srv.saved = self.saved.Copy() if self.saved is not None else MakePersister()
        return srv

    def connect(self, sg: "ServerGrp", to: Sequence[int]) -> None:
        with self._mu:
            for j in to:
                if sg.IsConnected(j):
                    self.net.Enable(self.endNames[j], True)

    def disconnect(self, frm: Sequence[int]) -> None:
        with self._mu:
            for j in frm:
                self.net.Enable(self.endNames[j], False)

    def shutdown_server(self) -> None:
        with self._mu:
            # A fresh persister with the same contents: a zombie instance that keeps saving
            # cannot change what the next instance starts from.
            if self.saved is not None:
                self.saved = self.saved.Copy()
            svcs, self.svcs = self.svcs, None
        for svc in svcs or []:
            if svc is not None:
                svc.Kill()


class ServerGrp:
    """The n servers of one group (Go: ServerGrp)."""

    def __init__(self, net: Any, gid: Tgid, n: int, mks: FstartServer) -> None:
        if not callable(mks):
            raise TypeError(f"MakeConfig/MakeGroup: mks must be callable "
                            f"mks(ends, grp, srv, persister) -> list of services, got {mks!r}")
        self.net = net
        self.gid = gid
        self.mks = mks
        # Guards connected[] (Go's sg.mu).
        self._mu = threading.Lock()
        self.connected = [False] * n
        self.srvs = [_Server(net, gid, n) for _ in range(n)]
        self.servernames = [ServerName(gid, i) for i in range(n)]

    def N(self) -> int:
        return len(self.srvs)

    def SrvNames(self) -> list[str]:
        return self.servernames

    def SrvName(self, i: int) -> str:
        return self.servernames[i]

    def SrvNamesTo(self, to: Sequence[int]) -> list[str]:
        return [self.servernames[i] for i in to]

    def Services(self) -> list[list[IService] | None]:
        """The services of each server, as mks returned them; None for a shut-down server."""
        return [s.svcs for s in self.srvs]

    def _all(self) -> list[int]:
        return list(range(len(self.srvs)))

    # ---- connectivity -----------------------------------------------------------------
    def ConnectAll(self) -> None:
        for i in range(len(self.srvs)):
            self.ConnectOne(i)

    def ConnectOne(self, i: int) -> None:
        self._connect(i, self._all())

    def _connect(self, i: int, to: Sequence[int]) -> None:
        with self._mu:
            self.connected[i] = True
        self.srvs[i].connect(self, to)  # outgoing ends
        for j in to:  # incoming ends, from the connected servers only
            if self.IsConnected(j):
                self.net.Enable(self.srvs[j].endNames[i], True)

    def _disconnect(self, i: int, frm: Sequence[int]) -> None:
        with self._mu:
            self.connected[i] = False
        self.srvs[i].disconnect(frm)  # outgoing ends
        for j in frm:  # incoming ends, whether j is connected or not
            self.net.Enable(self.srvs[j].endNames[i], False)

    def DisconnectAll(self, i: int) -> None:
        self._disconnect(i, self._all())

    def IsConnected(self, i: int) -> bool:
        with self._mu:
            return self.connected[i]

    def GetConnected(self) -> list[bool]:
        """The live connected[] list (not a copy, as in Go); copy it before keeping it."""
        return self.connected

    def MakePartition(self, l: int) -> tuple[list[int], list[int]]:
        """Split into a majority p1 without l and a minority p2 whose last element is l.

        Sizes are n/2+1 and n/2 exactly as in Go, including its quirk for even n: the one slot
        of p2 that no server fills keeps the value 0.
        """
        n = len(self.srvs)
        if n < 2:
            raise ValueError(f"MakePartition needs at least 2 servers, the group has {n}")
        p1 = [0] * (n // 2 + 1)
        p2 = [0] * (n // 2)
        j = 0
        for i in range(n):
            if i != l:
                if j < len(p1):
                    p1[j] = i
                else:
                    p2[j - len(p1)] = i
                j += 1
        p2[-1] = l
        return p1, p2

    def AllowServersExcept(self, l: int) -> list[int]:
        return [i for i in range(len(self.srvs)) if i != l]

    def Partition(self, p1: Sequence[int], p2: Sequence[int]) -> None:
        """Connect p1 among itself and p2 among itself, with no link across; all end up connected."""
        for i in p1:
            self._disconnect(i, p2)
            self._connect(i, p1)
        for i in p2:
            self._disconnect(i, p1)
            self._connect(i, p2)

    # ---- sizes and counts -------------------------------------------------------------
    def LogSize(self) -> int:
        """The largest persisted Raft state of any server, in bytes."""
        return max((s.saved.RaftStateSize() for s in self.srvs if s.saved is not None), default=0)

    def SnapshotSize(self) -> int:
        return max((s.saved.SnapshotSize() for s in self.srvs if s.saved is not None), default=0)

    def RpcCount(self, server: int) -> int:
        """RPCs received by the current instance of that server."""
        return self.net.GetCount(ServerName(self.gid, server))

    # ---- start and shutdown -----------------------------------------------------------
    def StartServer(self, i: int) -> None:
        """Start (or restart, after ShutdownServer) server i. It is not connected by this."""
        srv = self.srvs[i].start_server(self.gid)
        self.srvs[i] = srv
        svcs = self.mks(srv.clntEnds, self.gid, i, srv.saved)
        if svcs is None or isinstance(svcs, (str, bytes)) or not hasattr(svcs, "__iter__"):
            raise TypeError(f"mks must return a list of services (objects with Kill()), got {svcs!r}")
        svcs = list(svcs)
        for svc in svcs:
            if not callable(getattr(svc, "Kill", None)):
                raise TypeError(f"mks returned {svc!r}, which has no Kill() method; "
                                f"every service must have one (tester.IService)")
        srv.svcs = svcs
        labsrv = labrpc.MakeServer()
        for svc in svcs:
            labsrv.AddService(labrpc.MakeService(svc))
        self.net.AddServer(ServerName(self.gid, i), labsrv)

    def StartServers(self) -> None:
        """Start every server, then connect them all."""
        for i in range(len(self.srvs)):
            self.StartServer(i)
        self.ConnectAll()

    def ShutdownServer(self, i: int) -> None:
        """Crash server i (Go's order: disconnect, delete from net, copy persister, Kill)."""
        self._disconnect(i, self._all())
        # Before the persister copy: a handler still running must not get a positive reply
        # out to a client while persisting into the superseded Persister.
        self.net.DeleteServer(ServerName(self.gid, i))
        self.srvs[i].shutdown_server()

    def Shutdown(self) -> None:
        for i in range(len(self.srvs)):
            self.ShutdownServer(i)

    def cleanup(self) -> None:
        """Kill every running service (Config.Cleanup); nothing is disconnected."""
        for s in self.srvs:
            svcs = s.svcs
            for svc in svcs or []:
                svc.Kill()


class Groups:
    """All server groups of a test, by gid."""

    def __init__(self, net: Any) -> None:
        self._mu = threading.Lock()
        self.net = net
        self.grps: dict[Tgid, ServerGrp] = {}

    def MakeGroup(self, gid: Tgid, nsrv: int, mks: FstartServer) -> None:
        grp = ServerGrp(self.net, gid, nsrv, mks)
        with self._mu:
            self.grps[gid] = grp

    def lookup(self, gid: Tgid) -> ServerGrp:
        with self._mu:
            grp = self.grps.get(gid)
        if grp is None:
            raise KeyError(f"no server group {gid} (make it with cfg.MakeGroupStart(gid, n, mks))")
        return grp

    def delete(self, gid: Tgid) -> None:
        with self._mu:
            self.grps.pop(gid, None)

    def cleanup(self) -> None:
        with self._mu:
            grps = list(self.grps.values())
        for sg in grps:
            sg.cleanup()


__all__ = ["Tgid", "GRP0", "IService", "FstartServer", "ServerName", "ServerGrp", "Groups"]
