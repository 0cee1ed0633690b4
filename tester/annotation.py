"""Annotations for the porcupine history view (Go: tester1/annotation.go).

Usage (tests and harnesses; all functions but AnnotateFaults are also exported by package `tester`):
    tester.AnnotateTest("TestBasic4B", nservers)      # start of a test: resets everything
    tester.AnnotateInfo("Put(k, v) completes", "version: 0 -> 1")
    tester.AnnotateCheckerBegin("checking Get(k) = (v, 1)")
    tester.AnnotateCheckerSuccess("Get(k) returns (v, 1) as expected", "OK")   # or ...Failure / ...Neutral
    tester.AnnotateConnection(grp.GetConnected())     # after connect/disconnect
    tester.AnnotateShutdown([i]); tester.AnnotateRestart([i]); tester.AnnotateTwoPartitions(p1, p2)
    tester.AnnotateClearFailure()                     # all healed: ends the open fault (if any)
    tester.annotation.AnnotateFaults([3], [0, 1], [2, 3, 4])  # one span: "partition = ... / crash = [3]"
    t0 = tester.GetAnnotateTimestamp(); ...; tester.AnnotateInfoInterval(t0, "desc", "details")
    tester.Annotate(tag, desp, details)              # user annotations from lab code

Timestamps are nanoseconds of one monotonic clock (`timestamp()`), the same clock kvtest uses for
the operations it logs, so annotations and operations line up in the view.

At Config.Cleanup the annotations are written as an HTML view when the test failed (or always
with VIS_ENABLE=always; never with VIS_ENABLE=never) to VIS_FILE or a fresh temporary
`porcupine-*.html`, and the path is printed (`info: wrote visualization to <path>`). Ctrl-C
(SIGINT) writes the view with "interrupted" and then hands the signal to the previous handler
(pytest then stops as usual). As in Go the annotation state is global to the process.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, Sequence

from tester.gofmt import Sprintf

COLOR_INFO = "#FAFAFA"
COLOR_NEUTRAL = "#FFECB3"
COLOR_SUCCESS = "#C8E6C9"
COLOR_FAILURE = "#FFCDD2"
COLOR_FAULT = "#B3E5FC"
COLOR_USER = "#FFF176"

TAG_CHECKER = "$ Checker"
TAG_PARTITION = "$ Failure"
TAG_INFO = "$ Test Info"

# Porcupine overlaps two events whose start and end are too close; Go adds this delta (ns).
_CONTINUOUS_GAP_NS = 1000


def timestamp() -> int:
    """Now, in ns of the monotonic clock shared by annotations and kvtest operation logs."""
    return time.monotonic_ns()


@dataclass
class _Ann:
    Tag: str
    Start: int
    End: int
    Description: str
    Details: str
    BackgroundColor: str


@dataclass
class _Continuous:
    start: int = 0
    desp: str = ""
    details: str = ""
    bgcolor: str = ""


class _Annotation:
    """The process-wide annotation store (Go's `annotation` global)."""

    def __init__(self) -> None:
        # Reentrant: the SIGINT handler runs in the main thread and may interrupt it inside a `with`.
        self.mu = threading.RLock()
        self.annotations: list[_Ann] = []
        self.continuous: dict[str, _Continuous] = {}
        self.finalized = False

    def clear(self) -> None:
        with self.mu:
            self.annotations = []
            self.continuous = {}
            self.finalized = False

    def point(self, tag: str, desp: str, details: str, bgcolor: str) -> None:
        with self.mu:
            self.annotations.append(_Ann(tag, timestamp(), 0, desp, details, bgcolor))

    def interval(self, tag: str, start: int, desp: str, details: str, bgcolor: str) -> None:
        with self.mu:
            self.annotations.append(_Ann(tag, start, timestamp(), desp, details, bgcolor))

    def continuous_color(self, tag: str, desp: str, details: str, bgcolor: str) -> None:
        with self.mu:
            cont = self.continuous.get(tag)
            if cont is None:
                self.continuous[tag] = _Continuous(timestamp(), desp, details, bgcolor)
                return
            t = timestamp()
            self.annotations.append(_Ann(tag, cont.start, t, cont.desp, cont.details, cont.bgcolor))
            self.continuous[tag] = _Continuous(t + _CONTINUOUS_GAP_NS, desp, details, bgcolor)

    def continuous_end(self, tag: str) -> None:
        with self.mu:
            cont = self.continuous.pop(tag, None)
            if cont is None:
                # Not Go's way: its annotateContinuousEnd appends an empty annotation from time 0
                # here, drawn as one blank bar over the whole run that hides every fault span.
                return
            self.annotations.append(_Ann(tag, cont.start, timestamp(), cont.desp, cont.details, cont.bgcolor))

    def finalize(self) -> list[_Ann]:
        with self.mu:
            x = list(self.annotations)
            t = timestamp()
            for tag, cont in self.continuous.items():
                x.append(_Ann(tag, cont.start, t, cont.desp, cont.details, cont.bgcolor))
            self.finalized = True
            return x

    def is_finalized(self) -> bool:
        with self.mu:
            return self.finalized

    def cleanup(self, failed: bool, end: str) -> None:
        enabled = os.environ.get("VIS_ENABLE", "")
        if enabled == "never" or (not failed and enabled != "always") or self.is_finalized():
            self.clear()
            return
        annotations = self.finalize()
        if not annotations:
            return
        t = timestamp()
        annotations.append(_Ann(TAG_INFO, t, t + _CONTINUOUS_GAP_NS, end, end, COLOR_INFO))
        write_visualization(None, annotations, "info: wrote visualization to %s")


class _FrameworkInfo:
    def __init__(self, nservers: int) -> None:
        self.mu = threading.RLock()
        self.nservers = nservers
        self.connected = [True] * nservers
        self.crashed = [False] * nservers
        self.ckbegin_ts = 0
        self.ckbegin_details = ""


_annotation = _Annotation()
_finfo: _FrameworkInfo | None = None


def _fi() -> _FrameworkInfo:
    fi = _finfo
    if fi is None:
        raise RuntimeError("tester annotations: call tester.AnnotateTest(desc, nservers) first "
                           "(the lab harness does it at the start of each test)")
    return fi


def to_porcupine(annotations: Sequence[_Ann]) -> list[Any]:
    """Convert to porcupine.Annotation objects (Go's []porcupine.Annotation)."""
    import porcupine

    return [porcupine.Annotation(Tag=a.Tag, Start=a.Start, End=a.End, Description=a.Description,
                                 Details=a.Details, BackgroundColor=a.BackgroundColor)
            for a in annotations]


def open_vis_file() -> tuple[IO[str], str] | None:
    """VIS_FILE (created or truncated) or a fresh temporary porcupine-*.html; None (printed) on error."""
    fpath = os.environ.get("VIS_FILE", "")
    try:
        if fpath == "":
            fd, path = tempfile.mkstemp(prefix="porcupine-", suffix=".html")
            return os.fdopen(fd, "w", encoding="utf-8"), path
        fd = os.open(fpath, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        return os.fdopen(fd, "w", encoding="utf-8"), fpath
    except OSError as e:
        print(f"info: failed to open visualization file {fpath} ({e})", flush=True)
        return None


def write_visualization(info: Any, annotations: Sequence[_Ann] | None, done_fmt: str,
                        extra: Sequence[Any] | None = None) -> str | None:
    """Write porcupine's view of info (None: operations-free) plus annotations; print done_fmt % path.

    annotations are this module's records; extra are porcupine.Annotation objects
    (e.g. from FinalizeAnnotations).
    """
    import porcupine

    from tester.models import KvModel

    opened = open_vis_file()
    if opened is None:
        return None
    f, path = opened
    with f:
        if info is None:
            info = porcupine.LinearizationInfo()
        if annotations:
            info.AddAnnotations(to_porcupine(annotations))
        if extra:
            info.AddAnnotations(list(extra))
        try:
            porcupine.Visualize(KvModel, info, f)
        except Exception as e:  # noqa: BLE001 - report like Go and carry on
            print(f"info: failed to write history visualization to {path} ({e})", flush=True)
            return None
    print(done_fmt % path, flush=True)
    return path


# ---- public API (Go names) ----------------------------------------------------------

def FinalizeAnnotations(end: str) -> list[Any]:
    """Close every open annotation and return them all (as porcupine.Annotation), ending with `end`."""
    annotations = _annotation.finalize()
    t = timestamp()
    annotations.append(_Ann(TAG_INFO, t, t + _CONTINUOUS_GAP_NS, end, end, COLOR_INFO))
    return to_porcupine(annotations)


def AnnotatePointColor(tag: str, desp: str, details: str, bgcolor: str) -> None:
    _annotation.point(tag, desp, details, bgcolor)


def GetAnnotateTimestamp() -> int:
    return timestamp()


def AnnotateIntervalColor(tag: str, start: int, desp: str, details: str, bgcolor: str) -> None:
    _annotation.interval(tag, start, desp, details, bgcolor)


def AnnotateContinuousColor(tag: str, desp: str, details: str, bgcolor: str) -> None:
    _annotation.continuous_color(tag, desp, details, bgcolor)


def AnnotateContinuousEnd(tag: str) -> None:
    _annotation.continuous_end(tag)


def Annotate(tag: str, desp: str, details: str) -> None:
    _annotation.point(tag, desp, details, COLOR_USER)


def AnnotateInterval(tag: str, start: int, desp: str, details: str) -> None:
    _annotation.interval(tag, start, desp, details, COLOR_USER)


def AnnotateContinuous(tag: str, desp: str, details: str) -> None:
    _annotation.continuous_color(tag, desp, details, COLOR_USER)


def AnnotateInfo(desp: str, details: str) -> None:
    AnnotatePointColor(TAG_INFO, desp, details, COLOR_INFO)


def AnnotateInfoInterval(start: int, desp: str, details: str) -> None:
    AnnotateIntervalColor(TAG_INFO, start, desp, details, COLOR_INFO)


def AnnotateTest(desp: str, nservers: int) -> None:
    global _finfo
    details = f"{desp} ({nservers} servers)"
    _finfo = _FrameworkInfo(nservers)
    _annotation.clear()
    AnnotateInfo(details, details)


def AnnotateCheckerBegin(details: str) -> None:
    fi = _fi()
    with fi.mu:
        fi.ckbegin_ts = timestamp()
        fi.ckbegin_details = details


def AnnotateCheckerEnd(desp: str, details: str, color: str) -> None:
    fi = _fi()
    with fi.mu:
        if fi.ckbegin_ts == 0:
            AnnotatePointColor(TAG_CHECKER, desp, details, color)
            return
        # Go never resets the begin time (it clears a copy); keep that: later ends reuse it.
        AnnotateIntervalColor(TAG_CHECKER, fi.ckbegin_ts, desp, f"{fi.ckbegin_details}: {details}", color)


def AnnotateCheckerSuccess(desp: str, details: str) -> None:
    AnnotateCheckerEnd(desp, details, COLOR_SUCCESS)


def AnnotateCheckerFailure(desp: str, details: str) -> None:
    AnnotateCheckerEnd(desp, details, COLOR_FAILURE)


def AnnotateCheckerNeutral(desp: str, details: str) -> None:
    AnnotateCheckerEnd(desp, details, COLOR_NEUTRAL)


def SetAnnotationFinalized() -> None:
    with _annotation.mu:
        _annotation.finalized = True


def GetAnnotationFinalized() -> bool:
    return _annotation.is_finalized()


def AnnotateCheckerFailureBeforeExit(desp: str, details: str) -> None:
    """Annotate a checker failure and write the view now (Go: before log.Fatalf kills the process)."""
    AnnotateCheckerFailure(desp, details)
    _annotation.cleanup(True, "test failed")


def AnnotateConnection(connection: Sequence[bool]) -> None:
    fi = _fi()
    with fi.mu:
        if list(connection) == fi.connected:
            return
        n = min(len(connection), fi.nservers)
        fi.connected[:n] = list(connection[:n])
        _annotate_fault(fi)


def _annotate_fault(fi: _FrameworkInfo) -> None:
    if all(fi.connected) and not any(fi.crashed):
        AnnotateContinuousEnd(TAG_PARTITION)
        return
    # Each disconnected server sits in its own partition, the connected ones in one; crashed last.
    conn: list[int] = []
    crashes: list[int] = []
    cut: list[int] = []
    for i, connected in enumerate(fi.connected):
        if fi.crashed[i]:
            crashes.append(i)
        elif connected:
            conn.append(i)
        else:
            cut.append(i)
    sides = [[i] for i in cut] + [conn] if cut else []
    text = _fault_text([s for s in sides if s], crashes)
    AnnotateContinuousColor(TAG_PARTITION, text, text, COLOR_FAULT)


def _fault_text(sides: Sequence[Sequence[int]], crashed: Sequence[int]) -> str:
    """"partition = [1] [0 2]", "crash = [2]" or both joined by " / "; sides empty: no partition."""
    # Unlike Go, crashes alone read "crash = ...", not "partition = [0 1] / crash = [2]": with
    # every live server connected there is no partition to show.
    parts = []
    if sides:
        parts.append("partition = " + " ".join(Sprintf("%v", list(s)) for s in sides))
    if crashed:
        parts.append(Sprintf("crash = %v", sorted(crashed)))
    return " / ".join(parts)


def AnnotateTwoPartitions(p1: Sequence[int], p2: Sequence[int]) -> None:
    text = Sprintf("partition = %v %v", list(p1), list(p2))
    AnnotateContinuousColor(TAG_PARTITION, text, text, COLOR_FAULT)


def AnnotateFaults(crashed: Sequence[int], p1: Sequence[int] = (), p2: Sequence[int] = ()) -> None:
    """One fault annotation: servers `crashed` go down and, if p1 and p2 are given, p1 | p2 split.

    Not in Go: AnnotateShutdown then AnnotateTwoPartitions draws a sliver of "crash" and then a
    partition that no longer shows the crash. The crashes are recorded as AnnotateShutdown
    records them (the text lists every server down, earlier ones too), so AnnotateRestart or
    AnnotateClearFailure ends the annotation.
    """
    fi = _fi()
    with fi.mu:
        for i in crashed:
            fi.crashed[i] = True
        down = [i for i, c in enumerate(fi.crashed) if c]
        sides = [list(p1), list(p2)] if p1 and p2 else []
        if not sides and not down:
            AnnotateContinuousEnd(TAG_PARTITION)
            return
        text = _fault_text(sides, down)
        AnnotateContinuousColor(TAG_PARTITION, text, text, COLOR_FAULT)


def AnnotateClearFailure() -> None:
    fi = _fi()
    with fi.mu:
        fi.crashed = [False] * fi.nservers
        fi.connected = [True] * fi.nservers
        AnnotateContinuousEnd(TAG_PARTITION)


def AnnotateShutdown(servers: Sequence[int]) -> None:
    fi = _fi()
    with fi.mu:
        changed = any(not fi.crashed[i] for i in servers)
        for i in servers:
            fi.crashed[i] = True
        if changed:
            _annotate_fault(fi)


def AnnotateShutdownAll() -> None:
    AnnotateShutdown(range(_fi().nservers))


def AnnotateRestart(servers: Sequence[int]) -> None:
    fi = _fi()
    with fi.mu:
        changed = any(fi.crashed[i] for i in servers)
        for i in servers:
            fi.crashed[i] = False
        if changed:
            _annotate_fault(fi)


def AnnotateRestartAll() -> None:
    AnnotateRestart(range(_fi().nservers))


def cleanup(failed: bool, end: str) -> None:
    """Config.Cleanup's step: write the view if the test failed (see VIS_ENABLE), then reset."""
    _annotation.cleanup(failed, end)


def snapshot_annotations() -> list[_Ann]:
    """A copy of the closed annotations so far (for tests)."""
    with _annotation.mu:
        return list(_annotation.annotations)


# ---- Ctrl-C ---------------------------------------------------------------------------
_sigint_installed = False
_prev_sigint: Any = None


def _on_sigint(signum: int, frame: Any) -> None:
    try:
        _annotation.cleanup(True, "interrupted")
    except Exception as e:  # noqa: BLE001 - never let the view stop the interrupt
        print(f"info: failed to write visualization on interrupt ({e})", file=sys.stderr, flush=True)
    prev = _prev_sigint
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_DFL:
        raise KeyboardInterrupt


def install_sigint_handler() -> bool:
    """Install the Ctrl-C view writer (once, main thread only), chaining the previous handler."""
    global _sigint_installed, _prev_sigint
    if _sigint_installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        prev = signal.getsignal(signal.SIGINT)
        if prev == signal.SIG_IGN:
            return False
        signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError):
        return False
    _prev_sigint = prev
    _sigint_installed = True
    return True


install_sigint_handler()
