"""Go struct embedding for harness classes: `type Test struct { *tester.Config; ... }`.

Usage:
    class Test(tester.Embed):
        _embedded = ("Config",)            # fields searched, in order, for unknown attributes
        def __init__(self, t, n):
            self.Config = tester.MakeConfig(t, n, True, self.mksrv)
    ts.Begin("...")                          # -> ts.Config.Begin("...")

Only attributes Test itself lacks are forwarded, so Test may override any method, as in Go.
An embedded field that is not set yet (e.g. during MakeConfig, which already calls mks) is skipped.
"""

from __future__ import annotations

from typing import Any


class Embed:
    """Forward unknown attribute lookups to the embedded fields named in `_embedded`."""

    _embedded: tuple[str, ...] = ("Config",)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        d = self.__dict__
        for field in type(self)._embedded:
            inner = d.get(field)
            if inner is None:
                continue
            try:
                return getattr(inner, name)
            except AttributeError:
                pass
        raise AttributeError(f"{type(self).__name__!r} object (embedding {', '.join(type(self)._embedded)}) "
                             f"has no attribute {name!r}")


__all__ = ["Embed"]
