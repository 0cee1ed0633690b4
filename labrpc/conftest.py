"""pytest hook for labrpc: a failing test's report names the LABRPC_SEED of each network it made.

Replay a failure's network decisions with `LABRPC_SEED=<seed> pytest ... -k <test>` (thread
interleavings still vary).  The tester can do the same with labrpc.networks_made/seeds_since.
"""

import pytest

import labrpc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    item._labrpc_mark = labrpc.networks_made()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    mark = getattr(item, "_labrpc_mark", None)
    if rep.when == "call" and rep.failed and mark is not None:
        seeds = labrpc.seeds_since(mark)
        if seeds:
            rep.sections.append(("labrpc", "networks made by this test: "
                                 + ", ".join(f"LABRPC_SEED={s}" for s in seeds)))
