"""tests/mutants: every mutant builds from the reference's current source and changes its code,
the plugin binds a mutant where the labs use the reference, and the runner's options work.

Usage:
    python -m pytest tests/framework/test_mutants.py
(No lab test is run here: the runner's measurements are `python -m tests.mutants.run`.)
"""

from __future__ import annotations

import ast
import importlib
import os
import sys

import pytest

from tests.mutants import REPO, mutate, plugin, run

MUTANT_FILES = ("raft1/raft.py", "rsm/rsm.py", "kvraft1/server.py", "kvraft1/client.py")


def _source(path: str) -> str:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def _mutated_source(path: str, replacements: list[tuple[str, str]]) -> str:
    source = _source(path)
    for old, new in replacements:
        source = source.replace(old, new)
    return source


def TestMutantsAreDiscovered():
    assert len(plugin.MUTANTS) >= 32
    assert "raft_snapshot_race" in plugin.MUTANTS
    assert not set(plugin.MUTANTS) & plugin.NOT_MUTANTS


@pytest.mark.parametrize("name", plugin.MUTANTS)
def TestMutantBuildsAndDiffersFromTheReference(name):
    m = plugin.load(name)
    path = plugin.mutated_path(m)
    assert path in MUTANT_FILES
    assert m.__doc__.startswith(f"MUTANT of {path}: "), "docstring must start 'MUTANT of <file>: <bug>'"
    assert m.PART in run.PARTS
    assert m.REPLACEMENTS and all(old != new for old, new in m.REPLACEMENTS)
    # A change in comments only would be an equivalent mutant: the code itself must differ.
    reference = ast.dump(ast.parse(_source(path)))
    assert ast.dump(ast.parse(_mutated_source(path, m.REPLACEMENTS))) != reference
    entry = {"raft1/raft.py": "Make", "rsm/rsm.py": "MakeRSM", "kvraft1/server.py": "StartKVServer",
             "kvraft1/client.py": "MakeClerk"}[path]
    assert getattr(m, entry) is not getattr(importlib.import_module(plugin.module_name(path)), entry)


def TestSnapshotRaceMutantDiffersOnlyWhereItSays():
    from raft1 import raft
    from tests.mutants import raft_snapshot_race as m

    assert m.Make is not raft.Make and m.__name__ == "tests.mutants.raft_snapshot_race"
    assert hasattr(m.Raft, "send_snapshot_msg") and not hasattr(raft.Raft, "send_snapshot_msg")
    assert "MUTANT" in m.__doc__


def TestStaleReplacementIsRefused():
    with pytest.raises(RuntimeError, match=r"mutant stale: raft1/raft.py holds the text to replace 0 times"):
        mutate("raft1/raft.py", [("text the reference never had", "x")], "stale")


@pytest.mark.parametrize("name, bound", [
    ("raft_figure8_commit", ["raft1.raft.Make"]),
    ("rsm_reply_by_index", ["rsm.rsm.MakeRSM", "rsm.server.MakeRSM", "kvraft1.server.MakeRSM"]),
    ("kv_get_local_read", ["kvraft1.server.StartKVServer", "kvraft1.harness.StartKVServer"]),
    ("client_stuck_on_server", ["kvraft1.client.MakeClerk", "kvraft1.harness.MakeClerk"]),
])
def TestPluginBindsTheMutantWhereTheLabsLookItUp(name, bound):
    m = plugin.load(name)
    undo = plugin.swap(m)
    try:
        names = {f"{mod.__name__}.{attr}" for mod, attr, _ in undo}
        assert set(bound) <= names
        for dotted in bound:
            module, attr = dotted.rsplit(".", 1)
            assert getattr(sys.modules[module], attr) is getattr(m, attr)
    finally:
        for module, attr, original in reversed(undo):
            setattr(module, attr, original)
    for dotted in bound:
        module, attr = dotted.rsplit(".", 1)
        assert getattr(sys.modules[module], attr) is not getattr(m, attr)


def TestMutatedPathFromTheDocstring():
    class Fake:
        __name__ = "fake"
        __doc__ = "MUTANT of rsm/rsm.py: something.\n"

    assert plugin.mutated_path(Fake) == "rsm/rsm.py"
    Fake.__doc__ = "not a mutant"
    with pytest.raises(ValueError, match="must start 'MUTANT of"):
        plugin.mutated_path(Fake)


def TestRunnerDefaults():
    args = run.parse_args([])
    assert (args.sim, args.seeds, args.seed_base, args.budget_s, args.parts, args.names) == \
        (False, 1, 1, None, [], [])
    args = run.parse_args(["--sim", "--parts", "3a, 4C", "--seed-base", "7", "raft_double_vote"])
    assert (args.sim, args.seeds, args.seed_base, args.parts, args.names) == \
        (True, 10, 7, ["3A", "4C"], ["raft_double_vote"])


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "3"], "needs --sim"),
    (["--sim", "--seeds", "0"], "at least 1"),
    (["--parts", "3E"], "unknown part"),
    (["no_such_mutant"], "unknown mutant"),
])
def TestRunnerRejectsBadArguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        run.parse_args(argv)
    assert message in capsys.readouterr().err


def TestRunnerSelection():
    everything = run.select([], [])
    assert [n for n, _ in everything] == list(plugin.MUTANTS)
    parts = {p for _, p in everything}
    assert parts == set(run.PARTS)  # every part has mutants
    only = run.select([], ["4A", "4C"])
    assert only and {p for _, p in only} == {"4A", "4C"}
    assert run.select(["raft_figure8_commit", "rsm_op_ids_reused"], ["4A"]) == [("rsm_op_ids_reused", "4A")]


def TestRunnerCommands():
    argv, env = run.command("raft_figure8_commit", "3C", sim=False, seeds=1, seed_base=1)
    assert argv[1:5] == ["-m", "pytest", "-p", "tests.mutants.plugin"]
    assert argv[-3:] == ["raft1/test_raft.py", "-k", "3C"] and "-x" in argv
    assert env == {"KUBEKV_MUTANT": "raft_figure8_commit"}
    argv, env = run.command("kv_snapshot_no_versions", "4C", sim=True, seeds=10, seed_base=5, report="r.jsonl")
    assert argv[-4:] == ["--count", "10", "--repeat-scope", "session"]
    assert "rsm/test_rsm.py" in argv and "kvraft1/test_kvraft.py" in argv
    assert env == {"KUBEKV_MUTANT": "kv_snapshot_no_versions", "KUBEKV_SIM": "1", "KUBEKV_SIM_SEED": "5",
                   "PYTHONHASHSEED": "0", "KUBEKV_SIM_REPORT": "r.jsonl"}
    argv, env = run.command(None, "4A", sim=True, seeds=1, seed_base=1)
    assert "KUBEKV_MUTANT" not in env and "--count" not in argv


def TestRunnerClassifiesOutcomes(tmp_path):
    sim = ["KUBEKV_SIM=1"]
    report = tmp_path / "r.jsonl"
    report.write_text('{"nodeid": "raft1/test_raft.py::TestFigure83C[1-10]", "outcome": "passed", "seed": 4}\n'
                      '{"nodeid": "raft1/test_raft.py::TestFigure83C[2-10]", "outcome": "failed", "seed": 5}\n')
    r = run.Result("m", "3C", command=sim)
    run._classify(r, 1, "", "", str(report), seed_base=4)
    assert (r.status, r.test, r.seed, r.repetition, r.tests_run) == \
        ("killed", "raft1/test_raft.py::TestFigure83C", 5, 2, 2)

    r = run.Result("m", "3B")
    run._classify(r, 1, "", "x\nFAILED raft1/test_raft.py::TestBackup3B - boom\n", None, seed_base=1)
    assert (r.status, r.test, r.seed) == ("killed", "raft1/test_raft.py::TestBackup3B", None)

    r = run.Result("m", "4B", status="killed", test="kvraft1/test_kvraft.py::TestBasic4B[3-10]", command=sim)
    run._classify(r, -9, "stopped after the tester's Fatal", "no summary", None, seed_base=1)
    assert (r.status, r.test, r.seed, r.repetition) == ("killed", "kvraft1/test_kvraft.py::TestBasic4B", 3, 3)

    for rc, stopped, status in [(0, "", "survived"), (-9, "budget", "budget"), (5, "", "error")]:
        r = run.Result("m", "3A")
        run._classify(r, rc, stopped, "", None, seed_base=1)
        assert r.status == status and not r.killed


def TestRunnerTable():
    results = [run.Result("raft_x", "3A", "killed", "raft1/test_raft.py::TestReElection3A", 3, 3, 1.25),
               run.Result("raft_y", "3B", "survived", seconds=2.0)]
    text = run.table(results, sim=True)
    assert "TestReElection3A" in text and "3 (#3)" in text and "raft_y" in text
    assert "seed" not in run.table(results, sim=False)


def TestRunnerSuiteScope():
    argv, _ = run.command("raft_double_vote", "3A", sim=True, seeds=13, seed_base=1, scope="suite", workers=2)
    assert "-k" not in argv and argv[argv.index("-n") + 1] == "2"
    assert {"raft1/test_raft.py", "rsm/test_rsm.py", "kvraft1/test_kvraft.py"} <= set(argv)
    argv, _ = run.command("rsm_no_monitor", "4A", sim=True, seeds=1, seed_base=1, scope="suite")
    assert "raft1/test_raft.py" not in argv and "rsm/test_rsm.py" in argv and "-n" not in argv
    argv, _ = run.command("kv_get_local_read", "4B", sim=False, seeds=1, seed_base=1, scope="suite")
    assert argv[-1] == "kvraft1/test_kvraft.py"


def TestUnreachableMutantsSayWhyAndAreCountedApart(capsys, monkeypatch):
    marked = [n for n in plugin.MUTANTS if run.unreachable(n)]
    assert "raft_commit_no_min" in marked and len(marked) < len(plugin.MUTANTS) // 4
    assert all(len(run.unreachable(n)) > 20 for n in marked)  # a reason, not a flag
    fake = {"raft_double_vote": "killed", "raft_commit_no_min": "survived"}
    monkeypatch.setattr(run, "run_one", lambda mutant, part, *a, **k: run.Result(
        mutant, part, fake[mutant], unreachable=run.unreachable(mutant)))
    assert run.main(["--sim", "--seeds", "1", "raft_double_vote", "raft_commit_no_min"]) == 0
    out = capsys.readouterr().out
    assert "killed 1/1 (100%); 1 marked UNREACHABLE not counted (0 of them killed)" in out
