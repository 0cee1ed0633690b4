"""Lab 3 (Go: src/raft1, src/raftapi): Raft.

    from raft1.raft import Make      # the Raft peer (raft.py: the reference, or your solution)
    from raft1.chan import Chan      # Go's unbuffered channel, for applyCh
    from raft1 import raftapi        # ApplyMsg and the Raft interface the services use

The Go tests are in test_raft.py; harness.py and server.py are the tester's side.
"""
