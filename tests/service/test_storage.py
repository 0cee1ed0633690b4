"""kubekv.storage: the durable Persister (WAL segments and snapshot files in a data directory).

Usage:
    python -m pytest tests/service/test_storage.py -q -p no:cacheprovider
"""

from __future__ import annotations

import copy
import errno
import logging
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time

import pytest

from kubekv import storage
from kubekv.storage import CorruptionError, DataDirError, DurablePersister, StorageError


# ---- helpers ----

def segments(d) -> list[str]:
    return sorted(os.path.join(d, n) for n in os.listdir(d)
                  if n.startswith("wal-") and n.endswith(".log"))


def snapshots(d) -> list[str]:
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".snap"))


def record_spans(path) -> list[tuple[int, int]]:
    """(start, end) of every record in a segment, from the headers."""
    data = open(path, "rb").read()
    spans, off = [], 0
    while off < len(data):
        length = struct.unpack_from("<I", data, off + 4)[0]
        end = off + storage.HEADER_SIZE + length
        spans.append((off, end))
        off = end
    assert off == len(data)
    return spans


def flip(path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


def truncate(path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


@pytest.fixture
def fast_fsync(monkeypatch):
    """For tests of formats and bookkeeping, not of power loss: every fsync/fdatasync still
    happens on a live descriptor, but without the disk's wait (the machine's disk is shared)."""
    monkeypatch.setattr(os, "fsync", os.fstat)
    monkeypatch.setattr(os, "fdatasync", os.fstat)


def copy_dir(src, dst):
    shutil.copytree(src, dst)
    return dst


def reopened(p: DurablePersister, d) -> DurablePersister:
    p.Close()
    return DurablePersister(d)


class Model:
    """The contract, the obvious way: what ReadLog/ReadRaftState/ReadSnapshot must return."""

    def __init__(self) -> None:
        self.mode = "fresh"
        self.raftstate = b""
        self.state, self.base, self.entries = b"", 0, []
        self.snapshot = b""

    def last(self) -> int:
        return self.base + len(self.entries)

    def save(self, raftstate: bytes, snapshot: bytes) -> None:
        self.mode, self.raftstate, self.snapshot = "full", raftstate, snapshot
        self.state, self.base, self.entries = b"", 0, []

    def save_log(self, state, base, first, entries, snapshot) -> None:
        if self.mode == "log" and base >= self.base:
            kept = self.entries[base - self.base:]
        else:
            kept = []
        self.mode, self.raftstate = "log", b""
        self.state, self.base, self.snapshot = state, base, snapshot
        self.entries = kept[:first - base - 1] + list(entries)

    def size(self) -> int:
        if self.mode == "log":
            return len(self.state) + sum(map(len, self.entries))
        return len(self.raftstate)


def check(p: DurablePersister, m: Model) -> None:
    if m.mode == "full":
        assert p.ReadRaftState() == m.raftstate
    else:
        assert p.ReadLog() == (m.state, m.base, m.entries)
    assert p.ReadSnapshot() == m.snapshot
    assert p.RaftStateSize() == m.size()
    assert p.SnapshotSize() == len(m.snapshot)


def both(p: DurablePersister, m: Model, *args) -> None:
    p.SaveLog(*args)
    m.save_log(*args)


# ---- the Go contract and the basics ----

def TestFreshDirectoryReadsEmpty(tmp_path):
    p = DurablePersister(tmp_path / "d")
    assert p.ReadRaftState() == b""
    assert p.ReadSnapshot() == b""
    assert p.ReadLog() == (b"", 0, [])
    assert p.RaftStateSize() == 0 and p.SnapshotSize() == 0
    p.Close()
    p = DurablePersister(tmp_path / "d")
    assert p.ReadLog() == (b"", 0, []) and p.ReadRaftState() == b""
    p.Close()


def TestSaveSurvivesReopen(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.Save(b"raft-1", b"snap-1")
    p.Sync()
    p.Save(bytearray(b"raft-2"), memoryview(b"snap-2"))
    p.Sync()
    p = reopened(p, d)
    assert p.ReadRaftState() == b"raft-2" and p.ReadSnapshot() == b"snap-2"
    assert p.RaftStateSize() == 6 and p.SnapshotSize() == 6
    assert len(snapshots(d)) == 1
    p.Save(b"raft-3", None)  # None or b"": the snapshot is erased, as in Go
    p = reopened(p, d)
    assert p.ReadRaftState() == b"raft-3" and p.ReadSnapshot() == b""
    assert snapshots(d) == []
    p.Close()


def TestCloseSyncsWhatWasSaved(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"st", 0, 1, [b"a", b"b"], b"")
    p.Save(b"full", b"sn")
    p.SaveLog(b"st2", 1, 2, [b"B", b"c"], b"sn1")
    p.Close()
    p.Close()  # idempotent
    p = DurablePersister(d)
    assert p.ReadLog() == (b"st2", 1, [b"B", b"c"]) and p.ReadSnapshot() == b"sn1"
    p.Close()


def TestSaveAndSaveLogDoNoDiskIO(tmp_path, monkeypatch):
    p = DurablePersister(tmp_path / "d")

    def no_io(*a):
        raise AssertionError("disk I/O inside Save/SaveLog")

    for name in ("write", "writev", "fsync", "fdatasync", "open", "rename", "unlink"):
        monkeypatch.setattr(os, name, no_io)
    p.Save(b"x", b"snap")
    p.SaveLog(b"s", 0, 1, [b"e1", b"e2"], b"snap2")
    p.SaveLog(b"s", 1, 3, [], b"snap3")
    monkeypatch.undo()
    p.Sync()
    assert p.ReadLog() == (b"s", 1, [b"e2"])
    p.Close()


def TestSyncHoldsNoLockWhileSyncing(tmp_path, monkeypatch):
    p = DurablePersister(tmp_path / "d")
    entered, release = threading.Event(), threading.Event()
    real = os.fdatasync

    def blocking(fd):
        entered.set()
        assert release.wait(10)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", blocking)
    p.SaveLog(b"s", 0, 1, [b"a"], b"")
    t = threading.Thread(target=p.Sync)
    t.start()
    assert entered.wait(10)
    # While the fdatasync is stuck, Raft can still save and read.
    p.SaveLog(b"s", 0, 2, [b"b"], b"")
    assert p.ReadLog() == (b"s", 0, [b"a", b"b"])
    assert p.RaftStateSize() == 3
    release.set()
    t.join()
    p.Sync()
    p.Close()


def TestSyncWithNothingPendingDoesNoIO(tmp_path):
    p = DurablePersister(tmp_path / "d")
    p.Save(b"x", b"")
    p.Sync()
    before = p.stats()
    p.Sync()
    p.Sync()
    assert p.stats() == before
    assert before["syncs"] == 1 and before["records"] == 1
    p.Close()


def TestBadArgumentsAreRefusedClearly(tmp_path):
    p = DurablePersister(tmp_path / "d")
    p.SaveLog(b"s", 5, 6, [b"a", b"b", b"c"], b"snap")  # base 5, entries 6..8
    with pytest.raises(ValueError, match=r"first=10 is outside \[base\+1, last\+1\] = \[6, 9\]"):
        p.SaveLog(b"s", 5, 10, [b"x"], b"snap")
    with pytest.raises(ValueError, match=r"first=5 is outside"):
        p.SaveLog(b"s", 5, 5, [b"x"], b"snap")
    with pytest.raises(ValueError, match="base moved back from 5 to 3"):
        p.SaveLog(b"s", 3, 6, [b"x"], b"snap")
    with pytest.raises(ValueError, match="must be >= 0"):
        p.SaveLog(b"s", -1, 0, [], b"")
    with pytest.raises(TypeError, match=r"entries\[1\] must be bytes"):
        p.SaveLog(b"s", 5, 9, [b"ok", "text"], b"snap")
    with pytest.raises(TypeError, match="base must be an int"):
        p.SaveLog(b"s", 5.0, 9, [], b"snap")
    with pytest.raises(TypeError, match="state must be bytes"):
        p.SaveLog("s", 5, 9, [], b"snap")
    assert p.ReadLog() == (b"s", 5, [b"a", b"b", b"c"])  # untouched by the refused calls
    with pytest.raises(StorageError, match=r"written by SaveLog; read it with ReadLog\(\)"):
        p.ReadRaftState()
    p.SaveLog(b"s", 2, 3, [b"new"], b"older")  # moving back is fine when everything is rewritten
    assert p.ReadLog() == (b"s", 2, [b"new"])
    p.Save(b"full", b"")
    with pytest.raises(StorageError, match=r"written by Save; read it with ReadRaftState\(\)"):
        p.ReadLog()
    with pytest.raises(ValueError, match="identity must be"):
        DurablePersister(tmp_path / "e", identity="two\nlines")
    p.Close()


def TestClosedPersisterRefusesCalls(tmp_path):
    p = DurablePersister(tmp_path / "d")
    p.Close()
    for call in (lambda: p.Save(b"", b""), lambda: p.SaveLog(b"", 0, 1, [], b""), p.Sync,
                 p.ReadLog, p.ReadRaftState, p.ReadSnapshot, p.RaftStateSize):
        with pytest.raises(StorageError, match="is closed"):
            call()


# ---- SaveLog against the model, with reopening ----

def TestRandomSaveLogSequencesMatchTheModelAcrossReopens(tmp_path, monkeypatch, fast_fsync):
    monkeypatch.setattr(DurablePersister, "COMPACT_SLACK", 3000)  # compact often, too
    monkeypatch.setattr(DurablePersister, "CHECKPOINT_CHUNK", 64)
    rng = random.Random(1234)
    d = tmp_path / "d"
    p, m = DurablePersister(d), Model()
    snap_no = 0

    def blob(lo=0, hi=24) -> bytes:
        return rng.randbytes(rng.randint(lo, hi))

    reopens = 0
    for step in range(400):
        r = rng.random()
        base, last = m.base, m.last()
        if m.mode == "full" or m.mode == "fresh":
            b = rng.randint(0, 20)
            both(p, m, blob(), b, b + 1, [blob() for _ in range(rng.randint(0, 4))], m.snapshot)
        elif r < 0.45:  # append
            ents = [blob() for _ in range(rng.randint(0, 5))]
            both(p, m, blob(), base, last + 1, ents, m.snapshot)
        elif r < 0.65:  # overwrite a suffix (or truncate it, with no entries)
            first = rng.randint(base + 1, last + 1)
            both(p, m, blob(), base, first, [blob() for _ in range(rng.randint(0, 3))], m.snapshot)
        elif r < 0.85:  # snapshot: advance the base, sometimes past the end of the log
            nb = rng.randint(base, last + 3)
            snap_no += 1
            sn = b"" if rng.random() < 0.1 else f"snapshot {snap_no} ".encode() + blob(0, 200)
            first = rng.randint(nb + 1, max(nb, last) + 1)
            both(p, m, blob(), nb, first, [blob() for _ in range(rng.randint(0, 3))], sn)
        elif r < 0.88:  # rewrite everything from a lower base
            nb = rng.randint(0, base)
            both(p, m, blob(), nb, nb + 1, [blob() for _ in range(rng.randint(0, 3))], m.snapshot)
        elif r < 0.91:
            rs, sn = blob(0, 100), blob(0, 50)
            p.Save(rs, sn)
            m.save(rs, sn)
        elif r < 0.94:  # a refused call changes nothing
            with pytest.raises(ValueError):
                p.SaveLog(blob(), base, last + 2, [b"gap"], m.snapshot)
        check(p, m)
        if rng.random() < 0.3:
            p.Sync()
        if rng.random() < 0.08:
            p = reopened(p, d)
            reopens += 1
            check(p, m)
            assert len(segments(d)) == 1
            assert len(snapshots(d)) == (1 if m.snapshot else 0)
    p = reopened(p, d)
    check(p, m)
    p.Close()
    assert reopens > 10
    assert int(os.path.basename(segments(d)[0])[4:20], 16) > 1, "no compaction happened"


def TestRaftStateSizeFollowsAppendsTruncationsAndCompactions(tmp_path):
    p = DurablePersister(tmp_path / "d")
    p.SaveLog(b"12345", 0, 1, [b"a" * 10, b"b" * 20, b"c" * 30], b"")
    assert p.RaftStateSize() == 5 + 60
    p.SaveLog(b"12345", 0, 3, [b"C" * 7], b"")  # truncation: 30 out, 7 in
    assert p.RaftStateSize() == 5 + 37
    p.SaveLog(b"123", 1, 4, [b"d" * 100], b"snap")  # compaction drops entry 1 (10 bytes)
    assert p.RaftStateSize() == 3 + 20 + 7 + 100
    p.SaveLog(b"123", 2, 3, [], b"snap")  # truncation to nothing after base 2
    assert p.RaftStateSize() == 3
    p.SaveLog(b"123", 50, 51, [b"x"], b"snap50")  # install past the end
    assert p.RaftStateSize() == 4
    p.Save(b"full state", b"")
    assert p.RaftStateSize() == 10
    p.Close()
    p = DurablePersister(tmp_path / "d")
    assert p.RaftStateSize() == 10
    p.Close()


# ---- torn tails and corruption ----

@pytest.mark.parametrize("mode", ["log", "full"])
def TestTornTailAtEveryOffsetOfTheLastSync(tmp_path, mode, fast_fsync):
    d = tmp_path / "d"
    p, m = DurablePersister(d), Model()
    for i in range(4):
        if mode == "log":
            both(p, m, b"t%d" % i, 0, m.last() + 1, [b"entry%d" % i], b"")
        else:
            p.Save(b"state%d" % i, b"")
            m.save(b"state%d" % i, b"")
        p.Sync()
    seg = segments(d)[0]
    before_last = os.path.getsize(seg)
    expected = copy.deepcopy(m)
    if mode == "log":
        both(p, m, b"t-last", 0, m.last() + 1, [b"final"], b"")
    else:
        p.Save(b"state-last", b"")
    p.Close()
    full = os.path.getsize(seg)
    assert full - before_last > storage.HEADER_SIZE
    for cut in range(before_last, full):
        c = copy_dir(d, tmp_path / f"cut{cut}")
        cseg = segments(c)[0]
        truncate(cseg, cut)
        q = DurablePersister(c)
        check(q, expected)
        assert os.path.getsize(cseg) == before_last  # the torn bytes are gone
        if mode == "full":
            q.Save(b"after", b"")
        else:
            q.SaveLog(b"after", 0, expected.last() + 1, [b"again"], b"")
        q = reopened(q, c)
        if mode == "full":
            assert q.ReadRaftState() == b"after"
        else:
            assert q.ReadLog() == (b"after", 0, expected.entries + [b"again"])
        q.Close()
        shutil.rmtree(c)


def TestZeroFilledTailIsRepaired(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 0, 1, [b"a", b"b"], b"")
    p.Close()
    seg = segments(d)[0]
    size = os.path.getsize(seg)
    with open(seg, "ab") as f:
        f.write(bytes(4096))  # what a crash can leave after the file was extended
    p = DurablePersister(d)
    assert p.ReadLog() == (b"s", 0, [b"a", b"b"])
    assert os.path.getsize(seg) == size
    p.Close()


def TestLastRecordWithBadPayloadChecksumIsTornWithAWarning(tmp_path, caplog):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.Save(b"one", b"")
    p.Sync()
    p.Save(b"two", b"")
    p.Close()
    seg = segments(d)[0]
    start, end = record_spans(seg)[-1]
    flip(seg, end - 1)
    with caplog.at_level(logging.WARNING, logger="kubekv.storage"):
        p = DurablePersister(d)
    assert p.ReadRaftState() == b"one"
    assert f"{seg}: repairing a torn tail at offset {start}" in caplog.text
    p.Close()


def _five_groups(d) -> str:
    p = DurablePersister(d)
    for i in range(5):
        p.SaveLog(b"state%d" % i, 0, i + 1, [b"entry number %d" % i], b"")
        p.Sync()
    p.Close()
    return segments(d)[0]


@pytest.mark.parametrize("where", ["magic", "length", "header-crc", "payload-first",
                                   "payload-last"])
def TestFlippedByteInAnEarlierRecordIsCorruption(tmp_path, where):
    d = tmp_path / "d"
    seg = _five_groups(d)
    spans = record_spans(seg)
    assert len(spans) == 10  # ENTRIES + STATE per SaveLog
    start, end = spans[3]
    at = {"magic": 0, "length": 5, "header-crc": 13, "payload-first": storage.HEADER_SIZE,
          "payload-last": end - start - 1}[where]
    flip(seg, start + at)
    with pytest.raises(CorruptionError) as ei:
        DurablePersister(d)
    e = ei.value
    assert e.path == seg and e.offset == start
    assert seg in str(e) and f"offset {start}" in str(e)
    assert "restore the member from a peer" in str(e) and "remove the data directory" in str(e)
    # Refused, not repaired: the file is as it was, and the directory is not left locked.
    assert os.path.getsize(seg) == spans[-1][1]
    with pytest.raises(CorruptionError):
        DurablePersister(d)


def TestBadHeaderInTheLastRecordIsCorruptionUnlessZeros(tmp_path):
    d = tmp_path / "d"
    seg = _five_groups(d)
    start, _ = record_spans(seg)[-1]
    flip(seg, start + 5)
    with pytest.raises(CorruptionError) as ei:
        DurablePersister(d)
    assert ei.value.offset == start


def TestWellFramedNonsenseIsCorruption(tmp_path):
    d = tmp_path / "d"
    seg = _five_groups(d)
    size = os.path.getsize(seg)
    bad = [storage._record(storage._pack([9, b"x"])),                 # unknown type
           storage._record(b"\xc1"),                                    # not msgpack
           storage._record(storage._pack([storage.STATE, "str", 1, None])),  # wrong field type
           storage._record(storage._pack([storage.ENTRIES, 99, [b"x"]])),   # a gap after index 5
           ]
    for rec in bad:
        with open(seg, "ab") as f:
            f.write(rec)
            if rec is bad[-1]:
                f.write(storage._record(storage._pack([storage.STATE, b"s", 0, None])))
        with pytest.raises(CorruptionError) as ei:
            DurablePersister(d)
        assert ei.value.path == seg and ei.value.offset >= size
        truncate(seg, size)
    p = DurablePersister(d)
    assert p.ReadLog()[2] == [b"entry number %d" % i for i in range(5)]
    p.Close()


def TestDamageInASegmentThatIsNotTheLastIsCorruption(tmp_path):
    d = tmp_path / "d"
    seg = _five_groups(d)
    nxt = seg.replace("0000000000000001.log", "0000000000000002.log")
    shutil.copy(seg, nxt)
    truncate(seg, os.path.getsize(seg) - 3)  # torn, but not in the last segment
    with pytest.raises(CorruptionError) as ei:
        DurablePersister(d)
    assert ei.value.path == seg


# ---- snapshots ----

def TestSnapshotFilesAreReplacedAndLeftoversRemoved(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 0, 1, [b"a", b"b", b"c"], b"")
    p.SaveLog(b"s", 2, 4, [b"d"], b"snapshot-2")
    p.Sync()
    assert [os.path.basename(s) for s in snapshots(d)] == ["snap-0000000000000001.snap"]
    p.SaveLog(b"s", 3, 5, [], b"snapshot-3")
    p.SaveLog(b"s", 3, 5, [], b"snapshot-3")  # equal, not identical: no new file
    p.Sync()
    assert [os.path.basename(s) for s in snapshots(d)] == ["snap-0000000000000002.snap"]
    p.Close()
    garbage = [d / "snap-00000000000000ff.tmp", d / "wal-0000000000000002.tmp",
               d / "snap-0000000000000077.snap"]  # torn writes, and a file no record references
    for g in garbage:
        g.write_bytes(b"\x13garbage" * 50)
    p = DurablePersister(d)
    assert p.ReadSnapshot() == b"snapshot-3" and p.ReadLog() == (b"s", 3, [b"d"])
    assert not any(g.exists() for g in garbage)
    # A newer snapshot gets a number above every file seen, so nothing stale is overwritten.
    p.SaveLog(b"s", 4, 5, [], b"snapshot-4")
    p.Sync()
    assert [os.path.basename(s) for s in snapshots(d)] == ["snap-0000000000000078.snap"]
    p.Close()


def TestPreparedSnapshotIsWrittenOnceAndSurvivesReopen(tmp_path, monkeypatch):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 0, 1, [b"a", b"b"], b"")
    p.Sync()
    sn = b"a big snapshot " * 1000
    p.PrepareSnapshot(sn)
    assert len(snapshots(d)) == 1         # on disk before any save names it
    written = []
    real = DurablePersister._write_snapshot
    monkeypatch.setattr(DurablePersister, "_write_snapshot",
                        lambda self, seq, data, where=None: (written.append(seq),
                                                             real(self, seq, data, where)))
    p.SaveLog(b"s2", 2, 3, [b"c"], sn)    # this very object: its file is the prepared one
    p.Sync()
    assert written == [] and len(snapshots(d)) == 1
    p = reopened(p, d)
    assert p.ReadSnapshot() == sn and p.ReadLog() == (b"s2", 2, [b"c"])
    # A snapshot that is equal but not prepared is written by the Sync, as before.
    p.SaveLog(b"s3", 3, 4, [], b"another")
    p.Sync()
    assert len(written) == 1 and len(snapshots(d)) == 1
    p.Close()


def TestPreparedSnapshotNeverSavedIsDeleted(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 0, 1, [b"a"], b"")
    p.Sync()
    p.PrepareSnapshot(b"never saved")     # e.g. Raft ignored it: InstallSnapshot came first
    p = reopened(p, d)                    # a crash here leaves only an unreferenced file
    assert snapshots(d) == [] and p.ReadSnapshot() == b""
    stale, saved = b"stale", bytes(bytearray(b"saved"))
    p.PrepareSnapshot(stale)
    p.PrepareSnapshot(saved)
    p.SaveLog(b"s", 1, 2, [], saved)
    p.Sync()                              # the older prepared file goes once this is durable
    assert [os.path.basename(s) for s in snapshots(d)] == ["snap-0000000000000003.snap"]
    p.PrepareSnapshot(bytes(bytearray(b"next")))
    p.SaveLog(b"s", 1, 2, [], bytes(bytearray(b"next")))  # equal, not the prepared object:
    p.Sync()                                              # written anew; the prepared one goes
    assert [os.path.basename(s) for s in snapshots(d)] == ["snap-0000000000000005.snap"]
    p = reopened(p, d)
    assert p.ReadSnapshot() == b"next" and len(snapshots(d)) == 1
    p.Close()


def TestPrepareSnapshotOnAClosedOrFailedPersisterRaises(tmp_path, monkeypatch):
    p = DurablePersister(tmp_path / "d")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "EIO")))
    with pytest.raises(StorageError, match="sync of snapshot .* failed"):
        p.PrepareSnapshot(b"x")
    with pytest.raises(StorageError):     # failed for good, like a failed Sync
        p.Sync()
    monkeypatch.undo()
    q = DurablePersister(tmp_path / "e")
    q.Close()
    with pytest.raises(StorageError, match="closed"):
        q.PrepareSnapshot(b"x")


@pytest.mark.parametrize("at", [3, 20, storage.SNAP_HEADER_SIZE + 4])
def TestReferencedSnapshotWithAFlippedByteIsCorruption(tmp_path, at):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 7, 8, [b"x"], b"the service's snapshot")
    p.Close()
    (snap,) = snapshots(d)
    flip(snap, at)
    with pytest.raises(CorruptionError) as ei:
        DurablePersister(d)
    assert ei.value.path == snap and snap in str(ei.value)


def TestMissingReferencedSnapshotIsCorruption(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.Save(b"s", b"snap")
    p.Close()
    (snap,) = snapshots(d)
    os.unlink(snap)
    with pytest.raises(CorruptionError, match="missing") as ei:
        DurablePersister(d)
    assert ei.value.path == snap


# ---- failures, locking, identity ----

def TestFsyncErrorIsFatal(tmp_path, monkeypatch):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 0, 1, [b"durable"], b"")
    p.Sync()
    real = os.fdatasync
    calls = []

    def fails_once(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fails_once)
    p.SaveLog(b"s", 0, 2, [b"maybe lost"], b"")
    with pytest.raises(StorageError) as ei:
        p.Sync()
    msg = str(ei.value)
    assert segments(d)[0] in msg and os.strerror(errno.EIO) in msg and "fdatasync" in msg
    # fdatasync would work now; the persister must not pretend the lost write is safe.
    for call in (lambda: p.SaveLog(b"s", 0, 3, [b"x"], b""), lambda: p.Save(b"x", b""), p.Sync,
                 p.ReadLog, p.ReadSnapshot, p.RaftStateSize):
        with pytest.raises(StorageError, match=os.strerror(errno.EIO)):
            call()
    assert len(calls) == 1
    with pytest.raises(StorageError):
        p.Close()  # releases the directory, but still says the data was not made durable
    p.Close()
    monkeypatch.undo()
    p = DurablePersister(d)
    assert p.ReadLog()[2] in ([b"durable"], [b"durable", b"maybe lost"])
    p.Close()


def TestGroupCommitSharesFsyncs(tmp_path, monkeypatch):
    d = tmp_path / "d"
    p = DurablePersister(d)
    p.SaveLog(b"s", 0, 1, [], b"")
    p.Sync()
    real = os.fdatasync

    def slow(fd):
        time.sleep(0.005)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", slow)
    before = p.stats()
    raft_mu = threading.Lock()  # Raft's own lock, held around SaveLog as Raft does
    last = [0]
    n = 16
    barrier = threading.Barrier(n)
    durable_at: dict[int, int] = {}
    errors = []

    def server(i):
        try:
            barrier.wait()
            with raft_mu:
                last[0] += 1
                idx = last[0]
                p.SaveLog(b"state after %d" % idx, 0, idx, [b"from thread %d" % i], b"")
            p.Sync()
            durable_at[i] = idx
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=server, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    after = p.stats()
    fsyncs = after["fsyncs"] - before["fsyncs"]
    assert 1 <= fsyncs <= n // 2, f"{fsyncs} fsyncs for {n} concurrent Syncs"
    assert after["syncs"] - before["syncs"] == fsyncs
    # Every Sync returned, so every entry is on disk already: a copy taken now, without Close
    # (which would sync again), holds all of them.
    c = copy_dir(d, tmp_path / "copy")
    q = DurablePersister(c)
    state, base, entries = q.ReadLog()
    assert base == 0 and len(entries) == n and state == b"state after %d" % n
    assert sorted(entries) == sorted(b"from thread %d" % i for i in range(n))
    q.Close()
    p.Close()


def TestSecondPersisterOnALockedDirIsRefused(tmp_path):
    d = tmp_path / "d"
    p = DurablePersister(d)
    with pytest.raises(DataDirError, match=f"data directory {d} is in use by another process "
                                           f"\\(pid {os.getpid()} in LOCK file\\)"):
        DurablePersister(d)
    code = ("import sys\nfrom kubekv.storage import DurablePersister, DataDirError\n"
            "try:\n    DurablePersister(sys.argv[1])\nexcept DataDirError as e:\n"
            "    print(e); sys.exit(3)\n")
    r = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert r.returncode == 3, r.stderr
    assert f"pid {os.getpid()}" in r.stdout
    p.Save(b"still mine", b"")  # the refused opens changed nothing
    p.Close()
    p = DurablePersister(d)  # released by Close
    assert p.ReadRaftState() == b"still mine"
    p.Close()


@pytest.mark.parametrize("stamp, option, mine, other", [
    ("IDENTITY", "identity", "cluster=abc member=1", "cluster=abc member=2"),
    ("FORMAT", "data_format", "kubekv 1", "kubekv 2"),
])
def TestStampMismatchIsRefused(tmp_path, stamp, option, mine, other):
    d = tmp_path / "d"
    p = DurablePersister(d, **{option: mine})
    p.Save(b"x", b"")
    p.Close()
    assert (d / stamp).read_text() == mine + "\n"
    with pytest.raises(DataDirError) as ei:
        DurablePersister(d, **{option: other})
    msg = str(ei.value)
    assert repr(mine) in msg and repr(other) in msg and "fix" in msg and str(d) in msg
    p = DurablePersister(d, **{option: mine})  # the refusal left it unlocked and intact
    assert p.ReadRaftState() == b"x"
    p.Close()
    DurablePersister(d).Close()  # not given: not checked


def TestDataFormatIsStampedOnADirectoryFromBeforeTheStamp(tmp_path):
    old = tmp_path / "old"
    p = DurablePersister(old)
    p.Save(b"y", b"")
    p.Close()
    assert not (old / "FORMAT").exists()
    p = DurablePersister(old, data_format="kubekv 1")
    assert p.ReadRaftState() == b"y" and (old / "FORMAT").read_text() == "kubekv 1\n"
    p.Close()


# ---- compaction ----

def TestCompactionKeepsTheWalBounded(tmp_path, monkeypatch, fast_fsync):
    monkeypatch.setattr(DurablePersister, "COMPACT_SLACK", 4096)
    d = tmp_path / "d"
    p, m = DurablePersister(d), Model()
    for i in range(1, 801):
        base = max(0, (i - 10) // 5 * 5)  # a snapshot every 5 steps keeps 10-15 live entries
        both(p, m, b"term=%d" % i, base, i, [b"entry %05d " % i + bytes(40)], b"snap@%d" % base)
        if i % 10 == 0:
            p.Sync()
            segs = segments(d)
            assert len(segs) == 1 and len(snapshots(d)) == 1
            # A Sync that would pass the bound writes a checkpoint instead.
            live = m.size() + 8 * len(m.entries) + 64
            assert os.path.getsize(segs[0]) <= 4 * live + 4096
            check(p, m)
    assert int(os.path.basename(segments(d)[0])[4:20], 16) > 5, "expected several checkpoints"
    p = reopened(p, d)
    check(p, m)
    p.Close()


def TestCrashDuringCheckpointRecovers(tmp_path, monkeypatch):
    monkeypatch.setattr(DurablePersister, "COMPACT_SLACK", 2048)
    d = tmp_path / "d"
    p, m = DurablePersister(d), Model()
    i = 0
    while True:
        i += 1
        old = segments(d)[0]
        old_copy = open(old, "rb").read()
        both(p, m, b"st%d" % i, max(0, i - 3), i, [b"e%d" % i * 20], b"")
        p.Sync()
        if segments(d)[0] != old:
            break
    new = segments(d)[0]
    p.Close()
    # Crash after the checkpoint's rename, before the old segment was deleted: both replay.
    with open(old, "wb") as f:
        f.write(old_copy)
    # And a checkpoint torn before its rename: a leftover temp file.
    seq = int(os.path.basename(new)[4:20], 16)
    leftover = os.path.join(d, "wal-%016x.tmp" % (seq + 1))
    with open(leftover, "wb") as f:
        f.write(b"half a checkpoint")
    p = DurablePersister(d)
    check(p, m)
    assert segments(d) == [new] and not os.path.exists(leftover)
    p.Close()


def TestCheckpointWithEmptyLogTruncatesWhatOlderSegmentsHeld(tmp_path, monkeypatch):
    monkeypatch.setattr(DurablePersister, "COMPACT_SLACK", 1024)
    d = tmp_path / "d"
    p, m = DurablePersister(d), Model()
    both(p, m, b"s", 0, 1, [b"x" * 100 for _ in range(30)], b"")
    p.Sync()
    old = segments(d)[0]
    old_copy = open(old, "rb").read()
    both(p, m, b"s", 30, 31, [], b"snap")  # everything compacted away
    p.Sync()
    assert segments(d) != [old]
    p.Close()
    with open(old, "wb") as f:
        f.write(old_copy)
    p = DurablePersister(d)
    check(p, m)
    assert m.entries == []
    p.Close()


def TestMeasurementRuns(tmp_path, capsys):
    assert storage.main(["--dir", str(tmp_path), "--appends", "5", "--entry-bytes", "10"]) == 0
    out = capsys.readouterr().out
    assert "100000 entries" in out and "SaveLog+Sync" in out
