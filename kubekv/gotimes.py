"""The Go reference's seconds per lab test on this machine kind (../shared/go-baseline.md).

Usage:
    from kubekv.gotimes import GO_SECONDS, part_of
    GO_SECONDS["TestBackup3B"]     # 12.2: mean of the two Go runs
    part_of("TestBackup3B")        # "3B"

Measured with the official 2025 Go harness and a complete public Go solution, `go test -count=1`.
"""

from __future__ import annotations

import re

GO_SECONDS: dict[str, float] = {
    # 3A
    "TestInitialElection3A": 3.04, "TestReElection3A": 4.69, "TestManyElections3A": 5.79,
    # 3B
    "TestBasicAgree3B": 0.56, "TestRPCBytes3B": 0.94, "TestFollowerFailure3B": 4.60,
    "TestLeaderFailure3B": 5.23, "TestFailAgree3B": 5.27, "TestFailNoAgree3B": 3.53,
    "TestConcurrentStarts3B": 0.57, "TestRejoin3B": 6.27, "TestBackup3B": 12.22, "TestCount3B": 2.06,
    # 3C
    "TestPersist13C": 4.52, "TestPersist23C": 13.71, "TestPersist33C": 2.00, "TestFigure83C": 31.28,
    "TestUnreliableAgree3C": 1.85, "TestFigure8Unreliable3C": 37.85, "TestReliableChurn3C": 16.20,
    "TestUnreliableChurn3C": 16.09,
    # 3D
    "TestSnapshotBasic3D": 2.45, "TestSnapshotInstall3D": 48.47, "TestSnapshotInstallUnreliable3D": 50.43,
    "TestSnapshotInstallCrash3D": 40.89, "TestSnapshotInstallUnCrash3D": 40.54,
    "TestSnapshotAllCrash3D": 6.76, "TestSnapshotInit3D": 2.22,
    # 4A
    "TestBasic4A": 0.91, "TestConcurrent4A": 0.40, "TestLeaderFailure4A": 1.19,
    "TestLeaderPartition4A": 2.39, "TestRestartReplay4A": 7.88, "TestShutdown4A": 10.05,
    "TestRestartSubmit4A": 18.27,
    # 4B
    "TestBasic4B": 3.05, "TestSpeed4B": 6.96, "TestConcurrent4B": 3.27, "TestUnreliable4B": 3.80,
    "TestOnePartition4B": 3.24, "TestManyPartitionsOneClient4B": 11.47,
    "TestManyPartitionsManyClients4B": 11.47, "TestPersistOneClient4B": 6.07,
    "TestPersistConcurrent4B": 6.23, "TestPersistConcurrentUnreliable4B": 6.93,
    "TestPersistPartition4B": 12.98, "TestPersistPartitionUnreliable4B": 13.42,
    "TestPersistPartitionUnreliableLinearizable4B": 15.09,
    # 4C (rsm's TestSnapshot4C and kvraft's)
    "TestSnapshot4C": 1.71, "TestSnapshotRPC4C": 2.18, "TestSnapshotSize4C": 7.90, "TestSpeed4C": 9.58,
    "TestSnapshotRecover4C": 6.08, "TestSnapshotRecoverManyClients4C": 9.52,
    "TestSnapshotUnreliable4C": 3.75, "TestSnapshotUnreliableRecover4C": 7.07,
    "TestSnapshotUnreliableRecoverConcurrentPartition4C": 13.79,
    "TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable4C": 13.77,
}

PARTS = ("3A", "3B", "3C", "3D", "4A", "4B", "4C")
_PART = re.compile(r"([34][A-D])$")


def part_of(name: str) -> str | None:
    """The lab part a test's name ends with ("TestBackup3B" -> "3B"), or None."""
    m = _PART.search(re.sub(r"\[.*\]$", "", name.split("::")[-1]))
    return m.group(1) if m else None
