"""The HTML view of a checked history (Go: porcupine's visualization.go).

Usage:
    res, info = CheckOperationsVerbose(model, ops, 0)
    info.AddAnnotations([Annotation(Tag="net", Start=t0, End=t1, Description="partition",
                                    BackgroundColor="#fdd")])
    VisualizePath(model, info, "/tmp/history.html")      # or Visualize(model, info, file)

The output is one self-contained HTML file (inline CSS, JS and data; it loads
nothing from the network). It shows, per partition, a timeline of operations
by client, the longest linearization found (its linearization points joined by
a line; the operation where linearization failed in red), the state before and
after each step on hover, and the annotations under the timelines. Clicking an
operation shows the longest partial linearization that contains it.

Timestamps are taken to be nanoseconds (as the tester and Go's kvtest log them);
hovering shows them as seconds since the earliest one in the view, e.g. "1.234 s".
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any, Dict, List, Optional, Sequence, TextIO, Union

from .model import Model, ModelError

# The page's pieces, shipped as package data next to this module.
_TEMPLATE_FILES = ("view.html", "view.css", "view.js")
_DATA_MARK = "/*PORCUPINE_DATA*/"
_CSS_MARK = "/*PORCUPINE_CSS*/"
_JS_MARK = "/*PORCUPINE_JS*/"


@dataclass
class Annotation:
    """An extra mark on the view (Go: porcupine.Annotation); use keyword arguments.

    Give a ClientId (its row is that client's) or a Tag (one row per tag, e.g.
    "$ Failure"). End is optional: an End before Start makes a point in time.
    Description is drawn; Details shows on hover. TextColor and
    BackgroundColor are optional CSS colours such as "#efaefc".
    """

    ClientId: int = 0
    Tag: str = ""
    Start: int = 0
    End: int = 0
    Description: str = ""
    Details: str = ""
    TextColor: str = ""
    BackgroundColor: str = ""


_NS_PER_S = 1e9


def _timestamps(info) -> List[int]:
    stamps = set()
    for entries in info.history:
        for e in entries:
            stamps.add(e.time)
    for a in info.annotations:
        stamps.add(a.Start)
        stamps.add(a.End)
    return sorted(stamps)


def _timestamp_map(stamps: List[int]) -> Dict[int, int]:
    """Monotone map of all timestamps to 0, 100, 200...: keeps JSON numbers small and exact."""
    return {t: 100 * i for i, t in enumerate(stamps)}


def _seconds(t: int, origin: int) -> float:
    # Rounded to the ns, so that the JSON holds no float noise.
    return round((t - origin) / _NS_PER_S, 9)


def _partition_data(model: Model, entries, partials: List[List[int]], tmap: Dict[int, int],
                    origin: int, result: str) -> dict:
    n = len(entries) // 2
    history: List[Dict[str, Any]] = [{} for _ in range(n)]
    inputs: Dict[int, Any] = {}
    outputs: Dict[int, Any] = {}
    call_meta: Dict[int, Any] = {}
    return_order: List[int] = []
    for e in entries:
        h = history[e.id]
        if not e.is_return:
            h.update(ClientId=e.client_id, Start=tmap[e.time], OriginalStart=str(e.time),
                     StartSeconds=_seconds(e.time, origin))
            inputs[e.id] = e.value
            call_meta[e.id] = e.metadata
        else:
            meta = e.metadata if e.metadata is not None else call_meta.get(e.id)
            h.update(End=tmap[e.time], OriginalEnd=str(e.time), EndSeconds=_seconds(e.time, origin),
                     Description=model.describe_operation(inputs[e.id], e.value),
                     Metadata=model.describe_metadata(meta))
            outputs[e.id] = e.value
            return_order.append(e.id)
    partials = sorted(partials, key=len, reverse=True)
    if not partials and n > 0:
        # Nothing could be linearized at all: show the empty prefix and where it got stuck.
        partials = [[]]
    linearizations = []
    failed = []
    largest: Dict[str, int] = {}
    largest_size: Dict[int, int] = {}
    for index, partial in enumerate(partials):
        state = model.Init()
        steps = []
        for op in partial:
            ok, state = model.Step(state, inputs[op], outputs[op])
            if not ok:
                raise ModelError(f"Model.Step rejects operation {op} of a linearization the checker "
                                 "accepted: Step must be a pure function of (state, input, output)")
            steps.append({"Index": op, "StateDescription": model.describe_state(state)})
            if largest_size.get(op, -1) < len(partial):
                largest_size[op] = len(partial)
                largest[str(op)] = index
        linearizations.append(steps)
        # The search got stuck at the first return (in time order) of an operation
        # left out: every pending call failed to linearize before it.
        done = set(partial)
        failed.append(next((op for op in return_order if op not in done), -1))
    return {
        "History": history,
        "PartialLinearizations": linearizations,
        "Largest": largest,
        "FailedAt": failed,
        "Linearizable": result == "Ok",
        "Result": result,
        "InitialState": model.describe_state(model.Init()),
    }


def computeVisualizationData(model: Model, info) -> dict:
    """The JSON-ready data embedded in the page (exposed for tests and other front ends)."""
    if not isinstance(model, Model):
        raise ModelError(f"Visualize needs a porcupine.Model, got {type(model).__name__}")
    stamps = _timestamps(info)
    tmap = _timestamp_map(stamps)
    origin = stamps[0] if stamps else 0
    results = list(getattr(info, "partition_results", []))
    partitions = []
    for k, (entries, partials) in enumerate(zip(info.history, info.partial_linearizations)):
        if k < len(results):
            result = str(results[k])
        else:  # info assembled by hand: judge by the longest prefix
            complete = len(entries) == 0 or any(len(p) * 2 == len(entries) for p in partials)
            result = "Ok" if complete else "Illegal"
        partitions.append(_partition_data(model, entries, partials, tmap, origin, result))
    annotations = [{
        "ClientId": a.ClientId, "Tag": a.Tag, "Start": tmap[a.Start], "End": tmap[a.End],
        "OriginalStart": str(a.Start), "OriginalEnd": str(a.End),
        "StartSeconds": _seconds(a.Start, origin), "EndSeconds": _seconds(a.End, origin),
        "Description": a.Description, "Details": a.Details, "Annotation": True,
        "TextColor": a.TextColor, "BackgroundColor": a.BackgroundColor,
    } for a in info.annotations]
    return {"Partitions": partitions, "Annotations": annotations}


def _read_asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _with_annotations(info, annotations: Optional[Sequence[Annotation]]):
    if not annotations:
        return info
    # A shallow copy, so that the caller's info does not collect them.
    from .checker import LinearizationInfo
    copy = LinearizationInfo(info.history, info.partial_linearizations)
    copy.partition_results = list(getattr(info, "partition_results", []))
    copy.annotations = list(info.annotations)
    copy.AddAnnotations(annotations)
    return copy


def render_html(model: Model, info, annotations: Optional[Sequence[Annotation]] = None) -> str:
    """The whole page as a string."""
    data = computeVisualizationData(model, _with_annotations(info, annotations))
    # Inside <script>, "</script" ends the element and "<!--" changes how the HTML parser
    # reads on, so no "<" (nor ">", "&") may appear raw; JSON's \u escapes keep the text.
    payload = (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
               .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
               .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    page = _read_asset("view.html")
    page = page.replace(_CSS_MARK, _read_asset("view.css"))
    page = page.replace(_JS_MARK, _read_asset("view.js"))
    return page.replace(_DATA_MARK, payload)


def Visualize(model: Model, info, output: Union[TextIO, io.BufferedIOBase],
              annotations: Optional[Sequence[Annotation]] = None) -> None:
    """Write the HTML view of info to an open file (text or binary).

    annotations, if given, are drawn as well (same as info.AddAnnotations first,
    without changing info)."""
    page = render_html(model, info, annotations)
    if isinstance(output, io.TextIOBase):
        output.write(page)
        return
    try:
        output.write(page.encode("utf-8"))
    except TypeError:
        output.write(page)


def VisualizePath(model: Model, info, path: Union[str, os.PathLike],
                  annotations: Optional[Sequence[Annotation]] = None) -> None:
    """Write the HTML view of info to a file at path (created or truncated); see Visualize."""
    page = render_html(model, info, annotations)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
