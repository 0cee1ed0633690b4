"""labsim: deterministic simulation of the labs' threads, time and randomness.

Usage:
    KUBEKV_SIM=1 python -m pytest raft1 rsm kvraft1 -n 2      # every lab test, simulated
    KUBEKV_SIM=1 KUBEKV_SIM_SEED=7 python -m pytest raft1/test_raft.py::TestBackup3B   # replay
    KUBEKV_SIM=1 KUBEKV_SIM_SEED=1 python -m pytest raft1 -k 3D --count 100   # seeds 1..100

    import labsim                      # outside pytest
    labsim.install()                   # once, before the lab modules are imported
    sim = labsim.begin(seed=7)         # this thread becomes simulated thread 0
    ...                                # run lab code: its threads, locks, sleeps are simulated
    figures = labsim.end()             # {"seed": 7, "trace": "3f9c...", "virtual_s": ...}

Under simulation exactly one thread runs at a time. Every thread the code starts and every
threading primitive (Lock, RLock, Condition, Event, Semaphore, Barrier, Timer), queue,
raft1.chan, time.sleep and timed wait goes through a scheduler that picks the next thread at
each scheduling point with a generator seeded from the test's seed; when no thread can run,
virtual time jumps to the next timer. time.monotonic/time/perf_counter, random's module
functions and os.urandom are virtual or seeded. The same seed gives the same run: the same
interleaving, network decisions, virtual times and result (the trace hash says so).

What it cannot control it refuses: a thread that runs STALL_S real seconds without a
scheduling point, or reads the clock CLOCK_READS_LIMIT times without one (a busy loop), a
socket or subprocess in a simulated thread, and a run where every thread is blocked with no
timer pending (a deadlock) all fail with a SimError naming the thread and where it is.

Lab code needs no change; nothing in raft.py knows about the simulator.
"""

from __future__ import annotations

import os

from .core import (CLOCK_READS_LIMIT, STALL_S, TICK_S, SimDeadlock, SimError, SimExit, SimStall,
                   begin, current_sim, end, install, installed, interrupt, real_clock)

ENABLE_ENV = "KUBEKV_SIM"
SEED_ENV = "KUBEKV_SIM_SEED"


def enabled() -> bool:
    """Whether this process runs its tests under simulation (KUBEKV_SIM set and not 0)."""
    return os.environ.get(ENABLE_ENV, "").strip() not in ("", "0")


def active() -> bool:
    """Whether a simulation is running in this process now."""
    return current_sim() is not None


def install_from_env() -> bool:
    """install() if KUBEKV_SIM asks for it; True if installed."""
    if enabled():
        install()
    return installed()


__all__ = [
    "CLOCK_READS_LIMIT", "ENABLE_ENV", "SEED_ENV", "STALL_S", "SimDeadlock", "SimError", "SimExit",
    "SimStall", "TICK_S", "active", "begin", "current_sim", "enabled", "end", "install",
    "install_from_env", "installed", "interrupt", "real_clock",
]
