"""Tests of tester/noise.py: which threads, Chans and Conditions get delayed, and the seed report.

Lab code is played by functions compiled into a module namespace named like a lab module
("raft1._noise_probe"); the functions of this file are harness code.  Each test installs
the noise afresh and restores the session's own noise settings afterwards.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from raft1.chan import Chan
from tester import noise

_LAB_SOURCE = '''
import threading
from threading import Condition          # bound before the noise is installed

def make_condition(lock=None):
    return Condition(lock) if lock is not None else threading.Condition()

def spawn(target, *args):
    th = threading.Thread(target=target, args=args, daemon=True)
    th.start()
    return th

def first_look(went_on, seen):
    seen.append(went_on.is_set())

def send(ch, v):
    ch.send(v)

def drain(ch):
    return [v for v in ch]

def select_recv(ch):
    from raft1 import chan
    return chan.select(chan.Recv(ch))

def wait_once(cond, returned):
    with cond:
        cond.wait(10)
        returned.append(cond._is_owned())
'''
lab: dict[str, Any] = {"__name__": "raft1._noise_probe"}
exec(compile(_LAB_SOURCE, "<raft1._noise_probe>", "exec"), lab)


def _seed_with_long_draw(n: int, u_min: float = 0.8) -> int:
    """A seed whose n-th delay (from 1) is at least u_min**SKEW of the bound: clearly long."""
    def nth(s: int) -> float:
        rng = random.Random(s)
        return [rng.random() for _ in range(n)][-1]
    return next(s for s in range(10_000) if nth(s) >= u_min)


@pytest.fixture
def fresh_noise(monkeypatch):
    # Every hand-off draws a delay here, so that each point's test sees one.
    monkeypatch.setattr(noise, "HANDOFF_FRACTION", 1.0)
    was_on, was_max = noise.installed(), noise.max_ms()
    noise.uninstall()
    yield noise
    noise.uninstall()
    if was_on:
        noise.install(was_max)


def TestLabModules():
    for name in ("raft1.raft", "rsm.rsm", "kvraft1.server", "kvraft1.client",
                 "tests.mutants.raft_snapshot_race", "raft1._noise_probe"):
        assert noise.is_lab_module(name), name
    for name in ("raft1.server", "raft1.harness", "raft1.chan", "rsm.server", "kvraft1.harness",
                 "raft1.test_raft", "labrpc.pool", "labrpc.labrpc", "tester.config",
                 "tester.failure", "porcupine.checker", "threading", "raft1x.raft", None):
        assert not noise.is_lab_module(name), name


def TestLabThreadStartIsDelayed(fresh_noise):
    # A long first delay: the starter goes on before the new thread's target runs.
    fresh_noise.install(max_ms=400, seed=_seed_with_long_draw(1))
    went_on, seen = threading.Event(), []
    th = lab["spawn"](lab["first_look"], went_on, seen)
    went_on.set()
    th.join(10)
    assert seen == [True]
    assert fresh_noise.counts()[noise.THREAD] == 1


def TestHarnessThreadIsNotDelayed(fresh_noise):
    fresh_noise.install(max_ms=400, seed=1)
    ran = []
    th = threading.Thread(target=ran.append, args=(1,), daemon=True)  # started here, runs list.append
    th.start()
    th.join(10)
    assert ran == [1]
    assert fresh_noise.counts()[noise.THREAD] == 0


def TestLabThreadStartedByHarnessIsDelayed(fresh_noise):
    # The target alone makes it lab code (labrpc or the tester may start a lab function).
    fresh_noise.install(max_ms=1, seed=1)
    th = threading.Thread(target=lab["first_look"], args=(threading.Event(), []), daemon=True)
    th.start()
    th.join(10)
    assert fresh_noise.counts()[noise.THREAD] == 1


def TestChanOpsOfLabCodeOnly(fresh_noise):
    fresh_noise.install(max_ms=1, seed=1)
    ch: Chan = Chan(3)
    lab["send"](ch, 1)          # lab send: delayed
    ch.send(2)                  # harness send: not
    ch.close()
    assert lab["drain"](ch) == [1, 2]   # lab receives through `for v in ch`: each delayed,
    c = fresh_noise.counts()            # and so is the one that finds the channel closed
    assert (c[noise.SEND], c[noise.RECV]) == (1, 3), c
    ch2: Chan = Chan(1)
    ch2.send(3)
    assert ch2.recv() == (3, True)      # harness recv: not delayed
    assert fresh_noise.counts()[noise.RECV] == 3


def TestLabSelectIsDelayed(fresh_noise):
    from raft1 import chan
    if not hasattr(chan, "select"):
        pytest.skip("raft1.chan has no select")
    fresh_noise.install(max_ms=1, seed=1)
    ch: Chan = Chan(1)
    ch.send(5)
    assert lab["select_recv"](ch) == (0, 5, True)
    assert fresh_noise.counts()[noise.SELECT] == 2   # before and after
    ch.send(6)
    assert chan.select(chan.Recv(ch)) == (0, 6, True)  # harness select: not delayed
    assert fresh_noise.counts()[noise.SELECT] == 2


def TestLabConditionWakeIsDelayedWithoutTheLock(fresh_noise):
    # The waiter sleeps between its notify and re-taking the lock: meanwhile the lock is free.
    fresh_noise.install(max_ms=1000, seed=_seed_with_long_draw(2))  # 1: the thread's start
    mu = threading.Lock()
    cond = lab["make_condition"](mu)   # made with `from threading import Condition`
    returned: list[bool] = []
    th = threading.Thread(target=lab["wait_once"], args=(cond, returned), daemon=True)
    th.start()                         # started by the harness, runs lab code: delayed too
    while not cond._waiters:           # let it reach wait(): poll, the noise sleep is long
        time.sleep(0.01)
    with cond:
        cond.notify()
    time.sleep(0.05)
    got_lock = mu.acquire(blocking=False)
    woken_early = bool(returned)
    if got_lock:
        mu.release()
    th.join(10)
    assert got_lock and not woken_early
    assert returned == [True]          # wait() returned holding the lock
    assert fresh_noise.counts()[noise.WAKE] == 1


def TestRLockConditionWakeKeepsRecursion(fresh_noise):
    fresh_noise.install(max_ms=1, seed=1)
    cond = lab["make_condition"]()     # an RLock's Condition re-acquires through the RLock
    with cond:
        with cond:
            assert not cond.wait(0.01)
            assert cond._is_owned()
        assert cond._is_owned()
    assert fresh_noise.counts()[noise.WAKE] == 1


def TestHarnessConditionNotDelayed(fresh_noise):
    fresh_noise.install(max_ms=1, seed=1)
    cond = threading.Condition(threading.Lock())
    with cond:
        cond.wait(0.01)
    threading.Event().wait(0.01)
    assert fresh_noise.counts()[noise.WAKE] == 0


def TestUninstallRestores(fresh_noise):
    from raft1 import chan
    before = (threading.Thread.start, threading.Condition.__init__, Chan.send, Chan.recv,
              getattr(chan, "select", None))
    fresh_noise.install(max_ms=1, seed=1)
    assert threading.Thread.start is not before[0] and Chan.send is not before[2]
    fresh_noise.uninstall()
    assert (threading.Thread.start, threading.Condition.__init__, Chan.send, Chan.recv,
            getattr(chan, "select", None)) == before


def TestSettingsFromEnv():
    assert noise.settings_from_env({}) == (True, noise.DEFAULT_MAX_MS, None)
    assert noise.settings_from_env({"KUBEKV_NOISE": "0"})[0] is False
    assert noise.settings_from_env({"KUBEKV_NOISE_MAX_MS": "0"})[0] is False
    assert noise.settings_from_env({"KUBEKV_NOISE_MAX_MS": "2.5", "KUBEKV_NOISE_SEED": "7"}) \
        == (True, 2.5, 7)
    for bad in ({"KUBEKV_NOISE_MAX_MS": "x"}, {"KUBEKV_NOISE_MAX_MS": "-1"},
                {"KUBEKV_NOISE_SEED": "1.5"}):
        with pytest.raises(ValueError):
            noise.settings_from_env(bad)


def _run_pytest(tmp_path: Any, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_fails.py").write_text("def TestFails():\n    assert False, 'deliberate'\n")
    full_env = dict(os.environ, KUBEKV_NO_PIN="1", **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tester.noise",
                           "-p", "no:cacheprovider", "-o", "python_functions=Test*",
                           str(tmp_path / "test_fails.py")],
                          cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=120)


def TestSeedReportedOnFailure(tmp_path):
    out = _run_pytest(tmp_path, KUBEKV_NOISE="1", KUBEKV_NOISE_SEED="424242")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "schedule noise" in out.stdout and "KUBEKV_NOISE_SEED=424242" in out.stdout, out.stdout
    out = _run_pytest(tmp_path, KUBEKV_NOISE="0")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "KUBEKV_NOISE_SEED" not in out.stdout, out.stdout


def TestHandOffsDrawADelayOnlySometimes(fresh_noise, monkeypatch):
    """A thread's start always draws; a Chan operation only a HANDOFF_FRACTION of the time."""
    monkeypatch.setattr(noise, "HANDOFF_FRACTION", 0.25)
    fresh_noise.install(max_ms=0.001, seed=3)
    ch = Chan(1000)
    for i in range(400):
        lab["send"](ch, i)
    drawn = fresh_noise.counts()[noise.SEND]
    assert 40 < drawn < 160, drawn  # 100 expected; bounds are > 5 standard deviations wide
