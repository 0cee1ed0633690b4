"""`kubekv test` (the flake hunter) and `kubekv grade`, on a small made-up solution folder.

Usage:
    python -m pytest tests/framework/test_flakes.py

The folder holds lab-style tests whose outcome depends only on the network's seed (a
labrpc.Network draws it from LABRPC_SEED): so the runner's counts can be predicted from the
seeds it plans, and a failure's replay line must fail again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kubekv import cli, grade, runs

PYTEST_INI = """[pytest]
python_files = test_*.py
python_functions = Test*
"""

FLAKY = '''
import time
import labrpc


def _seed():
    net = labrpc.MakeNetwork()
    try:
        return net.seed
    finally:
        net.Cleanup()


def TestSteady3A():
    assert _seed() > 0


def TestFlaky3A():
    seed = _seed()
    assert seed % 3 != 0, f"network seed {seed} is divisible by 3"


def TestSlow3B():
    time.sleep(float(__import__("os").environ.get("SLOW_S", "0")))
'''


@pytest.fixture
def solution(tmp_path):
    (tmp_path / "pytest.ini").write_text(PYTEST_INI)
    (tmp_path / "raft1").mkdir()
    (tmp_path / "raft1" / "test_fake.py").write_text(FLAKY)
    return tmp_path


def _expected_failures(seed: int, n: int) -> int:
    planned = runs.plan(["raft1/test_fake.py::TestFlaky3A"], n, seed)
    return sum(int(r.env[runs.LABRPC_SEED_ENV]) % 3 == 0 for r in planned)


def TestFlakeHunterCountsFailuresAndReplaysThem(solution, capsys):
    seed, n = 11, 12
    expected = _expected_failures(seed, n)
    assert 0 < expected < n, "pick a seed whose plan has both outcomes"
    out = solution / "kept"
    rc = cli.main(["test", "TestFlaky3A", "--runs", str(n), "--workers", "2", "--seed", str(seed),
                   "--dir", str(solution), "--output", str(out)])
    text = capsys.readouterr().out
    assert rc == 1
    assert f"{expected} of {n} run(s) failed" in text
    replays = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("cd ")]
    assert len(replays) == expected
    kept = sorted(os.listdir(out / "TestFlaky3A"))
    assert len(kept) == expected  # passing runs' folders are removed
    folder = out / "TestFlaky3A" / kept[0]
    assert "divisible by 3" in (folder / "output.txt").read_text()
    assert (folder / "replay.txt").read_text().strip() in replays
    # The replay line fails again, for the same reason.
    again = subprocess.run(replays[0], shell=True, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "divisible by 3" in again.stdout


def TestFlakeHunterRefusesBadInput(solution, capsys):
    assert cli.main(["test", "NoSuchTest", "--dir", str(solution)]) == 2
    assert "no test matches" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["test", "TestFlaky3A", "--runs", "0", "--dir", str(solution)])
    assert e.value.code == 2
    assert "--runs 0: give at least 1 run" in capsys.readouterr().err


def TestGradeSharesPointsAndFailsFlakyTests(solution, tmp_path, capsys):
    points = tmp_path / "points.ini"
    points.write_text("[points]\n3A = 10\n3B = 4\n")
    n = 6
    report = tmp_path / "grade.json"
    rc = cli.main(["grade", str(solution), "--parts", "3A,3B", "--runs", str(n), "--workers", "2",
                   "--points", str(points), "--json", str(report), "--output", str(tmp_path / "kept")])
    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    rows = {r["test"]: r for r in data["tests"]}
    assert set(rows) == {"TestSteady3A", "TestFlaky3A", "TestSlow3B"}
    assert rows["TestSteady3A"]["points"] == 5.0 and rows["TestSlow3B"]["points"] == 4.0
    flaky = rows["TestFlaky3A"]
    assert flaky["runs"] == n
    if flaky["passed"] < n:
        assert rc == 1 and flaky["points"] == 0.0 and len(flaky["replays"]) == n - flaky["passed"]
        assert data["points"] == 9.0
    else:
        assert rc == 0 and data["points"] == 14.0
    assert data["of"] == 14.0 and "TOTAL" in out and "3A total" in out


def TestGradeRefusesBadPointsAndParts(solution, tmp_path, capsys):
    bad = tmp_path / "bad.ini"
    bad.write_text("[points]\n3E = 1\n")
    assert cli.main(["grade", str(solution), "--points", str(bad)]) == 2
    assert "'3e' is not a part" in capsys.readouterr().err
    assert cli.main(["grade", str(solution), "--parts", "3A,5A"]) == 2
    assert "--parts 3A,5A: 5A" in capsys.readouterr().err
    assert grade.read_points(grade.DEFAULT_POINTS).keys() == {"3A", "3B", "3C", "3D", "4A", "4B", "4C"}


def TestCtrlCPrintsThePartialTable(solution, tmp_path):
    env = dict(os.environ, SLOW_S="60")
    kept = tmp_path / "kept"
    cmd = [sys.executable, "-m", "kubekv.cli", "test", "TestSteady3A", "TestSlow3B", "--runs", "2",
           "--workers", "2", "--keep-all", "--dir", str(solution), "--output", str(kept)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Both quick runs finish while the slow ones hold the workers; then Ctrl-C.
    done = [kept / "TestSteady3A" / str(k) / "junit.xml" for k in (1, 2)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(p.exists() for p in done):
        time.sleep(0.2)
    assert all(p.exists() for p in done), "the quick runs did not finish in 120 s"
    time.sleep(2)  # the runner counts a run once its process has exited
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    # Both runs of TestSteady3A finished and are counted; the stopped slow runs are not.
    assert "0 of 2 run(s) failed (interrupted" in out and "TestSteady3A" in out
