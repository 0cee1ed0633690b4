"""raft1.chan: Go channels and Go's select for threads."""

from __future__ import annotations

import collections
import threading

import pytest

from raft1.chan import DEFAULT, Chan, ChanClosed, Recv, Send, select

# Generous bound for "this blocked call returns once the other thread acts".
JOIN_S = 5.0


def _go(fn, *args) -> threading.Thread:
    th = threading.Thread(target=fn, args=args, daemon=True)
    th.start()
    return th


def TestUnbufferedRendezvous():
    ch = Chan()
    got = []
    th = _go(lambda: got.append(ch.recv()))
    ch.send(5)  # returns once the receiver has it
    th.join(JOIN_S)
    assert got == [(5, True)]


def TestRecvAfterCloseDrainsThenFalse():
    ch = Chan(2)
    ch.send(1)
    ch.close()
    assert ch.recv() == (1, True)
    assert ch.recv() == (None, False)
    with pytest.raises(ChanClosed):
        ch.send(2)


def TestSelectDefaultWhenNothingReady():
    assert select(Recv(Chan()), Send(Chan(), 1), default=True) == (DEFAULT, None, False)


def TestSelectTimeout():
    with pytest.raises(TimeoutError):
        select(Recv(Chan()), timeout=0.01)


def TestSelectPicksTheReadyCase():
    a, b = Chan(1), Chan(1)
    b.send("x")
    assert select(Recv(a), Recv(b)) == (1, "x", True)
    assert select(Send(a, 3), Recv(b), default=True) == (0, None, True)
    assert a.recv() == (3, True)


def TestSelectRandomAmongReady():
    """Go picks uniformly among ready cases: neither of two always-ready cases starves."""
    a, b = Chan(1), Chan(1)
    wins = collections.Counter()
    for _ in range(200):
        a.send(0) if not len(a) else None
        b.send(1) if not len(b) else None
        i, _, _ = select(Recv(a), Recv(b))
        wins[i] += 1
    assert wins[0] > 40 and wins[1] > 40, wins


def TestSelectWaitsForALaterSend():
    a, b = Chan(), Chan()
    got = []
    th = _go(lambda: got.append(select(Recv(a), Recv(b))))
    b.send("late")  # unbuffered: returns once the select has taken it
    th.join(JOIN_S)
    assert got == [(1, "late", True)]


def TestSelectSendMeetsWaitingReceiver():
    ch = Chan()
    got = []
    th = _go(lambda: got.append(ch.recv()))
    i, _, ok = select(Send(ch, 9), timeout=JOIN_S)
    th.join(JOIN_S)
    assert (i, ok) == (0, True) and got == [(9, True)]


def TestSelectSendMeetsSelectRecv():
    """Two selects on one unbuffered channel, one sending and one receiving, meet as in Go."""
    ch = Chan()
    got = []
    th = _go(lambda: got.append(select(Recv(ch), Recv(Chan()), timeout=JOIN_S)))
    assert select(Send(ch, "hi"), timeout=JOIN_S)[0] == 0
    th.join(JOIN_S)
    assert got == [(0, "hi", True)]


def TestSelectSeesClose():
    ch = Chan()
    th = _go(lambda: (threading.Event().wait(0.05), ch.close()))
    assert select(Recv(ch), Recv(None)) == (0, None, False)
    th.join(JOIN_S)
    with pytest.raises(ChanClosed):
        select(Send(ch, 1))


def TestSelectNilChannelNeverReady():
    assert select(Recv(None), Send(None, 1), default=True) == (DEFAULT, None, False)


def TestSelectBadCases():
    with pytest.raises(TypeError, match=r"each case is Recv\(ch\) or Send\(ch, value\)"):
        select(Chan())
    with pytest.raises(ValueError, match="default=True never waits"):
        select(Recv(Chan()), default=True, timeout=1)


def TestSelectLeavesNoRegistration():
    a = Chan()
    with pytest.raises(TimeoutError):
        select(Recv(a), timeout=0.01)
    assert not a._selectors and a._receivers == 0
