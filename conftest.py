"""Project-wide pytest set-up.

* KUBEKV_SIM=1 runs every test under the deterministic simulator (labsim/);
* pins each test process to one core (see labrpc/affinity.py);
* loads the tester's plugin (tester/pytest_plugin.py): a failing test prints the line that
  replays it (its LABRPC_SEED and noise seed), its traceback ends in the test's or the lab's own
  code, the run ends with a porcupine summary line (checks ok / illegal / unknown), and a test
  handle a test left running is ended.
"""

import labsim

labsim.install_from_env()  # KUBEKV_SIM=1: before any lab module is imported (labsim/__init__.py)

from labrpc.affinity import pin_to_one_core  # noqa: E402

pytest_plugins = ["labsim.pytest_plugin", "tester.pytest_plugin", "tester.noise"]


def pytest_configure(config):
    config._kubekv_core = pin_to_one_core()


def pytest_report_header(config):
    core = getattr(config, "_kubekv_core", None)
    return f"kubekv: pinned to core {core}" if core is not None else "kubekv: not pinned (KUBEKV_NO_PIN)"
