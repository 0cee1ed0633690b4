"""tester: the harness every lab test stands on (Go: tester1; plus tester.kvtest and tester.models).

A lab test makes a T, a Config with its servers, and cleans up in `finally` (Go's defer):

    import tester

    def TestBasic():                              # pytest collects Test* functions
        t = tester.T()                            # names itself after the running pytest test
        cfg = tester.MakeConfig(t, 3, True, mks)  # n servers of group GRP0, started and connected
        try:
            cfg.Begin("Test (3A): initial election")   # prints "... (reliable network)..."
            clnt = cfg.MakeClient()
            ok = clnt.Call(tester.ServerName(tester.GRP0, 0), "Raft.RequestVote", args, reply)
            if not ok:
                cfg.Fatalf("no reply from %v", 0)      # Go fmt verbs; prints "Fatal: ..." and fails
            cfg.End()                             # prints "  ... Passed --  time  2.1s #peers 3 ..."
        finally:
            cfg.Cleanup()                         # kills servers, deletes ends, checks 120 s, raises late failures

The start function (Go's FstartServer) is called for every (re)start of a server:

    def mks(ends: list[labrpc.ClientEnd], grp: int, srv: int, persister: tester.Persister) -> list:
        rf = raft.Make(ends, srv, persister, applyCh)
        return [rf]                               # each object: registered with labrpc.MakeService
                                                  # (RPCs "Raft.<Method>") and Kill()ed at shutdown

Failures from other threads. `t.Fatalf` / `cfg.Fatalf` / `tester.Fatalf` work in any thread:
- in the test thread they raise `tester.TestFailed` (a BaseException, so `except Exception` in
  lab code cannot swallow it);
- in another thread they record the failure (first one wins, with message and that thread's
  stack) and raise TestFailed in that thread to unwind it. The test thread then fails with the
  original message and stack: at once if it is the main thread (it is interrupted by SIGUSR2
  wherever it blocks: Chan.recv, sleep, join, lock), else at its next check — every Config and
  kvtest method checks (`t.Check()` or `cfg.CheckFailed()` do it explicitly) — and at Cleanup.
- start "goroutines" with `tester.go(fn, *args)` (returns the started daemon Thread): any
  exception in them fails the test with its traceback. Uncaught exceptions in plain
  threading.Thread threads fail the test too (a threading.excepthook is installed).
- library code finds the test with `tester.CurrentT()` (the T its tester.go thread was started
  under, else the running test's) or just calls `tester.Fatalf(fmt, *args)`.

Watchdog: each Config runs one idle watchdog thread; if the test is still running
KUBEKV_WATCHDOG_S seconds (default 180; 0 = off) after MakeConfig, it prints every thread's stack
to stderr and fails the test from the test thread. Go's 120 s rule (CheckTimeout) is checked at
End and Cleanup as in Go. Cleanup stops everything the tester started (no threads of ours stay).

Go embedding: `class Test(tester.Embed)` with `_embedded = ("Config",)` forwards unknown attributes
to self.Config, like `type Test struct { *tester.Config }` (see tester/embed.py).

Everything else keeps Go's names: Config (SetReliable, IsReliable, SetLongReordering, SetLongDelays,
RpcTotal, BytesTotal, Group, MakeGroupStart, ExitGroup, MakeClient, MakeClientTo, DeleteClient,
CheckTimeout, Op), ServerGrp (tester/group.py), Clnt (tester/clnts.py), Persister
(tester/persister.py), the Annotate* functions (tester/annotation.py), Randstring, ServerName,
GRP0, Sprintf (Go's fmt verbs, tester/gofmt.py), Chan (Go channels, from raft1.chan).
Porcupine check summary for the suite: porcupine_summary() / porcupine_unknown_count(); with
`pytest_plugins = ["tester.pytest_plugin"]` in conftest.py pytest prints it at the end of a run
(xdist included) and ends any T a test left running.

The tester owns SIGUSR2 in a test process (the interrupt above; its handler is installed once, by
the first T made in the main thread, and never removed) and chains SIGINT (Ctrl-C writes the
porcupine view of the annotations, then the previous handler runs).
"""

from raft1.chan import Chan, ChanClosed
from tester.annotation import (
    COLOR_FAILURE, COLOR_FAULT, COLOR_INFO, COLOR_NEUTRAL, COLOR_SUCCESS, COLOR_USER, TAG_CHECKER, TAG_INFO,
    TAG_PARTITION, Annotate, AnnotateCheckerBegin, AnnotateCheckerEnd, AnnotateCheckerFailure,
    AnnotateCheckerFailureBeforeExit, AnnotateCheckerNeutral, AnnotateCheckerSuccess, AnnotateClearFailure,
    AnnotateConnection, AnnotateContinuous, AnnotateContinuousColor, AnnotateContinuousEnd, AnnotateInfo,
    AnnotateInfoInterval, AnnotateInterval, AnnotateIntervalColor, AnnotatePointColor, AnnotateRestart,
    AnnotateRestartAll, AnnotateShutdown, AnnotateShutdownAll, AnnotateTest, AnnotateTwoPartitions,
    FinalizeAnnotations, GetAnnotateTimestamp, GetAnnotationFinalized, SetAnnotationFinalized,
)
from tester.clnts import Clnt, Clnts
from tester.config import TEST_TIME_LIMIT_S, WATCHDOG_ENV, Config, MakeConfig, Randstring
from tester.embed import Embed
from tester.failure import CurrentT, Fatalf, T, TestFailed, finish_current_test, go
from tester.gofmt import Sprint, Sprintf
from tester.group import GRP0, FstartServer, IService, ServerGrp, ServerName, Tgid
from tester.persister import MakePersister, Persister
from tester.stats import porcupine_summary, porcupine_unknown_count

__all__ = [name for name in dir() if not name.startswith("_")]
