"""`kubekv demo`: a short run must finish, print its summary and exit 0 (linearizable); a seed must
replay its fault schedule; bad arguments must be refused before anything runs.

Run with `pytest kubekv -q`. The full demo runs as a subprocess, as a user would start it, so its
environment (LABRPC_SEED) and exit status are its own. The Chromium check of the demo's view runs
only where `chromium` is installed.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from kubekv import cli
from kubekv.demo import EPISODE_JITTER_S, EPISODE_S, fault_schedule, percentile, run_demo

DEMO_SECONDS = 3
# Generous: start-up, DEMO_SECONDS of clients, draining stuck operations, the porcupine check.
DEMO_DEADLINE_S = 90
FAULT_LINE = re.compile(r"^  fault at\s+(\d+\.\d\d) s: (.+)$", re.M)
DATA_RE = re.compile(r'<script id="porcupine-data" type="application/json">(.*?)</script>', re.S)


def _run_demo(*extra: str) -> tuple[subprocess.CompletedProcess, str]:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    vis = os.path.join(tempfile.mkdtemp(prefix="kubekv-demo-test-"), "demo.html")
    cmd = [sys.executable, "-m", "kubekv.cli", "demo", "--seconds", str(DEMO_SECONDS), "--vis", vis, *extra]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=DEMO_DEADLINE_S)
    return proc, vis


def _schedule(seed: int, servers: int, count: int, **switches: bool) -> list:
    return list(itertools.islice(fault_schedule(seed, servers, **switches), count))


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
    assert re.search(r"latency\s+p50 \d+\.\d ms, p99 \d+\.\d ms, max \d+ ms", out), out
    assert re.search(r"porcupine\s+linearizable", out), out
    assert os.path.getsize(vis) > 0, f"no visualisation written to {vis}"
    assert vis in out
    # the progress line went to stderr
    assert re.search(r"ops\s+\d+", proc.stderr), proc.stderr

    # The faults applied are the seed's schedule, in order, from its first episode: an episode
    # due in the last second may or may not have started before the clients stopped.
    printed = FAULT_LINE.findall(out)
    planned = [(f"{ep.at_s:.2f}", ep.describe()) for ep in _schedule(7, 5, 20)]
    assert printed == planned[:len(printed)], out
    assert len(printed) >= sum(1 for ep in _schedule(7, 5, 20) if ep.at_s <= DEMO_SECONDS - 1), out

    # The view draws one "$ Failure" span per fault episode, none from before the run.
    data = json.loads(DATA_RE.search(open(vis, encoding="utf-8").read()).group(1))
    anns = data["Annotations"]
    faults = [a for a in anns if a["Tag"] == "$ Failure"]
    assert len(faults) == sum(1 for _, what in printed if not what.startswith("calm")), (faults, printed)
    assert all(a["Description"] for a in faults), faults
    assert all(a["StartSeconds"] > 0 and a["EndSeconds"] > a["StartSeconds"] for a in faults), faults
    if shutil.which("chromium"):
        from porcupine.tools import screenshot
        dom = screenshot.ViewDom(screenshot.dump_dom(vis))
        assert dom.rendered
        drawn = [a for a in dom.annotations if a.tag == "$ Failure"]
        assert [a.label for a in drawn] == [a["Description"] for a in faults]
        first_op, last_op = min(o.x0 for o in dom.ops), max(o.x1 for o in dom.ops)
        assert all(first_op < a.x0 < a.x1 <= last_op for a in drawn), (drawn, first_op, last_op)


def TestDemoReliableNoFaults():
    """Everything off: a plain healthy cluster; RPC counters must move and nothing be faulted."""
    proc, _ = _run_demo("--reliable", "--no-partitions", "--no-crashes", "--servers", "3", "--clients", "2")
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr}"
    assert re.search(r"faults\s+0 partitions, 0 server crashes", out), out
    assert not FAULT_LINE.search(out), out
    m = re.search(r"network\s+(\d+) RPCs, (\d+) bytes", out)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, out


def TestDemoBadArguments():
    proc, _ = _run_demo("--servers", "0")
    assert proc.returncode == 2, proc
    assert "--servers 0: give at least 1 server" in proc.stderr
    assert "kubekv demo:" not in proc.stdout, "nothing may run"


# ---- the fault schedule -----------------------------------------------------------------------

def TestFaultScheduleReplaysWithItsSeed():
    first, again = _schedule(7, 5, 40), _schedule(7, 5, 40)
    assert first == again
    assert _schedule(8, 5, 40) != first
    # Its own generator: the global one (and anything else drawing from it) changes nothing.
    random.seed(1)
    random.random()
    assert _schedule(7, 5, 40) == first
    assert {ep.kind for ep in first} == {"calm", "partition", "crash", "both"}


def TestFaultScheduleShapes():
    for servers in (3, 4, 5, 7):
        most = (servers - 1) // 2
        eps = _schedule(11, servers, 60)
        gaps = [eps[0].at_s] + [b.at_s - a.at_s for a, b in zip(eps, eps[1:])]
        # at_s is rounded to the ms
        assert all(EPISODE_S - 0.002 <= g <= EPISODE_S + EPISODE_JITTER_S + 0.002 for g in gaps), gaps
        for ep in eps:
            everyone = set(range(servers))
            if ep.minority:
                assert 1 <= len(ep.minority) <= most, ep
                assert set(ep.minority) | set(ep.majority) == everyone and not set(ep.minority) & set(ep.majority)
            if ep.crashed:
                assert 1 <= len(ep.crashed) <= most and set(ep.crashed) <= everyone, ep
            assert not set(ep.crashed) & set(ep.minority), ep
            assert bool(ep.minority) == (ep.kind in ("partition", "both"))
            assert bool(ep.crashed) == (ep.kind in ("crash", "both"))
    assert all(not ep.crashed for ep in _schedule(3, 5, 40, crashes=False))
    assert all(not ep.minority for ep in _schedule(3, 5, 40, partitions=False))
    assert _schedule(7, 5, 1)[0].describe() == "crash [1]"


# ---- arguments --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--check-timeout", "-1"], "--check-timeout -1: give a positive number of seconds, or 0 for no limit"),
    (["--servers", "2"], "--servers 2: a cluster of 2 has no majority left once a server is crashed or cut off"),
    (["--servers", "1", "--no-crashes"], "--servers 1: a cluster of 1 has no majority left"),
    (["--vis", "/no/such/folder/x.html"], "--vis /no/such/folder/x.html: the folder /no/such/folder does not exist"),
    (["--seconds", "0"], "--seconds 0: give a positive number of seconds"),
    (["--seconds", "inf"], "--seconds inf: give a positive number of seconds"),
    (["--clients", "0"], "--clients 0: give at least 1 client"),
    (["--keys", "-3"], "--keys -3: give at least 1 key"),
    (["--maxraftstate", "0"], "--maxraftstate 0: give a positive number of bytes, or -1 to turn snapshots off"),
])
def TestBadArgumentsRefusedBeforeTheRun(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["demo", *argv])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "", "the demo must not have started"
    assert f"kubekv demo: error: {message}" in err, err
    assert err.startswith("usage: kubekv demo"), err


def TestVisFolderRefused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--vis", str(tmp_path)])
    assert f"--vis {tmp_path}: that is a folder; give a file path, e.g. --vis {tmp_path}/kubekv-demo.html" \
        in capsys.readouterr().err


def TestGoodArgumentsPass(tmp_path):
    parser, _ = cli.build_parsers()
    for argv in ([], ["--servers", "2", "--no-partitions", "--no-crashes"], ["--maxraftstate", "-1"],
                 ["--check-timeout", "0"], ["--vis", str(tmp_path / "v.html")], ["--servers", "3"]):
        assert cli.demo_args_problem(parser.parse_args(["demo", *argv])) is None, argv


def TestRunDemoRefusesBadArguments():
    args = cli.build_parser().parse_args(["demo", "--check-timeout", "-1"])
    with pytest.raises(ValueError, match="--check-timeout -1"):
        run_demo(args)


def TestHelpSaysWhatASeedFixes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "fixes the fault schedule (which servers are partitioned or crashed, and when" in text
    assert "It does not fix thread timing, so operation counts, interleavings" in text


# ---- the summary's percentiles ----------------------------------------------------------------

def TestPercentile():
    xs = [float(i) for i in range(1, 101)]
    random.Random(3).shuffle(xs)  # any order
    assert percentile(xs, 50) == pytest.approx(50.5)
    assert percentile(xs, 99) == pytest.approx(99.01)
    assert percentile([0.2], 99) == 0.2
    small = [0.010, 0.012, 0.500]
    assert percentile(small, 50) == pytest.approx(0.012)
    assert 0.012 < percentile(small, 99) <= 0.500, "within the values seen, never beyond the max"
    with pytest.raises(ValueError, match="from 1 to 99"):
        percentile(xs, 100)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
