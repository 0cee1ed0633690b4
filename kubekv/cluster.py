"""Local KubeKV clusters: `kubekv serve` (one server), `kubekv cluster` (N server processes).

Usage:
    kubekv cluster                       # 3 servers: clients on 127.0.0.1:2379,22379,32379 (etcd's
                                         # local defaults), peers on :12380,22380,32380; ./kubekv-data
    kubekv cluster -n 5 --data-dir /tmp/kv --base-port 28001    # clients 28001.., peers 28101..
    kubekv serve --id 0 --peers 127.0.0.1:12380,127.0.0.1:22380,127.0.0.1:32380 \
                 --clients 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 --data-dir d0

    cluster = LocalCluster(3, data_dir)  # for tests and the benchmark: free ports, real processes
    cluster.start(); cluster.wait_for_leader()
    cluster.kill(0)                      # SIGKILL, as a crash; cluster.restart(0) recovers it
    cluster.stop()                       # SIGTERM, then SIGKILL whatever is left; always reaps

Each server is its own process (`python -m kubekv serve ...`), so the servers do not share a GIL.
Children die with their parent (PR_SET_PDEATHSIG), so a killed test or `kubekv cluster` leaves no
server behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Sequence

from kubekv.client import Client, DEFAULT_ENDPOINTS
from kubekv.placement import follows_role, pin_server
from labrpc.affinity import allowed_cores

DEFAULT_DATA_DIR = "kubekv-data"
STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "KUBEKV_PARENT_PID"   # set for the servers a LocalCluster starts
DEFAULT_PEER_PORTS = [12380, 22380, 32380]   # etcd's local 3-member Procfile


def free_ports(n: int) -> list[int]:
    """n TCP ports on 127.0.0.1 that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def follow_parent() -> None:
    """In a server process that LocalCluster started: die with the parent, use every core.

    Done here, after exec, not in a preexec_fn: forking a process whose threads are inside
    gRPC and running Python in the child before exec crashed children (SIGSEGV).
    """
    parent = os.environ.get(PARENT_PID_ENV, "")
    if parent.isdigit():
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass   # not Linux: the parent's stop() still reaps its children
        if os.getppid() != int(parent):   # the parent died before prctl took effect
            os._exit(1)
    cores = allowed_cores()   # a test process pins itself to one core; its servers must not
    if cores:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:
            pass


class LocalCluster:
    """N KubeKV server processes on 127.0.0.1, each with a data directory under data_dir."""

    def __init__(self, n: int, data_dir: str, ports: Sequence[int] | None = None,
                 faults: bool = False, maxraftstate: int | None = None,
                 log_dir: str | None = None, serve_args: Sequence[str] = ()) -> None:
        self.n = n
        self.serve_args = list(serve_args)
        self.data_dir = os.path.abspath(data_dir)
        self.ports = list(ports) if ports else free_ports(2 * n)   # n client ports, then n peer ports
        if len(self.ports) != 2 * n:
            raise ValueError(f"a cluster of {n} needs {2 * n} ports (clients, then peers)")
        self.endpoints = [f"127.0.0.1:{p}" for p in self.ports[:n]]      # for clients
        self.peer_addresses = [f"127.0.0.1:{p}" for p in self.ports[n:]]
        self.faults = faults
        self.maxraftstate = maxraftstate
        self.log_dir = log_dir or self.data_dir
        self.procs: list[subprocess.Popen | None] = [None] * n

    def member_dir(self, i: int) -> str:
        return os.path.join(self.data_dir, f"member-{i}")

    def command(self, i: int) -> list[str]:
        cmd = [sys.executable, "-m", "kubekv", "serve", "--id", str(i),
               "--peers", ",".join(self.peer_addresses), "--clients", ",".join(self.endpoints),
               "--data-dir", self.member_dir(i)]
        if self.faults:
            cmd.append("--test-faults")
        if self.maxraftstate is not None:
            cmd += ["--maxraftstate", str(self.maxraftstate)]
        return cmd + self.serve_args

    def start(self) -> None:
        for i in range(self.n):
            self.restart(i)

    def restart(self, i: int) -> None:
        """Start server i (again), from its data directory."""
        if self.procs[i] is not None and self.procs[i].poll() is None:
            raise RuntimeError(f"server {i} is still running")
        os.makedirs(self.log_dir, exist_ok=True)
        out = open(os.path.join(self.log_dir, f"server-{i}.log"), "ab")
        try:
            env = dict(os.environ, **{PARENT_PID_ENV: str(os.getpid())})
            self.procs[i] = subprocess.Popen(self.command(i), stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env)
        finally:
            out.close()

    def kill(self, i: int) -> None:
        """SIGKILL server i and reap it: a crash, with no chance to flush anything."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    def alive(self, i: int) -> bool:
        p = self.procs[i]
        return p is not None and p.poll() is None

    def stop(self) -> None:
        """SIGTERM every server, SIGKILL those still up after STOP_GRACE_S; reap all."""
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in self.procs:
            if p is None:
                continue
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def client(self, timeout_s: float = 10.0) -> Client:
        return Client(self.endpoints, timeout_s=timeout_s)

    def wait_for_leader(self, timeout_s: float = 20.0) -> str:
        """The endpoint of the leader, once one is elected; raises TimeoutError naming the logs."""
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while time.monotonic() < deadline:
                for i, p in enumerate(self.procs):
                    if p is not None and p.poll() is not None and p.returncode not in (0, -9, -15):
                        raise RuntimeError(f"server {i} exited with status {p.returncode}; see "
                                           f"{os.path.join(self.log_dir, f'server-{i}.log')}")
                leader = c.leader()
                if leader is not None:
                    return leader
                time.sleep(0.05)
        raise TimeoutError(f"no leader within {timeout_s:g} s; see the server logs in {self.log_dir}")

    def __enter__(self) -> "LocalCluster":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("serve", help="run one KubeKV server (a member of a cluster)")
    s.add_argument("--id", type=int, required=True, help="this server's index in --peers (0-based)")
    s.add_argument("--peers", required=True,
                   help="every member's host:port, in the same order on every member, this one included")
    s.add_argument("--clients", default=None,
                   help="every member's client address (etcd API and kubekv put/get), in the order of "
                        "--peers (default: clients use the peer addresses)")
    s.add_argument("--data-dir", required=True, help="this member's own data directory")
    s.add_argument("--maxraftstate", type=int, default=None,
                   help="snapshot when the Raft log reaches this many bytes (default 32 MiB)")
    s.add_argument("--batch-window-ms", type=float, default=None,
                   help="how long the leader holds a new entry for others to join it (default 0)")
    s.add_argument("--pin-core", default="auto",
                   help="run the whole server on one core: 'auto' (a core per server by id; with fewer "
                        "cores than servers, the leader's core is its own and the followers share "
                        "the others), a core number, or 'none' (default auto: thread hand-offs "
                        "across cores cost ~40 us each, and the GIL runs one thread at a time anyway)")
    s.add_argument("--reads", choices=("readindex", "log"), default="readindex",
                   help="how the etcd API serves linearizable reads: ReadIndex (default), or an entry "
                        "in the Raft log per read (to measure the difference)")
    s.add_argument("--test-faults", action="store_true",
                   help="let a test partition this server (Control.Block); never in production")
    c = sub.add_parser("cluster", help="run a local cluster of N server processes until Ctrl-C")
    c.add_argument("-n", type=int, default=3, help="number of servers (default 3)")
    c.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help=f"parent of each member's data directory (default ./{DEFAULT_DATA_DIR})")
    c.add_argument("--base-port", type=int, default=None,
                   help="first client port; clients use consecutive ports from it, peers from it + 100 "
                        "(default: etcd's local ports, clients 2379,22379,32379 and peers "
                        "12380,22380,32380, which `kubekv put/get` and etcdctl use by default)")


def serve_main(args: Any) -> int:
    import logging

    from kubekv import server
    from kubekv.storage import StorageError
    from kubekv.transport import AddressInUse

    follow_parent()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    role_placement = follows_role(len(peers), args.pin_core)
    problem = pin_server(args.id, len(peers), args.pin_core)
    if problem:
        print(f"kubekv serve: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    clients = [p.strip() for p in args.clients.split(",") if p.strip()] if args.clients else None
    try:
        if args.batch_window_ms is not None and not 0 <= args.batch_window_ms <= 1000:
            raise ValueError(f"--batch-window-ms {args.batch_window_ms:g}: give 0 to 1000 ms")
        return server.serve(args.id, peers, args.data_dir,
                            maxraftstate=args.maxraftstate or server.DEFAULT_MAXRAFTSTATE_BYTES,
                            faults=args.test_faults, clients=clients,
                            read_index=args.reads == "readindex",
                            role_placement=role_placement,
                            batch_window_ms=(server.DEFAULT_BATCH_WINDOW_MS if args.batch_window_ms is None
                                             else args.batch_window_ms))
    except (ValueError, AddressInUse, StorageError) as exc:
        print(f"kubekv serve: {exc}", file=sys.stderr)
        return 2


def cluster_main(args: Any) -> int:
    if args.n < 1:
        print("kubekv cluster: -n must be at least 1", file=sys.stderr)
        return 2
    if args.base_port is None and args.n <= len(DEFAULT_ENDPOINTS):
        ports = [int(e.rsplit(":", 1)[1]) for e in DEFAULT_ENDPOINTS][:args.n]
        ports += DEFAULT_PEER_PORTS[:args.n]
    else:
        base = args.base_port or 28001
        ports = [base + k for k in range(args.n)] + [base + 100 + k for k in range(args.n)]
    busy = [p for p in ports if not _port_free(p)]
    if busy:
        print(f"kubekv cluster: port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use (another "
              "cluster still running?); stop it, or pick others with --base-port", file=sys.stderr)
        return 2
    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    # Also when started in the background, where a shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    cluster = LocalCluster(args.n, args.data_dir, ports=ports)
    cluster.start()
    try:
        leader = cluster.wait_for_leader()
        print(f"kubekv cluster: {args.n} servers, leader {leader}; data in {cluster.data_dir}; "
              f"logs in {cluster.log_dir}/server-N.log", flush=True)
        print(f"--endpoints={','.join(cluster.endpoints)}", flush=True)
        print("try: kubekv put greeting hello; kubekv get greeting; etcdctl put k v; etcdctl get k   "
              "(Ctrl-C stops the cluster)", flush=True)
        while any(cluster.alive(i) for i in range(args.n)):
            time.sleep(0.5)
        print("kubekv cluster: every server has exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nkubekv cluster: stopping", file=sys.stderr)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"kubekv cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()


def _port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (as gRPC binds: SO_REUSEADDR, so the
    TIME_WAIT connections a stopped cluster leaves behind do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
