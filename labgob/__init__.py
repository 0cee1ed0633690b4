"""labgob: the labs' serializer (Go's labgob/encoding/gob, on msgpack).

Usage (the Go names and shapes):

    labgob.Register(LogEntry)                 # every class that crosses labrpc or a Persister
                                              # (registered as "raft.LogEntry": module.qualname;
                                              # the class itself, not Go's LogEntry{} value)
    labgob.RegisterName("raft.Entry2", Entry) # when two classes would share a name

    w = io.BytesIO()
    e = labgob.NewEncoder(w)
    e.Encode(currentTerm)
    e.Encode(log)
    data = w.getvalue()

    d = labgob.NewDecoder(io.BytesIO(data))
    currentTerm = d.Decode()
    log = d.Decode()
    d.Decode(reply)          # decode *into* an existing object, in place (labrpc replies)

Values: None, bool, int (any size), float, str, bytes, list, tuple, dict and
instances of registered classes (dataclasses, classes with annotations, plain
classes), nested.  A decoded value never shares an object with the encoded one.

Wire format: one msgpack object per Encode.  A registered class instance is a
msgpack ExtType holding its field values in declaration order; the first time a
class appears in an encoder's stream it is named with its fields,
"raft.LogEntry(Term,Command)", later occurrences send a small index into the
stream's type table (the way gob sends a type descriptor once per stream).
EncodeGrowingList (for Raft's persist) writes a self-contained list instead: the
class names at its head, then items that refer to them by index only, so each
item's bytes can be cached.  Plain classes (no annotations) send their
attribute names with every instance.

Decoding takes nothing on trust (the bytes may come from a real network): a class
must be registered here with the very fields the data names, in the same order
(unlike gob, which matches fields by name and drops the rest, a missing or extra
field is an error, since our encoder always sends them all), the data must hold
one value per field, and a field annotated int, str, bytes, bool or float must
hold a value of that type (a float field also takes an int; an int field refuses
a bool, as gob does).  Decode(into) refuses data of another class than into's.

Go's two warnings are kept and counted in the module global `errorCount`:
  * a field whose name starts with "_" (the analogue of Go's lower-case field)
    is NOT transmitted; each class is warned about once per process;
  * decoding into an object that holds non-default bool/int/float/str fields
    (a reused RPC reply) is counted every time, printed only while
    errorCount < 1.

Errors raise LabgobError, naming the class, the field or the offset and the
fix.  Decoding never runs code from the data and never builds an unregistered
class: objects are made with object.__new__ and their fields are filled directly.
"""

from __future__ import annotations

import _thread
import dataclasses
import enum
import io
import operator
import sys
import typing
from typing import Any

import msgpack

__all__ = [
    "LabgobError", "LabEncoder", "LabDecoder", "ListCache", "NewEncoder", "NewDecoder",
    "Register", "RegisterName", "dumps", "loads", "zero_instance", "check_default",
    "is_registered", "declared_fields", "undeclared_fields",
]

# msgpack ext codes.
_EXT_NEW_CLASS = 1    # payload: ["name(field,...)", field values...]
_EXT_OLD_CLASS = 2    # payload: [stream type index, field values...]
_EXT_TUPLE = 3        # payload: msgpack array
_EXT_BIGINT = 4       # payload: two's-complement big-endian bytes
_EXT_PAIRS_NEW = 5    # plain class: [name, k1, v1, k2, v2, ...]
_EXT_PAIRS_OLD = 6    # plain class: [index, k1, v1, ...]
_EXT_ITEM_LIST = 7    # EncodeGrowingList: [class names] then the list, in a type table of its own

# msgpack's default 256 KiB packer buffer costs an mmap + page faults when
# nested packers are alive at once; it grows on demand anyway.
_PACK_BUF_BYTES = 1024
_INT64_MIN = -(1 << 63)
_UINT64_MAX = (1 << 64) - 1
_PRIMITIVES = (type(None), bool, int, float, str, bytes)
_FAST_TYPES = frozenset({type(None), bool, float, str, bytes})

# Guards the registry, `checked`, errorCount.  A raw lock: held briefly and never across a
# wait, so under labsim it need not be a scheduling point -- and must not be, since a class's
# first registration or encoding takes it and a later test in the same process skips that.
_mu = _thread.allocate_lock()
errorCount = 0           # read by the tests, like Go's labgob.errorCount
_checked: set[type] = set()
_by_name: dict[str, "_ClassInfo"] = {}
_by_class: dict[type, "_ClassInfo"] = {}
_by_sig: dict[str, "_ClassInfo"] = {}   # what the data names: "raft.LogEntry(Term,Command)"

# Fields annotated with these types have their values' types checked on decode. A value of
# exactly the declared type passes; a float field also takes an int (PEP 484's numeric tower),
# but an int field refuses a bool (gob does too: a bool in an int field is a bug).
_CHECKED_TYPES = {"int": int, "str": str, "bytes": bytes, "bool": bool, "float": float}


class LabgobError(ValueError):
    """Bad input to labgob: unregistered class, corrupt or truncated bytes, misuse."""


def _zero_for_annotation(ann: Any) -> Any:
    """Go's zero value for a field, guessed from its annotation (a type or a string)."""
    name = ann if isinstance(ann, str) else getattr(ann, "__name__", "")
    name = name.split("[", 1)[0].strip().lower()
    return {"int": 0, "str": "", "bool": False, "float": 0.0, "bytes": b"",
            "list": [], "dict": {}, "tuple": ()}.get(name)


class _ClassInfo:
    """How one registered class goes on the wire, and what decoding checks of it."""

    __slots__ = ("cls", "name", "sig", "fixed", "wire", "getter", "hidden", "field_set",
                 "defaults", "factories", "unsent", "has_dict", "init_ok", "nvalues",
                 "check_names", "check_types", "check_values", "check_at", "check_type")

    def __init__(self, cls: type, name: str):
        self.cls = cls
        self.name = name
        self.has_dict = not hasattr(cls, "__slots__") or "__dict__" in _slot_names(cls)
        self.defaults: dict[str, Any] = {}    # value for fields that are not sent
        self.factories: dict[str, Any] = {}   # dataclass default_factory of unsent fields
        self.init_ok: bool | None = None      # whether cls() works (labrpc fresh replies)
        # Decoding compares tuple(map(type, check_values(v))) with check_types: one C-level
        # pass over the annotated int/str/bytes/bool/float fields of the payload v.
        self.check_names: tuple[str, ...] = ()
        self.check_types: tuple[type, ...] = ()
        self.check_values: Any = None
        # With a single checked field (LogEntry.Term): its payload index and type, or 0.
        self.check_at = 0
        self.check_type: type | None = None
        self.unsent: tuple[tuple[str, Any, Any], ...] = ()   # (name, default, factory) of hidden fields
        names = _declared_fields(cls)
        self.fixed = names is not None
        if not self.fixed:
            # A plain class sends its attribute names with every instance.
            self.wire, self.hidden, self.getter = (), (), None
            self.sig, self.field_set, self.nvalues = name, frozenset(), 0
            return
        self.wire = tuple(n for n in names if not n.startswith("_"))
        self.hidden = tuple(n for n in names if n.startswith("_"))
        self.field_set = frozenset(names)
        # The data names the class with its fields, once per stream (gob's type descriptor),
        # so a receiver whose class differs refuses the bytes instead of misreading them.
        self.sig = f"{name}({','.join(self.wire)})"
        if len(self.wire) == 1:
            one = operator.attrgetter(self.wire[0])
            self.getter = lambda obj: (one(obj),)
        elif self.wire:
            self.getter = operator.attrgetter(*self.wire)
        else:
            self.getter = lambda obj: ()
        self.nvalues = 1 + len(self.wire)   # the class tag, then one value per field
        self._collect_defaults(names)
        self.unsent = tuple((n, self.defaults.get(n), self.factories.get(n)) for n in self.hidden
                            if n in self.defaults or n in self.factories)
        self._collect_checks()

    def _collect_checks(self) -> None:
        try:
            hints = typing.get_type_hints(self.cls)
        except Exception:  # noqa: BLE001 - e.g. a forward reference to a local class
            hints = {}
        anns = _annotations(self.cls)
        at, types = [], []
        for i, n in enumerate(self.wire):
            h = hints.get(n, anns.get(n))
            if isinstance(h, str):
                h = _CHECKED_TYPES.get(h.strip())
            if h in _CHECKED_TYPES.values():
                at.append(i + 1)   # payload index: v[0] is the class tag
                types.append(h)
        if at:
            self.check_names = tuple(self.wire[i - 1] for i in at)
            self.check_types = tuple(types)
            getter = operator.itemgetter(*at)
            self.check_values = getter if len(at) > 1 else lambda v: (getter(v),)
            if len(at) == 1:
                self.check_at, self.check_type = at[0], types[0]

    def _collect_defaults(self, names: list[str]) -> None:
        cls = self.cls
        if dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                if f.default is not dataclasses.MISSING:
                    self.defaults[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    self.factories[f.name] = f.default_factory
                else:
                    self.defaults[f.name] = _zero_for_annotation(f.type)
            return
        anns = _annotations(cls)
        for n in names:
            if n in cls.__dict__ or any(n in b.__dict__ for b in cls.__mro__[1:]):
                continue  # a class attribute already supplies the default
            self.defaults[n] = _zero_for_annotation(anns.get(n))


def _slot_names(cls: type) -> set[str]:
    out: set[str] = set()
    for b in cls.__mro__:
        s = b.__dict__.get("__slots__", ())
        out.update((s,) if isinstance(s, str) else s)
    return out


def _annotations(cls: type) -> dict[str, Any]:
    anns: dict[str, Any] = {}
    for b in reversed(cls.__mro__):
        for n, a in b.__dict__.get("__annotations__", {}).items():
            if "ClassVar" in (a if isinstance(a, str) else repr(a)):
                continue
            anns[n] = a
    return anns


def _declared_fields(cls: type) -> list[str] | None:
    """Field names in order for dataclasses/annotated classes; None for plain classes."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    anns = _annotations(cls)
    return list(anns) if anns else None


def _warn_hidden(info: _ClassInfo, names) -> None:
    """Go's checkType: complain once per class about fields that will not be sent."""
    global errorCount
    with _mu:
        if info.cls in _checked:
            return
        _checked.add(info.cls)
        bad = [n for n in names if n.startswith("_")]
        errorCount += len(bad)
    for n in bad:
        print(f"labgob error: field {n} of {info.name} starts with '_' (Go's lower-case field): "
              f"it is not sent in RPC or persist/snapshot, which will break your Raft",
              file=sys.stderr)


def Register(value: Any) -> None:
    """Register a class as "<module>.<qualname>", e.g. "raft.LogEntry": labgob.Register(LogEntry).

    Like gob's default name ("package.Type"), the last component of the module
    keeps same-named classes of different modules apart.
    """
    cls = _class_arg(value, "Register", "")
    RegisterName(f"{cls.__module__.rpartition('.')[2]}.{cls.__qualname__}", cls)


def _class_arg(value: Any, fn: str, name: str) -> type:
    """The class to register, or a LabgobError saying how to call fn instead."""
    if isinstance(value, type):
        cls = value
        if cls in _PRIMITIVES or cls in (list, tuple, dict):
            raise LabgobError(f"labgob.{fn}({name}{cls.__qualname__}): {cls.__qualname__} is built in "
                              f"and needs no registration; register only your own classes (labgob "
                              f"carries None, bool, int, float, str, bytes, list, tuple and dict as "
                              f"they are)")
        return cls
    cls = type(value)
    if cls.__module__ == "builtins":
        raise LabgobError(f"labgob.{fn} takes a class, as in labgob.{fn}({name}LogEntry); got the "
                          f"{cls.__qualname__} {_short(value)}")
    # Go passes a value (labgob.Register(Op{})); here it is the class itself.
    raise LabgobError(f"labgob.{fn} takes a class: labgob.{fn}({name}{cls.__qualname__}), not "
                      f"labgob.{fn}({name}{cls.__qualname__}()) (an instance)")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def RegisterName(name: str, value: Any) -> None:
    """Register a class under an explicit name; idempotent for the same class and name."""
    if not isinstance(name, str) or not name:
        raise LabgobError(f"labgob.RegisterName: name must be a non-empty str, got {name!r}")
    cls = _class_arg(value, "RegisterName", f"{name!r}, ")
    if issubclass(cls, enum.Enum):
        raise LabgobError(f"labgob: cannot register the enum {cls.__qualname__}; use plain str or int "
                          f"constants (as Go's `type Err string`)")
    if cls.__module__ == "builtins":
        raise LabgobError(f"labgob: cannot register the built-in {cls.__qualname__}; labgob carries None, "
                          f"bool, int, float, str, bytes, list, tuple, dict and your own classes")
    with _mu:
        old = _by_name.get(name)
        if old is not None and old.cls is not cls:
            raise LabgobError(
                f"labgob: two classes are named {name!r} ({old.cls.__module__}.{old.cls.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}); give one another name with "
                f"labgob.RegisterName('unique.name', cls)")
        mine = _by_class.get(cls)
        if mine is not None:
            if mine.name != name:
                raise LabgobError(f"labgob: {cls.__qualname__} is already registered as {mine.name!r}, "
                                  f"cannot register it again as {name!r}")
            return
        info = _ClassInfo(cls, name)
        if not info.fixed and not info.has_dict:
            raise LabgobError(f"labgob: cannot register {cls.__qualname__}: it has "
                              f"__slots__ but no field annotations, so labgob cannot tell its fields; "
                              f"annotate them (Term: int) or make it a dataclass")
        clash = _by_sig.get(info.sig)
        if clash is not None:   # only names with parentheses can get here
            raise LabgobError(f"labgob: {name!r} ({cls.__qualname__}) and {clash.name!r} "
                              f"({clash.cls.__qualname__}) look alike on the wire; give one another name "
                              f"with labgob.RegisterName('unique.name', cls)")
        _by_name[name] = info
        _by_class[cls] = info
        _by_sig[info.sig] = info
    if info.fixed:
        _warn_hidden(info, info.wire + info.hidden)


def _info_for(cls: type) -> _ClassInfo:
    info = _by_class.get(cls)
    if info is None and cls.__module__ == "builtins":
        raise LabgobError(f"labgob: cannot encode a {cls.__qualname__}; labgob carries None, bool, int, "
                          f"float, str, bytes, list, tuple, dict and registered classes")
    if info is None:
        raise LabgobError(f"labgob: cannot encode an instance of unregistered class "
                          f"{cls.__module__}.{cls.__qualname__}; call labgob.Register({cls.__qualname__})")
    return info


def _bigint_bytes(v: int) -> bytes:
    return v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True)


class LabEncoder:
    """Writes a stream of values to a binary writer; see the module docstring."""

    def __init__(self, w: Any):
        self._w = w
        self._types: dict[type, int] = {}   # class -> index in this stream's type table

    def Encode(self, v: Any) -> None:
        self._w.write(self._pack(v))

    def EncodeValue(self, v: Any) -> None:
        self.Encode(v)

    def _pack(self, v: Any) -> bytes:
        # A fresh packer per (nested) value: msgpack's Packer is not re-entrant, and
        # a long-lived one would make a reference cycle through self._default.
        try:
            return msgpack.packb(v, default=self._default, strict_types=True, use_bin_type=True,
                                buf_size=_PACK_BUF_BYTES)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, LabgobError):
                raise
            raise LabgobError(f"labgob: cannot encode {type(v).__qualname__}: {exc}") from exc

    def _default(self, obj: Any) -> msgpack.ExtType:
        cls = type(obj)
        if cls is tuple:
            return msgpack.ExtType(_EXT_TUPLE, self._pack(list(obj)))
        if cls is int:
            return msgpack.ExtType(_EXT_BIGINT, _bigint_bytes(obj))
        info = _info_for(cls)
        if info.fixed:
            body = list(info.getter(obj))
            new, old = _EXT_NEW_CLASS, _EXT_OLD_CLASS
        else:
            d = getattr(obj, "__dict__", None)
            if d is None:
                raise LabgobError(f"labgob: {info.name} has neither annotations nor __dict__; "
                                  f"make it a dataclass")
            if cls not in _checked:
                _warn_hidden(info, list(d))
            body = [x for k, v in d.items() if not k.startswith("_") for x in (k, v)]
            new, old = _EXT_PAIRS_NEW, _EXT_PAIRS_OLD
        idx = self._types.get(cls)
        if idx is None:
            payload = self._pack([info.sig] + body)
            # Indices are assigned after the fields are packed (post-order),
            # exactly as the decoder assigns them after unpacking.
            self._types.setdefault(cls, len(self._types))
            return msgpack.ExtType(new, payload)
        return msgpack.ExtType(old, self._pack([idx] + body))

    def EncodeGrowingList(self, items: list, cache: "ListCache") -> None:
        """Encode(items) for a list re-encoded again and again as it changes (Raft's log).

        Decode() returns an equal list. Each item is encoded once and its bytes reused for
        as long as the list holds that very object (checked by identity), wherever it moves:
        appending, truncating and dropping a prefix cost only the items that are new. So
        items must not be mutated in place once encoded. The value is self-contained (its
        classes are named once, at its head, in a type table of its own) and does not touch
        the stream's type table.
        """
        self._w.write(cache.encode(items))


class ListCache:
    """The item encodings behind LabEncoder.EncodeGrowingList, for one list (e.g. a Raft log)."""

    def __init__(self) -> None:
        # Items are packed by one long-lived encoder, so every blob refers to classes by their
        # index in its type table, which only grows; the value's head lists the names.
        self._enc = LabEncoder(None)
        self._names: list[str] = []
        self._blobs: dict[int, tuple[Any, bytes]] = {}   # id(item) -> (item, its bytes)
        self._last: list = []                            # the list last encoded ...
        self._last_blobs: list[bytes] = []               # ... and its items' bytes

    def encode(self, items: list) -> bytes:
        n = len(self._last)
        if len(items) >= n and all(map(operator.is_, self._last, items)):
            blobs = self._last_blobs + [self._blob(item) for item in items[n:]]   # appended only
        else:
            old, self._blobs = self._blobs, {}
            blobs = []
            for item in items:
                hit = old.get(id(item))
                if hit is None or hit[0] is not item:
                    hit = (item, self._pack(item))
                self._blobs[id(item)] = hit
                blobs.append(hit[1])
        self._last, self._last_blobs = list(items), blobs
        packer = msgpack.Packer()
        payload = b"".join([packer.pack(self._names), packer.pack_array_header(len(items))] + blobs)
        return packer.pack(msgpack.ExtType(_EXT_ITEM_LIST, payload))

    def _blob(self, item: Any) -> bytes:
        blob = self._pack(item)
        self._blobs[id(item)] = (item, blob)
        return blob

    def _pack(self, item: Any) -> bytes:
        types = self._enc._types
        known = len(types)
        blob = self._enc._pack(item)
        if len(types) > known:
            # The item named a class for the first time; pack it again so that, like every
            # other blob, it refers to classes by index only (the names go in the head).
            for cls in sorted((c for c in types if types[c] >= known), key=types.__getitem__):
                self._names.append(_info_for(cls).sig)
            blob = self._enc._pack(item)
        return blob


class LabDecoder:
    """Reads the values a LabEncoder wrote, in order; see the module docstring."""

    def __init__(self, r: Any):
        self._state = _DecodeState()
        # The unpacker refers to the state, never to self: no reference cycle.
        self._unpacker = msgpack.Unpacker(r, ext_hook=self._state._ext, strict_map_key=False,
                                          raw=False, use_list=True)

    def Decode(self, into: Any = None) -> Any:
        """The next value; with `into`, fill that object in place and return it."""
        if into is not None:
            check_default(into)
        try:
            v = self._unpacker.unpack()
        except msgpack.OutOfData:
            off = self._unpacker.tell()
            raise LabgobError(f"labgob: no complete value at offset {off}: the data is truncated "
                              f"or was not written by as many Encode calls") from None
        except LabgobError:
            raise
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise LabgobError(f"labgob: corrupt data near offset {self._unpacker.tell()}: {exc}") from None
        if into is not None:
            _fill(into, v)
            return into
        return v


def _decode_item_list(data: bytes) -> list:
    state = _DecodeState()
    unpacker = msgpack.Unpacker(None, ext_hook=state._ext, strict_map_key=False, raw=False, use_list=True)
    unpacker.feed(data)
    names = unpacker.unpack()
    if type(names) is not list or any(type(n) is not str for n in names):
        raise LabgobError("labgob: corrupt list head (class names)")
    for name in names:
        state._class_of(_EXT_NEW_CLASS, name)
    items = unpacker.unpack()
    if type(items) is not list:
        raise LabgobError("labgob: corrupt list")
    if unpacker.tell() != len(data):
        raise LabgobError(f"labgob: {len(data) - unpacker.tell()} stray bytes after a list")
    return items


class _DecodeState:
    """One stream's type table and the msgpack ext hook that builds objects."""

    def __init__(self) -> None:
        self._types: list[_ClassInfo] = []
        self._seen: set[type] = set()

    def _unpack_payload(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=self._ext, strict_map_key=False)

    def _ext(self, code: int, data: bytes) -> Any:
        # The common case first: an instance of a dataclass (or annotated class).
        if code == _EXT_OLD_CLASS or code == _EXT_NEW_CLASS:
            v = msgpack.unpackb(data, ext_hook=self._ext, strict_map_key=False)
            if type(v) is not list or not v:
                raise LabgobError("labgob: corrupt class instance")
            tag = v[0]
            types = self._types
            if code == _EXT_OLD_CLASS and type(tag) is int and 0 <= tag < len(types):
                info = types[tag]
            else:
                info = self._class_of(code, tag)
            if not info.fixed:
                raise _shape_error(info)
            return _build(info, v)
        if code == _EXT_BIGINT:
            return int.from_bytes(data, "big", signed=True)
        if code == _EXT_TUPLE:
            v = self._unpack_payload(data)
            if type(v) is not list:
                raise LabgobError("labgob: corrupt tuple")
            return tuple(v)
        if code == _EXT_ITEM_LIST:
            return _decode_item_list(data)
        if code == _EXT_PAIRS_NEW or code == _EXT_PAIRS_OLD:
            v = self._unpack_payload(data)
            if type(v) is not list or not v:
                raise LabgobError("labgob: corrupt class instance")
            info = self._class_of(code, v[0])
            if info.fixed:
                raise _shape_error(info)
            return _build_plain(info, v)
        raise LabgobError(f"labgob: unknown msgpack ext code {code}: data not written by labgob")

    def _class_of(self, code: int, tag: Any) -> _ClassInfo:
        if code in (_EXT_NEW_CLASS, _EXT_PAIRS_NEW):
            info = _by_sig.get(tag) if type(tag) is str else None
            if info is None:
                raise _unknown_class(tag)
            if info.cls not in self._seen:
                self._seen.add(info.cls)
                self._types.append(info)
            return info
        if type(tag) is not int or not 0 <= tag < len(self._types):
            raise LabgobError(f"labgob: corrupt data: type index {tag!r} not in this stream")
        return self._types[tag]


def _unknown_class(tag: Any) -> LabgobError:
    """Why a class tag matches no registered class: unregistered, or other fields."""
    if type(tag) is not str:
        return LabgobError("labgob: corrupt class name")
    name, fields = tag, None
    if tag.endswith(")") and "(" in tag:
        name, _, rest = tag[:-1].rpartition("(")
        fields = tuple(rest.split(",")) if rest else ()
    info = _by_name.get(name)
    if info is None:
        return LabgobError(f"labgob: cannot decode unregistered class {name!r}; "
                           f"call labgob.Register({name.rsplit('.', 1)[-1]}) in the receiver too")
    here = ", ".join(info.wire)
    if fields is None:
        return LabgobError(f"labgob: the data names {name} without its fields, but {name} here declares "
                           f"({here}): data not written by labgob for this class")
    if not info.fixed:
        return LabgobError(f"labgob: the data's {name} has declared fields ({', '.join(fields)}), but "
                           f"{name} here is a plain class (no annotations); both sides must use the "
                           f"same class")
    missing = [f for f in info.wire if f not in fields]
    extra = [f for f in fields if f not in info.wire]
    if not missing and not extra:
        what = "the same fields in another order"
    else:
        what = "; ".join(
            [f"field {f} is not declared here" for f in extra]
            + [f"field {f} is missing from the data" for f in missing])
    return LabgobError(f"labgob: the data's {name} has fields ({', '.join(fields)}), but {name} here "
                       f"declares ({here}): {what}; sender and receiver must use the same class")


def _shape_error(info: _ClassInfo) -> LabgobError:
    return LabgobError(f"labgob: {info.name} was sent in a different shape than it is registered "
                       f"here (as a {'declared-field' if info.fixed else 'plain'} class)")


def _build(info: _ClassInfo, v: list) -> Any:
    """An instance of a registered dataclass or annotated class, without running its __init__."""
    if len(v) != info.nvalues:
        raise LabgobError(f"labgob: corrupt data: {info.name} has {info.nvalues - 1} fields, "
                          f"the data holds {len(v) - 1} values")
    if info.check_at:
        if type(v[info.check_at]) is not info.check_type:
            _check_field_types(info, v)
    elif info.check_types and tuple(map(type, info.check_values(v))) != info.check_types:
        _check_field_types(info, v)
    obj = object.__new__(info.cls)
    if info.has_dict:
        obj.__dict__.update(zip(info.wire, v[1:]))
    else:
        for n, x in zip(info.wire, v[1:]):
            object.__setattr__(obj, n, x)
    for n, dv, f in info.unsent:
        object.__setattr__(obj, n, f() if f is not None else _copy_default(dv))
    return obj


def _build_plain(info: _ClassInfo, v: list) -> Any:
    """An instance of a registered plain class: its attributes are named in the data."""
    if len(v) % 2 != 1:
        raise LabgobError(f"labgob: corrupt data for {info.name}: a field name without a value")
    keys = v[1::2]
    if not all(type(k) is str and k[:1] != "_" for k in keys) or len(set(keys)) != len(keys):
        _check_plain_keys(info, keys)
    obj = object.__new__(info.cls)
    obj.__dict__.update(zip(keys, v[2::2]))
    return obj


def _check_field_types(info: _ClassInfo, v: list) -> None:
    """The slow path of _build's type check: allow an int for a float, else name the bad field."""
    for name, want, x in zip(info.check_names, info.check_types, info.check_values(v)):
        t = type(x)
        if t is want or (want is float and t is int):
            continue
        raise LabgobError(f"labgob: {info.name}.{name} is declared {want.__name__}, but the data holds "
                          f"{_a(t.__qualname__)} ({_short(x)}): the sender put {_a(t.__qualname__)} "
                          f"where {_a(want.__name__)} belongs, or the two sides' classes differ")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiouAEIOU" else f"a {noun}"


def _check_plain_keys(info: _ClassInfo, keys: list) -> None:
    seen: set[str] = set()
    for k in keys:
        if type(k) is not str:
            raise LabgobError(f"labgob: corrupt data for {info.name}: field name {_short(k)} is not a str")
        if k[:1] == "_":
            raise LabgobError(f"labgob: corrupt data for {info.name}: field {k!r} starts with '_', "
                              f"and labgob never sends such fields")
        if k in seen:
            raise LabgobError(f"labgob: corrupt data for {info.name}: field {k!r} appears twice")
        seen.add(k)


def _copy_default(v: Any) -> Any:
    t = type(v)
    if t is list or t is dict:
        return t()
    return v


def zero_instance(cls: type) -> Any:
    """A default instance of a registered class: cls() if that works, else all-zero fields."""
    info = _info_for(cls)
    if info.init_ok is not False:
        try:
            obj = cls()
            info.init_ok = True
            return obj
        except TypeError:
            info.init_ok = False
    obj = object.__new__(cls)
    for n, dv in info.defaults.items():
        object.__setattr__(obj, n, _copy_default(dv))
    for n, f in info.factories.items():
        object.__setattr__(obj, n, f())
    return obj


_ZERO_SCALARS = {bool: False, int: 0, float: 0.0, str: ""}


def check_default(into: Any) -> None:
    """Go's checkDefault: count scalar fields of `into` that are not the zero value."""
    global errorCount
    info = _by_class.get(type(into))
    if info is None:
        return
    if info.fixed:
        items = zip(info.wire, info.getter(into))
    else:
        items = ((k, x) for k, x in getattr(into, "__dict__", {}).items() if not k.startswith("_"))
    for name, x in items:
        t = type(x)
        if t in _ZERO_SCALARS and x != _ZERO_SCALARS[t]:
            with _mu:
                if errorCount < 1:
                    print(f"labgob warning: Decoding into a non-default variable/field {name} "
                          f"may not work", file=sys.stderr)
                errorCount += 1


def _fill(into: Any, v: Any) -> None:
    """Copy a decoded value into an existing object (Go's Decode(&x))."""
    if type(v) is not type(into):
        raise LabgobError(f"labgob: the data holds {_a(_kind(v))}, but Decode was given "
                          f"{_a(_kind(into))} to fill; pass an object of the class that was encoded, "
                          f"or use Decode()'s return value")
    if type(into) is list:
        into[:] = v
        return
    if type(into) is dict:
        into.clear()
        into.update(v)
        return
    info = _by_class.get(type(into))
    if info is None:
        raise LabgobError(f"labgob: cannot decode into a {type(into).__qualname__}; decode into "
                          f"a registered class instance, a list or a dict, or use the return value")
    if info.fixed:
        for n in info.wire:
            object.__setattr__(into, n, getattr(v, n))
    else:
        into.__dict__.update(v.__dict__)


def _kind(v: Any) -> str:
    """A value's class as the wire names it (its registered name), else its Python name."""
    info = _by_class.get(type(v))
    return info.name if info is not None else type(v).__qualname__


def is_registered(cls: type) -> bool:
    """Whether cls was registered with Register or RegisterName."""
    return cls in _by_class


def declared_fields(cls: type) -> tuple[str, ...]:
    """The fields a registered dataclass or annotated class sends, in order (() otherwise)."""
    info = _by_class.get(cls)
    return info.wire if info is not None else ()


def undeclared_fields(obj: Any) -> list[str]:
    """Attributes of obj that its registered class does not declare, so labgob will not send them.

    For a registered dataclass or annotated class only (a plain class sends every attribute);
    names starting with "_" are left out, being never sent anyway. labrpc uses this to catch a
    handler that fills a reply of another class, or misspells a field.
    """
    info = _by_class.get(type(obj))
    if info is None or not info.fixed or not info.has_dict:
        return []
    d = obj.__dict__
    if info.field_set.issuperset(d):   # faster than d.keys() <= field_set
        return []
    return [k for k in d if k not in info.field_set and not k.startswith("_")]


def NewEncoder(w: Any) -> LabEncoder:
    """An encoder writing to w (anything with .write(bytes), e.g. io.BytesIO)."""
    if not callable(getattr(w, "write", None)):
        raise LabgobError(f"NewEncoder needs a writer such as io.BytesIO(), got a {type(w).__qualname__}")
    return LabEncoder(w)


def NewDecoder(r: Any) -> LabDecoder:
    """A decoder reading from r (anything with .read(n), e.g. io.BytesIO(data))."""
    if isinstance(r, (bytes, bytearray, memoryview)):
        r = io.BytesIO(r)   # Go needs a Reader; accepting the bytes themselves is harmless
    if not callable(getattr(r, "read", None)):
        raise LabgobError(f"NewDecoder needs a reader such as io.BytesIO(data), got a {type(r).__qualname__}")
    return LabDecoder(r)


def dumps(v: Any) -> bytes:
    """One value in a fresh stream (what labrpc sends per call)."""
    t = type(v)
    if t in _FAST_TYPES or (t is int and _INT64_MIN <= v <= _UINT64_MAX):
        return msgpack.packb(v)
    return LabEncoder(None)._pack(v)


def loads(data: bytes, into: Any = None) -> Any:
    """The one value in `data`; with `into`, filled into that object (see LabDecoder.Decode)."""
    if into is not None:
        check_default(into)
    try:
        v = msgpack.unpackb(data, ext_hook=_DecodeState()._ext, strict_map_key=False, raw=False,
                            use_list=True)
    except LabgobError:
        raise
    except msgpack.ExtraData as exc:
        raise LabgobError(f"labgob: {len(exc.extra)} stray bytes after the value") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise LabgobError(f"labgob: corrupt or truncated data ({len(data)} bytes): {exc}") from None
    if into is not None:
        _fill(into, v)
        return into
    return v
