"""labrpc's own tests: report the LABRPC_SEED of a failing test's networks (labrpc/seedreport.py)."""

PLUGIN = "labrpc.seedreport"


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
