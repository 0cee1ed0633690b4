"""labrpc: an in-process RPC network that can lose, delay and reorder messages (Go's labrpc).

Usage (the Go names and shapes):

    net = labrpc.MakeNetwork()               # holds ends, servers, connections
    end = net.MakeEnd("end1-99")             # a client end-point, to talk to one server
    svc = labrpc.MakeService(raft)           # raft's RPC handlers, as "Raft.<Method>"
    srv = labrpc.MakeServer(); srv.AddService(svc)
    net.AddServer("server99", srv)           # add (or replace) a named server
    net.Connect("end1-99", "server99"); net.Enable("end1-99", True)
    net.Reliable(False)                      # drop/delay messages
    ok = end.Call("Raft.AppendEntries", args, reply)   # fills `reply` in place
    net.DeleteServer("server99"); net.Cleanup()

Call() returns True when the server executed the request and `reply` holds its
answer; False when the network lost the request or the reply, or the server is
down (disabled end, deleted or replaced server).  Call() always returns unless
the handler never does while its server stays up.  Concurrent Calls on one
end are fine and may be reordered.

Handlers: MakeService(obj) registers every public method of obj whose name
starts with an upper-case letter and that takes exactly two parameters
(args, reply).  A handler gets fresh copies: args decoded from the bytes the
caller encoded, and a fresh default reply of the caller's reply class, which
it fills in.  The reply travels back through labgob into the caller's object,
so no object is ever shared between peers.  Every class crossing the network
must be registered with labgob.Register.

Where Go's static types (or gob) would stop a wrong call, Call raises LabrpcError:
args or reply of another class than the handler's parameters are annotated with
(registered classes, Ref, int/str/bytes/bool/float/list/dict/tuple), a handler
that sets a reply attribute the reply's class does not declare (the value would
be lost: a reply of another class, or a typo), args the server cannot decode, and
a method that is not a handler (the message says why: a lower-case name, or other
parameters than (self, args, reply)).  MakeService warns once per class about such
methods when they look meant as handlers (a lower-case one taking (args, reply)).

A primitive reply (Go's *int, *string) is passed as a labrpc.Ref:

    reply = labrpc.Ref(0)                    # Go: reply := 0; ... &reply
    end.Call("JunkServer.Handler1", "9099", reply); reply.Value == 9099
    def Handler1(self, args: str, reply: labrpc.Ref): reply.Value = int(args)

The handler's Ref starts at the zero value of the caller's Value type.

Go's numbers: unreliable = 0-26 ms delay, 10% requests and 10% replies
dropped; long reordering = 2/3 of replies held back 200-2199 ms; a disabled end
or missing server fails after 0-99 ms (0-6999 ms with LongDelays); a reply from a
server that was deleted, replaced or whose end was disabled is never delivered,
and the caller learns of it at once.  Request bytes are counted for every
Call, reply bytes when delivered; Server counts reset when a new Server object
replaces the old one.

Randomness: one random.Random per network, seeded from LABRPC_SEED when set,
else at random; net.seed holds it and repr(net) shows it, so a failing run's
drop/delay decisions can be replayed (thread interleavings still vary).

Threads: Call does its bookkeeping in the caller's thread and hands the handler
to a reusable worker from a pool that grows on demand; every delay is a timed
wait in the caller's own (already blocked) thread, so no thread or timer is
made per message.  Cleanup() makes later Calls return False at once, fails the
calls still waiting, and retires the pool's idle workers.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import random
import secrets
import sys
import threading
import typing
from typing import Any, Callable

import labgob

from .pool import WorkerPool

__all__ = [
    "SHORTDELAY", "LONGDELAY", "MAXDELAY", "SEED_ENV", "LabrpcError", "Ref",
    "ClientEnd", "Network", "MakeNetwork", "Server", "MakeServer", "Service", "MakeService",
    "networks_made", "seeds_since",
]

SHORTDELAY = 27            # ms; unreliable requests wait rand % SHORTDELAY
LONGDELAY = 7000           # ms; failed calls wait up to this with LongDelays
MAXDELAY = LONGDELAY + 100
FAIL_DELAY_MS = 100        # failed calls wait rand % this without LongDelays
DROP_PER_MILLE = 100       # unreliable: requests and replies each dropped 100/1000
SEED_ENV = "LABRPC_SEED"


class LabrpcError(Exception):
    """Misuse of labrpc: unknown service/method, duplicate end, bad reply object."""


class _CallError(LabrpcError):
    """Found on the server's side of a Call, reported by the caller as "Call(Svc.Method): ..."."""


@dataclasses.dataclass
class Ref:
    """A mutable holder for a primitive reply: Go's *int / *string reply parameter."""

    Value: Any = None


labgob.RegisterName("labrpc.Ref", Ref)

_REF_ZERO = {int: 0, str: "", bool: False, float: 0.0, bytes: b""}
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple)

_made_lock = threading.Lock()
_made_seeds: list[int] = []   # seed of every network made in this process, in order


def networks_made() -> int:
    """How many networks this process has made (a mark for seeds_since)."""
    with _made_lock:
        return len(_made_seeds)


def seeds_since(mark: int) -> list[int]:
    """Seeds of the networks made after networks_made() returned `mark`."""
    with _made_lock:
        return _made_seeds[mark:]


def _fresh_reply(reply: Any) -> Any:
    """The default reply a handler fills in: Go's reflect.New(replyType)."""
    t = type(reply)
    if t is Ref:
        return Ref(_REF_ZERO.get(type(reply.Value)))
    if t is list or t is dict:
        return t()
    if isinstance(reply, _IMMUTABLE):
        raise LabrpcError(f"Call: reply must be a mutable object filled in place, got a "
                          f"{t.__qualname__}; wrap primitive replies in labrpc.Ref(...)")
    return labgob.zero_instance(t)


class _Pending:
    """One Call in flight: the caller sleeps on `lock` until a worker or a kill releases it."""

    __slots__ = ("lock", "killed", "done", "error", "endname", "servername",
                 "server", "method", "args", "reply")

    def __init__(self, endname: Any, servername: Any, server: "Server",
                 method: Callable, args: bytes, reply: Any):
        self.lock = threading.Lock()
        self.lock.acquire()
        self.killed = False     # set (under net._mu) when a kill or Cleanup woke the caller
        self.done = False       # the handler returned (or raised: error is set)
        self.error: BaseException | None = None
        self.endname = endname
        self.servername = servername
        self.server = server
        self.method = method
        self.args = args
        self.reply = reply      # the fresh reply object, then the encoded reply

    def wake(self) -> None:
        """Wake the caller: the handler is done, or the server was killed, or Cleanup.

        Both the worker and a kill may call this, in either order; the caller
        acquires the lock once, so a second release is either refused (the lock
        is already free) or frees a lock nobody waits on any more.
        """
        try:
            self.lock.release()
        except RuntimeError:
            pass  # already released


def _serve(p: _Pending) -> Callable[[], None]:
    """Run on a pool worker: Go's Server.dispatch + Service.dispatch."""
    srv = p.server
    try:
        with srv._mu:
            srv._count += 1
        try:
            args = labgob.loads(p.args)
        except labgob.LabgobError as exc:
            raise _CallError(f"the server cannot decode the args: {exc}") from exc
        reply = p.reply
        p.method(args, reply)
        if labgob.undeclared_fields(reply):
            _check_reply_fields(reply)
        # A Ref travels as its bare value, as Go sends the int behind an *int.
        p.reply = labgob.dumps(reply.Value if type(reply) is Ref else reply)
    except BaseException as exc:  # reported to the caller; the worker carries on
        p.error = exc
    p.done = True
    return p.wake


def _check_call_types(svcMeth: str, args: Any, reply: Any, args_t: type | None,
                      reply_t: type | None) -> None:
    """args and reply against the handler's annotations (called only when a type differs)."""
    for what, v, want in (("reply", reply, reply_t), ("args", args, args_t)):
        if want is None or _fits(v, want):
            continue
        got = type(v)
        gotname, wantname = got.__qualname__, want.__qualname__
        if gotname == wantname:   # same name, different modules
            gotname, wantname = f"{got.__module__}.{gotname}", f"{want.__module__}.{wantname}"
        if what == "reply":
            fix = (f"pass Call {_a(wantname)}, or the handler's answer is lost" if want is not Ref
                   else "pass Call a labrpc.Ref(zero value), as Go passes &reply")
            raise LabrpcError(f"Call({svcMeth}): the reply is {_a(gotname)}, but the handler fills "
                              f"{_a(wantname)}; {fix}")
        raise LabrpcError(f"Call({svcMeth}): the args are {_a(gotname)}, but the handler takes "
                          f"{_a(wantname)}; pass {_a(wantname)}")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiouAEIOU" else f"a {noun}"


def _fits(v: Any, want: type) -> bool:
    """Whether v may stand for an annotation `want`: a subclass, an int for a float, not a bool."""
    t = type(v)
    if t is bool and want is not bool:
        return False
    return isinstance(v, want) or (want is float and t is int)


def _check_reply_fields(reply: Any) -> None:
    """A handler set attributes its reply's class does not declare: they would never arrive."""
    cls = type(reply)
    # Attributes a fresh reply already has (set by the class's own __init__) are not the handler's.
    new = [n for n in labgob.undeclared_fields(reply)
           if n not in labgob.undeclared_fields(labgob.zero_instance(cls))]
    if not new:
        return
    fields = ", ".join(labgob.declared_fields(cls))
    raise _CallError(
        f"the handler set {', '.join('reply.' + n for n in new)}, which {cls.__qualname__} does not "
        f"declare (its fields: {fields}), so the value would be lost; pass Call a reply of the class "
        f"the handler fills (or declare the field in {cls.__qualname__})")


class ClientEnd:
    """A client end-point: Call() sends through the network to the connected server."""

    __slots__ = ("endname", "_net")

    def __init__(self, net: "Network", endname: Any):
        self.endname = endname
        self._net = net

    def Call(self, svcMeth: str, args: Any, reply: Any) -> bool:
        """Send an RPC and wait; True means `reply` now holds the server's answer."""
        return self._net._call(self.endname, svcMeth, args, reply)

    def __repr__(self) -> str:
        return f"ClientEnd({self.endname!r})"


class Network:
    """The simulated network; made by MakeNetwork()."""

    def __init__(self, seed: int | None = None):
        if seed is None:
            env = os.environ.get(SEED_ENV, "").strip()
            if env:
                try:
                    seed = int(env)
                except ValueError:
                    raise LabrpcError(f"{SEED_ENV}={env!r} is not an integer") from None
            else:
                seed = secrets.randbits(62)
        self.seed = seed
        self._rng = random.Random(seed)
        # One lock for all network state; never held across a handler or a wait.
        self._mu = threading.Lock()
        self._reliable = True
        self._longDelays = False
        self._longReordering = False
        self._ends: dict[Any, ClientEnd] = {}
        self._enabled: dict[Any, bool] = {}
        self._servers: dict[Any, Server | None] = {}
        self._connections: dict[Any, Any] = {}
        self._inflight: dict[_Pending, None] = {}   # calls whose handler may be running
        self._count = 0
        self._bytes = 0
        self._closed = False
        # Set by Cleanup(); every delay is a wait on it, so Cleanup cuts delays short.
        self._closed_ev = threading.Event()
        self._pool = WorkerPool("labrpc-worker")
        with _made_lock:
            _made_seeds.append(seed)

    def __repr__(self) -> str:
        return (f"<labrpc.Network {SEED_ENV}={self.seed} reliable={self._reliable} "
                f"longDelays={self._longDelays} longReordering={self._longReordering}>")

    # ---- knobs -------------------------------------------------------------------------------

    def Cleanup(self) -> None:
        """Close the network: later Calls fail at once, waiting ones fail now, workers retire."""
        with self._mu:
            self._closed = True
            self._closed_ev.set()
            for p in self._inflight:
                p.killed = True
                p.wake()
            self._inflight.clear()
        self._pool.shutdown()

    def Reliable(self, yes: bool) -> None:
        with self._mu:
            self._reliable = bool(yes)

    def IsReliable(self) -> bool:
        with self._mu:
            return self._reliable

    def LongReordering(self, yes: bool) -> None:
        with self._mu:
            self._longReordering = bool(yes)

    def LongDelays(self, yes: bool) -> None:
        with self._mu:
            self._longDelays = bool(yes)

    def IsLongDelays(self) -> bool:
        with self._mu:
            return self._longDelays

    # ---- topology ----------------------------------------------------------------------------

    def MakeEnd(self, endname: Any) -> ClientEnd:
        """A new end, disabled and unconnected; the name must be new."""
        with self._mu:
            if endname in self._ends:
                raise LabrpcError(f"MakeEnd: {endname!r} already exists")
            e = ClientEnd(self, endname)
            self._ends[endname] = e
            self._enabled[endname] = False
            self._connections[endname] = None
            return e

    def DeleteEnd(self, endname: Any) -> None:
        with self._mu:
            if endname not in self._ends:
                raise LabrpcError(f"DeleteEnd: {endname!r} doesn't exist")
            del self._ends[endname]
            del self._enabled[endname]
            del self._connections[endname]
            self._kill_locked(lambda p: p.endname == endname)

    def AddServer(self, servername: Any, rs: "Server") -> None:
        """Add a server, or replace one (calls in flight to the old one then fail)."""
        with self._mu:
            self._servers[servername] = rs
            self._kill_locked(lambda p: p.servername == servername and p.server is not rs)

    def DeleteServer(self, servername: Any) -> None:
        """Remove a server; calls in flight to it fail at once, their replies are never delivered."""
        with self._mu:
            self._servers[servername] = None
            self._kill_locked(lambda p: p.servername == servername)

    def Connect(self, endname: Any, servername: Any) -> None:
        with self._mu:
            self._connections[endname] = servername

    def Enable(self, endname: Any, enabled: bool) -> None:
        """Enable or disable an end; disabling fails its calls in flight at once."""
        with self._mu:
            self._enabled[endname] = bool(enabled)
            if not enabled:
                self._kill_locked(lambda p: p.endname == endname)

    def _kill_locked(self, match: Callable[[_Pending], bool]) -> None:
        """Wake the callers of matching calls in flight; they will see the server dead."""
        dead = [p for p in self._inflight if match(p)]
        for p in dead:
            del self._inflight[p]
            p.killed = True
            p.wake()

    # ---- counters ----------------------------------------------------------------------------

    def GetCount(self, servername: Any) -> int:
        """Incoming RPCs of the current Server object under that name."""
        with self._mu:
            srv = self._servers.get(servername)
        if srv is None:
            raise LabrpcError(f"GetCount: no server {servername!r} (never added, or deleted)")
        return srv.GetCount()

    def GetTotalCount(self) -> int:
        with self._mu:
            return self._count

    def GetTotalBytes(self) -> int:
        with self._mu:
            return self._bytes

    def threads(self) -> list[threading.Thread]:
        """The network's live worker threads (for thread-leak checks)."""
        return self._pool.threads()

    # ---- the call path -----------------------------------------------------------------------

    def _call(self, endname: Any, svcMeth: str, args: Any, reply: Any) -> bool:
        if self._closed:
            return False
        data = labgob.dumps(args)
        fresh = _fresh_reply(reply)
        rng = self._rng
        with self._mu:
            if self._closed:
                return False
            self._count += 1
            self._bytes += len(data)
            servername = self._connections.get(endname)
            server = self._servers.get(servername) if servername is not None else None
            if not self._enabled.get(endname, False) or server is None:
                fail_ms = rng.randrange(LONGDELAY if self._longDelays else FAIL_DELAY_MS)
                p = None
            else:
                method, args_t, reply_t = server._lookup(svcMeth)   # LabrpcError if unknown
                if ((reply_t is not None and type(reply) is not reply_t)
                        or (args_t is not None and type(args) is not args_t)):
                    _check_call_types(svcMeth, args, reply, args_t, reply_t)
                short_ms = drop_req = drop_reply = reorder_ms = 0
                if not self._reliable:
                    short_ms = rng.randrange(SHORTDELAY)
                    drop_req = rng.randrange(1000) < DROP_PER_MILLE
                    drop_reply = rng.randrange(1000) < DROP_PER_MILLE
                if self._longReordering and rng.randrange(900) < 600:
                    reorder_ms = 200 + rng.randrange(1 + rng.randrange(2000))
                p = _Pending(endname, servername, server, method, data, fresh)
                self._inflight[p] = None
        if p is None:
            # Simulate no reply and an eventual timeout.
            self._closed_ev.wait(fail_ms / 1000)
            return False
        return self._deliver(p, short_ms, drop_req, drop_reply, reorder_ms, reply, svcMeth)

    def _deliver(self, p: _Pending, short_ms: int, drop_req: bool, drop_reply: bool,
                 reorder_ms: int, reply: Any, svcMeth: str) -> bool:
        if short_ms and self._closed_ev.wait(short_ms / 1000):
            return False
        if drop_req or p.killed:   # dropped, or killed during the short delay
            with self._mu:
                self._inflight.pop(p, None)
            return False
        try:
            self._pool.submit(_serve, p)
        except RuntimeError:   # Cleanup() shut the pool down meanwhile
            with self._mu:
                self._inflight.pop(p, None)
            return False
        p.lock.acquire()   # released by the worker, a kill, or Cleanup
        with self._mu:
            self._inflight.pop(p, None)
            # A killed server's reply is never delivered, even if the handler finished:
            # its work may have gone to a superseded Persister.
            alive = (not self._closed and self._enabled.get(p.endname, False)
                     and self._servers.get(p.servername) is p.server)
            ok = p.done and alive and p.error is None and not drop_reply
            if ok and not reorder_ms:
                self._bytes += len(p.reply)
        if p.done and alive and p.error is not None:
            if isinstance(p.error, _CallError):
                raise LabrpcError(f"Call({svcMeth}): {p.error}") from p.error.__cause__
            raise LabrpcError(f"handler for {svcMeth} raised {p.error!r}") from p.error
        if not ok:
            return False
        if reorder_ms:
            if self._closed_ev.wait(reorder_ms / 1000):
                return False
            with self._mu:
                self._bytes += len(p.reply)
        try:
            if type(reply) is Ref:
                if reply.Value:   # only a non-zero scalar can warn
                    labgob.check_default(reply)
                reply.Value = labgob.loads(p.reply)
            else:
                labgob.loads(p.reply, into=reply)
        except labgob.LabgobError as exc:
            raise LabrpcError(f"Call({svcMeth}): cannot decode the reply: {exc}") from exc
        return True


def MakeNetwork() -> Network:
    """A new network: reliable, no long delays, no long reordering."""
    return Network()


class Server:
    """A collection of services sharing one endpoint (e.g. Raft and a KV server)."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._services: dict[str, Service] = {}
        self._methods: dict[str, Callable] = {}   # "Svc.Method" -> bound handler (cache)
        self._count = 0

    def AddService(self, svc: "Service") -> None:
        with self._mu:
            self._services[svc.name] = svc
            self._methods = {}

    def GetCount(self) -> int:
        with self._mu:
            return self._count

    def _lookup(self, svcMeth: str) -> tuple[Callable, type | None, type | None]:
        """The handler of "Svc.Method", and the args and reply classes it is annotated with."""
        m = self._methods.get(svcMeth)
        if m is not None:
            return m
        with self._mu:
            serviceName, _, methodName = svcMeth.rpartition(".")
            svc = self._services.get(serviceName)
            if svc is None:
                raise LabrpcError(f"labrpc: unknown service {serviceName!r} in {svcMeth!r}; "
                                  f"expecting one of {sorted(self._services)}")
            fn = svc.methods.get(methodName)
            if fn is None:
                raise LabrpcError(svc._unknown(methodName, svcMeth))
            m = (fn, *svc.types[methodName])
            self._methods[svcMeth] = m
            return m


def MakeServer() -> Server:
    return Server()


class Service:
    """An object whose methods handle RPCs; made by MakeService(obj)."""

    def __init__(self, rcvr: Any):
        self.rcvr = rcvr
        self.name = type(rcvr).__name__
        self.methods: dict[str, Callable] = {}
        # The args and reply classes each handler is annotated with (None: not checked).
        self.types: dict[str, tuple[type | None, type | None]] = {}
        for mname in dir(type(rcvr)):
            if not mname[:1].isupper():
                continue
            m = getattr(rcvr, mname, None)
            if callable(m) and _takes_two_args(m):
                self.methods[mname] = m
                self.types[mname] = _handler_types(m)
        _warn_lookalikes(self)

    def __repr__(self) -> str:
        return f"Service({self.name}: {sorted(self.methods)})"

    def _unknown(self, methodName: str, svcMeth: str) -> str:
        """Why Call(svcMeth) finds no handler: a method that is not one, or no such method."""
        cls = type(self.rcvr)
        near = [n for n in dir(cls) if n.lower() == methodName.lower() and not n.startswith("_")]
        for n in sorted(near, key=lambda n: n != methodName):   # the exact name first
            why = _not_a_handler(cls, n)
            if why:
                found = "" if n == methodName else f"no method {methodName!r} in {svcMeth!r}: "
                return f"labrpc: {found}{self.name}.{n} is not an RPC handler: {why}"
        return (f"labrpc: unknown method {methodName!r} in {svcMeth!r}; "
                f"expecting one of {sorted(self.methods)}")


_HANDLER_HINTS = (int, str, bytes, bool, float, list, dict, tuple)


def _handler_types(m: Callable) -> tuple[type | None, type | None]:
    """The (args, reply) annotations of a handler that Call can check: registered classes,
    labrpc.Ref and built-in value types; None where there is none (or it cannot be read)."""
    params = list(inspect.signature(m).parameters.values())
    try:
        hints = typing.get_type_hints(m)
    except Exception:  # noqa: BLE001 - e.g. a forward reference to a local class
        hints = {p.name: p.annotation for p in params if isinstance(p.annotation, type)}
    out = []
    for p in params:
        h = hints.get(p.name)
        ok = isinstance(h, type) and (h is Ref or h in _HANDLER_HINTS or labgob.is_registered(h))
        out.append(h if ok else None)
    return out[0], out[1]


def _not_a_handler(cls: type, name: str) -> str:
    """Why cls's attribute `name` is not an RPC handler ("" if it is one)."""
    attr = inspect.getattr_static(cls, name, None)
    bound_drops = 1   # a method's self (or a classmethod's cls) is not passed by Call
    if isinstance(attr, staticmethod):
        attr, bound_drops = attr.__func__, 0
    elif isinstance(attr, classmethod):
        attr = attr.__func__
    if not callable(attr):
        return "it is not a method"
    try:
        params = list(inspect.signature(attr).parameters.values())
    except (TypeError, ValueError):
        return "its parameters cannot be read"
    if not name[:1].isupper():
        return (f"its name must start with an upper-case letter, as in Go "
                f"(rename {name} to {name[:1].upper()}{name[1:]})")
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    passed = params[bound_drops:]
    if len(passed) == 2 and all(p.kind in plain for p in passed):
        return ""
    shown = ", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in params)
    return f"it takes ({shown}), but an RPC handler takes exactly (self, args, reply)"


_warned_mu = threading.Lock()
_warned: set[type] = set()


def _warn_lookalikes(svc: Service) -> None:
    """Go's MakeService complains about bad handler methods: warn, once per class, about
    methods meant as handlers (they have a parameter named reply, or one annotated with a
    ...Reply class) that Call will not find."""
    cls = type(svc.rcvr)
    with _warned_mu:
        if cls in _warned:
            return
        _warned.add(cls)
    for name in dir(cls):
        if name.startswith("_") or name in svc.methods:
            continue
        attr = inspect.getattr_static(cls, name, None)
        if not inspect.isfunction(attr) or not _meant_as_handler(attr):
            continue
        why = _not_a_handler(cls, name)
        if why:
            print(f"labrpc warning: {svc.name}.{name} is not an RPC handler: {why}; "
                  f"Call({svc.name}.{name[:1].upper()}{name[1:]}) will fail", file=sys.stderr)


def _meant_as_handler(fn: Callable) -> bool:
    """A lower-case method taking (args, reply), or an upper-case one with a reply parameter."""
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]   # after self
    except (TypeError, ValueError):
        return False
    if fn.__name__[:1].isupper():
        return any(map(_is_reply_param, params))
    return len(params) == 2 and _is_reply_param(params[1])


def _is_reply_param(p: inspect.Parameter) -> bool:
    ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
    return p.name == "reply" or ann.endswith("Reply")


def _takes_two_args(m: Callable) -> bool:
    try:
        params = list(inspect.signature(m).parameters.values())
    except (TypeError, ValueError):
        return False
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return len(params) == 2 and all(p.kind in plain for p in params)


def MakeService(rcvr: Any) -> Service:
    """Register rcvr's handlers (public, upper-case initial, two parameters) as 'Type.Method'."""
    return Service(rcvr)
