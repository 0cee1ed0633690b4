"""Project-wide pytest set-up.

* pins each test process to one core (see labrpc/affinity.py);
* loads the tester's plugin (tester/pytest_plugin.py): a failing test prints the line that
  replays it (its LABRPC_SEED and noise seed), its traceback ends in the test's or the lab's own
  code, the run ends with a porcupine summary line (checks ok / illegal / unknown), and a test
  handle a test left running is ended.
"""

from labrpc.affinity import pin_to_one_core

pytest_plugins = ["tester.pytest_plugin", "tester.noise"]


def pytest_configure(config):
    config._kubekv_core = pin_to_one_core()


def pytest_report_header(config):
    core = getattr(config, "_kubekv_core", None)
    return f"kubekv: pinned to core {core}" if core is not None else "kubekv: not pinned (KUBEKV_NO_PIN)"
