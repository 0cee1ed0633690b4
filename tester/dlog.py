"""Per-peer debug logging by topic: 6.5840's DPrintf, as in "Debugging by Pretty Printing".

Usage, in a solution (raft.py, rsm.py, server.py, ...):
    from tester import dlog
    dlog.DPrintf(dlog.VOTE, self.me, "granting vote to S%d in T%d", args.CandidateId, args.Term)

    KUBEKV_DEBUG=all python -m pytest raft1 -k TestBackup3B            # every topic, to stderr
    KUBEKV_DEBUG=vote,leader,term KUBEKV_DEBUG_FILE=run.log python -m pytest ...
    kubekv logs run.log --columns                                      # pretty-print it

Off (KUBEKV_DEBUG unset or empty) DPrintf returns at once: it formats nothing and takes no lock.
On, each line is "<ms since the test's first line> <TOPIC> S<peer> <message>", for example
"001234 VOTE S2 granting vote to S0 in T3", written by a `logging` handler of its own (not through the logger tree,
so pytest's log capture does not copy it) to KUBEKV_DEBUG_FILE (appended) or stderr; `kubekv logs` parses exactly this.  The last
TAIL_LINES lines of each peer are also kept, and a failing lab test's report ends with them.
"""

from __future__ import annotations

import _thread
import collections
import logging
import os
import time
from typing import Any

ENABLE_ENV = "KUBEKV_DEBUG"
FILE_ENV = "KUBEKV_DEBUG_FILE"

TIMER, VOTE, LEADER, TERM = "TIMR", "VOTE", "LEAD", "TERM"
APPEND, COMMIT, APPLY, PERSIST, SNAPSHOT = "LOG", "CMIT", "APLY", "PERS", "SNAP"
RSM, KV, CLIENT, TEST, INFO, WARN, ERROR = "RSM", "KV", "CLNT", "TEST", "INFO", "WARN", "ERRO"
TOPICS = {"timer": TIMER, "vote": VOTE, "leader": LEADER, "term": TERM, "append": APPEND,
          "commit": COMMIT, "apply": APPLY, "persist": PERSIST, "snapshot": SNAPSHOT, "rsm": RSM,
          "kv": KV, "client": CLIENT, "test": TEST, "info": INFO, "warn": WARN, "error": ERROR}
# Lines kept per peer for a failing test's report.
TAIL_LINES = 15

_enabled: frozenset[str] = frozenset()
_start: float | None = None   # the clock at the first line since reset_tails()
_handler: logging.Handler | None = None
_tails: dict[Any, collections.deque] = {}
# Raw locks, here and in the handler: under labsim a threading lock is a scheduling point,
# and turning the log on must not change a replayed schedule.
_tails_mu = _thread.allocate_lock()


class _RawLockFileHandler(logging.FileHandler):
    def createLock(self) -> None:
        self.lock = _thread.RLock()


class _RawLockStreamHandler(logging.StreamHandler):
    def createLock(self) -> None:
        self.lock = _thread.RLock()


class DebugConfigError(ValueError):
    """KUBEKV_DEBUG names a topic that does not exist."""


def parse_topics(text: str, source: str = ENABLE_ENV) -> frozenset[str]:
    """"all" or comma-separated topic names (vote,append or VOTE,LOG) -> the tags switched on;
    source names where the text came from, for the error."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if any(n.lower() == "all" for n in names):
        return frozenset(TOPICS.values())
    tags = set()
    for n in names:
        tag = TOPICS.get(n.lower()) or (n.upper() if n.upper() in TOPICS.values() else None)
        if tag is None:
            raise DebugConfigError(f"{source}: unknown topic {n!r}; use all or some of "
                                   f"{', '.join(TOPICS)}, comma-separated (e.g. vote,leader)")
        tags.add(tag)
    return frozenset(tags)


def configure(topics: str | None = None, path: str | None = None) -> None:
    """Switch topics on ("" turns logging off); by default from KUBEKV_DEBUG and KUBEKV_DEBUG_FILE."""
    global _enabled, _handler
    topics = os.environ.get(ENABLE_ENV, "") if topics is None else topics
    path = os.environ.get(FILE_ENV, "") if path is None else path
    _enabled = parse_topics(topics)
    if _handler is not None:
        _handler.close()
        _handler = None
    if _enabled:
        _handler = _RawLockFileHandler(path, encoding="utf-8") if path else _RawLockStreamHandler()
        _handler.setFormatter(logging.Formatter("%(message)s"))


def enabled(topic: str) -> bool:
    """Is topic switched on?  Guard costly arguments with it."""
    return topic in _enabled


def DPrintf(topic: str, peer: Any, fmt: str, *args: Any) -> None:
    """Log fmt % args for peer under topic, if that topic is switched on."""
    global _start
    if topic not in _enabled:
        return
    now = time.monotonic()
    if _start is None:
        _start = now
    ms = int((now - _start) * 1000)
    line = f"{ms:06d} {topic} S{peer} {fmt % args if args else fmt}"
    _handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.DEBUG, "levelname": "DEBUG"}))
    with _tails_mu:
        tail = _tails.get(peer)
        if tail is None:
            tail = _tails[peer] = collections.deque(maxlen=TAIL_LINES)
        tail.append(line)


def reset_tails() -> None:
    """Forget the kept lines and restart the clock (a new test begins)."""
    global _start
    with _tails_mu:
        _tails.clear()
        _start = None


def tails() -> dict[Any, list[str]]:
    """The last TAIL_LINES lines of each peer, by peer."""
    with _tails_mu:
        return {peer: list(lines) for peer, lines in sorted(_tails.items(), key=lambda kv: str(kv[0]))}


configure()
