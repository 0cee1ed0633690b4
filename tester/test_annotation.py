"""The fault annotations drawn on the `$ Failure` row of the history view (tester/annotation.py).

Run: python -m pytest tester/test_annotation.py -q

Ending a fault that is not open must add nothing (Go adds an empty annotation from time 0, drawn
as one blank bar over the whole run); crashes alone must read "crash = ...", not as a partition.
"""

from __future__ import annotations

import tester
from tester import annotation


def _faults() -> list:
    return [a for a in annotation.snapshot_annotations() if a.Tag == tester.TAG_PARTITION]


def TestClearFailureWithNothingOpenAddsNothing():
    tester.AnnotateTest("TestClearFailureWithNothingOpenAddsNothing", 3)
    before = annotation.snapshot_annotations()
    tester.AnnotateClearFailure()
    tester.AnnotateClearFailure()
    tester.AnnotateContinuousEnd("never-opened")
    assert annotation.snapshot_annotations() == before
    # Nothing from time 0 sneaks in at the end either.
    final = tester.FinalizeAnnotations("the end")
    assert [a.Description for a in final] == ["TestClearFailureWithNothingOpenAddsNothing (3 servers)",
                                              "the end"]
    assert all(a.Start > 0 for a in final)


def TestEachFaultIsOneSpanBetweenItsStartAndItsEnd():
    tester.AnnotateTest("TestEachFaultIsOneSpanBetweenItsStartAndItsEnd", 3)
    t_test = annotation.snapshot_annotations()[0].Start
    tester.AnnotateClearFailure()            # a calm spell first: nothing
    t0 = annotation.timestamp()
    tester.AnnotateShutdown([1])
    tester.AnnotateClearFailure()
    t1 = annotation.timestamp()
    tester.AnnotateClearFailure()            # calm again: nothing
    tester.AnnotateTwoPartitions([0, 1], [2])
    tester.AnnotateClearFailure()
    t2 = annotation.timestamp()
    spans = _faults()
    assert [a.Description for a in spans] == ["crash = [1]", "partition = [0 1] [2]"]
    crash, part = spans
    assert t_test <= t0 <= crash.Start < crash.End <= t1 <= part.Start < part.End <= t2
    assert all(a.BackgroundColor == tester.COLOR_FAULT for a in spans)


def TestCrashOnlyReadsAsCrash():
    tester.AnnotateTest("TestCrashOnlyReadsAsCrash", 5)
    tester.AnnotateShutdown([3])
    tester.AnnotateShutdown([1])
    tester.AnnotateRestart([1, 3])           # all up again: the open fault ends
    tester.AnnotateShutdownAll()
    tester.AnnotateRestartAll()
    assert [a.Description for a in _faults()] == ["crash = [3]", "crash = [1 3]", "crash = [0 1 2 3 4]"]


def TestPartitionAndCrashTogether():
    tester.AnnotateTest("TestPartitionAndCrashTogether", 3)
    tester.AnnotateConnection([True, False, True])
    tester.AnnotateShutdown([2])
    tester.AnnotateConnection([False, False, True])  # every live server cut off
    tester.AnnotateClearFailure()
    assert [a.Description for a in _faults()] == [
        "partition = [1] [0 2]",
        "partition = [1] [0] / crash = [2]",
        "partition = [0] [1] / crash = [2]",
    ]


def TestAnnotateFaultsIsOneSpanPerEpisode():
    tester.AnnotateTest("TestAnnotateFaultsIsOneSpanPerEpisode", 5)
    annotation.AnnotateFaults([3], [0, 1], [2, 3, 4])
    tester.AnnotateRestart([3])              # the restart ends the episode's span
    tester.AnnotateClearFailure()            # nothing left open: nothing more
    annotation.AnnotateFaults([1, 4])
    tester.AnnotateClearFailure()
    annotation.AnnotateFaults([], [0], [1, 2, 3, 4])
    annotation.AnnotateFaults([2], [0], [1, 2, 3, 4])  # a crash during that partition
    tester.AnnotateClearFailure()
    annotation.AnnotateFaults([])            # no fault: ends nothing, adds nothing
    assert [a.Description for a in _faults()] == [
        "partition = [0 1] [2 3 4] / crash = [3]",
        "crash = [1 4]",
        "partition = [0] [1 2 3 4]",
        "partition = [0] [1 2 3 4] / crash = [2]",
    ]
    spans = _faults()
    assert all(a.Start < a.End for a in spans)
    assert all(earlier.End <= later.Start for earlier, later in zip(spans, spans[1:]))
