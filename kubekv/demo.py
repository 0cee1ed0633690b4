"""The engine behind `kubekv demo` (see kubekv/cli.py for the command line).

Usage:
    from kubekv.demo import run_demo
    exit_code = run_demo(kubekv.cli.build_parser().parse_args(["demo", "--seconds", "5"]))

Built from the lab tester's parts: a tester.Config holds the servers (StartKVServer) and the
simulated network, clerks log every operation through tester.kvtest's Get/Put wrappers into an
OpLog, faults are made with the ServerGrp calls the tests use and recorded with the tester's
annotations, and porcupine checks the history against tester.models.KvModel.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import porcupine
import tester
from kvraft1 import rpc
from kvraft1.client import MakeClerk
from kvraft1.server import StartKVServer
from labrpc.affinity import pin_to_one_core
from raft1.raftapi import Raft
from tester import kvtest, models

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


@dataclass
class ClientStats:
    ops: int = 0
    latencies_s: list = field(default_factory=list)


class Demo:
    """One demo run: cluster, clients, fault injector, progress line, verdict."""

    def __init__(self, args: Any, seed: int) -> None:
        self.args = args
        self.seed = seed
        self.rng = random.Random(seed)
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

    def leader(self) -> int | None:
        for i, svcs in enumerate(self.cfg.Group(GID).Services()):
            for s in svcs or []:
                if isinstance(s, Raft) and s.GetState()[1]:
                    return i
        return None

    def injector(self) -> None:
        kinds = ["calm"]
        if self.args.partitions:
            kinds += ["partition", "partition"]
        if self.args.crashes:
            kinds += ["crash", "crash"]
        if self.args.partitions and self.args.crashes:
            kinds.append("both")
        while not self.faults_stop.wait(EPISODE_S + self.rng.random() * EPISODE_JITTER_S):
            self.heal()
            kind = self.rng.choice(kinds)
            if kind in ("crash", "both"):
                self.crash_some()
            if kind in ("partition", "both"):
                self.partition()
        self.heal()

    def partition(self) -> None:
        grp = self.cfg.Group(GID)
        live = [i for i in range(self.n) if i not in self.crashed]
        l = self.leader()
        if l is not None and self.rng.random() < 0.5:
            p1, p2 = grp.MakePartition(l)          # the leader lands in the minority
        else:
            sides: list[list[int]] = [[], []]
            for i in range(self.n):
                sides[self.rng.randrange(2)].append(i)
            p1, p2 = sides
        p1 = [i for i in p1 if i in live] + [i for i in p1 if i not in live]
        grp.Partition(p1, p2)
        tester.AnnotateTwoPartitions(p1, p2)
        with self.mu:
            self.counts["partitions"] += 1
            self.fault_text = f"partition {p1} {p2}"

    def crash_some(self) -> None:
        grp = self.cfg.Group(GID)
        k = self.rng.randint(1, max(1, (self.n - 1) // 2))
        l = self.leader()
        victims = [l] if l is not None and self.rng.random() < 0.5 else []
        others = [i for i in range(self.n) if i not in victims]
        self.rng.shuffle(others)
        victims = (victims + others)[:k]
        for i in victims:
            grp.ShutdownServer(i)
        tester.AnnotateShutdown(victims)
        with self.mu:
            self.crashed.update(victims)
            self.counts["crashes"] += len(victims)
            self.fault_text = f"crashed {sorted(victims)}"

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
        injector = threading.Thread(target=self.injector, name="faults", daemon=True)
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

        lat = sorted(x for s in self.stats for x in s.latencies_s)
        verdict = {porcupine.CheckResult.Ok: "linearizable",
                   porcupine.CheckResult.Illegal: "NOT linearizable",
                   porcupine.CheckResult.Unknown: "unknown (check timed out)"}[res]
        print(f"  operations      {len(ops)} ({sum(1 for o in ops if o.Input.Op == 0)} Get, "
              f"{sum(1 for o in ops if o.Input.Op == 1)} Put) by {a.clients} clients")
        print(f"  throughput      {len(ops) / a.seconds:.1f} ops/s over {a.seconds:g} s (run {elapsed:.1f} s)")
        print(f"  latency         p50 {percentile(lat, 50) * 1000:.1f} ms, p99 {percentile(lat, 99) * 1000:.1f} ms, "
              f"max {(lat[-1] if lat else 0) * 1000:.0f} ms")
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


def percentile(sorted_xs: list[float], p: float) -> float:
    if not sorted_xs:
        return 0.0
    k = min(len(sorted_xs) - 1, max(0, int(round(p / 100 * (len(sorted_xs) - 1)))))
    return sorted_xs[k]


def run_demo(args: Any) -> int:
    """Run the demo described by parsed `kubekv demo` arguments; returns the exit status."""
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
