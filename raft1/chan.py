"""Go-style channels for threads: `Chan()` is unbuffered, `Chan(n)` buffered.

Usage:
    ch = Chan()                    # like make(chan T): a send waits for a receiver
    ch.send(msg)                   # ch <- msg   (raises ChanClosed after close)
    msg, ok = ch.recv()            # msg, ok := <-ch   (ok is False once closed and drained)
    msg, ok = ch.recv(timeout=0.1) # select { case msg, ok := <-ch: ... case <-time.After(100ms): }
                                   #   raises TimeoutError when nothing came
    for msg in ch: ...             # for msg := range ch   (ends at close)
    ch.close()                     # close(ch): wakes every waiting sender and receiver

    i, v, ok = select(Recv(a), Recv(b), Send(c, x))   # Go's select: waits for the first ready
                                   #   case (a random one if several are ready, as Go picks);
                                   #   i is its index, (v, ok) what a Recv got
    i, v, ok = select(Recv(a), default=True)   # ... default: (DEFAULT, None, False) if none ready
    i, v, ok = select(Recv(a), timeout=0.1)    # ... case <-time.After(100ms): TimeoutError
    select(Recv(None), ...)        # a nil channel's case is never ready, as in Go

The unbuffered form matters for Raft: the lab's applyCh is unbuffered, so a Raft
that holds its lock while sending on applyCh deadlocks against a tester that calls
Snapshot() from the receiving thread (the classic 3D bug). This class keeps that
behaviour so the Python labs teach the same lesson.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any, Generic, Iterator, TypeVar

T = TypeVar("T")


class ChanClosed(Exception):
    """Raised by send() on a closed channel (Go panics: "send on closed channel")."""


class _Cell:
    """One value in flight; `taken` tells an unbuffered sender that a receiver has it."""

    __slots__ = ("value", "taken")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.taken = False

    def __eq__(self, other: object) -> bool:  # deque.remove must match this cell only
        return self is other


class Chan(Generic[T]):
    """A Go channel. capacity 0 (the default) is a rendezvous: send() returns once a receiver has the value."""

    def __init__(self, capacity: int = 0) -> None:
        if capacity < 0:
            raise ValueError(f"Chan capacity must be >= 0, got {capacity}")
        self._capacity = capacity
        self._mutex = threading.Lock()
        # Notified when an item is queued or the channel closes: receivers wait on it.
        self._not_empty = threading.Condition(self._mutex)
        # Notified when an item is taken or the channel closes: senders wait on it
        # (for buffer room, and in the unbuffered case for their item to be taken).
        self._taken = threading.Condition(self._mutex)
        self._items: collections.deque = collections.deque()
        self._closed = False
        # Receivers blocked in recv(): an unbuffered send in a select is ready only if one waits.
        self._receivers = 0
        # Events of the select() calls waiting on this channel: set on every change.
        self._selectors: set[threading.Event] = set()

    def send(self, value: T, timeout: float | None = None) -> None:
        """Send value; blocks while the buffer is full (or, unbuffered, until a receiver takes it).

        Raises ChanClosed if the channel is or becomes closed before the value is taken,
        and TimeoutError if timeout seconds pass first (the value is then withdrawn).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            if self._closed:
                raise ChanClosed("send on closed channel")
            if self._capacity > 0:
                while len(self._items) >= self._capacity:
                    self._wait(self._taken, deadline, "send")
                    if self._closed:
                        raise ChanClosed("send on closed channel")
                self._items.append(_Cell(value))
                self._not_empty.notify()
                if self._selectors:
                    self._wake_selectors()
                return
            cell = _Cell(value)
            self._items.append(cell)
            self._not_empty.notify()
            if self._selectors:
                self._wake_selectors()
            self._await_taken(cell, deadline)

    def _await_taken(self, cell: _Cell, deadline: float | None) -> None:
        """Unbuffered: wait (mutex held) until a receiver takes cell; withdraw it on timeout."""
        while not cell.taken:
                if self._closed:
                    raise ChanClosed("send on closed channel")
                try:
                    self._wait(self._taken, deadline, "send")
                except TimeoutError:
                    if not cell.taken:
                        self._items.remove(cell)
                        raise

    def recv(self, timeout: float | None = None) -> tuple[T | None, bool]:
        """Receive (value, True); (None, False) once closed and empty; TimeoutError after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mutex:
            while not self._items:
                if self._closed:
                    return None, False
                self._receivers += 1
                if self._selectors:
                    self._wake_selectors()  # a select may now send to us
                try:
                    self._wait(self._not_empty, deadline, "recv")
                finally:
                    self._receivers -= 1
            return self._take()

    def _take(self) -> tuple[T, bool]:
        cell = self._items.popleft()
        cell.taken = True
        self._taken.notify_all()
        if self._selectors:
            self._wake_selectors()
        return cell.value, True

    def close(self) -> None:
        """Close the channel. Idempotent here (Go panics on a double close; nothing good comes of copying that)."""
        with self._mutex:
            self._closed = True
            self._not_empty.notify_all()
            self._taken.notify_all()
            self._wake_selectors()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        while True:
            value, ok = self.recv()
            if not ok:
                return
            yield value  # type: ignore[misc]

    def _wake_selectors(self) -> None:
        for ev in self._selectors:
            ev.set()

    # -- select's side (each called with the mutex held) ----------------------------------------

    def _try_recv(self) -> tuple[bool, T | None, bool]:
        """(ready, value, ok) without blocking."""
        if self._items:
            value, ok = self._take()
            return True, value, ok
        if self._closed:
            return True, None, False
        return False, None, False

    def _try_send(self, value: T, deadline: float | None) -> bool:
        """Send if there is room or a waiting receiver (then wait for it, until deadline); True if sent."""
        if self._closed:
            raise ChanClosed("send on closed channel")
        if self._capacity > 0:
            if len(self._items) >= self._capacity:
                return False
            self._items.append(_Cell(value))
        else:
            if self._receivers <= len(self._items):
                return False  # every waiting receiver already has a value coming
            cell = _Cell(value)
            self._items.append(cell)
            self._not_empty.notify()
            self._wake_selectors()
            self._await_taken(cell, deadline)  # a receiver waits: a rendezvous, as in Go
            return True
        self._not_empty.notify()
        if self._selectors:
            self._wake_selectors()
        return True

    @staticmethod
    def _wait(cond: threading.Condition, deadline: float | None, what: str) -> None:
        if deadline is None:
            cond.wait()
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not cond.wait(remaining):
            if deadline - time.monotonic() <= 0:
                raise TimeoutError(f"Chan.{what} timed out")


class Recv:
    """A select case: receive from ch (None: a nil channel, never ready)."""

    __slots__ = ("ch",)

    def __init__(self, ch: Chan | None) -> None:
        self.ch = ch


class Send:
    """A select case: send value on ch (None: a nil channel, never ready)."""

    __slots__ = ("ch", "value")

    def __init__(self, ch: Chan | None, value: Any) -> None:
        self.ch = ch
        self.value = value


# select()'s index when default=True and no case was ready.
DEFAULT = -1


def select(*cases: Recv | Send, default: bool = False, timeout: float | None = None) -> tuple[int, Any, bool]:
    """Go's select: run the first ready case, a random one among those ready at once.

    Returns (index of the case, value, ok): for a Recv what recv() returns, for a Send
    (None, True). With default=True and no case ready: (DEFAULT, None, False). With timeout
    (seconds) and no case ready by then: TimeoutError. A Send on a closed channel raises
    ChanClosed, as Go panics.
    """
    for c in cases:
        if not isinstance(c, (Recv, Send)) or not (c.ch is None or isinstance(c.ch, Chan)):
            raise TypeError(f"select: each case is Recv(ch) or Send(ch, value) on a Chan, got {c!r}")
    if default and timeout is not None:
        raise ValueError("select: default=True never waits, so a timeout means nothing with it")
    live = [(i, c) for i, c in enumerate(cases) if c.ch is not None]
    deadline = None if timeout is None else time.monotonic() + timeout
    wake = threading.Event()  # set by any of the channels when it changes
    registered = False
    try:
        while True:
            random.shuffle(live)
            for i, c in live:
                with c.ch._mutex:
                    if isinstance(c, Recv):
                        ready, value, ok = c.ch._try_recv()
                        if ready:
                            return i, value, ok
                    elif c.ch._try_send(c.value, deadline):
                        return i, None, True
            if default:
                return DEFAULT, None, False
            if not registered:
                # Register, then look once more before sleeping: a change between the look
                # above and the registration would otherwise be missed.
                for _, c in live:
                    with c.ch._mutex:
                        c.ch._selectors.add(wake)
                        if isinstance(c, Recv):  # a waiting receiver, for another select's Send
                            c.ch._receivers += 1
                            c.ch._wake_selectors()
                registered = True
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0 or not wake.wait(remaining):
                raise TimeoutError("select timed out")
            wake.clear()  # every change before this is seen by the next look
    finally:
        if registered:
            for _, c in live:
                with c.ch._mutex:
                    c.ch._selectors.discard(wake)
                    if isinstance(c, Recv):
                        c.ch._receivers -= 1


__all__ = ["Chan", "ChanClosed", "DEFAULT", "Recv", "Send", "select"]
