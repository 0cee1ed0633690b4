"""What a failing lab test prints: a replay line that works, a traceback that ends in the test."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_DEADLINE_S = 120

FAILING_TEST = textwrap.dedent('''
    import threading
    import tester

    class Peer:
        def __init__(self):
            threading.Thread(target=self.ticker, daemon=True).start()

        def ticker(self):
            {}["no such key"]

        def Kill(self):
            pass

    def TestFatalf():
        t = tester.T()
        cfg = tester.MakeConfig(t, 1, True, lambda ends, grp, srv, p: [])
        try:
            cfg.Begin("Test: fails")
            cfg.Fatalf("expected one leader, got %d", 2)
        finally:
            cfg.Cleanup()

    def TestThreadRaises():
        t = tester.T()
        cfg = tester.MakeConfig(t, 1, True, lambda ends, grp, srv, p: [Peer()])
        try:
            cfg.Begin("Test: a thread raises")
            threading.Event().wait(10)
        finally:
            cfg.Cleanup()
''')


def _pytest(cwd: str, *args: str, env: dict | None = None) -> str:
    full_env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
    cmd = [sys.executable, "-m", "pytest", "-p", "tester.pytest_plugin", "-p", "no:cacheprovider",
           "-o", "python_functions=Test*", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=RUN_DEADLINE_S)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc.stdout


def TestReplayLineReplaysTheSeed(tmp_path):
    (tmp_path / "test_fails.py").write_text(FAILING_TEST)
    out = _pytest(str(tmp_path), "test_fails.py::TestFatalf")
    m = re.search(r"^LABRPC_SEED=(\d+) python -m pytest test_fails.py::TestFatalf$", out, re.M)
    assert m, out
    # Run the printed line as a user would paste it: the replay made its network with that seed.
    env_part, cmd = m.group(0).split(" python -m pytest ")
    again = _pytest(str(tmp_path), *shlex.split(cmd), env=dict([env_part.split("=")]))
    assert f"LABRPC_SEED={m.group(1)} python -m pytest test_fails.py::TestFatalf" in again, again


def TestTracebackEndsInTheTest(tmp_path):
    (tmp_path / "test_fails.py").write_text(FAILING_TEST)
    out = _pytest(str(tmp_path), "test_fails.py::TestFatalf")
    assert re.search(r"^test_fails.py:\d+: TestFailed$", out, re.M), out
    assert "tester/failure.py" not in out and "tester/config.py" not in out, out


def TestOtherThreadsStackStartsInItsCode(tmp_path):
    (tmp_path / "test_fails.py").write_text(FAILING_TEST)
    out = _pytest(str(tmp_path), "test_fails.py::TestThreadRaises")
    assert "uncaught KeyError in thread" in out, out
    stack = out[out.index("Traceback (most recent call last):"):]
    first_frame = re.search(r'File "([^"]+)", line \d+, in (\w+)', stack)
    assert first_frame and first_frame.group(1).endswith("test_fails.py") and first_frame.group(2) == "ticker", out
    assert "threading.py" not in stack.split("KeyError")[0], out
