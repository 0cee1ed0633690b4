"""Go's fmt verbs for messages ported line by line from the Go tests.

Usage:
    from tester.gofmt import Sprintf
    Sprintf("Get(%v) returns (%v, %v) != (%v, %v)", key, val, ver, value, version)
    Sprintf("partition = %v %v", [0, 1], [2])        # -> "partition = [0 1] [2]"
    Sprintf("  time %4.1fs #peers %d #RPCs %5d", 2.13, 3, 46)

Supported verbs: %v %+v %s %d %q %t %f %e %g %x %X %c %T %%, with the flags
`-+ 0#`, a width and a precision. Values print the way Go prints them: True is
`true`, None is `<nil>`, a list is `[a b c]`, a dict is `map[k:v]`, a dataclass
is `{f1 f2}` (`{Name:f1 ...}` with %+v). A missing argument prints
`%!v(MISSING)` and unused arguments are appended as `%!(EXTRA ...)`, as in Go.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

_VERB_RE = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])")


def go_value(v: Any, plus: bool = False) -> str:
    """The text Go's %v (or %+v when plus) gives for v."""
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in v) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_value(x, plus) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{go_value(k, plus)}:{go_value(x, plus)}" for k, x in items) + "]"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = dataclasses.fields(v)
        if plus:
            return "{" + " ".join(f"{f.name}:{go_value(getattr(v, f.name), plus)}" for f in fields) + "}"
        return "{" + " ".join(go_value(getattr(v, f.name), plus) for f in fields) + "}"
    if isinstance(v, float):
        # Go prints the shortest form without a trailing ".0": 2.0 -> "2".
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    return str(v)


def _sort_key(k: Any) -> tuple:
    return (type(k).__name__, k) if isinstance(k, (int, float, str)) else (type(k).__name__, str(k))


def _go_type(v: Any) -> str:
    if v is None:
        return "<nil>"
    return {bool: "bool", int: "int", float: "float64", str: "string", bytes: "[]uint8"}.get(type(v), type(v).__name__)


def _format_one(flags: str, width: str | None, prec: str | None, verb: str, v: Any) -> str:
    numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
    if verb in "dfeEgGxXbo" and numeric:
        if verb == "d" and isinstance(v, float):
            return f"%!d(float64={go_value(v)})"
        if verb in "xXbo" and isinstance(v, float):
            return f"%!{verb}(float64={go_value(v)})"
        spec = _py_flags(flags) + (width or "") + (f".{prec}" if prec is not None else "")
        if verb in "fFeEgG" and isinstance(v, int):
            v = float(v)
        if verb in "fFeE" and prec is None:
            spec += ".6"
        return format(v, spec + verb)
    if verb == "x" and isinstance(v, (str, bytes)):
        text = (v.encode() if isinstance(v, str) else v).hex()
    elif verb == "X" and isinstance(v, (str, bytes)):
        text = (v.encode() if isinstance(v, str) else v).hex().upper()
    elif verb == "q":
        text = json.dumps(v, ensure_ascii=False) if isinstance(v, str) else go_value(v)
    elif verb == "c" and isinstance(v, int):
        text = chr(v)
    elif verb == "T":
        text = _go_type(v)
    elif verb == "t" and not isinstance(v, bool):
        text = f"%!t({_go_type(v)}={go_value(v)})"
    elif verb in "dfeEgGxXbo":
        text = f"%!{verb}({_go_type(v)}={go_value(v)})"
    else:  # v, s, t
        text = go_value(v, plus="+" in flags)
        if prec is not None and verb == "s":
            text = text[: int(prec)]
    if width:
        w = int(width)
        text = text.ljust(w) if "-" in flags else text.rjust(w)
    return text


def _py_flags(flags: str) -> str:
    out = ""
    if "-" in flags:
        out += "<"
    if "+" in flags:
        out += "+"
    elif " " in flags:
        out += " "
    if "#" in flags:
        out += "#"
    if "0" in flags and "-" not in flags:
        out += "0"
    return out


def Sprintf(fmt: str, *args: Any) -> str:
    """Format like Go's fmt.Sprintf (see the module docstring for what is supported)."""
    if not isinstance(fmt, str):
        raise TypeError(f"Sprintf: format must be a str, got {type(fmt).__name__}")
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(flags, width, prec, verb, args[argi]))
        argi += 1
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={go_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def Sprint(*args: Any) -> str:
    """Like Go's fmt.Sprint for the common case: values joined by spaces."""
    return " ".join(go_value(a) for a in args)


__all__ = ["Sprintf", "Sprint", "go_value"]
