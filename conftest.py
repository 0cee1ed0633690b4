"""Project-wide pytest set-up: pin each test process to one core (see labrpc/affinity.py)."""

from labrpc.affinity import pin_to_one_core


def pytest_configure(config):
    core = pin_to_one_core()
    config._kubekv_core = core


def pytest_report_header(config):
    core = getattr(config, "_kubekv_core", None)
    return f"kubekv: pinned to core {core}" if core is not None else "kubekv: not pinned (KUBEKV_NO_PIN)"
