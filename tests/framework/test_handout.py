"""`kubekv handout`: the skeletons keep the reference's API and none of its code, a test on a
skeleton fails at once naming what is missing, and the reference copied into a fresh handout
passes every lab test.

Usage:
    python -m pytest tests/framework/test_handout.py
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from kubekv import cli, handout

SKELETONS = sorted(handout.SKELETONS)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    target = tmp_path_factory.mktemp("handout") / "student"
    handout.write(str(target))
    return target


def _load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference(rel: str):
    return importlib.import_module(rel[:-3].replace("/", "."))


@pytest.mark.parametrize("rel", SKELETONS)
def TestSkeletonKeepsTheReferenceSignatures(fresh, rel):
    skel = _load(str(fresh / rel), "skeleton_" + rel.replace("/", "_")[:-3])
    ref = _reference(rel)
    spec = handout.SKELETONS[rel]
    assert sorted(skel.__all__) == sorted([*spec.keep, *spec.verbatim])
    for name, keep in spec.keep.items():
        mine, theirs = getattr(skel, name), getattr(ref, name)
        if inspect.isclass(theirs):
            assert [b.__name__ for b in mine.__bases__] == [b.__name__ for b in theirs.__bases__]
            for method in keep.methods:
                assert inspect.signature(getattr(mine, method)) == inspect.signature(getattr(theirs, method)), \
                    f"{name}.{method}"
        else:
            assert inspect.signature(mine) == inspect.signature(theirs), name
    assert skel.__doc__ and "yours to write" in skel.__doc__


def _is_todo_body(body: list[ast.stmt]) -> bool:
    return (len(body) == 2 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[1], ast.Raise) and ast.unparse(body[1].exc).startswith("NotImplementedError("))


@pytest.mark.parametrize("rel", SKELETONS)
def TestSkeletonHoldsNoSolutionCode(fresh, rel):
    tree = ast.parse((fresh / rel).read_text())
    verbatim = handout.SKELETONS[rel].verbatim
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef):
            assert _is_todo_body(stmt.body), stmt.name
        elif isinstance(stmt, ast.ClassDef) and stmt.name not in verbatim:
            doc, *rest = stmt.body
            assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), stmt.name
            for member in rest:
                assert isinstance(member, ast.FunctionDef) and _is_todo_body(member.body), \
                    f"{stmt.name}.{getattr(member, 'name', '?')}: only TODO methods, no fields or code"
        elif isinstance(stmt, ast.For):
            assert ast.unparse(stmt.body[0]) == "labgob.Register(_cls)"
        elif isinstance(stmt, ast.Assign):
            assert [t.id for t in stmt.targets] == ["__all__"]
        else:
            assert isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Expr, ast.ClassDef)), ast.unparse(stmt)[:80]


def TestHandoutHoldsTheFrameworkAndLabTestsButNoSolution(fresh):
    files = {str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file()}
    for rel in ("raft1/test_raft.py", "rsm/test_rsm.py", "kvraft1/test_kvraft.py", "labrpc/labrpc.py",
                "tester/kvtest.py", "labsim/core.py", "porcupine/checker.py", "kubekv/cli.py",
                "conftest.py", "setup.cfg", "README.md", "PORTING.md"):
        assert rel in files, rel
    assert not any(f.startswith(("tests/", ".ci/")) for f in files)
    assert not [f for f in files if os.path.basename(f).startswith("test_") and f not in handout.LAB_TESTS]
    solution_names = ("def become_follower", "def replicate_to", "def _apply_command", "def _put(",
                      "def _pause_after_round")
    for f in files:
        if f.endswith(".py"):
            text = (fresh / f).read_text(encoding="utf-8")
            assert not any(n in text for n in solution_names), f
    assert "python -m pytest -n 2 -q" in (fresh / "README.md").read_text()


def TestHandoutRefusesAFolderInUseOrInsideTheRepository(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    assert cli.main(["handout", str(tmp_path / "x")]) == 2
    assert "is not an empty folder" in capsys.readouterr().err
    assert cli.main(["handout", os.path.join(handout.REPO, "student")]) == 2
    assert "inside the repository" in capsys.readouterr().err


def _pytest(folder, *args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=folder,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {}), "KUBEKV_SIM": (env or {}).get("KUBEKV_SIM", "")})


def TestSkeletonTestsFailFastNamingWhatIsMissing(fresh):
    start = time.monotonic()
    out = _pytest(fresh, env={"KUBEKV_THREAD_CHECK": "strict"})
    elapsed = time.monotonic() - start
    assert out.returncode == 1
    m = re.search(r"(\d+) failed in", out.stdout)
    assert m and int(m.group(1)) >= 58 and " passed" not in out.stdout.splitlines()[-1], out.stdout[-500:]
    assert elapsed < 120, f"the skeleton's tests took {elapsed:.0f} s"
    assert "NotImplementedError: raft1/raft.py: Make is not written yet (part 3A)" in out.stdout
    assert "kvraft1/server.py: StartKVServer is not written yet (part 4B)" in out.stdout
    assert "left running" not in out.stdout and "leftover" not in out.stdout.lower()
    assert "python -m pytest raft1/test_raft.py::TestInitialElection3A" in out.stdout  # a replay line


def TestReferenceCopiedIntoAHandoutPassesEveryPart(tmp_path):
    target = tmp_path / "student"
    handout.write(str(target))
    for rel in SKELETONS:
        shutil.copy2(os.path.join(handout.REPO, rel), target / rel)
    # Under simulation: the whole 3A..4C suite in about a minute instead of ten.
    out = _pytest(target, "-n", "2", env={"KUBEKV_SIM": "1", "KUBEKV_SIM_SEED": "20261201"})
    assert out.returncode == 0, out.stdout[-3000:]
    m = re.search(r"(\d+) passed", out.stdout)
    assert m and int(m.group(1)) >= 58 and "failed" not in out.stdout.splitlines()[-1]
