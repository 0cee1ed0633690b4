"""The engine behind `kubekv demo` (see kubekv/cli.py for the command line).

Usage:
    from kubekv.demo import run_demo, fault_schedule
    exit_code = run_demo(kubekv.cli.build_parser().parse_args(["demo", "--seconds", "5"]))
    for ep in itertools.islice(fault_schedule(seed=7, servers=5), 5): print(ep.at_s, ep.describe())

Built from the lab tester's parts: a tester.Config holds the servers (StartKVServer) and the
simulated network, clerks log every operation through tester.kvtest's Get/Put wrappers into an
OpLog, faults are made with the ServerGrp calls the tests use and recorded with the tester's
annotations, and porcupine checks the history against tester.models.KvModel.

The fault schedule is a function of the seed, the server count and the fault switches only
(fault_schedule), never of the cluster's state, so one seed replays the same faults at the same
times whoever leads.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import porcupine
import tester
from kubekv.cli import demo_args_problem
from kvraft1 import rpc
from kvraft1.client import MakeClerk
from kvraft1.server import StartKVServer
from labrpc.affinity import pin_to_one_core
from raft1.raftapi import Raft
from tester import annotation, kvtest, models

EXIT_OK = 0
EXIT_NOT_LINEARIZABLE = 1
# 2 is argparse's bad-usage status
EXIT_UNKNOWN = 3
EXIT_FAILURE = 4

GID = tester.GRP0
# Each fault episode (partition, crash, or a calm spell) lasts this long plus up to the jitter.
EPISODE_S = 1.0
EPISODE_JITTER_S = 0.5
PROGRESS_INTERVAL_S = 0.5
LEADER_SAMPLE_S = 0.1
# After the clients are told to stop and the network is healed, operations stuck in a minority
# need a new election to finish; give up after this long.
DRAIN_TIMEOUT_S = 20.0
SEED_ENV = "LABRPC_SEED"


@dataclass(frozen=True)
class Episode:
    """One fault episode: from at_s (seconds after the clients start) until the next episode."""

    at_s: float
    kind: str                        # "calm", "partition", "crash" or "both"
    crashed: tuple[int, ...] = ()
    minority: tuple[int, ...] = ()   # a partition: these servers are cut off from the others
    majority: tuple[int, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.minority:
            parts.append(f"partition {list(self.minority)} | {list(self.majority)}")
        if self.crashed:
            parts.append(f"crash {list(self.crashed)}")
        return ", ".join(parts) or "calm (no fault)"


def fault_schedule(seed: int, servers: int, partitions: bool = True, crashes: bool = True) -> Iterator[Episode]:
    """The demo's fault episodes for this seed, one after another, without end.

    Each episode heals the one before. A crash takes down, and a partition cuts off, between one
    server and a minority, so a majority is left; when both hit at once (kind "both", other
    servers each) the majority side may have too few servers up, and the cluster waits.
    """
    # Its own generator, seeded apart from labrpc's and the clients' (same seed, other streams).
    rng = random.Random(f"kubekv-demo-faults:{seed}")
    kinds = ["calm"]
    if partitions:
        kinds += ["partition", "partition"]
    if crashes:
        kinds += ["crash", "crash"]
    if partitions and crashes:
        kinds.append("both")
    most = max(1, (servers - 1) // 2)
    at = 0.0
    while True:
        # Every episode makes the same draws whatever its kind, so that the stream never shifts.
        at += EPISODE_S + rng.random() * EPISODE_JITTER_S
        kind = rng.choice(kinds)
        order = rng.sample(range(servers), servers)
        ncrash, ncut = rng.randint(1, most), rng.randint(1, most)
        # From the two ends of one shuffle: in "both" no crashed server is also cut off.
        crashed = tuple(sorted(order[:ncrash])) if kind in ("crash", "both") else ()
        minority = tuple(sorted(order[servers - ncut:])) if kind in ("partition", "both") else ()
        majority = tuple(i for i in range(servers) if i not in minority) if minority else ()
        yield Episode(round(at, 3), kind, crashed, minority, majority)


@dataclass
class ClientStats:
    ops: int = 0
    latencies_s: list = field(default_factory=list)


class Demo:
    """One demo run: cluster, clients, fault injector, progress line, verdict."""

    def __init__(self, args: Any, seed: int) -> None:
        self.args = args
        self.seed = seed
        self.n = args.servers
        self.kvs: list = []                 # every KVServer instance started, for snapshot counts
        self.stop = threading.Event()       # set: clients finish their current op and exit
        self.faults_stop = threading.Event()
        self.oplog = kvtest.OpLog()
        self.stats: list[ClientStats] = [ClientStats() for _ in range(args.clients)]
        self.mu = threading.Lock()
        self.leader_terms: set[int] = set()
        self.fault_text = "none"
        self.crashed: set[int] = set()
        self.counts = {"partitions": 0, "crashes": 0}
        self.episodes: list[Episode] = []   # as applied, for the "fault at" lines
        self.t = tester.T("kubekv-demo")
        self.cfg = tester.MakeConfig(self.t, self.n, args.reliable, self.mks)
        self.keys = [f"k{i}" for i in range(args.keys)]

    def mks(self, ends: list, gid: int, srv: int, persister: Any) -> list:
        svcs = StartKVServer(ends, gid, srv, persister, self.args.maxraftstate)
        with self.mu:
            self.kvs.append(svcs[0])
        return svcs

    # -- clients ------------------------------------------------------------------------------

    def client(self, cli: int, ck: Any) -> None:
        rng = random.Random(self.seed * 1009 + cli)
        versions: dict[str, int] = {}
        st = self.stats[cli]
        seq = 0
        while not self.stop.is_set():
            key = rng.choice(self.keys)
            t0 = time.monotonic()
            if key not in versions or rng.random() < 0.5:
                _, ver, err = kvtest.Get(self.cfg, ck, key, self.oplog, cli)
                versions[key] = ver if err == rpc.OK else 0
            else:
                seq += 1
                err = kvtest.Put(self.cfg, ck, key, f"c{cli}-{seq}", versions[key], self.oplog, cli)
                if err == rpc.OK:
                    versions[key] += 1
                else:
                    del versions[key]  # ErrVersion / ErrMaybe: learn the version again
            st.latencies_s.append(time.monotonic() - t0)
            st.ops += 1

    # -- faults -------------------------------------------------------------------------------

    def injector(self, t_start: float) -> None:
        a = self.args
        if not (a.partitions or a.crashes):
            return  # a schedule of calm spells would only list "calm" lines
        for ep in fault_schedule(self.seed, self.n, a.partitions, a.crashes):
            # Absolute times, so that the schedule does not drift with how long a heal takes.
            if self.faults_stop.wait(max(0.0, t_start + ep.at_s - time.monotonic())):
                break
            self.heal()
            self.apply(ep)
        self.heal()

    def apply(self, ep: Episode) -> None:
        grp = self.cfg.Group(GID)
        if ep.minority:
            grp.Partition(list(ep.minority), list(ep.majority))
        for i in ep.crashed:
            grp.ShutdownServer(i)
        if ep.minority or ep.crashed:
            annotation.AnnotateFaults(ep.crashed, ep.minority, ep.majority)
        with self.mu:
            self.crashed.update(ep.crashed)
            self.counts["partitions"] += bool(ep.minority)
            self.counts["crashes"] += len(ep.crashed)
            self.fault_text = ep.describe()
            self.episodes.append(ep)

    def heal(self) -> None:
        grp = self.cfg.Group(GID)
        with self.mu:
            restart = sorted(self.crashed)
            self.crashed.clear()
            self.fault_text = "none"
        for i in restart:
            grp.StartServer(i)
        grp.ConnectAll()
        if restart:
            tester.AnnotateRestart(restart)
        tester.AnnotateClearFailure()

    # -- progress -----------------------------------------------------------------------------

    def sample_leaders(self) -> tuple[int | None, int]:
        best, term_best = None, -1
        for i, svcs in enumerate(self.cfg.Group(GID).Services()):
            for s in svcs or []:
                if isinstance(s, Raft):
                    term, is_leader = s.GetState()
                    if is_leader:
                        with self.mu:
                            self.leader_terms.add(term)
                        if term > term_best:
                            best, term_best = i, term
        return best, term_best

    def progress(self, t_start: float, tty: bool) -> None:
        next_print = time.monotonic()
        while not self.faults_stop.wait(LEADER_SAMPLE_S):
            leader, term = self.sample_leaders()
            now = time.monotonic()
            if self.args.quiet or now < next_print:
                continue
            next_print = now + (PROGRESS_INTERVAL_S if tty else 2.0)
            ops = sum(s.ops for s in self.stats)
            el = now - t_start
            with self.mu:
                fault = self.fault_text
            line = (f"[{el:5.1f}s/{self.args.seconds:.0f}s] ops {ops:6d} ({ops / max(el, 1e-9):5.0f}/s)  "
                    f"leader {'-' if leader is None else leader} (term {term if term >= 0 else '-'})  "
                    f"fault: {fault}")
            if tty:
                sys.stderr.write("\r" + line.ljust(100)[:100])
            else:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        net_desc = "reliable" if a.reliable else "unreliable"
        print(f"kubekv demo: {self.n} servers, {a.clients} clients, {a.seconds:g} s, {net_desc} network, "
              f"partitions {'on' if a.partitions else 'off'}, crashes {'on' if a.crashes else 'off'}, "
              f"maxraftstate {a.maxraftstate}, seed {self.seed}")
        tester.AnnotateTest("kubekv demo", self.n)
        names = self.cfg.Group(GID).SrvNames()
        clerks = [MakeClerk(self.cfg.MakeClient(), names) for _ in range(a.clients)]
        t_start = time.monotonic()
        tty = sys.stderr.isatty()
        threads = [threading.Thread(target=self.client, args=(i, ck), name=f"client-{i}", daemon=True)
                   for i, ck in enumerate(clerks)]
        injector = threading.Thread(target=self.injector, args=(t_start,), name="faults", daemon=True)
        progress = threading.Thread(target=self.progress, args=(t_start, tty), name="progress", daemon=True)
        for th in threads + [injector, progress]:
            th.start()
        time.sleep(a.seconds)
        self.stop.set()
        self.faults_stop.set()
        injector.join()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        elapsed = time.monotonic() - t_start
        progress.join()
        if tty and not a.quiet:
            sys.stderr.write("\n")
        stuck = sum(th.is_alive() for th in threads)
        rpcs, nbytes = self.cfg.RpcTotal(), self.cfg.BytesTotal()
        with self.mu:
            snapshots = sum(kv.rsm.snapshots_taken for kv in self.kvs if kv.rsm is not None)
        ops = self.oplog.Read()
        for ep in self.episodes:
            print(f"  fault at {ep.at_s:6.2f} s: {ep.describe()}")

        print("checking linearizability with porcupine ...", flush=True)
        t_check = time.monotonic()
        res, info = porcupine.CheckOperationsVerbose(models.KvModel, ops, a.check_timeout)
        check_s = time.monotonic() - t_check
        info.AddAnnotations(tester.FinalizeAnnotations("demo finished"))
        vis_path = os.path.abspath(a.vis)
        try:
            porcupine.VisualizePath(models.KvModel, info, vis_path)
        except (OSError, ValueError) as e:
            print(f"kubekv demo: could not write the visualisation to {vis_path}: {e}", file=sys.stderr)
            vis_path = "(not written)"
        self.shutdown()

        lat = [x for s in self.stats for x in s.latencies_s]
        verdict = {porcupine.CheckResult.Ok: "linearizable",
                   porcupine.CheckResult.Illegal: "NOT linearizable",
                   porcupine.CheckResult.Unknown: "unknown (check timed out)"}[res]
        print(f"  operations      {len(ops)} ({sum(1 for o in ops if o.Input.Op == 0)} Get, "
              f"{sum(1 for o in ops if o.Input.Op == 1)} Put) by {a.clients} clients")
        print(f"  throughput      {len(ops) / a.seconds:.1f} ops/s over {a.seconds:g} s (run {elapsed:.1f} s)")
        if lat:
            print(f"  latency         p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
                  f"max {max(lat) * 1000:.0f} ms")
        else:
            print("  latency         none (no operation finished)")
        print(f"  leader changes  {max(0, len(self.leader_terms) - 1)} (leaders seen in {len(self.leader_terms)} terms)")
        print(f"  faults          {self.counts['partitions']} partitions, {self.counts['crashes']} server crashes")
        print(f"  network         {rpcs} RPCs, {nbytes} bytes")
        print(f"  snapshots       {snapshots} taken")
        if stuck:
            print(f"  warning         {stuck} clients still waiting after {DRAIN_TIMEOUT_S:.0f} s")
        print(f"  porcupine       {verdict} ({check_s:.2f} s)")
        print(f"  visualisation   {vis_path}")
        if stuck:
            return EXIT_FAILURE
        return {porcupine.CheckResult.Ok: EXIT_OK, porcupine.CheckResult.Illegal: EXIT_NOT_LINEARIZABLE,
                porcupine.CheckResult.Unknown: EXIT_UNKNOWN}[res]

    def shutdown(self) -> None:
        try:
            self.cfg.Cleanup()
        except tester.TestFailed as e:  # e.g. the tester's 120 s limit: irrelevant to the demo
            print(f"  note            {e}")


def percentile(xs: Sequence[float], p: int) -> float:
    """The p-th percentile (p in 1..99) of xs, in any order, by statistics.quantiles.

    The "inclusive" method, since xs is every latency of the run, not a sample of more: the
    result lies between min(xs) and max(xs) (the default method may reach beyond them).
    """
    if not isinstance(p, int) or not 1 <= p <= 99:
        raise ValueError(f"percentile p={p!r}: give a whole number from 1 to 99")
    if not xs:
        raise ValueError("percentile of no values: there is no latency to summarise")
    if len(xs) == 1:  # quantiles needs two points; one value is every percentile of itself
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[p - 1]


def run_demo(args: Any) -> int:
    """Run the demo described by parsed `kubekv demo` arguments; returns the exit status.

    Raises ValueError, before starting anything, for arguments the command line would refuse.
    """
    problem = demo_args_problem(args)
    if problem:
        raise ValueError(problem)
    core = pin_to_one_core()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    saved = {k: os.environ.get(k) for k in (SEED_ENV, tester.WATCHDOG_ENV)}
    os.environ[SEED_ENV] = str(seed)   # labrpc draws its drops and delays from this seed
    # The tester's watchdog guards tests against hangs; a demo may be asked to run for minutes.
    os.environ.setdefault(tester.WATCHDOG_ENV, "0")
    print(f"kubekv demo: pinned to core {core}" if core is not None else "kubekv demo: not pinned")
    try:
        return Demo(args, seed).run()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
