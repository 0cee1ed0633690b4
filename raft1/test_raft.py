"""Raft tests (Go: raft1/raft_test.go), test for test: same names, steps and limits.

Run:
    python -m pytest raft1 -k 3A            # go test -run 3A
    python -m pytest raft1 -k TestBackup3B --count 10 -x   # go test -run TestBackup3B -count 10
"""

from __future__ import annotations

import random
import threading
import time

import tester
from raft1.chan import Chan
from raft1.harness import makeTest
from raft1.server import SnapShotInterval

# The tester generously allows solutions to complete elections in one second
# (much more than the paper's range of timeouts).  Seconds.
RaftElectionTimeout = 1.0

MAXLOGSIZE = 2000  # bytes of persisted Raft state (3D)


def rand_int() -> int:
    """Go's rand.Int(): a non-negative 63-bit int."""
    return random.getrandbits(63)


def TestInitialElection3A():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestInitialElection3A", servers)
        ts.Begin("Test (3A): initial election")

        # is a leader elected?
        ts.checkOneLeader()

        # sleep a bit to avoid racing with followers learning of the
        # election, then check that all peers agree on the term.
        time.sleep(0.050)
        term1 = ts.checkTerms()
        if term1 < 1:
            t.Fatalf("term is %v, but should be at least 1", term1)

        # does the leader+term stay the same if there is no network failure?
        time.sleep(2 * RaftElectionTimeout)
        term2 = ts.checkTerms()
        if term1 != term2:
            print("warning: term changed even though there were no failures", end="")

        # there should still be a leader.
        ts.checkOneLeader()
    finally:
        ts.cleanup()


def TestReElection3A():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestReElection3A", servers)
        ts.Begin("Test (3A): election after network failure")

        leader1 = ts.checkOneLeader()

        # if the leader disconnects, a new one should be elected.
        ts.g.DisconnectAll(leader1)
        tester.AnnotateConnection(ts.g.GetConnected())
        ts.checkOneLeader()

        # if the old leader rejoins, that shouldn't disturb the new leader.
        # and the old leader should switch to follower.
        ts.g.ConnectOne(leader1)
        tester.AnnotateConnection(ts.g.GetConnected())
        leader2 = ts.checkOneLeader()

        # if there's no quorum, no new leader should be elected.
        ts.g.DisconnectAll(leader2)
        ts.g.DisconnectAll((leader2 + 1) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())
        time.sleep(2 * RaftElectionTimeout)

        # check that the one connected server does not think it is the leader.
        ts.checkNoLeader()

        # if a quorum arises, it should elect a leader.
        ts.g.ConnectOne((leader2 + 1) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())
        ts.checkOneLeader()

        # re-join of last node shouldn't prevent leader from existing.
        ts.g.ConnectOne(leader2)
        tester.AnnotateConnection(ts.g.GetConnected())
        ts.checkOneLeader()
    finally:
        ts.cleanup()


def TestManyElections3A():
    t = tester.T()
    servers = 7
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestManyElection3A", servers)
        ts.Begin("Test (3A): multiple elections")

        ts.checkOneLeader()

        iters = 10
        for _ in range(1, iters):
            # disconnect three nodes
            i1 = random.randrange(servers)
            i2 = random.randrange(servers)
            i3 = random.randrange(servers)
            ts.g.DisconnectAll(i1)
            ts.g.DisconnectAll(i2)
            ts.g.DisconnectAll(i3)
            tester.AnnotateConnection(ts.g.GetConnected())

            # either the current leader should still be alive,
            # or the remaining four should elect a new one.
            ts.checkOneLeader()

            ts.g.ConnectOne(i1)
            ts.g.ConnectOne(i2)
            ts.g.ConnectOne(i3)
            tester.AnnotateConnection(ts.g.GetConnected())
        ts.checkOneLeader()
    finally:
        ts.cleanup()


def TestBasicAgree3B():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestBasicAgree3B", servers)
        ts.Begin("Test (3B): basic agreement")

        iters = 3
        for index in range(1, iters + 1):
            nd, _ = ts.nCommitted(index)
            if nd > 0:
                t.Fatalf("some have committed before Start()")

            xindex = ts.one(index * 100, servers, False)
            if xindex != index:
                t.Fatalf("got index %v but expected %v", xindex, index)
    finally:
        ts.cleanup()


def TestRPCBytes3B():
    """Check, based on counting bytes of RPCs, that each command is sent to each peer just once."""
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestRPCBytes3B", servers)
        ts.Begin("Test (3B): RPC byte count")

        ts.one(99, servers, False)
        bytes0 = ts.BytesTotal()

        iters = 10
        sent = 0
        for index in range(2, iters + 2):
            cmd = tester.Randstring(5000)
            xindex = ts.one(cmd, servers, False)
            if xindex != index:
                t.Fatalf("got index %v but expected %v", xindex, index)
            sent += len(cmd)

        bytes1 = ts.BytesTotal()
        got = bytes1 - bytes0
        expected = servers * sent
        if got > expected + 50000:
            t.Fatalf("too many RPC bytes; got %v, expected %v", got, expected)
    finally:
        ts.cleanup()


def TestFollowerFailure3B():
    """Test just failure of followers."""
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestFollowerFailure3B", servers)
        ts.Begin("Test (3B): test progressive failure of followers")

        ts.one(101, servers, False)

        # disconnect one follower from the network.
        leader1 = ts.checkOneLeader()
        ts.g.DisconnectAll((leader1 + 1) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # the leader and remaining follower should be
        # able to agree despite the disconnected follower.
        ts.one(102, servers - 1, False)
        time.sleep(RaftElectionTimeout)
        ts.one(103, servers - 1, False)

        # disconnect the remaining follower
        leader2 = ts.checkOneLeader()
        ts.g.DisconnectAll((leader2 + 1) % servers)
        ts.g.DisconnectAll((leader2 + 2) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # submit a command.
        index, _, ok = ts.srvs[leader2].Raft().Start(104)
        if ok is not True:
            t.Fatalf("leader rejected Start()")
        if index != 4:
            t.Fatalf("expected index 4, got %v", index)

        time.sleep(2 * RaftElectionTimeout)

        # check that command 104 did not commit.
        ts.checkNoAgreement(index)
    finally:
        ts.cleanup()


def TestLeaderFailure3B():
    """Test just failure of leaders."""
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestLeaderFailure3B", servers)
        ts.Begin("Test (3B): test failure of leaders")

        ts.one(101, servers, False)

        # disconnect the first leader.
        leader1 = ts.checkOneLeader()
        ts.g.DisconnectAll(leader1)
        tester.AnnotateConnection(ts.g.GetConnected())

        # the remaining followers should elect a new leader.
        ts.one(102, servers - 1, False)
        time.sleep(RaftElectionTimeout)
        ts.one(103, servers - 1, False)

        # disconnect the new leader.
        leader2 = ts.checkOneLeader()
        ts.g.DisconnectAll(leader2)
        tester.AnnotateConnection(ts.g.GetConnected())

        # submit a command to each server.
        for i in range(servers):
            ts.srvs[i].Raft().Start(104)

        time.sleep(2 * RaftElectionTimeout)

        # check that command 104 did not commit.
        ts.checkNoAgreement(4)
    finally:
        ts.cleanup()


def TestFailAgree3B():
    """Test that a follower participates after disconnect and re-connect."""
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestFailAgree3B", servers)
        ts.Begin("Test (3B): agreement after follower reconnects")

        ts.one(101, servers, False)

        # disconnect one follower from the network.
        leader = ts.checkOneLeader()
        ts.g.DisconnectAll((leader + 1) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # the leader and remaining follower should be
        # able to agree despite the disconnected follower.
        ts.one(102, servers - 1, False)
        ts.one(103, servers - 1, False)
        time.sleep(RaftElectionTimeout)
        ts.one(104, servers - 1, False)
        ts.one(105, servers - 1, False)

        # re-connect
        ts.g.ConnectOne((leader + 1) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # the full set of servers should preserve previous
        # agreements, and be able to agree on new commands.
        ts.one(106, servers, True)
        time.sleep(RaftElectionTimeout)
        ts.one(107, servers, True)
    finally:
        ts.cleanup()


def TestFailNoAgree3B():
    t = tester.T()
    servers = 5
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestFailNoAgree3B", servers)
        ts.Begin("Test (3B): no agreement if too many followers disconnect")

        ts.one(10, servers, False)

        # 3 of 5 followers disconnect
        leader = ts.checkOneLeader()
        ts.g.DisconnectAll((leader + 1) % servers)
        ts.g.DisconnectAll((leader + 2) % servers)
        ts.g.DisconnectAll((leader + 3) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        index, _, ok = ts.srvs[leader].Raft().Start(20)
        if ok is not True:
            t.Fatalf("leader rejected Start()")
        if index != 2:
            t.Fatalf("expected index 2, got %v", index)

        time.sleep(2 * RaftElectionTimeout)

        n, _ = ts.nCommitted(index)
        if n > 0:
            t.Fatalf("%v committed but no majority", n)

        # repair
        ts.g.ConnectOne((leader + 1) % servers)
        ts.g.ConnectOne((leader + 2) % servers)
        ts.g.ConnectOne((leader + 3) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # the disconnected majority may have chosen a leader from
        # among their own ranks, forgetting index 2.
        leader2 = ts.checkOneLeader()
        index2, _, ok2 = ts.srvs[leader2].Raft().Start(30)
        if not ok2:
            t.Fatalf("leader2 rejected Start()")
        if index2 < 2 or index2 > 3:
            t.Fatalf("unexpected index %v", index2)

        ts.one(1000, servers, True)
    finally:
        ts.cleanup()


def TestConcurrentStarts3B():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestConcurrentStarts3B", servers)
        ts.Begin("Test (3B): concurrent Start()s")

        success = False
        for attempt in range(5):
            if attempt > 0:
                # give solution some time to settle
                time.sleep(3)
            if concurrent_starts_attempt(t, ts, servers, attempt):
                success = True
                break

        if not success:
            tester.AnnotateCheckerFailure("agreement failed under concurrent submission",
                                          "unable to reach agreement after 5 attempts")
            t.Fatalf("term changed too often")

        tester.AnnotateCheckerSuccess("agreement reached under concurrent submission", "OK")
    finally:
        ts.cleanup()


def concurrent_starts_attempt(t, ts, servers: int, attempt: int) -> bool:
    """One try of TestConcurrentStarts3B's loop; False means "retry" (Go: continue loop)."""
    leader = ts.checkOneLeader()
    tester.AnnotateCheckerBegin(f"checking concurrent submission of commands (attempt {attempt})")
    _, term, ok = ts.srvs[leader].Raft().Start(1)

    despretry = "concurrent submission failed; retry"
    if not ok:
        # leader moved on really quickly
        tester.AnnotateCheckerNeutral(despretry, f"{leader} is no longer a leader")
        return False

    iters = 5
    is_: Chan = Chan(iters)

    def starter(i: int) -> None:
        i, term1, ok = ts.srvs[leader].Raft().Start(100 + i)
        if term1 != term:
            return
        if ok is not True:
            return
        is_.send(i)

    wg = [tester.go(starter, ii) for ii in range(iters)]
    for th in wg:
        th.join()
    is_.close()

    for j in range(servers):
        t1, _ = ts.srvs[j].Raft().GetState()
        if t1 != term:
            # term changed -- can't expect low RPC counts
            tester.AnnotateCheckerNeutral(
                despretry, f"term of server {j} changed from {term} to {t1}")
            return False

    cmds = []
    for index in is_:
        cmd = ts.wait(index, servers, term)
        if isinstance(cmd, int):
            if cmd == -1:
                # peers have moved on to later terms
                # so we can't expect all Start()s to have succeeded
                tester.AnnotateCheckerNeutral(
                    despretry, f"term changed while waiting for {servers} servers "
                               f"to commit index {index}")
                return False
            cmds.append(cmd)
        else:
            details = f"value {cmd} is not an int"
            tester.AnnotateCheckerFailure("read ill-typed value", details)
            t.Fatalf(details)

    for ii in range(iters):
        x = 100 + ii
        if x not in cmds:
            details = f"cmd {x} missing in {cmds}"
            tester.AnnotateCheckerFailure("concurrent submission failed", details)
            t.Fatalf(details)
    return True


def TestRejoin3B():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestRejoin3B", servers)
        ts.Begin("Test (3B): rejoin of partitioned leader")

        ts.one(101, servers, True)

        # leader network failure
        leader1 = ts.checkOneLeader()
        ts.g.DisconnectAll(leader1)
        tester.AnnotateConnection(ts.g.GetConnected())

        # make old leader try to agree on some entries
        start = tester.GetAnnotateTimestamp()
        ts.srvs[leader1].Raft().Start(102)
        ts.srvs[leader1].Raft().Start(103)
        ts.srvs[leader1].Raft().Start(104)
        text = f"submitted commands [102 103 104] to {leader1}"
        tester.AnnotateInfoInterval(start, text, text)

        # new leader commits, also for index=2
        ts.one(103, 2, True)

        # new leader network failure
        leader2 = ts.checkOneLeader()
        ts.g.DisconnectAll(leader2)

        # old leader connected again
        ts.g.ConnectOne(leader1)
        tester.AnnotateConnection(ts.g.GetConnected())

        ts.one(104, 2, True)

        # all together now
        ts.g.ConnectOne(leader2)
        tester.AnnotateConnection(ts.g.GetConnected())

        ts.one(105, servers, True)
    finally:
        ts.cleanup()


def TestBackup3B():
    t = tester.T()
    servers = 5
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestBackup3B", servers)
        ts.Begin("Test (3B): leader backs up quickly over incorrect follower logs")

        ts.one(rand_int(), servers, True)

        # put leader and one follower in a partition
        leader1 = ts.checkOneLeader()
        ts.g.DisconnectAll((leader1 + 2) % servers)
        ts.g.DisconnectAll((leader1 + 3) % servers)
        ts.g.DisconnectAll((leader1 + 4) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # submit lots of commands that won't commit
        start = tester.GetAnnotateTimestamp()
        for _ in range(50):
            ts.srvs[leader1].Raft().Start(rand_int())
        text = f"submitted 50 commands to {leader1}"
        tester.AnnotateInfoInterval(start, text, text)

        time.sleep(RaftElectionTimeout / 2)

        ts.g.DisconnectAll((leader1 + 0) % servers)
        ts.g.DisconnectAll((leader1 + 1) % servers)

        # allow other partition to recover
        ts.g.ConnectOne((leader1 + 2) % servers)
        ts.g.ConnectOne((leader1 + 3) % servers)
        ts.g.ConnectOne((leader1 + 4) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        # lots of successful commands to new group.
        for _ in range(50):
            ts.one(rand_int(), 3, True)

        # now another partitioned leader and one follower
        leader2 = ts.checkOneLeader()
        other = (leader1 + 2) % servers
        if leader2 == other:
            other = (leader2 + 1) % servers
        ts.g.DisconnectAll(other)
        tester.AnnotateConnection(ts.g.GetConnected())

        # lots more commands that won't commit
        start = tester.GetAnnotateTimestamp()
        for _ in range(50):
            ts.srvs[leader2].Raft().Start(rand_int())
        text = f"submitted 50 commands to {leader2}"
        tester.AnnotateInfoInterval(start, text, text)

        time.sleep(RaftElectionTimeout / 2)

        # bring original leader back to life,
        for i in range(servers):
            ts.g.DisconnectAll(i)
        ts.g.ConnectOne((leader1 + 0) % servers)
        ts.g.ConnectOne((leader1 + 1) % servers)
        ts.g.ConnectOne(other)
        tester.AnnotateConnection(ts.g.GetConnected())

        # lots of successful commands to new group.
        for _ in range(50):
            ts.one(rand_int(), 3, True)

        # now everyone
        for i in range(servers):
            ts.g.ConnectOne(i)
        tester.AnnotateConnection(ts.g.GetConnected())
        ts.one(rand_int(), servers, True)
    finally:
        ts.cleanup()


def TestCount3B():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestCount3B", servers)
        ts.Begin("Test (3B): RPC counts aren't too high")

        def rpcs() -> int:
            return sum(ts.g.RpcCount(j) for j in range(servers))

        ts.checkOneLeader()

        total1 = rpcs()

        if total1 > 30 or total1 < 1:
            text = f"too many or few RPCs ({total1}) to elect initial leader"
            tester.AnnotateCheckerFailure(text, text)
            t.Fatalf("%s", text)

        total2 = 0
        success = False
        for attempt in range(5):
            if attempt > 0:
                # give solution some time to settle
                time.sleep(3)
            total2 = count_attempt(t, ts, servers, attempt, rpcs)
            if total2 is not None:
                success = True
                break

        if not success:
            tester.AnnotateCheckerFailure("agreement failed",
                                          "unable to reach agreement after 5 attempts")
            t.Fatalf("term changed too often")

        tester.AnnotateCheckerBegin("checking reasonable RPC counts in idle")

        time.sleep(RaftElectionTimeout)

        total3 = rpcs()

        if total3 - total2 > 3 * 20:
            details = (f"number of RPC used for 1 second of idleness = "
                       f"{total3 - total2} > {3 * 20}")
            tester.AnnotateCheckerFailure("used too many RPCs in idle", details)
            t.Fatalf("too many RPCs (%v) for 1 second of idleness\n", total3 - total2)
        details = f"number of RPC used for 1 second of idleness = {total3 - total2} <= {3 * 20}"
        tester.AnnotateCheckerSuccess("used a reasonable number of RPCs in idle", details)
    finally:
        ts.cleanup()


def count_attempt(t, ts, servers: int, attempt: int, rpcs) -> int | None:
    """One try of TestCount3B's loop: total2, or None to retry (Go: continue loop)."""
    leader = ts.checkOneLeader()
    tester.AnnotateCheckerBegin(f"checking reasonable RPC counts for agreement (attempt {attempt})")
    total1 = rpcs()

    iters = 10
    starti, term, ok = ts.srvs[leader].Raft().Start(1)
    despretry = "submission failed; retry"
    if not ok:
        # leader moved on really quickly
        tester.AnnotateCheckerNeutral(despretry, f"{leader} is no longer a leader")
        return None

    cmds = []
    for i in range(1, iters + 2):
        x = random.getrandbits(31)
        cmds.append(x)
        index1, term1, ok = ts.srvs[leader].Raft().Start(x)
        if term1 != term:
            # Term changed while starting
            tester.AnnotateCheckerNeutral(
                despretry, f"term of the leader ({leader}) changed from {term} to {term1}")
            return None
        if not ok:
            # No longer the leader, so term has changed
            tester.AnnotateCheckerNeutral(despretry, f"{leader} is no longer a leader")
            return None
        if starti + i != index1:
            desp = f"leader {leader} adds the command at the wrong index"
            details = (f"the command should locate at index {starti + i}, "
                       f"but the leader puts it at {index1}")
            tester.AnnotateCheckerFailure(desp, details)
            t.Fatalf("Start() failed")

    for i in range(1, iters + 1):
        cmd = ts.wait(starti + i, servers, term)
        if not isinstance(cmd, int) or cmd != cmds[i - 1]:
            if cmd == -1:
                # term changed -- try again
                tester.AnnotateCheckerNeutral(
                    despretry, f"term changed while waiting for {servers} servers "
                               f"to commit index {starti + i}")
                return None
            details = (f"the command submitted at index {starti + i} in term {term} "
                       f"is {cmds[i - 1]}, but read {cmd}")
            tester.AnnotateCheckerFailure("incorrect command committed", details)
            t.Fatalf("wrong value %v committed for index %v; expected %v\n", cmd, starti + i, cmds)

    failed = False
    total2 = 0
    for j in range(servers):
        t1, _ = ts.srvs[j].Raft().GetState()
        if t1 != term:
            # term changed -- can't expect low RPC counts
            # need to keep going to update total2
            tester.AnnotateCheckerNeutral(
                despretry, f"term of server {j} changed from {term} to {t1}")
            failed = True
        total2 += ts.g.RpcCount(j)

    if failed:
        return None

    if total2 - total1 > (iters + 1 + 3) * 3:
        details = (f"number of RPC used for {iters} entries = {total2 - total1} "
                   f"> {(iters + 1 + 3) * 3}")
        tester.AnnotateCheckerFailure("used too many RPCs for agreement", details)
        t.Fatalf("too many RPCs (%v) for %v entries\n", total2 - total1, iters)

    details = (f"number of RPC used for {iters} entries = {total2 - total1} "
               f"<= {(iters + 1 + 3) * 3}")
    tester.AnnotateCheckerSuccess("used reasonable number of RPCs for agreement", details)
    return total2


def TestPersist13C():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestPersist13C", servers)
        ts.Begin("Test (3C): basic persistence")

        ts.one(11, servers, True)

        ts.g.Shutdown()
        tester.AnnotateShutdownAll()
        ts.g.StartServers()
        tester.AnnotateRestartAll()

        ts.one(12, servers, True)

        leader1 = ts.checkOneLeader()
        ts.g.ShutdownServer(leader1)
        tester.AnnotateShutdown([leader1])
        ts.restart(leader1)
        tester.AnnotateRestart([leader1])

        ts.one(13, servers, True)

        leader2 = ts.checkOneLeader()
        ts.g.ShutdownServer(leader2)
        tester.AnnotateShutdown([leader2])

        ts.one(14, servers - 1, True)

        ts.restart(leader2)
        tester.AnnotateRestart([leader2])

        tester.AnnotateCheckerBegin("wait for all servers to commit until index 4")
        ts.wait(4, servers, -1)  # wait for leader2 to join before killing i3
        tester.AnnotateCheckerSuccess("all committed until index 4", "OK")

        i3 = (ts.checkOneLeader() + 1) % servers
        ts.g.ShutdownServer(i3)
        tester.AnnotateShutdown([i3])

        ts.one(15, servers - 1, True)

        ts.restart(i3)
        tester.AnnotateRestart([i3])

        ts.one(16, servers, True)
    finally:
        ts.cleanup()


def TestPersist23C():
    t = tester.T()
    servers = 5
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestPersist23C", servers)
        ts.Begin("Test (3C): more persistence")

        index = 1
        for _ in range(5):
            ts.one(10 + index, servers, True)
            index += 1

            leader1 = ts.checkOneLeader()

            ts.g.ShutdownServer((leader1 + 1) % servers)
            ts.g.ShutdownServer((leader1 + 2) % servers)
            tester.AnnotateShutdown([(leader1 + 1) % servers, (leader1 + 2) % servers])

            ts.one(10 + index, servers - 2, True)
            index += 1

            ts.g.ShutdownServer((leader1 + 0) % servers)
            ts.g.ShutdownServer((leader1 + 3) % servers)
            ts.g.ShutdownServer((leader1 + 4) % servers)
            tester.AnnotateShutdown([(leader1 + 0) % servers, (leader1 + 3) % servers,
                                     (leader1 + 4) % servers])

            ts.restart((leader1 + 1) % servers)
            ts.restart((leader1 + 2) % servers)
            tester.AnnotateRestart([(leader1 + 1) % servers, (leader1 + 2) % servers])

            time.sleep(RaftElectionTimeout)

            ts.restart((leader1 + 3) % servers)
            tester.AnnotateRestart([(leader1 + 3) % servers])

            ts.one(10 + index, servers - 2, True)
            index += 1

            ts.restart((leader1 + 4) % servers)
            ts.restart((leader1 + 0) % servers)
            tester.AnnotateRestart([(leader1 + 4) % servers, (leader1 + 0) % servers])

        ts.one(1000, servers, True)
    finally:
        ts.cleanup()


def TestPersist33C():
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestPersist33C", servers)
        ts.Begin("Test (3C): partitioned leader and one follower crash, leader restarts")

        ts.one(101, 3, True)

        leader = ts.checkOneLeader()
        ts.g.DisconnectAll((leader + 2) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())

        ts.one(102, 2, True)

        ts.g.ShutdownServer((leader + 0) % servers)
        ts.g.ShutdownServer((leader + 1) % servers)
        tester.AnnotateShutdown([(leader + 0) % servers, (leader + 1) % servers])
        ts.g.ConnectOne((leader + 2) % servers)
        tester.AnnotateConnection(ts.g.GetConnected())
        ts.restart((leader + 0) % servers)
        tester.AnnotateRestart([(leader + 0) % servers])

        ts.one(103, 2, True)

        ts.restart((leader + 1) % servers)
        tester.AnnotateRestart([(leader + 1) % servers])

        ts.one(104, servers, True)
    finally:
        ts.cleanup()


def figure8_sleep() -> None:
    """Figure 8's pause: up to half an election timeout with probability 10%, else 0-12 ms."""
    if random.randrange(1000) < 100:
        ms = random.randrange(int(RaftElectionTimeout * 1000) // 2)
    else:
        ms = random.randrange(13)
    time.sleep(ms / 1000)


def TestFigure83C():
    """The scenarios of Figure 8 of the extended Raft paper.

    Each iteration asks a leader, if there is one, to insert a command in the Raft log.
    If there is a leader, that leader will fail quickly with a high probability (perhaps
    without committing the command), or crash after a while with low probability (most
    likely committing the command).  If the number of alive servers isn't enough to form
    a majority, perhaps start a new server.  The leader in a new term may try to finish
    replicating log entries that haven't been committed yet.
    """
    t = tester.T()
    servers = 5
    ts = makeTest(t, servers, True, False)
    try:
        tester.AnnotateTest("TestFigure83C", servers)
        ts.Begin("Test (3C): Figure 8")

        ts.one(rand_int(), 1, True)

        nup = servers
        for _ in range(1000):
            leader = -1
            for i in range(servers):
                rf = ts.srvs[i].Raft()
                if rf is not None:
                    cmd = rand_int()
                    _, _, ok = rf.Start(cmd)
                    if ok:
                        text = f"submitted command {cmd} to server {i}"
                        tester.AnnotateInfo(text, text)
                        leader = i

            figure8_sleep()

            if leader != -1:
                ts.g.ShutdownServer(leader)
                tester.AnnotateShutdown([leader])
                nup -= 1

            if nup < 3:
                s = random.randrange(servers)
                if ts.srvs[s].Raft() is None:
                    ts.restart(s)
                    tester.AnnotateRestart([s])
                    nup += 1

        for i in range(servers):
            if ts.srvs[i].Raft() is None:
                ts.restart(i)
        tester.AnnotateRestartAll()

        ts.one(rand_int(), servers, True)
    finally:
        ts.cleanup()


def TestUnreliableAgree3C():
    t = tester.T()
    servers = 5
    ts = makeTest(t, servers, False, False)
    try:
        tester.AnnotateTest("TestUnreliableAgree3C", servers)
        ts.Begin("Test (3C): unreliable agreement")

        wg = []
        for iters in range(1, 50):
            for j in range(4):
                wg.append(tester.go(ts.one, (100 * iters) + j, 1, True))
            ts.one(iters, 1, True)

        ts.SetReliable(True)

        for th in wg:
            th.join()
        t.Check()

        ts.one(100, servers, True)
    finally:
        ts.cleanup()


def TestFigure8Unreliable3C():
    t = tester.T()
    servers = 5
    ts = makeTest(t, servers, False, False)
    try:
        tester.AnnotateTest("TestFigure8Unreliable3C", servers)
        ts.Begin("Test (3C): Figure 8 (unreliable)")

        ts.one(rand_int() % 10000, 1, True)

        nup = servers
        for iters in range(1000):
            if iters == 200:
                ts.SetLongReordering(True)
            leader = -1
            for i in range(servers):
                cmd = rand_int() % 10000
                _, _, ok = ts.srvs[i].Raft().Start(cmd)
                if ok:
                    text = f"submitted command {cmd} to server {i}"
                    tester.AnnotateInfo(text, text)
                if ok and ts.g.IsConnected(i):
                    leader = i

            figure8_sleep()

            if leader != -1 and random.randrange(1000) < int(RaftElectionTimeout * 1000) // 2:
                ts.g.DisconnectAll(leader)
                tester.AnnotateConnection(ts.g.GetConnected())
                nup -= 1

            if nup < 3:
                s = random.randrange(servers)
                if not ts.g.IsConnected(s):
                    ts.g.ConnectOne(s)
                    tester.AnnotateConnection(ts.g.GetConnected())
                    nup += 1

        for i in range(servers):
            if not ts.g.IsConnected(i):
                ts.g.ConnectOne(i)
        tester.AnnotateConnection(ts.g.GetConnected())

        ts.one(rand_int() % 10000, servers, True)
    finally:
        ts.cleanup()


def internalChurn(t, reliable: bool) -> None:
    servers = 5
    ts = makeTest(t, servers, reliable, False)
    stop = threading.Event()
    try:
        if ts.IsReliable():
            tester.AnnotateTest("TestReliableChurn3C", servers)
            ts.Begin("Test (3C): churn")
        else:
            tester.AnnotateTest("TestUnreliableChurn3C", servers)
            ts.Begin("Test (3C): unreliable churn")

        # create concurrent clients
        def cfn(me: int, ch: Chan) -> None:
            ret = None
            try:
                values = []
                while not stop.is_set():
                    x = rand_int()
                    index = -1
                    ok = False
                    for i in range(servers):
                        # try them all, maybe one of them is a leader
                        with ts.mu:
                            rf = ts.srvs[i].Raft()
                        if rf is not None:
                            index1, _, ok1 = rf.Start(x)
                            if ok1:
                                ok = ok1
                                index = index1
                    if ok:
                        # maybe leader will commit our value, maybe not.
                        # but don't wait forever.
                        for to in (10, 20, 50, 100, 200):
                            nd, cmd = ts.nCommitted(index)
                            if nd > 0:
                                if isinstance(cmd, int):
                                    if cmd == x:
                                        values.append(x)
                                else:
                                    ts.t.Fatalf("wrong command type")
                                break
                            time.sleep(to / 1000)
                    else:
                        time.sleep((79 + me * 17) / 1000)
                ret = values
            finally:
                ch.send(ret)

        startcli = tester.GetAnnotateTimestamp()
        ncli = 3
        # Buffered (Go's are not) so that a client of a failed test never blocks forever.
        cha = []
        for i in range(ncli):
            cha.append(Chan(1))
            tester.go(cfn, i, cha[i])

        for _ in range(20):
            if random.randrange(1000) < 200:
                i = random.randrange(servers)
                ts.g.DisconnectAll(i)
                tester.AnnotateConnection(ts.g.GetConnected())

            if random.randrange(1000) < 500:
                i = random.randrange(servers)
                if ts.srvs[i].raft is None:
                    ts.restart(i)
                    tester.AnnotateRestart([i])
                ts.g.ConnectOne(i)
                tester.AnnotateConnection(ts.g.GetConnected())

            if random.randrange(1000) < 200:
                i = random.randrange(servers)
                if ts.srvs[i].raft is not None:
                    ts.g.ShutdownServer(i)
                    tester.AnnotateShutdown([i])

            # Make crash/restart infrequent enough that the peers can often
            # keep up, but not so infrequent that everything has settled
            # down from one change to the next. Pick a value smaller than
            # the election timeout, but not hugely smaller.
            time.sleep((RaftElectionTimeout * 7) / 10)

        time.sleep(RaftElectionTimeout)
        ts.SetReliable(True)
        for i in range(servers):
            if ts.srvs[i].raft is None:
                ts.restart(i)
            ts.g.ConnectOne(i)
        tester.AnnotateRestartAll()
        tester.AnnotateConnection(ts.g.GetConnected())

        stop.set()
        textcli = f"{ncli} clients submitting commands concurrently"
        tester.AnnotateInfoInterval(startcli, textcli, textcli)

        tester.AnnotateCheckerBegin("checking if any client has failed")
        values = []
        for i in range(ncli):
            vv, _ = cha[i].recv()
            if vv is None:
                t.Fatal("client failed")
            values.extend(vv)
        tester.AnnotateCheckerSuccess("none of the clients have failed", "OK")

        time.sleep(RaftElectionTimeout)

        lastIndex = ts.one(rand_int(), servers, True)

        really = []
        for index in range(1, lastIndex + 1):
            v = ts.wait(index, servers, -1)
            if isinstance(v, int):
                really.append(v)
            else:
                text = f"committed value {v} is not an integer"
                tester.AnnotateCheckerFailure(text, text)
                t.Fatalf("not an int")

        tester.AnnotateCheckerBegin(
            "checking if committed values observed by the clients remain in the log")
        really_set = set(really)
        for v1 in values:
            if v1 not in really_set:
                ts.t.Fatalf("didn't find a value")
        tester.AnnotateCheckerSuccess("committed values remain in the log", "OK")
    finally:
        stop.set()  # a failed test must not leave the clients running
        ts.cleanup()


def TestReliableChurn3C():
    internalChurn(tester.T(), True)


def TestUnreliableChurn3C():
    internalChurn(tester.T(), False)


def snapcommon(t, name: str, disconnect: bool, reliable: bool, crash: bool) -> None:
    iters = 30
    servers = 3
    ts = makeTest(t, servers, reliable, True)
    try:
        # Inconsistent with other test cases, but don't want to change API.
        tester.AnnotateTest(name, servers)
        ts.Begin(name)

        ts.one(rand_int(), servers, True)
        leader1 = ts.checkOneLeader()

        for i in range(iters):
            victim = (leader1 + 1) % servers
            sender = leader1
            if i % 3 == 1:
                sender = (leader1 + 1) % servers
                victim = leader1

            if disconnect:
                ts.g.DisconnectAll(victim)
                tester.AnnotateConnection(ts.g.GetConnected())
                ts.one(rand_int(), servers - 1, True)
            if crash:
                ts.g.ShutdownServer(victim)
                tester.AnnotateShutdown([victim])
                ts.one(rand_int(), servers - 1, True)

            # perhaps send enough to get a snapshot
            start = tester.GetAnnotateTimestamp()
            nn = (SnapShotInterval // 2) + random.randrange(SnapShotInterval)
            for _ in range(nn):
                ts.srvs[sender].Raft().Start(rand_int())
            text = f"submitting {nn} commands to {sender}"
            tester.AnnotateInfoInterval(start, text, text)

            # let applier threads catch up with the Start()'s
            if not disconnect and not crash:
                # make sure all followers have caught up, so that
                # an InstallSnapshot RPC isn't required for
                # TestSnapshotBasic3D().
                ts.one(rand_int(), servers, True)
            else:
                ts.one(rand_int(), servers - 1, True)

            if ts.g.LogSize() >= MAXLOGSIZE:
                ts.t.Fatalf("Log size too large")
            if disconnect:
                # reconnect a follower, who maybe behind and
                # needs to receive a snapshot to catch up.
                ts.g.ConnectOne(victim)
                tester.AnnotateConnection(ts.g.GetConnected())
                ts.one(rand_int(), servers, True)
                leader1 = ts.checkOneLeader()
            if crash:
                ts.restart(victim)
                tester.AnnotateRestart([victim])
                ts.one(rand_int(), servers, True)
                leader1 = ts.checkOneLeader()
    finally:
        ts.cleanup()


def TestSnapshotBasic3D():
    snapcommon(tester.T(), "Test (3D): snapshots basic", False, True, False)


def TestSnapshotInstall3D():
    snapcommon(tester.T(), "Test (3D): install snapshots (disconnect)", True, True, False)


def TestSnapshotInstallUnreliable3D():
    snapcommon(tester.T(), "Test (3D): install snapshots (disconnect)", True, False, False)


def TestSnapshotInstallCrash3D():
    snapcommon(tester.T(), "Test (3D): install snapshots (crash)", False, True, True)


def TestSnapshotInstallUnCrash3D():
    snapcommon(tester.T(), "Test (3D): install snapshots (crash)", False, False, True)


def TestSnapshotAllCrash3D():
    """Do the servers persist the snapshots, and restart using snapshot along with the tail of the log?"""
    t = tester.T()
    servers = 3
    iters = 5
    ts = makeTest(t, servers, False, True)
    try:
        tester.AnnotateTest("TestSnapshotAllCrash3D", servers)
        ts.Begin("Test (3D): crash and restart all servers")

        ts.one(rand_int(), servers, True)

        for _ in range(iters):
            # perhaps enough to get a snapshot
            nn = (SnapShotInterval // 2) + random.randrange(SnapShotInterval)
            for _ in range(nn):
                ts.one(rand_int(), servers, True)

            index1 = ts.one(rand_int(), servers, True)

            # crash all
            ts.g.Shutdown()
            tester.AnnotateShutdownAll()
            ts.g.StartServers()
            tester.AnnotateRestartAll()

            index2 = ts.one(rand_int(), servers, True)
            if index2 < index1 + 1:
                msg = f"index decreased from {index1} to {index2}"
                tester.AnnotateCheckerFailure("incorrect behavior: index decreased", msg)
                t.Fatalf(msg)
    finally:
        ts.cleanup()


def TestSnapshotInit3D():
    """Do servers correctly initialize their in-memory copy of the snapshot, so that
    future writes to persistent state don't lose state?"""
    t = tester.T()
    servers = 3
    ts = makeTest(t, servers, False, True)
    try:
        tester.AnnotateTest("TestSnapshotInit3D", servers)
        ts.Begin("Test (3D): snapshot initialization after crash")
        ts.one(rand_int(), servers, True)

        # enough ops to make a snapshot
        nn = SnapShotInterval + 1
        for _ in range(nn):
            ts.one(rand_int(), servers, True)

        ts.g.Shutdown()
        tester.AnnotateShutdownAll()
        ts.g.StartServers()
        tester.AnnotateRestartAll()

        # a single op, to get something to be written back to persistent storage.
        ts.one(rand_int(), servers, True)

        ts.g.Shutdown()
        tester.AnnotateShutdownAll()
        ts.g.StartServers()
        tester.AnnotateRestartAll()

        # do another op to trigger potential bug
        ts.one(rand_int(), servers, True)
    finally:
        ts.cleanup()
