"""pytest plugin: run the lab tests with the reference solution seen only through Go's API.

Usage:
    python -m pytest -p tests.goapi raft1 rsm kvraft1 -n 2

A student replaces raft1/raft.py, rsm/rsm.py, kvraft1/server.py and kvraft1/client.py, each on
its own, and keeps only the API of the Go lab. This plugin checks that the lab harness (and each
reference part, towards the others) needs nothing more: every object that Make, MakeRSM,
StartKVServer and MakeClerk return is wrapped in a proxy that answers only the Go API's names
and the object's RPC handlers (what labrpc.MakeService registers). Any other attribute read
fails the test with an AttributeError naming the class and the attribute.

| made by | Go API kept |
|---|---|
| raft1.raft.Make | Start, GetState, Snapshot, PersistBytes, Kill |
| rsm.rsm.MakeRSM | Submit(req) (no timeout keyword), Raft |
| kvraft1.server.StartKVServer | Kill (and its RPC handlers) |
| kvraft1.client.MakeClerk | Get, Put |
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any, Callable

from labrpc.labrpc import _takes_two_args

RAFT_API = ("Start", "GetState", "Snapshot", "PersistBytes", "Kill")
RSM_API = ("Submit", "Raft")
KVSERVER_API = ("Kill",)
CLERK_API = ("Get", "Put")


def go_api_proxy(obj: Any, api: tuple[str, ...], handlers: bool) -> Any:
    """obj seen through Go's API: the names in api, plus (if handlers) its RPC handler methods.

    The proxy's class has obj's class name, so labrpc registers its handlers under the same
    service name ("Raft.AppendEntries").
    """
    cls = type(obj)
    names = set(api)
    if handlers:  # what labrpc.MakeService registers
        names |= {n for n in dir(cls) if n[:1].isupper() and callable(getattr(obj, n, None))
                  and _takes_two_args(getattr(obj, n))}
    members: dict[str, Any] = {}
    for name in names:
        if not callable(getattr(cls, name, None)):
            continue
        members[name] = _forward(name, getattr(cls, name))

    def __getattr__(self: Any, name: str) -> Any:
        raise AttributeError(f"{cls.__name__}.{name} is not in Go's API ({', '.join(api)}): "
                             f"a student's {cls.__name__} need not have it")

    def __repr__(self: Any) -> str:
        return f"<Go API of {obj!r}>"

    members.update(__getattr__=__getattr__, __repr__=__repr__, __slots__=("_obj",))
    proxy_cls = type(cls.__name__, (), members)
    proxy = object.__new__(proxy_cls)
    object.__setattr__(proxy, "_obj", obj)
    return proxy


def _forward(name: str, unbound: Any) -> Callable:
    @functools.wraps(unbound)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(object.__getattribute__(self, "_obj"), name)(*args, **kwargs)
    return method


def _wrap_maker(maker: Callable, wrap_result: Callable[[Any], Any]) -> Callable:
    @functools.wraps(maker)
    def made(*args: Any, **kwargs: Any) -> Any:
        return wrap_result(maker(*args, **kwargs))
    made._goapi_original = maker  # type: ignore[attr-defined]
    return made


def _rsm_submit_go(rsm: Any) -> Any:
    """The rsm proxy's Submit takes one argument, as Go's."""
    proxy = go_api_proxy(rsm, RSM_API, handlers=False)

    def Submit(self: Any, req: Any) -> Any:
        return rsm.Submit(req)

    type(proxy).Submit = Submit
    return proxy


def _kv_services(svcs: list) -> list:
    kv, rf = svcs
    return [go_api_proxy(kv, KVSERVER_API, handlers=True), rf]


# (module, function, how to wrap what it returns); Raft is wrapped at Make, so the raft inside
# StartKVServer's answer is already a proxy.
_MAKERS = (
    ("raft1.raft", "Make", lambda rf: go_api_proxy(rf, RAFT_API, handlers=True)),
    ("rsm.rsm", "MakeRSM", _rsm_submit_go),
    ("kvraft1.server", "StartKVServer", _kv_services),
    ("kvraft1.client", "MakeClerk", lambda ck: go_api_proxy(ck, CLERK_API, handlers=False)),
)


def install() -> None:
    """Replace each maker, in its module and in every module that imported it by name."""
    for modname, fname, wrap in _MAKERS:
        mod = importlib.import_module(modname)
        original = getattr(mod, fname)
        if hasattr(original, "_goapi_original"):
            continue
        wrapped = _wrap_maker(original, wrap)
        for other in list(sys.modules.values()):
            if other is not None and getattr(other, fname, None) is original:
                setattr(other, fname, wrapped)


def pytest_configure(config: Any) -> None:
    # Import every lab module that binds a maker by name, so that install() finds them all.
    for modname in ("raft1.server", "rsm.server", "rsm.harness", "kvraft1.harness", "kvraft1.server"):
        importlib.import_module(modname)
    install()


def pytest_report_header(config: Any) -> str:
    return "kubekv: reference solution seen through Go's API only (tests.goapi)"
