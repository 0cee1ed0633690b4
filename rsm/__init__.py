"""Lab 4A (Go: src/kvraft1/rsm): the replicated state machine layer.

    from rsm.rsm import MakeRSM, StateMachine   # rsm.py: the reference, or your solution

The Go tests are in test_rsm.py; harness.py and server.py are the tester's side.
"""
