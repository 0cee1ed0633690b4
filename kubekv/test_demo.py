"""`kubekv demo` end to end: a short run must finish, print its summary and exit 0 (linearizable).

Run with `pytest kubekv -k Demo`. The demo runs as a subprocess, as a user would start it, so its
environment (LABRPC_SEED) and exit status are its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

DEMO_SECONDS = 3
# Generous: start-up, DEMO_SECONDS of clients, draining stuck operations, the porcupine check.
DEMO_DEADLINE_S = 90


def _run_demo(*extra: str) -> tuple[subprocess.CompletedProcess, str]:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    vis = os.path.join(tempfile.mkdtemp(prefix="kubekv-demo-test-"), "demo.html")
    cmd = [sys.executable, "-m", "kubekv.cli", "demo", "--seconds", str(DEMO_SECONDS), "--vis", vis, *extra]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=DEMO_DEADLINE_S)
    return proc, vis


def TestDemoFaults():
    """Default faults (unreliable network, partitions, crashes), fixed seed."""
    proc, vis = _run_demo("--seed", "7", "--clients", "3")
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    assert "seed 7" in out
    m = re.search(r"operations\s+(\d+) \((\d+) Get, (\d+) Put\)", out)
    assert m, out
    nops, ngets, nputs = map(int, m.groups())
    assert nops > 0 and ngets + nputs == nops, out
    for field in ("throughput", "latency", "leader changes", "faults", "network", "snapshots"):
        assert re.search(rf"^\s+{field}\s+\S", out, re.M), f"no {field!r} line in\n{out}"
    assert re.search(r"porcupine\s+linearizable", out), out
    assert os.path.getsize(vis) > 0, f"no visualisation written to {vis}"
    assert vis in out
    # the progress line went to stderr
    assert re.search(r"ops\s+\d+", proc.stderr), proc.stderr


def TestDemoReliableNoFaults():
    """Everything off: a plain healthy cluster; RPC counters must move and nothing be faulted."""
    proc, _ = _run_demo("--reliable", "--no-partitions", "--no-crashes", "--servers", "3", "--clients", "2")
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    assert re.search(r"faults\s+0 partitions, 0 server crashes", out), out
    m = re.search(r"network\s+(\d+) RPCs, (\d+) bytes", out)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, out


def TestDemoBadArguments():
    proc, _ = _run_demo("--servers", "0")
    assert proc.returncode != 0
    assert "--servers" in proc.stderr
