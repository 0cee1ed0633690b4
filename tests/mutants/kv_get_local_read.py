"""MUTANT of kvraft1/server.py: the leader answers Get from its own state without going through the Raft log.

A leader cut off in a minority still thinks it leads and serves stale values: not
linearizable.

Run the lab tests against it:
    KUBEKV_MUTANT=kv_get_local_read python -m pytest -p tests.mutants.plugin kvraft1 -k 4B
"""

from tests.mutants import plant

PART = "4B"
REPLACEMENTS = [(
    """        err, rep = self.rsm.Submit(args, **self.submit_kwargs)
        if err != rpc.OK:
            reply.Err = err
            return
        reply.Value""",
    """        # MUTANT: read locally when Raft says leader
        if not self.rsm.Raft().GetState()[1]:
            reply.Err = rpc.ErrWrongLeader
            return
        rep = self.DoOp(args)
        reply.Value""")]

plant(globals(), "kvraft1/server.py", REPLACEMENTS)
