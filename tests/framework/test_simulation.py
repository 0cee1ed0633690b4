"""The lab suite under the simulator: it passes, and it finds the two planted races from a seed.

Run:
    python -m pytest tests/framework/test_simulation.py

Each case runs pytest in a subprocess with KUBEKV_SIM=1, so the simulator is never installed
in the test process. The seeds are fixed: a run with a seed is the same run every time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _sim_pytest(seed: int, *args: str, mutant: str | None = None,
                timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBEKV_SIM": "1", "KUBEKV_SIM_SEED": str(seed)}
    env.pop("PYTHONHASHSEED", None)
    env.pop("KUBEKV_MUTANT", None)
    plugin = []
    if mutant is not None:
        env["KUBEKV_MUTANT"] = mutant
        plugin = ["-p", "tests.mutants.plugin"]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           *plugin, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _traces(out: str) -> list[str]:
    return re.findall(r"^(\S+) \w+: labsim: (seed=\d+ trace=\w+)", out, re.M)


def TestLabSuitePassesUnderSimulation():
    p = _sim_pytest(20261201, "raft1", "rsm", "kvraft1")
    assert re.search(r"\b58 passed\b", p.stdout) and "failed" not in p.stdout.splitlines()[-1], \
        p.stdout[-3000:] + p.stderr[-2000:]
    assert len(_traces(p.stdout)) == 58


def TestPlantedSnapshotRaceIsFoundAndReplays():
    # Seed 1 fails TestSnapshotInstall3D (seeds 1..20: 20 of 20 fail it); the reference passes.
    node = "raft1/test_raft.py::TestSnapshotInstall3D"
    a = _sim_pytest(1, node, mutant="raft_snapshot_race")
    b = _sim_pytest(1, node, mutant="raft_snapshot_race")
    assert "1 failed" in a.stdout and "apply out of order" in a.stdout, a.stdout[-3000:]
    assert "KUBEKV_SIM=1 KUBEKV_SIM_SEED=1 python -m pytest " + node in a.stdout
    assert _traces(a.stdout) == _traces(b.stdout) and "1 failed" in b.stdout
    ref = _sim_pytest(1, node)
    assert "1 passed" in ref.stdout, ref.stdout[-3000:]


def TestPlantedStartRaceIsFoundAndReplays():
    # Seed 1 fails TestConcurrentStarts3B (seeds 1..20: 10 of 20 fail it); the reference passes.
    node = "raft1/test_raft.py::TestConcurrentStarts3B"
    a = _sim_pytest(1, node, mutant="raft_start_unlocked")
    b = _sim_pytest(1, node, mutant="raft_start_unlocked")
    assert "1 failed" in a.stdout, a.stdout[-3000:]
    assert _traces(a.stdout) == _traces(b.stdout) and "1 failed" in b.stdout
    ref = _sim_pytest(1, node)
    assert "1 passed" in ref.stdout, ref.stdout[-3000:]


def TestASeedRunsTheSameAloneAsAfterOtherTests():
    # A cache filled on first use (labgob's registry, a module imported lazily) must not be a
    # scheduling point: repetition 2 of `--count 2` from seed 4 is seed 5, and must run as
    # seed 5 does alone in a fresh process, and after a test of another part.
    node = "kvraft1/test_kvraft.py::TestBasic4B"
    alone = _traces(_sim_pytest(5, node).stdout)
    repeated = _traces(_sim_pytest(4, node, "--count", "2").stdout)
    after = _traces(_sim_pytest(5, "rsm/test_rsm.py::TestBasic4A", node).stdout)
    assert len(alone) == 1 and len(repeated) == 2 and len(after) == 2
    assert alone[0][1].startswith("seed=5 ") and alone[0][1] == repeated[1][1] == after[1][1]
