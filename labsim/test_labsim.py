"""Tests of the simulator itself: determinism, virtual time, every primitive, and refusals.

Run:
    python -m pytest labsim

Each case runs in a fresh interpreter (run_case) so that installing the simulator never
touches the test process; the last tests run pytest itself under KUBEKV_SIM=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CASE = '''
import json, sys, labsim
labsim.install()
import queue, random, threading, time
random.seed({seed})
sim = labsim.begin({seed})
out = {{}}
try:
{body}
except BaseException as e:
    out["error"] = type(e).__name__
    out["message"] = str(e)
finally:
    figures = labsim.end()
figures["os_threads_after"] = len(labsim.core._orig_enumerate())
print("RESULT " + json.dumps({{"figures": figures, "out": out}}, default=repr))
'''


def run_case(body: str, seed: int = 1, env: dict | None = None, timeout: float = 60) -> dict:
    """Run body (statements filling the dict `out`) as simulated thread 0 in a new interpreter."""
    code = _CASE.format(seed=seed, body=textwrap.indent(textwrap.dedent(body), "    "))
    full_env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    full_env.pop("KUBEKV_SIM", None)
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env, capture_output=True,
                       text=True, timeout=timeout)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[len("RESULT "):])
            res["stderr"] = p.stderr
            return res
    raise AssertionError(f"case printed no result (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")


PRODUCERS = '''
mu = threading.Lock()
cv = threading.Condition(mu)
items, order = [], []
def produce(i):
    for k in range(30):
        time.sleep(random.random() * 0.01)
        with mu:
            items.append((i, k))
            cv.notify()
def consume():
    for _ in range(90):
        with mu:
            while not items:
                cv.wait()
            order.append(items.pop(0))
ts = [threading.Thread(target=produce, args=(i,)) for i in range(3)]
ts.append(threading.Thread(target=consume))
for t in ts:
    t.start()
for t in ts:
    t.join()
out["order"] = order
out["t"] = time.monotonic()
'''


def TestSameSeedSameRunOtherSeedOtherRun():
    a, b, c = run_case(PRODUCERS, seed=5), run_case(PRODUCERS, seed=5), run_case(PRODUCERS, seed=6)
    assert "error" not in a["out"], a
    assert len(a["out"]["order"]) == 90
    assert a["out"] == b["out"] and a["figures"] == b["figures"]
    assert c["figures"]["trace"] != a["figures"]["trace"]
    assert c["out"]["order"] != a["out"]["order"]


def TestVirtualTimeJumpsWhenEveryThreadWaits():
    res = run_case('''
        import time as real_time_module
        t0, w0 = time.monotonic(), time.time()
        time.sleep(3600)
        out["slept"] = time.monotonic() - t0
        out["wall"] = time.time() - w0
        ev = threading.Event()
        out["event_timeout"] = ev.wait(2.5)
        threading.Timer(1.0, ev.set).start()
        out["event_set"] = ev.wait(10)
        lk = threading.Lock(); lk.acquire()
        out["lock_timeout"] = lk.acquire(timeout=0.5)
        q = queue.Queue()
        try:
            q.get(timeout=0.25)
        except queue.Empty:
            out["queue_empty"] = True
        sem = threading.Semaphore(0)
        out["sem_timeout"] = sem.acquire(timeout=0.1)
        th = threading.Thread(target=time.sleep, args=(50,)); th.start()
        th.join(1.0); out["alive_after_join_timeout"] = th.is_alive()
        th.join(); out["alive_after_join"] = th.is_alive()
        out["total"] = time.monotonic() - t0
    ''')
    o = res["out"]
    assert "error" not in o, res
    assert abs(o["slept"] - 3600) < 0.01 and abs(o["wall"] - 3600) < 0.01
    assert o["event_timeout"] is False and o["event_set"] is True
    assert o["lock_timeout"] is False and o["queue_empty"] and o["sem_timeout"] is False
    assert o["alive_after_join_timeout"] is True and o["alive_after_join"] is False
    assert 3600 + 2.5 + 1 + 0.5 + 0.25 + 0.1 + 50 <= o["total"] < 3600 + 60


def TestEveryPrimitiveAndExecutorWorkUnderSimulation():
    res = run_case('''
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            out["squares"] = list(ex.map(lambda x: (time.sleep(0.01 * x), x * x)[1], range(8)))
        q = queue.Queue(maxsize=2)
        def feed():
            for i in range(10):
                q.put(i)
        threading.Thread(target=feed).start()
        out["queued"] = [q.get() for _ in range(10)]
        sq = queue.SimpleQueue()
        threading.Thread(target=lambda: [sq.put(i) for i in range(5)]).start()
        out["simple"] = [sq.get(timeout=1) for _ in range(5)]
        b = threading.Barrier(3)
        got = []
        def party(i):
            b.wait(); got.append(i)
        ps = [threading.Thread(target=party, args=(i,)) for i in range(3)]
        [p.start() for p in ps]; [p.join() for p in ps]
        out["barrier"] = sorted(got)
        r = threading.RLock()
        with r:
            with r:
                out["rlock"] = True
        cv = threading.Condition()
        flag = []
        threading.Thread(target=lambda: (time.sleep(1), cv.acquire(), flag.append(1),
                                         cv.notify_all(), cv.release())).start()
        with cv:
            out["wait_for"] = cv.wait_for(lambda: flag, timeout=5)
        from raft1.chan import Chan, Recv, select
        ch = Chan()
        threading.Thread(target=lambda: ch.send("hi")).start()
        out["chan"] = select(Recv(ch), timeout=1)[1]
        out["secrets"] = __import__("secrets").token_hex(4)
        out["random"] = random.random()
    ''')
    o = res["out"]
    assert "error" not in o, res
    assert o["squares"] == [x * x for x in range(8)]
    assert o["queued"] == list(range(10)) and o["simple"] == list(range(5))
    assert o["barrier"] == [0, 1, 2] and o["rlock"] and o["wait_for"] and o["chan"] == "hi"
    again = run_case('out["secrets"] = __import__("secrets").token_hex(4); out["r"] = random.random()')
    assert again["out"]["secrets"] == run_case('out["secrets"] = __import__("secrets").token_hex(4)'
                                               )["out"]["secrets"], "os.urandom is seeded"


def TestThreadsInterleaveAtSchedulingPoints():
    # A read-modify-write with a scheduling point inside loses updates on some seeds.
    body = '''
        n = [0]
        mu = threading.Lock()
        def bump():
            for _ in range(20):
                x = n[0]
                with mu:      # a point between the read and the write: another thread may run
                    pass
                n[0] = x + 1
        ts = [threading.Thread(target=bump) for _ in range(3)]
        [t.start() for t in ts]; [t.join() for t in ts]
        out["n"] = n[0]
    '''
    counts = {run_case(body, seed=s)["out"]["n"] for s in range(4)}
    assert min(counts) < 60, counts


def TestDeadlockIsReportedWithEveryThread():
    res = run_case('''
        a, b = threading.Lock(), threading.Lock()
        def ab():
            with a:
                time.sleep(0.1)
                with b:
                    pass
        def ba():
            with b:
                time.sleep(0.1)
                with a:
                    pass
        t1 = threading.Thread(target=ab, name="ab"); t2 = threading.Thread(target=ba, name="ba")
        t1.start(); t2.start(); t1.join()
    ''')
    o = res["out"]
    assert o["error"] == "SimDeadlock", res
    assert "every thread is blocked" in o["message"]
    assert "'ab' (blocked in Lock.acquire)" in o["message"] and "'ba'" in o["message"]
    assert "in ab" in o["message"] and "in ba" in o["message"]   # where each one waits


def TestBusyWaitOnTheClockIsRefused():
    res = run_case('''
        t0 = time.monotonic()
        while time.monotonic() < t0 + 1:
            pass
    ''')
    assert res["out"]["error"] == "SimError" and "busy-wait" in res["out"]["message"], res


def TestThreadThatNeverReachesAPointIsStopped():
    res = run_case('''
        stop = []
        def spin():
            while not stop:
                pass
        th = threading.Thread(target=spin, name="spinner")
        th.start()
        time.sleep(1)
        out["alive"] = th.is_alive()
    ''', env={"LABSIM_STALL_S": "2"})
    assert "thread 'spinner' ran 2 real seconds without reaching a scheduling point" in res["stderr"]
    assert "SimStall" in res["stderr"] and "in spin" in res["stderr"], res["stderr"]
    assert res["out"]["alive"] is False


def TestSocketInASimulatedThreadIsRefused():
    res = run_case('import socket\nsocket.socket()')
    assert res["out"]["error"] == "SimError" and "a socket in a simulated thread" in res["out"]["message"]


def TestThreadsLeftAtTheEndAreUnwound():
    res = run_case('''
        ev = threading.Event()
        out["cleaned"] = cleaned = []
        def forever():
            try:
                ev.wait()
            finally:
                cleaned.append(1)
        ths = [threading.Thread(target=forever) for _ in range(3)]
        [t.start() for t in ths]
        time.sleep(0.1)
        out["alive"] = sum(t.is_alive() for t in ths)
    ''')
    assert "error" not in res["out"] and res["stderr"] == "", res
    assert res["out"]["alive"] == 3 and res["figures"]["threads"] == 4
    assert res["out"]["cleaned"] == [1, 1, 1]          # their finally blocks ran
    assert res["figures"]["os_threads_after"] == 1     # and their OS threads are gone


def TestInterruptRunsInTheBlockedThread():
    res = run_case('''
        main = threading.get_ident()
        class Boom(Exception):
            pass
        def fail():
            raise Boom("from the other thread")
        threading.Thread(target=lambda: (time.sleep(1), labsim.interrupt(main, fail))).start()
        t0 = time.monotonic()
        try:
            time.sleep(100)
        except Boom as e:
            out["caught"] = str(e)
        out["after"] = time.monotonic() - t0
    ''')
    assert res["out"]["caught"] == "from the other thread" and 1 <= res["out"]["after"] < 1.1
    # Also out of a wait without a timeout (a Condition.wait re-takes its lock first).
    res = run_case('''
        main = threading.get_ident()
        def fail():
            raise KeyError("interrupted")
        threading.Thread(target=lambda: (time.sleep(1), labsim.interrupt(main, fail))).start()
        cv = threading.Condition()
        try:
            with cv:
                cv.wait()
        except KeyError:
            out["caught"] = cv._is_owned()
        threading.Thread(target=lambda: (time.sleep(1), labsim.interrupt(main, fail))).start()
        try:
            threading.Event().wait()
        except KeyError:
            out["event"] = True
    ''')
    assert res["out"] == {"caught": False, "event": True}, res


def TestUncaughtExceptionInAThreadReachesExcepthook():
    res = run_case('''
        seen = []
        threading.excepthook = lambda args: seen.append((args.exc_type.__name__, args.thread.name))
        th = threading.Thread(target=lambda: 1 / 0, name="divider"); th.start(); th.join()
        out["seen"] = seen
    ''')
    assert res["out"]["seen"] == [["ZeroDivisionError", "divider"]]


def TestPrimitivesOutsideASimulationBehaveAsTheOriginals():
    code = '''
import labsim
labsim.install()
import queue, threading, time
q = queue.Queue()
cv = threading.Condition()
done = []
def worker():
    for i in range(100):
        q.put(i)
    with cv:
        done.append(1)
        cv.notify()
t0 = time.monotonic()
ths = [threading.Thread(target=worker) for _ in range(4)]
[t.start() for t in ths]
with cv:
    while len(done) < 4:
        cv.wait(1)
[t.join() for t in ths]
time.sleep(0.05)
assert q.qsize() == 400 and time.monotonic() - t0 >= 0.05
print("ok", labsim.active())
'''
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert p.stdout.strip() == "ok False", p.stderr


# ---- under pytest --------------------------------------------------------------------------

_TINY = '''
import random, threading, time
def TestTiny():
    got = []
    def work(i):
        time.sleep(random.random())
        got.append(i)
    ths = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in ths]; [t.join() for t in ths]
    assert len(got) == 4
def TestFails():
    time.sleep(random.random())
    assert random.random() < 0   # always fails
'''


def _pytest_sim(path: str, seed: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBEKV_SIM": "1"}
    env.pop("PYTHONHASHSEED", None)   # the plugin restarts pytest with it set
    env.pop("KUBEKV_SIM_SEED", None)
    if seed is not None:
        env["KUBEKV_SIM_SEED"] = seed
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-p", "labsim.pytest_plugin", "-p", "tester.pytest_plugin",
                           "--rootdir", REPO, "-c", os.path.join(REPO, "setup.cfg"), path, *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _trace_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if "labsim: seed=" in ln]


def TestPytestPrintsSeedTraceAndReplayLine(tmp_path):
    f = tmp_path / "test_tiny_sim.py"
    f.write_text(_TINY)
    a, b = _pytest_sim(str(f), "7"), _pytest_sim(str(f), "7")
    assert "1 failed, 1 passed" in a.stdout, a.stdout + a.stderr
    lines = _trace_lines(a.stdout)
    assert len(lines) >= 2 and all("seed=7 trace=" in ln for ln in lines)
    assert _trace_lines(a.stdout) == _trace_lines(b.stdout)
    assert "KUBEKV_SIM=1 KUBEKV_SIM_SEED=7 python -m pytest" in a.stdout
    c = _pytest_sim(str(f), "8")
    assert _trace_lines(c.stdout) != lines
    rep = _pytest_sim(str(f), "3", "--count", "3", "-k", "TestTiny")
    seeds = sorted(ln.split("seed=")[1].split()[0] for ln in _trace_lines(rep.stdout))
    assert seeds == ["3", "4", "5"], rep.stdout


def TestRaftPartIsDeterministicUnderSimulation():
    a = _pytest_sim("raft1", "11", "-k", "TestInitialElection3A or TestBasicAgree3B")
    b = _pytest_sim("raft1", "11", "-k", "TestInitialElection3A or TestBasicAgree3B")
    assert "2 passed" in a.stdout, a.stdout + a.stderr
    assert len(_trace_lines(a.stdout)) == 2 and _trace_lines(a.stdout) == _trace_lines(b.stdout)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
