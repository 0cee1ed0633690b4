"""labrpc's own tests: report the LABRPC_SEED of a failing test's networks (labrpc/seedreport.py),
unless the tester's plugin is loaded, whose replay line names it already."""

PLUGIN = "labrpc.seedreport"


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(PLUGIN) and not config.pluginmanager.has_plugin("tester.pytest_plugin"):
        config.pluginmanager.import_plugin(PLUGIN)
