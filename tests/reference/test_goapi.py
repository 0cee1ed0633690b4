"""The lab tests need nothing of the reference solution beyond Go's API (tests/goapi.py).

Run: python -m pytest tests/reference/test_goapi.py
The whole lab suite under the same plugin: python -m pytest -p tests.goapi raft1 rsm kvraft1 -n 2
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from raft1.raftapi import Raft
from tests.goapi import RAFT_API, go_api_proxy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# One test of each part that reaches every Go API call: Start/GetState/Kill, Snapshot,
# Submit/Raft, and the KV server and clerk.
SAMPLE = [
    "raft1/test_raft.py::TestBasicAgree3B",
    "raft1/test_raft.py::TestSnapshotBasic3D",
    "rsm/test_rsm.py::TestBasic4A",
    "rsm/test_rsm.py::TestLeaderPartition4A",
    "kvraft1/test_kvraft.py::TestBasic4B",
]
# Generous: the sample takes about 20 s.
SAMPLE_DEADLINE_S = 300


class _Peer:
    def __init__(self) -> None:
        self.me = 3

    def Start(self, command): return 1, 1, True
    def GetState(self): return 1, True
    def Snapshot(self, index, snapshot): pass
    def PersistBytes(self): return 0
    def Kill(self): pass
    def AppendEntries(self, args, reply): reply.ok = True


def TestProxyKeepsGoApiAndHandlers():
    p = go_api_proxy(_Peer(), RAFT_API, handlers=True)
    assert type(p).__name__ == "_Peer"   # labrpc's service name stays the class name
    assert p.GetState() == (1, True)
    assert callable(p.AppendEntries)
    with pytest.raises(AttributeError, match=r"_Peer.me is not in Go's API"):
        p.me


def TestRaftInterfaceIsStructural():
    """As a Go interface: a class with Raft's five methods is a raftapi.Raft without deriving from it."""
    assert isinstance(_Peer(), Raft)
    assert not isinstance(object(), Raft)


def TestLabSampleThroughGoApi():
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.goapi", "-q", "-p", "no:cacheprovider", *SAMPLE]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=SAMPLE_DEADLINE_S)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(SAMPLE)} passed" in proc.stdout, proc.stdout[-2000:]
