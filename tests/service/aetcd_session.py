"""One session of aetcd (PyPI's asyncio etcd v3 client) against a running cluster; prints JSON.

Run:  python tests/service/aetcd_session.py --endpoints 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379
      (tests/service/test_etcd_clients.py runs it against a LocalCluster and checks the JSON)

Its own process, and it never imports kubekv.etcd: aetcd ships generated etcd protobuf modules
that register the same full names (etcdserverpb.*, mvccpb.*) as kubekv/etcd/pb, and one process
cannot load both. Keys are put under --prefix; what each step saw goes to stdout as one JSON
object (bytes as UTF-8 text). An exception ends the session with its repr under "error", and
the steps done so far, and exit status 1. Every await is bounded (STEP_TIMEOUT_S).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import sys
import traceback
from typing import Any

import aetcd
from aetcd import exceptions

STEP_TIMEOUT_S = 20.0
EVENT_TIMEOUT_S = 10.0


def text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def kv(k: Any) -> dict | None:
    if k is None:
        return None
    return {"key": text(k.key), "value": text(k.value), "create_revision": k.create_revision,
            "mod_revision": k.mod_revision, "version": k.version, "lease": k.lease}


def event(e: Any) -> dict:
    out = {"type": str(e.kind), "key": text(e.kv.key), "value": text(e.kv.value),
           "mod_revision": e.kv.mod_revision, "version": e.kv.version}
    if e.prev_kv is not None:
        out["prev_value"] = text(e.prev_kv.value)
    return out


async def step(aw: Any) -> Any:
    return await asyncio.wait_for(aw, STEP_TIMEOUT_S)


async def converged(client: Any, key: bytes, want: bytes) -> str | None:
    """A serializable read of key on client's member, repeated until it gives want (up to 10 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while True:
        got = await step(client.get(key, serializable=True))
        value = None if got is None else got.value
        if value == want or loop.time() > deadline:
            return None if value is None else text(value)
        await asyncio.sleep(0.05)


async def events(watch: Any, n: int) -> list[dict]:
    """The first n events of a watch (fewer if it ends, or none comes for EVENT_TIMEOUT_S)."""
    got: list[dict] = []
    it = watch.__aiter__()
    while len(got) < n:
        try:
            e = await asyncio.wait_for(it.__anext__(), EVENT_TIMEOUT_S)
        except (asyncio.TimeoutError, StopAsyncIteration):
            break
        got.append(event(e))
    return got


async def session(endpoints: list[str], prefix: str, out: dict) -> None:
    clients = []
    for ep in endpoints:
        host, port = ep.rsplit(":", 1)
        clients.append(aetcd.Client(host=host, port=int(port), timeout=10))
    c = clients[0]
    p = prefix.encode()
    try:
        for ci in clients:
            await step(ci.connect())

        # -- put, get, range, delete --------------------------------------------------------
        r = await step(c.put(p + b"a", b"1"))
        out["put_revision"] = r.header.revision
        out["put_header"] = {"cluster_id": r.header.cluster_id, "member_id": r.header.member_id,
                             "raft_term": r.header.raft_term}
        out["get"] = kv(await step(c.get(p + b"a")))
        out["get_missing"] = kv(await step(c.get(p + b"missing")))
        # Every member answers, leader or not (a follower forwards or confirms the read).
        out["get_each"] = [text((await step(ci.get(p + b"a"))).value) for ci in clients]
        # A serializable read is this member's own state, which may lag: it converges.
        out["get_each_serializable"] = [await converged(ci, p + b"a", b"1") for ci in clients]
        await step(c.put(p + b"b", b"2"))
        await step(c.put(p + b"c/d", b"3"))
        # Just past the prefix: the range end of prefix itself (excluded), and a key before it.
        outside_after = aetcd.utils.prefix_range_end(p)
        outside_before = p[:-1] + bytes([p[-1] - 1])
        await step(c.put(outside_after, b"after"))
        await step(c.put(outside_before, b"before"))
        rng = await step(c.get_prefix(p))
        out["get_prefix"] = {"count": rng.count, "more": rng.more,
                             "kvs": [[text(k.key), text(k.value)] for k in rng]}
        rng = await step(c.get_prefix(p, keys_only=True))
        out["get_prefix_keys_only"] = [[text(k.key), text(k.value)] for k in rng]
        rng = await step(c.get_prefix(p, sort_order="descend", sort_target="key"))
        out["get_prefix_descend"] = [text(k.key) for k in rng]
        rng = await step(c.get_range(p + b"a", p + b"c"))
        out["get_range"] = [[text(k.key), text(k.value)] for k in rng]
        d = await step(c.delete(p + b"b", prev_kv=True))
        out["delete"] = {"deleted": d.deleted, "prev_value": text(d.prev_kv.value)}
        out["delete_again"] = None if await step(c.delete(p + b"b")) is None else "deleted something"
        out["get_deleted"] = kv(await step(c.get(p + b"b")))
        dr = await step(c.delete_prefix(p + b"c/"))
        out["delete_prefix"] = dr.deleted
        out["get_prefix_after_delete"] = [text(k.key) for k in await step(c.get_prefix(p))]

        # -- transactions -------------------------------------------------------------------
        t = c.transactions
        ok, resps = await step(c.transaction(compare=[t.value(p + b"a") == b"1"],
                                             success=[t.put(p + b"a", b"2"), t.get(p + b"a")],
                                             failure=[t.get(p + b"a")]))
        out["txn_value_then"] = {"succeeded": ok, "put_revision": resps[0].response_put.header.revision,
                                 "get": [text(v) for v, _ in resps[1]]}
        ok, resps = await step(c.transaction(compare=[t.value(p + b"a") == b"1"],
                                             success=[t.put(p + b"a", b"never")],
                                             failure=[t.get(p + b"a")]))
        out["txn_value_else"] = {"succeeded": ok, "get": [text(v) for v, _ in resps[0]]}
        cur = await step(c.get(p + b"a"))
        ok, _ = await step(c.transaction(
            compare=[t.version(p + b"a") == cur.version, t.mod(p + b"a") == cur.mod_revision],
            success=[t.put(p + b"a", b"3")], failure=[]))
        out["txn_version_mod"] = {"succeeded": ok, "value": text((await step(c.get(p + b"a"))).value)}
        ok, _ = await step(c.transaction(compare=[t.mod(p + b"a") == cur.mod_revision],
                                         success=[t.put(p + b"a", b"stale")], failure=[]))
        out["txn_stale_mod"] = {"succeeded": ok, "value": text((await step(c.get(p + b"a"))).value)}
        created = []
        for _ in range(2):   # Kubernetes' create: the key's create revision is 0 (it does not exist)
            ok, _ = await step(c.transaction(compare=[t.create(p + b"new") == 0],
                                             success=[t.put(p + b"new", b"created")], failure=[]))
            created.append(ok)
        out["txn_create"] = created
        ok, resps = await step(c.transaction(
            compare=[t.version(p + b"a") > 0],
            success=[t.txn(compare=[t.value(p + b"new") == b"created"],
                           success=[t.delete(p + b"new")], failure=[])],
            failure=[]))
        out["txn_nested"] = {"succeeded": ok, "inner_succeeded": resps[0].response_txn.succeeded,
                             "new": kv(await step(c.get(p + b"new")))}

        # -- leases -------------------------------------------------------------------------
        lease = await step(c.lease(60))
        await step(c.put(p + b"l", b"leased", lease=lease))
        got = await step(c.get(p + b"l"))
        out["lease"] = {"ttl": lease.ttl, "id_nonzero": lease.id != 0, "key_lease_matches": got.lease == lease.id,
                        "keys": [text(k) for k in await step(lease.keys())],
                        "granted_ttl": await step(lease.granted_ttl()),
                        "remaining_ttl": await step(lease.remaining_ttl()),
                        "refresh_ttl": (await step(lease.refresh())).TTL}
        await step(lease.revoke())
        out["lease_revoked"] = {"get": kv(await step(c.get(p + b"l"))),
                                "remaining_ttl": await step(lease.remaining_ttl())}
        try:
            await step(c.revoke_lease(lease.id))
            out["lease_revoke_again"] = "no error"
        except exceptions.ClientError as exc:
            out["lease_revoke_again"] = str(exc)

        # -- watch --------------------------------------------------------------------------
        wp = p + b"w/"
        watch = await step(clients[1 % len(clients)].watch_prefix(wp))   # on another member
        revs = {}
        revs["x1"] = (await step(c.put(wp + b"x", b"1"))).header.revision
        revs["y2"] = (await step(c.put(wp + b"y", b"2"))).header.revision
        revs["del_x"] = (await step(c.delete(wp + b"x"))).header.revision
        await step(c.put(p + b"not-watched", b"0"))
        ok, resps = await step(c.transaction(compare=[], success=[t.put(wp + b"z", b"3")], failure=[]))
        revs["z3"] = resps[0].response_put.header.revision
        out["watch_revisions"] = revs
        out["watch"] = await events(watch, 4)
        await step(watch.cancel())
        # From a past revision, on a third member: the history, then live events.
        watch = await step(clients[2 % len(clients)].watch(wp + b"x", start_revision=revs["x1"]))
        hist = await events(watch, 2)
        live_rev = (await step(c.put(wp + b"x", b"4"))).header.revision
        hist += await events(watch, 1)
        await step(watch.cancel())
        out["watch_history"] = {"events": hist, "live_revision": live_rev}
        watch = await step(c.watch_prefix(wp, start_revision=revs["x1"], kind=aetcd.EventKind.PUT))
        out["watch_puts_only"] = await events(watch, 4)
        await step(watch.cancel())
        watch = await step(c.watch_prefix(wp, start_revision=revs["del_x"], kind=aetcd.EventKind.DELETE,
                                          prev_kv=True))
        out["watch_deletes_prev_kv"] = await events(watch, 1)
        await step(watch.cancel())

        # -- a lock (txn on create revision 0, a lease, a watch for the DELETE) ---------------
        lk = p + b"lock"
        first = c.lock(lk, ttl=30)
        second = clients[1 % len(clients)].lock(lk, ttl=30)
        out_lock = {"first_acquired": await step(first.acquire(timeout=10))}
        waiter = asyncio.ensure_future(second.acquire(timeout=15))
        await asyncio.sleep(1.0)
        out_lock["second_waited"] = not waiter.done()
        out_lock["first_released"] = await step(first.release())
        out_lock["second_acquired"] = await step(waiter)
        out_lock["second_holds"] = await step(second.is_acquired())
        out_lock["first_holds"] = await step(first.is_acquired())
        out_lock["second_released"] = await step(second.release())
        out["lock"] = out_lock

        # -- status, members, alarms ---------------------------------------------------------
        statuses = []
        for ci in clients:
            s = await step(ci.status())
            statuses.append({"version": s.version, "leader_id": s.leader.id if s.leader else None,
                             "leader_name": s.leader.name if s.leader else None,
                             "leader_client_urls": list(s.leader.client_urls) if s.leader else [],
                             "raft_term": s.raft_term, "raft_index": s.raft_index, "db_size": s.db_size})
        out["status"] = statuses
        members = []
        async for m in c.members():
            members.append({"id": m.id, "name": m.name, "peer_urls": list(m.peer_urls),
                            "client_urls": list(m.client_urls)})
        out["members"] = members
        out["alarms"] = [[a.alarm_type, a.member_id] async for a in c.list_alarms()]

        # -- errors ---------------------------------------------------------------------------
        try:
            await step(c.put(b"", b"v"))
            out["empty_key"] = "no error"
        except exceptions.InvalidArgumentError as exc:
            out["empty_key"] = str(exc)

        # -- compaction: a watch from before it ends with the compact revision ----------------
        # Through the leader: a follower answers a write the leader has applied, maybe before it
        # has applied it itself (etcd waits for that), and could still serve the compacted history.
        urls = [f"http://{ep}" for ep in endpoints]
        leader_urls = statuses[0]["leader_client_urls"]
        lc = clients[urls.index(leader_urls[0])] if leader_urls and leader_urls[0] in urls else c
        now = (await step(lc.get(p + b"a"))).header.revision
        await step(lc.compact(now, physical=True))
        watch = await step(lc.watch_prefix(wp, start_revision=revs["x1"]))
        try:
            got = await events(watch, 1)
            out["watch_compacted"] = f"no error: {got}"
        except exceptions.RevisionCompactedError as exc:
            out["watch_compacted"] = {"compacted_revision": exc.compacted_revision, "compacted_at": now}
    finally:
        for ci in clients:
            try:
                await asyncio.wait_for(ci.close(), 5)
            except Exception:
                pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", required=True, help="host:port,... (3 members for every step)")
    ap.add_argument("--prefix", default="/aetcd/", help="the keys' prefix (ends with a character "
                    "other than the lowest and highest byte)")
    args = ap.parse_args()
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    try:
        version = importlib.metadata.version("aetcd")
    except importlib.metadata.PackageNotFoundError:
        version = None
    out: dict = {"aetcd": version}
    status = 0
    try:
        asyncio.run(session(endpoints, args.prefix, out))
    except Exception as exc:
        out["error"] = repr(exc)
        out["traceback"] = traceback.format_exc()
        status = 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
