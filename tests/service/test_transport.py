"""kubekv.transport on real sockets in one process: labrpc's Call contract, and batching.

Usage:
    python -m pytest tests/service/test_transport.py -q
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import grpc
import msgpack
import pytest

import labgob
import labrpc
from kubekv import transport
from kubekv.cluster import free_ports
from kubekv.transport import PeerEnd, RpcServer


@dataclass
class EchoArgs:
    X: int = 0


@dataclass
class EchoReply:
    X: int = 0


labgob.Register(EchoArgs)
labgob.Register(EchoReply)


class Gate:
    """Echo.Hold answers only once `gate` is set; Echo.Now at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.held = threading.Semaphore(0)   # released once per Hold that has started

    def Hold(self, args: EchoArgs, reply: EchoReply) -> None:
        self.held.release()
        self.gate.wait(10)
        reply.X = args.X

    def Now(self, args: EchoArgs, reply: EchoReply) -> None:
        reply.X = args.X + 1


class Raft:
    """A peer service: its calls must never queue behind clients'."""

    def Ping(self, args: EchoArgs, reply: EchoReply) -> None:
        reply.X = -args.X


@pytest.fixture
def served():
    port = free_ports(1)[0]
    gate = Gate()
    server = RpcServer(me=0)
    server.AddService(labrpc.MakeService(gate), clients=True)
    server.AddService(labrpc.MakeService(Raft()))
    server.serve(f"127.0.0.1:{port}")
    yield f"127.0.0.1:{port}", server, gate
    gate.gate.set()
    server.stop()


def _call(end: PeerEnd, method: str, x: int, timeout_s: float | None = None) -> int | None:
    reply = EchoReply()
    return reply.X if end.Call(method, EchoArgs(X=x), reply, timeout_s=timeout_s) else None


def TestConcurrentCallsRideInBatchesAndEachGetsItsOwnAnswer(served) -> None:
    address, server, gate = served
    ends = [PeerEnd(address) for _ in range(40)]      # 40 clients, one shared connection
    answers: dict[int, int | None] = {}

    def client(k: int) -> None:
        answers[k] = _call(ends[k], "Gate.Hold", k)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    # The first BATCHES_IN_FLIGHT calls reach the handler; the rest can only queue until then.
    for _ in range(transport.BATCHES_IN_FLIGHT):
        assert gate.held.acquire(timeout=10)
    gate.gate.set()
    for t in threads:
        t.join(10)
    assert answers == {k: k for k in range(40)}
    stats = server.stats()
    assert stats["calls"] + stats["batched_calls"] == 40
    assert stats["batches"] >= 1 and stats["batched_calls"] >= 40 - 2 * transport.BATCHES_IN_FLIGHT
    assert stats["batches"] < stats["batched_calls"], stats
    for end in ends:
        end.Close()


def TestRaftCallsNeverWaitBehindQueuedClientCalls(served) -> None:
    address, _, gate = served
    client_ends = [PeerEnd(address) for _ in range(transport.BATCHES_IN_FLIGHT + 3)]
    threads = [threading.Thread(target=_call, args=(e, "Gate.Hold", 1)) for e in client_ends]
    for t in threads:
        t.start()
    for _ in range(transport.BATCHES_IN_FLIGHT):
        assert gate.held.acquire(timeout=10)
    # Every slot is taken by a held call: a client call now queues, a peer's Raft call does not.
    peer = PeerEnd(address, me=1)
    assert _call(peer, "Raft.Ping", 5, timeout_s=5) == -5
    assert _call(PeerEnd(address), "Gate.Now", 1, timeout_s=0.3) is None   # queued, timed out
    gate.gate.set()
    for t in threads:
        t.join(10)
    assert _call(client_ends[0], "Gate.Now", 1) == 2     # the connection is fine afterwards
    peer.Close()
    for end in client_ends:
        end.Close()


def TestCallsToNoServerFailWithinTheirTimeout() -> None:
    address = f"127.0.0.1:{free_ports(1)[0]}"          # nothing listens there
    ends = [PeerEnd(address, timeout_s=0.5) for _ in range(8)]
    results: list[int | None] = []
    start = time.monotonic()
    threads = [threading.Thread(target=lambda e=e: results.append(_call(e, "Gate.Now", 1))) for e in ends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [None] * 8
    assert time.monotonic() - start < 5     # each gives up after its 0.5 s, queued or not
    for end in ends:
        end.Close()


def TestMalformedBatchesAndPeerServicesAreRefused(served) -> None:
    address, _, _ = served
    channel = grpc.insecure_channel(address)
    batch = channel.unary_unary("/kubekv.Rpc/Batch")
    for bad in (b"\xc1", msgpack.packb([-1, []]), msgpack.packb([-1, [["Gate.Now"]]]),
                msgpack.packb(["x", [["Gate.Now", b""]]])):
        with pytest.raises(grpc.RpcError) as err:
            batch(bad, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "malformed batch" in err.value.details()
    # A client may not reach a peer service through a batch either; a bad item fails alone.
    ok_args = labgob.dumps(EchoArgs(X=3))
    results = msgpack.unpackb(batch(msgpack.packb(
        [transport.CLIENT, [["Raft.Ping", ok_args], ["Gate.Now", ok_args], ["Gate.Now", 7]]]), timeout=5))
    assert results[0][0] is False and "unknown service" in results[0][1]
    assert results[1][0] is True and labgob.loads(results[1][1]) == EchoReply(X=4)
    assert results[2][0] is False and "malformed request" in results[2][1]
    channel.close()


def TestQueuedCallsFailAtOnceWhenTheConnectionCloses(served) -> None:
    address, _, gate = served
    ends = [PeerEnd(address, timeout_s=30) for _ in range(transport.BATCHES_IN_FLIGHT + 3)]
    results: list[int | None] = []
    threads = [threading.Thread(target=lambda e=e: results.append(_call(e, "Gate.Hold", 1))) for e in ends]
    for t in threads:
        t.start()
    for _ in range(transport.BATCHES_IN_FLIGHT):
        assert gate.held.acquire(timeout=10)
    start = time.monotonic()
    for end in ends:                    # the last Close closes the shared channel
        end.Close()
    for t in threads:
        t.join(10)
    assert results == [None] * len(ends)
    assert time.monotonic() - start < 10    # not their 30 s timeouts
