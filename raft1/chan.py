"""Go-style channels for threads: `Chan()` is unbuffered, `Chan(n)` buffered.

Usage:
    ch = Chan()                    # like make(chan T): a send waits for a receiver
    ch.send(msg)                   # ch <- msg   (raises ChanClosed after close)
    msg, ok = ch.recv()            # msg, ok := <-ch   (ok is False once closed and drained)
    msg, ok = ch.recv(timeout=0.1) # select { case msg, ok := <-ch: ... case <-time.After(100ms): }
                                   #   raises TimeoutError when nothing came
    for msg in ch: ...             # for msg := range ch   (ends at close)
    ch.close()                     # close(ch): wakes every waiting sender and receiver

The unbuffered form matters for Raft: the lab's applyCh is unbuffered, so a Raft
that holds its lock while sending on applyCh deadlocks against a tester that calls
Snapshot() from the receiving thread (the classic 3D bug). This class keeps that
behaviour so the Python labs teach the same lesson.
"""

from __future__ import annotations

import collections
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
                return
            cell = _Cell(value)
            self._items.append(cell)
            self._not_empty.notify()
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
                self._wait(self._not_empty, deadline, "recv")
            cell = self._items.popleft()
            cell.taken = True
            self._taken.notify_all()
            return cell.value, True

    def close(self) -> None:
        """Close the channel. Idempotent here (Go panics on a double close; nothing good comes of copying that)."""
        with self._mutex:
            self._closed = True
            self._not_empty.notify_all()
            self._taken.notify_all()

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

    @staticmethod
    def _wait(cond: threading.Condition, deadline: float | None, what: str) -> None:
        if deadline is None:
            cond.wait()
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not cond.wait(remaining):
            if deadline - time.monotonic() <= 0:
                raise TimeoutError(f"Chan.{what} timed out")


__all__ = ["Chan", "ChanClosed"]
