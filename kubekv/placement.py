"""Which core a KubeKV server runs on.

Usage:
    problem = pin_server(me, n, "auto")    # at start, before any thread: None, or what is wrong
    placer = RolePlacement(me, n, is_leader=lambda: raft.GetState()[1])
    placer.start() ... placer.stop()       # only when pin_server said placement follows the role

A server process runs on one core: the GIL lets one of its threads run at a time anyway, and a
thread hand-off across cores costs ~40 us against ~3 us on one core. With a core per server
("auto" on a machine with at least as many cores as servers) the core is the id's. With fewer
cores than servers some servers must share, and the leader does most of the work (every
client request, every AppendEntries), so "auto" gives the leader the first core to itself and
the followers the others; each server moves its threads when its own role changes.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from labrpc.affinity import CORES_BEFORE_PIN_ENV, allowed_cores, pin_all_threads

# How often a server looks at its role; a new leader is on its own core within this.
ROLE_CHECK_INTERVAL_S = 0.2


def pin_server(me: int, n: int, how: str) -> str | None:
    """Pin this (still single-threaded) server process to its first core; a problem, or None."""
    cores = allowed_cores()
    if how == "none" or not cores:
        return None
    if how == "auto":
        core = core_for(me, n, leader=False, cores=cores)
    elif how.isdigit() and int(how) in cores:
        core = int(how)
    else:
        return f"--pin-core {how!r}: give 'auto', 'none' or one of the cores {cores}"
    os.environ[CORES_BEFORE_PIN_ENV] = ",".join(map(str, cores))   # for allowed_cores() later
    pin_all_threads(core)
    return None


def follows_role(n: int, how: str) -> bool:
    """Whether a server pinned with `how` moves when its role changes (fewer cores than servers)."""
    cores = allowed_cores()
    return how == "auto" and 1 < len(cores) < n


def core_for(me: int, n: int, leader: bool, cores: list[int]) -> int:
    """Server me's core: its own by id if every server gets one; else the first for the leader."""
    if len(cores) >= n or len(cores) == 1:
        return cores[me % len(cores)]
    if leader:
        return cores[0]
    others = cores[1:]
    return others[me % len(others)]


class RolePlacement:
    """A thread that keeps this server on the core its role calls for (see core_for)."""

    def __init__(self, me: int, n: int, is_leader: Callable[[], bool]) -> None:
        self.me, self.n = me, n
        self.is_leader = is_leader
        self.cores = allowed_cores()
        self.core = core_for(me, n, leader=False, cores=self.cores)
        self.moves = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="placement", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        straggle = False
        while not self._stop.wait(ROLE_CHECK_INTERVAL_S):
            core = core_for(self.me, self.n, self.is_leader(), self.cores)
            if core != self.core or straggle:
                # Threads started while we moved the others may keep the old core: once more.
                straggle = core != self.core
                self.moves += straggle
                self.core = core
                pin_all_threads(core)
