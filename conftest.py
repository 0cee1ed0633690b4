"""Project-wide pytest set-up.

* pins each test process to one core (see labrpc/affinity.py);
* loads labrpc.seedreport (a failing test names its LABRPC_SEED) and the tester's plugin: a porcupine summary line at the end of a run (how many
  checks were ok / illegal / unknown), and a guard that ends a test handle a test left running.
"""

from labrpc.affinity import pin_to_one_core

pytest_plugins = ["tester.pytest_plugin", "labrpc.seedreport"]


def pytest_configure(config):
    config._kubekv_core = pin_to_one_core()


def pytest_report_header(config):
    core = getattr(config, "_kubekv_core", None)
    return f"kubekv: pinned to core {core}" if core is not None else "kubekv: not pinned (KUBEKV_NO_PIN)"
