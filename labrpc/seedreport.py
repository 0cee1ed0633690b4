"""pytest plugin: a failing test's report names the LABRPC_SEED of every network it made.

Usage: load it once for the whole run, e.g. in the root conftest.py

    pytest_plugins = ["labrpc.seedreport"]

(labrpc/conftest.py loads it for labrpc's own tests when nothing else has.)  A failure
then shows a "labrpc" section such as `networks made by this test: LABRPC_SEED=1234`;
`LABRPC_SEED=1234 pytest ... -k TestX` replays the same network decisions (thread
interleavings still vary).
"""

from __future__ import annotations

import pytest

import labrpc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    item._labrpc_mark = labrpc.networks_made()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    mark = getattr(item, "_labrpc_mark", None)
    if rep.failed and mark is not None and rep.when in ("call", "teardown"):
        seeds = labrpc.seeds_since(mark)
        if seeds:
            rep.sections.append(("labrpc", "networks made by this test: "
                                 + ", ".join(f"LABRPC_SEED={s}" for s in seeds)))
