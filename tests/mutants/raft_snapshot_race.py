"""MUTANT of raft1/raft.py: InstallSnapshot sends the snapshot on applyCh from its own thread.

A planted 3D race (issue 13); not a solution. The only change is in InstallSnapshot: it sets
lastApplied at once and sends the snapshot's ApplyMsg on applyCh from a thread of its own,
while committed entries still go through the applier. Entries after the snapshot can then reach applyCh before it (the harness: "apply out
of order"). A public Go solution had this bug; Go's scheduler exposes it, an unloaded GIL
hardly ever does, the schedule noise (tester/noise.py) does. Run the lab tests against it with
    KUBEKV_MUTANT=raft_snapshot_race python -m pytest -p tests.mutants.plugin raft1 -k 3D
"""

from tests.mutants import plant

PART = "3D"
REPLACEMENTS = [(
    """            self.pending_snapshot = ApplyMsg(SnapshotValid=True, Snapshot=args.Data,
                                             SnapshotTerm=args.LastIncludedTerm,
                                             SnapshotIndex=args.LastIncludedIndex)
            self.apply_cond.notify()
""",
    """            # MUTANT: the reference queues the snapshot for the applier (pending_snapshot), so
            # it is delivered in order with the entries. Here lastApplied jumps at once and a
            # separate thread delivers the snapshot: the race.
            self.lastApplied = args.LastIncludedIndex
            msg = ApplyMsg(SnapshotValid=True, Snapshot=args.Data,
                           SnapshotTerm=args.LastIncludedTerm,
                           SnapshotIndex=args.LastIncludedIndex)
        self.spawn("snapshot-send", self.send_snapshot_msg, msg)

    def send_snapshot_msg(self, msg: ApplyMsg) -> None:
        try:
            self.applyCh.send(msg)
        except ChanClosed:
            pass  # Kill() closed applyCh
""")]

plant(globals(), "raft1/raft.py", REPLACEMENTS)
