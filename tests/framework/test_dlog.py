"""tester.dlog (per-peer debug logs by topic) and `kubekv logs`, which pretty-prints them.

Usage:
    python -m pytest tests/framework/test_dlog.py
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from kubekv import cli, logview
from tester import dlog


@pytest.fixture
def debug_on(tmp_path):
    path = tmp_path / "debug.log"
    dlog.configure("vote,leader", str(path))
    dlog.reset_tails()
    yield path
    dlog.configure("", "")
    dlog.reset_tails()


def TestOffByDefaultLogsNothing(tmp_path):
    dlog.configure("", "")
    assert not dlog.enabled(dlog.VOTE)
    dlog.DPrintf(dlog.VOTE, 0, "never %s", "formatted")
    assert dlog.tails() == {}
    assert dlog._handler is None


def TestOnlySwitchedOnTopicsAreWrittenInTheParsedForm(debug_on):
    dlog.DPrintf(dlog.VOTE, 1, "granting vote to S%d in T%d", 0, 3)
    dlog.DPrintf(dlog.APPEND, 1, "not on")
    dlog.DPrintf(dlog.LEADER, 0, "leader in T3")
    lines = debug_on.read_text().splitlines()
    assert len(lines) == 2
    parsed = [logview.parse(ln) for ln in lines]
    assert [(t, p, m) for _, t, p, m in parsed] == [("VOTE", "1", "granting vote to S0 in T3"),
                                                    ("LEAD", "0", "leader in T3")]
    assert parsed[0][0] <= parsed[1][0]


def TestTailsKeepTheLastLinesOfEachPeer(debug_on):
    for i in range(dlog.TAIL_LINES + 5):
        dlog.DPrintf(dlog.VOTE, 2, "line %d", i)
    dlog.DPrintf(dlog.VOTE, 0, "other peer")
    tails = dlog.tails()
    assert list(tails) == [0, 2]
    assert len(tails[2]) == dlog.TAIL_LINES and tails[2][-1].endswith(f"line {dlog.TAIL_LINES + 4}")


def TestUnknownTopicIsRefusedByName():
    with pytest.raises(dlog.DebugConfigError, match="KUBEKV_DEBUG: unknown topic 'votes'.*vote, leader"):
        dlog.parse_topics("votes")
    assert dlog.parse_topics("all") == frozenset(dlog.TOPICS.values())
    assert dlog.parse_topics("vote, LOG") == {"VOTE", "LOG"}


def TestFailingTestReportEndsWithEachPeersLastLines(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\npython_functions = Test*\n")
    (tmp_path / "test_x.py").write_text(
        "from tester import dlog\n"
        "def TestFails():\n"
        "    dlog.DPrintf(dlog.VOTE, 0, 'asking for votes in T1')\n"
        "    dlog.DPrintf(dlog.LEADER, 1, 'leader in T1')\n"
        "    assert False, 'boom'\n")
    env = dict(os.environ, KUBEKV_DEBUG="all", KUBEKV_DEBUG_FILE=str(tmp_path / "d.log"))
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "tester.pytest_plugin", "-p", "no:cacheprovider",
                          "test_x.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    section = out.stdout.split(f"debug log: the last {dlog.TAIL_LINES} lines of each peer", 1)
    assert len(section) == 2, out.stdout
    assert "VOTE S0 asking for votes in T1" in section[1] and "LEAD S1 leader in T1" in section[1]


LOG = """000001 VOTE S0 asking for votes in T1
000003 VOTE S1 granting vote to S0 in T1
Test (3A): initial election (reliable network)...
000004 LEAD S0 leader in T1
000005 LOG S2 appended 1..3
"""


def _render(**kw) -> str:
    buf = io.StringIO()
    logview.render(LOG.splitlines(keepends=True), Console(file=buf, width=100, color_system=None), **kw)
    return buf.getvalue()


def TestLogsShowsEveryLineAndFilters():
    text = _render()
    assert "granting vote to S0 in T1" in text and "Test (3A): initial election" in text
    text = _render(just=frozenset({"LEAD"}))
    assert "leader in T1" in text and "granting" not in text and "Test (3A)" in text
    text = _render(ignore=frozenset({"VOTE"}))
    assert "granting" not in text and "appended 1..3" in text


def TestLogsColumnsPutEachPeerInItsColumn():
    text = _render(columns=True)
    header = next(ln for ln in text.splitlines() if ln.startswith("ms"))
    row = next(ln for ln in text.splitlines() if "appended" in ln)
    assert header.index("S2") <= row.index("LOG appended") < header.index("S2") + 3
    row = next(ln for ln in text.splitlines() if "asking" in ln)
    assert header.index("S0") <= row.index("VOTE asking") < header.index("S1")


def TestLogsCommandRefusesBadInput(tmp_path, capsys):
    assert cli.main(["logs", str(tmp_path / "missing.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
    log = tmp_path / "d.log"
    log.write_text(LOG)
    assert cli.main(["logs", str(log), "--just", "votes"]) == 2
    assert "--just: unknown topic 'votes'" in capsys.readouterr().err
    assert cli.main(["logs", str(log), "--columns"]) == 0
    assert "appended 1..3" in capsys.readouterr().out
