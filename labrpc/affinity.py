"""CPU pinning for lab processes.

Usage:
    from labrpc.affinity import pin_to_one_core
    core = pin_to_one_core()          # pins this process; returns the core or None

Why: the GIL runs one Python thread at a time, so a second core buys a lab process
nothing, yet every thread hand-off between cores costs a cross-core wake-up
(measured on the 2-core lab machine: ~40 us per wake-up across cores, ~3 us when
the process is pinned; a labrpc round trip is two hand-offs). Pinning each lab
process to one core therefore makes RPCs several times cheaper.

Policy:
  * KUBEKV_NO_PIN=1 turns pinning off (then threads float over all cores).
  * KUBEKV_PIN_CORE=<n> pins to core n.
  * otherwise a pytest-xdist worker gwK is pinned to core K mod ncores, so two
    workers on a 2-core machine each get a core of their own; any other process
    is pinned to the first core it may run on.
"""

from __future__ import annotations

import os

NO_PIN_ENV = "KUBEKV_NO_PIN"
CORE_ENV = "KUBEKV_PIN_CORE"


# The cores this process could use before it pinned itself; its children (pytest-xdist
# workers, spawned after the controller pinned itself) inherit the one-core mask and read
# the full set from here, or every worker would land on the controller's core.
CORES_BEFORE_PIN_ENV = "KUBEKV_CORES_BEFORE_PIN"


def allowed_cores() -> list[int]:
    """The cores this process may use (before any pinning of its own or of its parent's)."""
    inherited = os.environ.get(CORES_BEFORE_PIN_ENV, "")
    if inherited:
        try:
            return sorted(int(c) for c in inherited.split(","))
        except ValueError:
            pass
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def choose_core() -> int | None:
    """The core this process should run on, or None when pinning is off or unsupported."""
    if os.environ.get(NO_PIN_ENV, "").strip() not in ("", "0"):
        return None
    cores = allowed_cores()
    if not cores:
        return None
    forced = os.environ.get(CORE_ENV, "").strip()
    if forced:
        if not forced.isdigit() or int(forced) not in cores:
            raise ValueError(f"{CORE_ENV}={forced!r}: not one of the allowed cores {cores}")
        return int(forced)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return cores[int(worker[2:]) % len(cores)]
    return cores[0]


def pin_to_one_core() -> int | None:
    """Pin the whole process (every thread it has now, and so every later one) to one core."""
    core = choose_core()
    if core is None:
        return None
    os.environ[CORES_BEFORE_PIN_ENV] = ",".join(map(str, allowed_cores()))
    pin_all_threads(core)
    return core


def pin_all_threads(core: int) -> None:
    """Move every thread of this process, and so the threads they start later, to core.

    sched_setaffinity(0) pins only the calling thread; a process may already have others
    (pytest-xdist's I/O threads, gRPC's), and new threads inherit their creator's mask.
    """
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, {core})
        except OSError:
            pass  # a thread that exited meanwhile, or pinning is not allowed here
