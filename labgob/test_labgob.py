"""labgob tests: Go's labgob/test_test.go test-for-test, then the Python-specific parts.

Run: pytest labgob            (pytest labgob -k TestGOB is `go test -run TestGOB`)
"""

from __future__ import annotations

import dataclasses
import enum
import io
import itertools
from typing import Any

import msgpack
import pytest

import labgob


@dataclasses.dataclass
class T1:
    T1int0: int = 0
    T1int1: int = 0
    T1string0: str = ""
    T1string1: str = ""


@dataclasses.dataclass
class T2:
    T2slice: list = dataclasses.field(default_factory=list)
    T2map: dict = dataclasses.field(default_factory=dict)
    T2t3: Any = None


@dataclasses.dataclass
class T3:
    T3int999: int = 0


@dataclasses.dataclass
class DD:
    X: int = 0


# Python has no static types, so every class that is encoded must be registered
# (Go needs it only for types carried in interfaces, like T3 in T2t3).
labgob.Register(T1)
labgob.Register(T2)
labgob.Register(DD)


# test that we didn't break GOB.
def TestGOB():
    e0 = labgob.errorCount

    w = io.BytesIO()

    labgob.Register(T3)

    x0 = 0
    x1 = 1
    t1 = T1()
    t1.T1int1 = 1
    t1.T1string1 = "6.5840"
    t2 = T2()
    t2.T2slice = [T1(), t1]
    t2.T2map = {}
    t2.T2map[99] = T1(1, 2, "x", "y")
    t2.T2t3 = T3(999)

    e = labgob.NewEncoder(w)
    e.Encode(x0)
    e.Encode(x1)
    e.Encode(t1)
    e.Encode(t2)
    data = w.getvalue()

    r = io.BytesIO(data)
    d = labgob.NewDecoder(r)
    x0 = d.Decode()
    x1 = d.Decode()
    t1 = T1()
    t2 = T2()
    d.Decode(t1)
    d.Decode(t2)

    assert x0 == 0, f"wrong x0 {x0}"
    assert x1 == 1, f"wrong x1 {x1}"
    assert t1.T1int0 == 0, f"wrong t1.T1int0 {t1.T1int0}"
    assert t1.T1int1 == 1, f"wrong t1.T1int1 {t1.T1int1}"
    assert t1.T1string0 == "", f"wrong t1.T1string0 {t1.T1string0}"
    assert t1.T1string1 == "6.5840", f"wrong t1.T1string1 {t1.T1string1}"
    assert len(t2.T2slice) == 2, f"wrong t2.T2slice len {len(t2.T2slice)}"
    assert t2.T2slice[1].T1int1 == 1, "wrong slice value"
    assert len(t2.T2map) == 1, f"wrong t2.T2map len {len(t2.T2map)}"
    assert t2.T2map[99].T1string1 == "y", "wrong map value"
    t3 = t2.T2t3
    assert isinstance(t3, T3) and t3.T3int999 == 999, "wrong t2.T2t3.T3int999"

    assert labgob.errorCount == e0, "there were errors, but should not have been"


_t4_runs = itertools.count()


def _fresh_T4() -> type:
    # Go checks each type once per process, so under `go test -count 2` its own
    # TestCapital sees no warning the second time.  Each run here defines its
    # own T4 type so that the check (still once per type) fires every run.
    @dataclasses.dataclass(frozen=True)
    class T4:
        Yes: int = 0
        _no: int = 0   # Go's lower-case field `no`

    labgob.RegisterName(f"labgob_test.T4.{next(_t4_runs)}", T4)
    return T4


# make sure we check capitalization
# labgob prints one warning during this test.
def TestCapital():
    e0 = labgob.errorCount

    T4 = _fresh_T4()
    v = [{T4(Yes=1, _no=2): 7}]

    w = io.BytesIO()
    e = labgob.NewEncoder(w)
    e.Encode(v)
    data = w.getvalue()

    r = io.BytesIO(data)
    d = labgob.NewDecoder(r)
    v1 = d.Decode()

    assert labgob.errorCount == e0 + 1, "failed to warn about lower-case field"
    # and, as gob does, the hidden field did not travel.
    assert v1 == [{T4(Yes=1, _no=0): 7}]


# check that we warn when someone sends a default value over
# RPC but the target into which we're decoding holds a non-default
# value, which GOB seems not to overwrite as you'd expect.
#
# labgob does not print a warning.
def TestDefault():
    e0 = labgob.errorCount

    # send a default value...
    dd1 = DD()

    w = io.BytesIO()
    e = labgob.NewEncoder(w)
    e.Encode(dd1)
    data = w.getvalue()

    # and receive it into memory that already
    # holds non-default values.
    reply = DD(99)

    r = io.BytesIO(data)
    d = labgob.NewDecoder(r)
    d.Decode(reply)

    assert labgob.errorCount == e0 + 1, "failed to warn about decoding into non-default value"


# ---------------------------------------------------------------------------------------------
# Python-specific tests.

@dataclasses.dataclass
class Entry:
    Term: int = 0
    Command: Any = None


@dataclasses.dataclass(frozen=True)
class Frozen:
    A: int = 0
    B: tuple = ()


class Annotated:
    Name: str
    Count: int = 5


class Plain:
    def __init__(self, a=0, b=""):
        self.a = a
        self.b = b


class Slotted:
    __slots__ = ("P", "Q")
    P: int
    Q: str


class Unregistered:
    X: int = 0


_init_calls: list[str] = []


@dataclasses.dataclass
class Tripwire:
    """Records any code that decoding might run."""
    V: int = 0

    def __post_init__(self):
        _init_calls.append("__post_init__")

    def __setattr__(self, name, value):
        _init_calls.append("__setattr__")
        object.__setattr__(self, name, value)


@dataclasses.dataclass
class Hidden:
    Shown: int = 0
    _secret: str = "default"


for _c in (Entry, Frozen, Annotated, Plain, Slotted, Tripwire):
    labgob.Register(_c)


def _roundtrip(*values):
    w = io.BytesIO()
    e = labgob.NewEncoder(w)
    for v in values:
        e.Encode(v)
    d = labgob.NewDecoder(io.BytesIO(w.getvalue()))
    return [d.Decode() for _ in values]


def TestRoundTripValues():
    vals = [None, True, False, 0, -1, 2**63 - 1, -2**63, 2**64 - 1, 2**200, -2**200, 1.5,
            "", "héllo", b"\x00\xff", [], [1, [2, (3, 4)]], (), (1, "a"), {"k": [1]},
            {1: "a", (2, 3): None}, [Entry(1, "x"), Entry(2, Entry(3, None))]]
    out = _roundtrip(*vals)
    assert out == vals
    assert type(out[14]) is list and type(out[16]) is tuple, "tuple and list must stay distinct"
    assert out[19][(2, 3)] is None and type(out[17]) is tuple


def TestRoundTripClassKinds():
    a = Annotated()
    a.Name = "n"
    s = Slotted()
    s.P, s.Q = 1, "q"
    f, a2, p, s2 = _roundtrip(Frozen(1, (2, 3)), a, Plain(7, "z"), s)
    assert f == Frozen(1, (2, 3))
    assert (a2.Name, a2.Count) == ("n", 5)
    assert type(p) is Plain and (p.a, p.b) == (7, "z")
    assert type(s2) is Slotted and (s2.P, s2.Q) == (1, "q")


def TestNoSharedObjects():
    inner = [1, 2]
    e = Entry(1, inner)
    [e2] = _roundtrip(e)
    assert e2 == e and e2 is not e and e2.Command is not inner


def TestPersistSequence():
    # raft's persist(): several values on one buffer, read back in order.
    log = [Entry(0, None)] + [Entry(t, f"cmd{t}") for t in range(1, 50)]
    out = _roundtrip(7, 3, log)
    assert out == [7, 3, log]


def TestTypeTableKeepsBytesLow():
    log = [Entry(1, i) for i in range(100)]
    w = io.BytesIO()
    labgob.NewEncoder(w).Encode(log)
    # name once, then a 1-byte index: about 6 bytes per entry
    assert len(w.getvalue()) < 100 * 8, len(w.getvalue())


def TestUnregisteredClassEncode():
    w = io.BytesIO()
    with pytest.raises(labgob.LabgobError, match=r"labgob.Register\(Unregistered\)"):
        labgob.NewEncoder(w).Encode([Unregistered()])


def TestUnregisteredClassDecode():
    # bytes naming a class the receiver never registered
    payload = msgpack.packb(["NoSuchClass", 1])
    data = msgpack.packb(msgpack.ExtType(1, payload))
    with pytest.raises(labgob.LabgobError, match="NoSuchClass.*Register"):
        labgob.NewDecoder(io.BytesIO(data)).Decode()


def TestTruncatedBytes():
    w = io.BytesIO()
    labgob.NewEncoder(w).Encode([Entry(1, "abc"), Entry(2, "def")])
    data = w.getvalue()
    for cut in range(1, len(data)):
        with pytest.raises(labgob.LabgobError):
            labgob.NewDecoder(io.BytesIO(data[:cut])).Decode()
        with pytest.raises(labgob.LabgobError):
            labgob.loads(data[:cut])


def TestGarbageBytes():
    bad = [b"\xc1", b"\xc1\x00\x01", msgpack.packb(msgpack.ExtType(99, b"x")),
           msgpack.packb(msgpack.ExtType(2, msgpack.packb([5, 1]))),    # index not in stream
           msgpack.packb(msgpack.ExtType(1, msgpack.packb([7, 1]))),    # name not a str
           msgpack.packb(msgpack.ExtType(1, msgpack.packb(["Entry", 1, 2, 3]))),  # field count
           msgpack.packb(msgpack.ExtType(1, msgpack.packb(["Plain", 1, 2]))),     # pair shape
           msgpack.packb(msgpack.ExtType(3, msgpack.packb(5)))]          # tuple of non-array
    for data in bad:
        with pytest.raises(labgob.LabgobError):
            labgob.NewDecoder(io.BytesIO(data)).Decode()
    with pytest.raises(labgob.LabgobError, match="stray"):
        labgob.loads(msgpack.packb(1) + b"\x01")
    with pytest.raises(labgob.LabgobError, match="no complete value"):
        labgob.NewDecoder(io.BytesIO(b"")).Decode()


def TestDecodingRunsNoCode():
    data = labgob.dumps([Tripwire(5), Tripwire(6)])
    _init_calls.clear()
    out = labgob.loads(data)
    assert [t.V for t in out] == [5, 6]
    assert _init_calls == [], f"decoding ran {_init_calls}"


def TestHiddenFieldWarnedOnceNotSent():
    # a fresh class per run, so -count N sees the once-per-class warning every time
    Fresh = dataclasses.make_dataclass("Hidden", [("Shown", int, 0), ("_secret", str, "default")])
    e0 = labgob.errorCount
    labgob.RegisterName(f"labgob_test.Hidden.{next(_t4_runs)}", Fresh)
    assert labgob.errorCount == e0 + 1
    out = labgob.loads(labgob.dumps([Fresh(1, "s3cret"), Fresh(2, "x")]))
    assert [(h.Shown, h._secret) for h in out] == [(1, "default"), (2, "default")]
    assert labgob.errorCount == e0 + 1, "warned more than once for one class"


def TestHiddenAttributeOfPlainClass():
    class P2:
        def __init__(self):
            self.Ok = 1
            self._hidden = 2
    e0 = labgob.errorCount
    labgob.RegisterName(f"labgob_test.P2.{next(_t4_runs)}", P2)
    out = labgob.loads(labgob.dumps(P2()))
    assert out.Ok == 1 and not hasattr(out, "_hidden")
    labgob.dumps(P2())
    assert labgob.errorCount == e0 + 1


def TestDecodeIntoNonDefaultCountsEachField():
    e0 = labgob.errorCount
    target = T1(T1int0=1, T1string1="stale")
    labgob.loads(labgob.dumps(T1()), into=target)
    assert labgob.errorCount == e0 + 2
    assert target == T1(), "decoding must overwrite every field"


def TestDecodeIntoWrongType():
    # issue 13: bytes naming another registered class never fill the object given
    with pytest.raises(labgob.LabgobError,
                       match=r"data holds a test_labgob\.DD, but Decode was given a test_labgob\.T1"):
        labgob.loads(labgob.dumps(DD(1)), into=T1())
    with pytest.raises(labgob.LabgobError, match="holds a test_labgob.DD.*given a test_labgob.T1"):
        labgob.NewDecoder(labgob.dumps(DD(1))).Decode(T1())


def TestRegisterNameClash():
    @dataclasses.dataclass
    class DD:  # noqa: F811 - same __qualname__ as the module-level DD, different class
        X: int = 0
    DD.__qualname__ = "DD"
    with pytest.raises(labgob.LabgobError, match="RegisterName"):
        labgob.Register(DD)
    labgob.Register(globals()["DD"])   # idempotent for the same class


def TestZeroInstanceSkipsInit():
    @dataclasses.dataclass
    class NeedsArgs:
        A: int
        B: str
    labgob.RegisterName(f"labgob_test.NeedsArgs.{next(_t4_runs)}", NeedsArgs)
    z = labgob.zero_instance(NeedsArgs)
    assert (z.A, z.B) == (0, "")


def TestMisuse():
    with pytest.raises(labgob.LabgobError, match="BytesIO"):
        labgob.NewEncoder(b"")
    with pytest.raises(labgob.LabgobError, match="BytesIO"):
        labgob.NewDecoder("not bytes")
    assert labgob.NewDecoder(labgob.dumps(5)).Decode() == 5
    with pytest.raises(labgob.LabgobError, match="cannot encode a set"):
        labgob.dumps({1, 2})
    with pytest.raises(labgob.LabgobError, match="built-in set"):
        labgob.Register(set)

    class Color(enum.Enum):
        RED = 1
    with pytest.raises(labgob.LabgobError, match="enum"):
        labgob.Register(Color)
    with pytest.raises(labgob.LabgobError, match="cannot decode into"):
        labgob.loads(labgob.dumps(5), into=7)


# ---- EncodeGrowingList: a cached Encode(list) for Raft's persist ---------------------------

def TestGrowingListDecodesEqual():
    """Random appends, truncations, replacements and compactions: Decode gives the list back,
    and values before and after it in the stream are unaffected."""
    import random

    @dataclasses.dataclass
    class Entry:
        Term: int = 0
        Command: Any = None

    @dataclasses.dataclass
    class Cmd:
        Key: str = ""

    @dataclasses.dataclass
    class Other:
        N: int = 0

    for cls in (Entry, Cmd, Other):
        labgob.Register(cls)
    rng = random.Random(7)
    kinds = [lambda i: i, lambda i: f"s{i}", lambda i: Cmd(Key=f"k{i}"), lambda i: (i, "t"),
             lambda i: [Cmd()], lambda i: Other(N=i), lambda i: 1 << 70]
    cache = labgob.ListCache()
    log = [Entry(0, None)]
    for step in range(2000):
        r = rng.random()
        if r < 0.7:
            log.append(Entry(rng.randrange(5), rng.choice(kinds)(step)))
        elif r < 0.8 and len(log) > 1:
            del log[rng.randrange(1, len(log)):]
        elif r < 0.85 and len(log) > 3:
            log = [Entry(7, None)] + log[rng.randrange(1, len(log)) + 1:]
        elif r < 0.9:
            log[rng.randrange(len(log))] = Entry(9, rng.choice(kinds)(step))
        w = io.BytesIO()
        e = labgob.NewEncoder(w)
        e.Encode(Other(N=step) if step % 2 else step)   # a class before, or not
        e.EncodeGrowingList(log, cache)
        e.Encode(Cmd(Key="after"))
        d = labgob.NewDecoder(io.BytesIO(w.getvalue()))
        assert d.Decode() == (Other(N=step) if step % 2 else step)
        assert d.Decode() == log, f"step {step}"
        assert d.Decode() == Cmd(Key="after")


def TestGrowingListReusesItems():
    @dataclasses.dataclass
    class Item:
        V: int = 0

    labgob.Register(Item)
    cache = labgob.ListCache()
    items = [Item(i) for i in range(100)]
    labgob.NewEncoder(io.BytesIO()).EncodeGrowingList(items, cache)
    packed = []
    real_pack = cache._enc._pack
    cache._enc._pack = lambda v: packed.append(v) or real_pack(v)
    items = [Item(-1)] + items[50:] + [Item(100)]       # a compaction and an append
    w = io.BytesIO()
    labgob.NewEncoder(w).EncodeGrowingList(items, cache)
    assert [v for v in packed if isinstance(v, Item)] == [Item(-1), Item(100)]
    assert labgob.NewDecoder(io.BytesIO(w.getvalue())).Decode() == items


def TestGrowingListCorruptHead():
    cache = labgob.ListCache()
    w = io.BytesIO()
    labgob.NewEncoder(w).EncodeGrowingList([1, 2], cache)
    good = w.getvalue()
    for cut in range(1, len(good)):
        with pytest.raises(labgob.LabgobError):
            labgob.NewDecoder(io.BytesIO(good[:cut])).Decode()
    bad = msgpack.packb(msgpack.ExtType(7, msgpack.packb(["no.such.Class"]) + msgpack.packb([])))
    with pytest.raises(labgob.LabgobError, match="unregistered"):
        labgob.NewDecoder(io.BytesIO(bad)).Decode()


# ---- issue 13: bad input gets a named error, never a silent wrong result ---------------------

Count = int   # an alias, as kvraft1's Tversion: the check sees through it


@dataclasses.dataclass
class Typed:
    N: int = 0
    S: str = ""
    B: bytes = b""
    Ok: bool = False
    F: float = 0.0
    C: Count = 0
    Free: Any = None
    L: list = dataclasses.field(default_factory=list)


labgob.Register(Typed)


def _ext(tag, *values, code=1):
    """Bytes as another labgob (or an attacker) might send them: class tag, then field values."""
    return msgpack.packb(msgpack.ExtType(code, msgpack.packb([tag, *values])))


def TestRegisterRefusesInstancesAndBuiltins():
    with pytest.raises(labgob.LabgobError, match=r"Register takes a class: labgob\.Register\(Entry\), "
                       r"not labgob\.Register\(Entry\(\)\) \(an instance\)"):
        labgob.Register(Entry(1, "x"))
    with pytest.raises(labgob.LabgobError, match=r"RegisterName takes a class: labgob\.RegisterName\('x\.E', "
                       r"Entry\), not labgob\.RegisterName\('x\.E', Entry\(\)\)"):
        labgob.RegisterName("x.E", Entry())
    for builtin in (int, str, bytes, bool, float, list, tuple, dict, type(None)):
        with pytest.raises(labgob.LabgobError, match=r"is built in and needs no registration"):
            labgob.Register(builtin)
    for value in (0, "raft.LogEntry", None, [Entry]):
        with pytest.raises(labgob.LabgobError,
                           match=r"Register takes a class, as in labgob\.Register\(LogEntry\); got the"):
            labgob.Register(value)

    class SlotsOnly:
        __slots__ = ("a",)
    with pytest.raises(labgob.LabgobError, match="SlotsOnly: it has __slots__ but no field annotations"):
        labgob.Register(SlotsOnly)
    labgob.Register(Entry)   # a class is still fine, and idempotent


def TestFieldsNamedOnceAndChecked():
    data = labgob.dumps([Entry(1, "a"), Entry(2, "b")])
    assert data.count(b"test_labgob.Entry(Term,Command)") == 1, "the signature travels once per stream"
    assert labgob.loads(data) == [Entry(1, "a"), Entry(2, "b")]
    name = "test_labgob.Entry"
    cases = {
        f"{name}(Term,Command,Index)": r"field Index is not declared here",
        f"{name}(Term)": r"field Command is missing from the data",
        f"{name}(Command,Term)": r"the same fields in another order",
        f"{name}(Term,Cmd)": r"field Cmd is not declared here; field Command is missing",
    }
    for tag, why in cases.items():
        with pytest.raises(labgob.LabgobError, match=r"the data's test_labgob\.Entry has fields .*, but "
                           r"test_labgob\.Entry here declares \(Term, Command\): " + why):
            labgob.loads(_ext(tag, 1, 2))
    with pytest.raises(labgob.LabgobError, match=r"names test_labgob\.Entry without its fields"):
        labgob.loads(_ext(name, 1, "x"))
    with pytest.raises(labgob.LabgobError, match=r"Entry has 2 fields, the data holds 3 values"):
        labgob.loads(_ext(f"{name}(Term,Command)", 1, "x", "extra"))
    with pytest.raises(labgob.LabgobError, match=r"unregistered class 'nope\.Entry'.*Register\(Entry\)"):
        labgob.loads(_ext("nope.Entry(Term,Command)", 1, 2))
    # the index form of a later occurrence cannot smuggle another shape either
    first = msgpack.ExtType(1, msgpack.packb([f"{name}(Term,Command)", 1, "a"]))
    later = msgpack.ExtType(2, msgpack.packb([0, 1, "a", "extra"]))
    with pytest.raises(labgob.LabgobError, match="2 fields, the data holds 3"):
        labgob.loads(msgpack.packb([first, later]))


def TestFieldTypesChecked():
    good = Typed(N=1, S="s", B=b"b", Ok=True, F=2.5, C=3, Free={"any": ["thing"]}, L=[1])
    assert labgob.loads(labgob.dumps(good)) == good
    # a float field takes an int (PEP 484); 1.0 stays a float on the wire
    assert type(labgob.loads(labgob.dumps(Typed(F=1))).F) is int
    assert type(labgob.loads(labgob.dumps(Typed(F=1.0))).F) is float
    assert labgob.loads(labgob.dumps(2**80)) == 2**80
    assert labgob.loads(labgob.dumps(Typed(N=2**80))).N == 2**80
    bad = {
        "N": ("1", r"Typed\.N is declared int, but the data holds a str \('1'\): the sender put a str "
                   r"where an int belongs"),
        "S": (5, r"Typed\.S is declared str, but the data holds an int \(5\)"),
        "B": ("b", r"Typed\.B is declared bytes, but the data holds a str"),
        "Ok": (1, r"Typed\.Ok is declared bool, but the data holds an int \(1\)"),
        "F": ("2.5", r"Typed\.F is declared float, but the data holds a str"),
        "C": (None, r"Typed\.C is declared int, but the data holds a NoneType \(None\)"),
        # bool is an int subclass in Python, but a bool in an int field is a bug (gob refuses it)
        "N ": (True, r"Typed\.N is declared int, but the data holds a bool \(True\)"),
        "F ": (False, r"Typed\.F is declared float, but the data holds a bool"),
    }
    for field, (value, message) in bad.items():
        data = labgob.dumps([Entry(1, Typed(**{field.strip(): value}))])   # nested: checked too
        with pytest.raises(labgob.LabgobError, match=message):
            labgob.loads(data)
        with pytest.raises(labgob.LabgobError, match=message):
            labgob.NewDecoder(data).Decode()
        with pytest.raises(labgob.LabgobError, match=message):
            labgob.loads(labgob.dumps(Typed(**{field.strip(): value})), into=Typed())
    # one checked field only (LogEntry's Term): its own fast path
    with pytest.raises(labgob.LabgobError, match=r"Entry\.Term is declared int, but the data holds a float"):
        labgob.loads(labgob.dumps(Entry(1.5, None)))


def TestGrowingListChecksItems():
    cache = labgob.ListCache()
    w = io.BytesIO()
    labgob.NewEncoder(w).EncodeGrowingList([Entry(0, None), Entry("1", "x")], cache)
    with pytest.raises(labgob.LabgobError, match=r"Entry\.Term is declared int, but the data holds a str"):
        labgob.NewDecoder(w.getvalue()).Decode()


def TestPlainClassAttributesChecked():
    assert vars(labgob.loads(_ext("test_labgob.Plain", "a", 1, "b", "x", code=5))) == {"a": 1, "b": "x"}
    for keys, message in (((("a", 1), ("_x", 2)), r"field '_x' starts with '_'"),
                          ((("a", 1), ("a", 2)), r"field 'a' appears twice"),
                          (((3, 1),), r"field name 3 is not a str")):
        with pytest.raises(labgob.LabgobError, match=r"corrupt data for test_labgob\.Plain: " + message):
            labgob.loads(_ext("test_labgob.Plain", *[x for kv in keys for x in kv], code=5))
    with pytest.raises(labgob.LabgobError, match=r"field name without a value"):
        labgob.loads(_ext("test_labgob.Plain", "a", code=5))
    with pytest.raises(labgob.LabgobError,
                       match=r"Plain has declared fields \(a, b\), but .* is a plain class"):
        labgob.loads(_ext("test_labgob.Plain(a,b)", 1, 2))


def TestUndeclaredFields():
    e = Entry(1, "x")
    assert labgob.undeclared_fields(e) == []
    e.Trem = 2
    e._private = 3
    assert labgob.undeclared_fields(e) == ["Trem"]
    assert labgob.undeclared_fields(Plain()) == [], "a plain class sends every attribute"
    assert labgob.declared_fields(Entry) == ("Term", "Command")
    assert labgob.is_registered(Entry) and not labgob.is_registered(Unregistered)
