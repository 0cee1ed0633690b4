"""`kubekv handout DIR`: write a student repository -- the framework, every lab test, and
skeletons in place of the four solution files.

Usage:
    kubekv handout ../6.5840-py          # then: cd ../6.5840-py && (its README's two commands)
    from kubekv import handout
    handout.write("DIR")                 # the same, from Python
    handout.skeleton_source("raft1/raft.py")   # one skeleton, as text

Skeletons are generated from the reference's own source, so they never drift from it: each
kept class and function keeps the reference's exact signature (read from its syntax tree),
gets the TODO docstring written here, and a body that raises NotImplementedError naming the
file, the function and the part, so a test on a skeleton fails at once with that message.
What is kept is the Go handout's API: Make, Raft's public methods and RPC handlers, the RPC
structs' names (their fields are the student's to write), MakeRSM / RSM / Op / StateMachine,
StartKVServer / KVServer, MakeClerk / Clerk.  Everything else of the solution (helpers,
constants, fields) is left out.  Framework packages are copied without their own tests.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Copied whole (without their own tests and benchmarks).
FRAMEWORK = ("labgob", "labrpc", "labsim", "tester", "porcupine")
LABS = ("raft1", "rsm", "kvraft1")
TOOLS = ("__init__.py", "cli.py", "demo.py", "runs.py", "flakes.py", "grade.py", "gotimes.py",
         "logview.py", "handout.py", "points.ini")
TOP_FILES = ("conftest.py", "pyproject.toml", "PORTING.md", ".gitignore")
LAB_TESTS = ("raft1/test_raft.py", "rsm/test_rsm.py", "kvraft1/test_kvraft.py")
_SKIP_FILES = ("bench.py",)
_SKIP_DIRS = ("__pycache__", "tools")


@dataclass
class Keep:
    """A kept function (todo) or class (todo, and its kept methods)."""

    part: str
    todo: str
    methods: dict[str, "Keep"] = field(default_factory=dict)


@dataclass
class Skeleton:
    """How one solution file becomes a skeleton."""

    path: str
    doc: str
    keep: dict[str, Keep]
    verbatim: tuple[str, ...] = ()   # top-level classes copied as they are (interfaces)


RAFT_DOC = '''Raft: a replicated log -- yours to write, labs 3A-3D (Go: src/raft1/raft.go).

Usage (what the tester does; keep these names and shapes):
    rf = Make(peers, me, persister, applyCh)    # return at once; start threads for long work
    index, term, isLeader = rf.Start(command)   # propose; do not wait for the commit
    term, isLeader = rf.GetState()
    rf.Snapshot(index, data)                    # the service has compacted through index (3D)
    rf.PersistBytes()                           # size of the persisted Raft state
    rf.Kill()                                   # stop every thread; close applyCh

peers[i].Call("Raft.RequestVote", args, reply) sends an RPC to peer i and returns True if a
reply came back; the handler is the method of that name on peer i's Raft.  Send each committed
command (and each snapshot received from a leader, 3D) to applyCh as a raftapi.ApplyMsg, in
index order.  Save state with persister.Save(labgob-encoded state, snapshot) and read it back
in Make (3C).

Where to look in the paper (Ongaro & Ousterhout, extended version):
  3A leader election .... Figure 2: State, RequestVote RPC, Rules for Servers; section 5.2.
  3B log ................ Figure 2: AppendEntries RPC; sections 5.3 and 5.4 (the commit rule
                          of 5.4.2; Figure 8 shows why).
  3C persistence ........ Figure 2's persistent state; end of section 5.3 for fast backup.
  3D log compaction ..... section 7 and Figure 13 (InstallSnapshot).

Rules: no busy-waiting (wait on a Condition or sleep); never hold a lock across an RPC, a
channel send or a long wait; one lock for the Raft state is plenty.  Debug with
tester.dlog.DPrintf (PORTING.md) and `kubekv logs`.
'''

RSM_DOC = '''The replicated state machine layer -- yours to write, lab 4A (Go: src/kvraft1/rsm/rsm.go).

Usage (what the KV server and the tests do; keep these names and shapes):
    rsm = MakeRSM(servers, me, persister, maxraftstate, sm)   # sm: a StateMachine
    err, result = rsm.Submit(req)     # (rpc.OK, sm.DoOp(req)) once committed, else
                                      # (rpc.ErrWrongLeader, None)
    rsm.Raft()                        # the Raft peer underneath

Submit hands an Op wrapping req to Raft's Start and waits until that Op is applied (or the
leader loses its term).  A reader thread reads applyCh, runs each committed Op through
sm.DoOp and wakes the Submit waiting for it.  With maxraftstate > 0, snapshot (sm.Snapshot(),
rf.Snapshot) when Raft's state nears maxraftstate bytes, and restore snapshots from applyCh
with sm.Restore (4C).  Register Op with labgob.
'''

SERVER_DOC = '''The KV server -- yours to write, labs 4B-4C (Go: src/kvraft1/server.go).

Usage (what the tester does; keep these names and shapes):
    kv, rf = StartKVServer(servers, gid, me, persister, maxraftstate)
    # serves "KVServer.Get" and "KVServer.Put" (kvraft1/rpc.py's args and replies)

Put(key, value, version), decided when the request commits: key present and version matches
-> store, version + 1, OK; present, version differs -> ErrVersion; missing and version 0 ->
create with version 1, OK; missing otherwise -> ErrNoKey.  Get returns (value, version, OK) or
ErrNoKey.  Run both through rsm.Submit; a Put whose fate is unknown answers ErrMaybe.
'''

CLIENT_DOC = '''The KV clerk -- yours to write, lab 4B (Go: src/kvraft1/client.go).

Usage (what the tests do; keep these names and shapes):
    ck = MakeClerk(clnt, servers)        # clnt.Call(server, "KVServer.Get", args, reply) -> bool
    value, version, err = ck.Get(key)
    err = ck.Put(key, value, version)    # OK, ErrVersion, ErrNoKey or ErrMaybe

Keep trying servers until one answers as leader; remember it.  A Put resent after a lost RPC
that then gets ErrVersion must answer ErrMaybe (its first copy may have run).
'''

_RPC_TODO = "TODO({part}): the fields of {what} (give each a default: labgob needs one)."

SKELETONS: dict[str, Skeleton] = {
    "raft1/raft.py": Skeleton("raft1/raft.py", RAFT_DOC, {
        "RequestVoteArgs": Keep("3A", _RPC_TODO.format(part="3A", what="Figure 2's RequestVote arguments")),
        "RequestVoteReply": Keep("3A", _RPC_TODO.format(part="3A", what="Figure 2's RequestVote results")),
        "AppendEntriesArgs": Keep("3A", _RPC_TODO.format(part="3A, 3B", what="Figure 2's AppendEntries arguments")),
        "AppendEntriesReply": Keep("3A", _RPC_TODO.format(part="3A, 3B", what="Figure 2's AppendEntries results")),
        "InstallSnapshotArgs": Keep("3D", _RPC_TODO.format(part="3D", what="Figure 13's InstallSnapshot arguments")),
        "InstallSnapshotReply": Keep("3D", _RPC_TODO.format(part="3D", what="Figure 13's InstallSnapshot results")),
        "Raft": Keep("3A", "One Raft peer.  TODO(3A-3D): Figure 2's state, a lock, the threads.", {
            "__init__": Keep("3A", "TODO(3A): keep peers, me, persister and applyCh; set up Figure 2's state."),
            "GetState": Keep("3A", "Return (currentTerm, whether this peer believes it is the leader)."),
            "Start": Keep("3B", "If leader, append command to the log and return (index, term, True) at once; "
                                "else (-1, term, False)."),
            "Snapshot": Keep("3D", "The service has saved everything through index in snapshot: trim the log."),
            "PersistBytes": Keep("3C", "Return the size of the persisted Raft state (persister.RaftStateSize())."),
            "Kill": Keep("3A", "Stop this peer's threads (the tester calls it on every shutdown); close applyCh."),
            "killed": Keep("3A", "Return whether Kill() was called."),
            "persist": Keep("3C", "Save Figure 2's persistent state with labgob and persister.Save."),
            "read_persist": Keep("3C", "Restore what persist() saved (empty data: a fresh peer)."),
            "RequestVote": Keep("3A", "The RequestVote RPC handler (Figure 2, receiver implementation)."),
            "AppendEntries": Keep("3A", "The AppendEntries RPC handler; heartbeats first (3A), entries in 3B."),
            "InstallSnapshot": Keep("3D", "The InstallSnapshot RPC handler (Figure 13)."),
        }),
        "Make": Keep("3A", "Create a Raft peer (restoring persisted state, 3C), start its threads, return it at once."),
    }),
    "rsm/rsm.py": Skeleton("rsm/rsm.py", RSM_DOC, {
        "Op": Keep("4A", "TODO(4A): what one Raft log entry holds: the request, and who submitted it "
                         "(give each field a default)."),
        "RSM": Keep("4A", "A replicated state machine.  TODO(4A): its state, a lock, the reader thread.", {
            "__init__": Keep("4A", "TODO(4A): keep me, maxraftstate and sm; set up the state."),
            "Raft": Keep("4A", "Return the Raft peer underneath."),
            "Submit": Keep("4A", "Run req through Raft; (rpc.OK, sm.DoOp(req)) once committed, else "
                                 "(rpc.ErrWrongLeader, None)."),
        }),
        "MakeRSM": Keep("4A", "Make the RSM, its Raft (raft.Make with its own applyCh) and its reader; return it."),
    }, verbatim=("StateMachine",)),
    "kvraft1/server.py": Skeleton("kvraft1/server.py", SERVER_DOC, {
        "KVServer": Keep("4B", "One replica of the KV store.  TODO(4B): its state.", {
            "__init__": Keep("4B", "TODO(4B): set up the state."),
            "DoOp": Keep("4B", "Execute a committed rpc.GetArgs or rpc.PutArgs; return its reply."),
            "Snapshot": Keep("4C", "Encode the whole state with labgob."),
            "Restore": Keep("4C", "Replace the whole state by one from Snapshot()."),
            "Get": Keep("4B", "The KVServer.Get RPC handler."),
            "Put": Keep("4B", "The KVServer.Put RPC handler."),
            "Kill": Keep("4B", "Called by the tester when this server is shut down."),
            "killed": Keep("4B", "Return whether Kill() was called."),
        }),
        "StartKVServer": Keep("4B", "Register the RPC argument types with labgob, make the KVServer and its "
                                    "rsm, and return [kv, kv's Raft]."),
    }),
    "kvraft1/client.py": Skeleton("kvraft1/client.py", CLIENT_DOC, {
        "Clerk": Keep("4B", "A client of the KV service.", {
            "__init__": Keep("4B", "TODO(4B): keep clnt and servers."),
            "Get": Keep("4B", "Return (value, version, err) of key; keep trying until a server answers."),
            "Put": Keep("4B", "Put value at key if its version is version; return the rpc.Err (see the docstring "
                              "of this module for ErrMaybe)."),
        }),
        "MakeClerk": Keep("4B", "Return a new Clerk."),
    }),
}


class HandoutError(RuntimeError):
    """The reference no longer has what a skeleton keeps, or DIR cannot be written."""


LINE_LIMIT = 100


def _docstring(text: str, indent: str) -> list[str]:
    one = f'{indent}"""{text}"""'
    if len(one) <= LINE_LIMIT:
        return [one]
    lines = textwrap.wrap(text, LINE_LIMIT - len(indent))
    return [f'{indent}"""{lines[0]}', *(indent + ln for ln in lines[1:]), f'{indent}"""']


def _header(node: ast.FunctionDef | ast.ClassDef, lines: list[str]) -> list[str]:
    """The decorators and the def/class lines of node, exactly as the reference writes them."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return [ln[node.col_offset:] for ln in lines[first - 1:node.body[0].lineno - 1]]


def _function(node: ast.FunctionDef, lines: list[str], path: str, qualname: str, keep: Keep,
              indent: str) -> list[str]:
    message = f"{path}: {qualname} is not written yet (part {keep.part})"
    return [*(indent + ln for ln in _header(node, lines)), *_docstring(keep.todo, indent + "    "),
            f"{indent}    raise NotImplementedError(", f'{indent}        "{message}")']


def _class(node: ast.ClassDef, lines: list[str], path: str, keep: Keep) -> list[str]:
    methods = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
    missing = set(keep.methods) - set(methods)
    if missing:
        raise HandoutError(f"{path}: class {node.name} has no {', '.join(sorted(missing))} any more; "
                           f"update kubekv/handout.py's SKELETONS")
    out = [*_header(node, lines), *_docstring(keep.todo, "    ")]
    for name, k in keep.methods.items():
        out += ["", *_function(methods[name], lines, path, f"{node.name}.{name}", k, "    ")]
    return out


def _registered(tree: ast.Module) -> set[str]:
    """Names of the top-level classes the reference registers with labgob."""
    names: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
            continue
        if any(isinstance(n, ast.Attribute) and n.attr == "Register" for n in ast.walk(stmt)):
            names |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return names


def skeleton_source(path: str, repo: str = REPO) -> str:
    """The skeleton of solution file path (relative to the repository), as Python source."""
    spec = SKELETONS[path]
    with open(os.path.join(repo, path), encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source)
    top = {n.name: n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    missing = (set(spec.keep) | set(spec.verbatim)) - set(top)
    if missing:
        raise HandoutError(f"{path}: the reference has no {', '.join(sorted(missing))} any more; "
                           f"update kubekv/handout.py's SKELETONS")
    lines = source.splitlines()
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    out = [f"# Generated by `kubekv handout` from the reference's {path} (its API, not its code).",
           f'"""{spec.doc}"""', "",
           *lines[imports[0].lineno - 1:imports[-1].end_lineno]]
    registered, to_register = [], _registered(tree)
    for stmt in tree.body:
        if not isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
            continue
        if stmt.name in spec.verbatim:
            first = min([stmt.lineno] + [d.lineno for d in stmt.decorator_list])
            out += ["", "", *lines[first - 1:stmt.end_lineno]]
        elif stmt.name in spec.keep:
            keep = spec.keep[stmt.name]
            out += ["", ""]
            out += (_class(stmt, lines, path, keep) if isinstance(stmt, ast.ClassDef)
                    else _function(stmt, lines, path, stmt.name, keep, ""))
        else:
            continue
        if stmt.name in to_register:
            registered.append(stmt.name)
    if registered:
        out += ["", ""] + textwrap.wrap(f"for _cls in ({', '.join(registered)},):", LINE_LIMIT,
                                        subsequent_indent="            ")
        out += ["    labgob.Register(_cls)"]
    names = sorted(n for n in (*spec.verbatim, *spec.keep) if n in top)
    out += ["", "", "__all__ = ["]
    out += textwrap.wrap(", ".join(f'"{n}"' for n in names), LINE_LIMIT - 4,
                         initial_indent="    ", subsequent_indent="    ")
    out[-1] += ","
    out += ["]"]
    return "\n".join(out) + "\n"


def _copy_package(src: str, dst: str) -> None:
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for name in files:
            if name.endswith((".pyc", ".html.tmp")) or name in _SKIP_FILES:
                continue
            if name.startswith("test_") and name.endswith(".py"):
                continue
            shutil.copy2(os.path.join(root, name), os.path.join(dst, rel, name))


SETUP_CFG = """[metadata]
name = kubekv-handout
version = 0.1.0
description = The MIT 6.5840 (2025) labs in Python: the handout (framework, lab tests, skeletons)
license = MIT

[options]
python_requires = >=3.10
packages = find:
install_requires =
    msgpack>=1.0
    rich>=12

[options.packages.find]
include =
    labgob*
    labrpc*
    labsim*
    tester*
    porcupine*
    raft1*
    rsm*
    kvraft1*
    kubekv*

[options.package_data]
porcupine = *.html, *.js, *.css
kubekv = *.ini

[options.entry_points]
console_scripts =
    kubekv = kubekv.cli:main

[options.extras_require]
test =
    pytest>=7
    pytest-timeout>=2
    pytest-xdist>=3
    pytest-repeat>=0.9

[tool:pytest]
python_files = test_*.py
python_functions = Test*
python_classes = _NoClassCollection
testpaths = raft1 rsm kvraft1
timeout = 600
"""

README = """# The 6.5840 (2025) labs in Python

You write Raft (`raft1/raft.py`, labs 3A-3D), a replicated state machine (`rsm/rsm.py`, 4A) and a
linearizable key/value service on it (`kvraft1/server.py` and `kvraft1/client.py`, 4B-4C).  The
tests are the Go labs' tests, ported test for test, with the same names, steps and limits; the
framework under them (`labrpc`'s lossy network, `labgob`, the `tester`, `porcupine`'s
linearizability checker) is given.  Each of the four files holds the API the tests call, with
TODOs: every function raises NotImplementedError until you write it, so a test says at once
what is missing.

## Two commands

Install and run the tests:

    python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest -n 2 -q

Install and grade your solution part by part (every test of 3A..4C, 5 runs each):

    python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && kubekv grade

## What to write, part by part

| part | file | run its tests |
|---|---|---|
| 3A leader election | `raft1/raft.py` | `python -m pytest raft1 -k 3A` |
| 3B log | `raft1/raft.py` | `python -m pytest raft1 -k 3B` |
| 3C persistence | `raft1/raft.py` | `python -m pytest raft1 -k 3C` |
| 3D log compaction | `raft1/raft.py` | `python -m pytest raft1 -k 3D` |
| 4A replicated state machine | `rsm/rsm.py` | `python -m pytest rsm -k 4A` |
| 4B KV service without snapshots | `kvraft1/server.py`, `kvraft1/client.py` | `python -m pytest kvraft1 -k 4B` |
| 4C KV service with snapshots | the same, and `rsm/rsm.py` | `python -m pytest rsm kvraft1 -k 4C` |

Each file's docstring says what its API must do and where to look in the Raft paper.
`python -m pytest -s` shows the tests' own `Test (3A): ...` lines, as `go test -v` does.

## Rules

- Keep the API's names and shapes: `Make(peers, me, persister, applyCh)`,
  `rf.Start(cmd) -> (index, term, isLeader)`, `peers[i].Call("Raft.RequestVote", args, reply)`,
  `labgob.NewEncoder(w).Encode(x)`.
- Threads stand in for goroutines.  No busy-waiting: wait on a `threading.Condition` or sleep.
- Never hold a lock across an RPC, a channel send or a long wait.
- Everything that crosses labrpc or the persister goes through labgob: register your classes.
- A thread of yours left running after a test is reported; stop them all in `Kill()`.

## Tools

- `kubekv test TestBackup3B --runs 100 --workers 2`: the flake hunter; a table of failures and,
  for each failed run, its output, its porcupine view and the line that replays its seeds.
- `KUBEKV_SIM=1 python -m pytest raft1 -k 3B`: the deterministic simulator; one thread at a
  time, virtual time, a seeded schedule: races show up, and `KUBEKV_SIM_SEED=N` replays one
  exactly.  `kubekv test 3B --sim --runs 200` tries 200 schedules.
- `from tester import dlog; dlog.DPrintf(dlog.VOTE, rf.me, "...")` with `KUBEKV_DEBUG=all`:
  per-peer debug logs; `kubekv logs FILE --columns` shows a column per peer.
- `kubekv grade --parts 3A,3B --runs 10`: the grading table (points in `kubekv/points.ini`).

PORTING.md explains the Python idioms of the Go lab code, the pitfalls that differ in Python,
schedule noise and the simulator.
"""


def write(target: str, repo: str = REPO) -> list[str]:
    """Write the handout into target (which must not exist or be empty); the files written."""
    target = os.path.abspath(target)
    if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
        raise HandoutError(f"{target} exists and is not an empty folder; give a new folder")
    if os.path.commonpath([target, os.path.abspath(repo)]) == os.path.abspath(repo):
        raise HandoutError(f"{target} is inside the repository; give a folder outside it")
    os.makedirs(target, exist_ok=True)
    for pkg in FRAMEWORK:
        _copy_package(os.path.join(repo, pkg), os.path.join(target, pkg))
    for lab in LABS:
        os.makedirs(os.path.join(target, lab))
        for name in os.listdir(os.path.join(repo, lab)):
            rel = f"{lab}/{name}"
            src = os.path.join(repo, rel)
            if not name.endswith(".py") or rel in SKELETONS:
                continue
            if name.startswith("test_") and rel not in LAB_TESTS:
                continue
            shutil.copy2(src, os.path.join(target, rel))
    for rel in SKELETONS:
        with open(os.path.join(target, rel), "w", encoding="utf-8") as f:
            f.write(skeleton_source(rel, repo))
    os.makedirs(os.path.join(target, "kubekv"))
    for name in TOOLS:
        shutil.copy2(os.path.join(repo, "kubekv", name), os.path.join(target, "kubekv", name))
    for name in TOP_FILES:
        if os.path.exists(os.path.join(repo, name)):
            shutil.copy2(os.path.join(repo, name), os.path.join(target, name))
    with open(os.path.join(target, "setup.cfg"), "w", encoding="utf-8") as f:
        f.write(SETUP_CFG)
    with open(os.path.join(target, "README.md"), "w", encoding="utf-8") as f:
        f.write(README)
    out = []
    for root, _, files in os.walk(target):
        out += [os.path.relpath(os.path.join(root, n), target) for n in files]
    return sorted(out)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("handout", help="write a student repository: framework, lab tests, skeletons",
                       description=__doc__.split("\n\n", 2)[1],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="a new (or empty) folder outside this repository")
    return p


def main(args: Any) -> int:
    try:
        files = write(args.dir)
    except HandoutError as e:
        print(f"kubekv handout: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {os.path.abspath(args.dir)}; skeletons: {', '.join(SKELETONS)}")
    print(f"next: cd {args.dir} && python3 -m venv .venv && . .venv/bin/activate && "
          f"pip install -e '.[test]' && python -m pytest raft1 -k 3A")
    return 0
