"""The HTML view: one self-contained file whose embedded data describes the check.

Run: python -m pytest porcupine/test_visualization.py
The Chromium rendering test runs only where `chromium` is installed (dev machines);
elsewhere it is skipped and the structural tests stand in.
"""

from __future__ import annotations

import io
import json
import re
import shutil

import pytest

from porcupine import (Annotation, CheckOperationsVerbose, LinearizationInfo, Model, ModelError,
                       Operation, Visualize, VisualizePath)
from porcupine.tools import screenshot

DATA_RE = re.compile(r'<script id="porcupine-data" type="application/json">(.*?)</script>', re.S)


def embedded_data(html: str) -> dict:
    m = DATA_RE.search(html)
    assert m, "no embedded data block"
    return json.loads(m.group(1))


def demo_view():
    model = screenshot.demo_model()
    ops, annotations = screenshot.demo_history()
    res, info = CheckOperationsVerbose(model, ops, 0)
    info.AddAnnotations(annotations)
    out = io.StringIO()
    Visualize(model, info, out)
    return res, out.getvalue()


def TestViewIsSelfContained():
    _, html = demo_view()
    assert screenshot.external_urls(html) == []
    assert "<script src" not in html and "<link" not in html
    assert "/*PORCUPINE_" not in html, "a template placeholder was left unfilled"
    assert html.count("<script") == 2  # the data block and the inline code
    assert "<style>" in html and ".op" in html


def TestEmbeddedDataDescribesTheCheck():
    res, html = demo_view()
    assert res.value == "Illegal"
    data = embedded_data(html)
    parts = data["Partitions"]
    assert [p["Linearizable"] for p in parts] == [True, False]
    assert [p["Result"] for p in parts] == ["Ok", "Illegal"]
    good, bad = parts
    assert [h["Description"] for h in good["History"]][:2] == ["put('x', '1')", "get('x') -> '1'"]
    assert len(good["PartialLinearizations"][0]) == 4
    # The bad key: the longest prefix is the two puts and the first get; the stale get fails.
    assert [s["Index"] for s in bad["PartialLinearizations"][0]] == [0, 1, 2]
    assert bad["PartialLinearizations"][0][-1]["StateDescription"] == "'b'"
    assert bad["FailedAt"][0] == 3
    assert bad["History"][3]["Description"] == "get('y') -> 'a'"
    assert bad["InitialState"] == "''"
    # Times are compressed but ordered, and the originals kept for the tooltip.
    starts = [(int(h["OriginalStart"]), h["Start"]) for h in good["History"]]
    assert sorted(starts) == sorted(starts, key=lambda t: t[1])


def TestAnnotationsInData():
    _, html = demo_view()
    anns = embedded_data(html)["Annotations"]
    assert len(anns) == 4
    failure = next(a for a in anns if a["Tag"] == "$ Failure")
    assert failure["BackgroundColor"] == "#ffd7d7" and failure["TextColor"] == "#600"
    assert failure["End"] > failure["Start"] and failure["Annotation"] is True
    point = next(a for a in anns if a["Description"] == "retry")
    assert point["Start"] == point["End"] and point["ClientId"] == 2 and point["Tag"] == ""


def TestAnnotationsOnly():
    # What the tester writes when a test fails outside a porcupine check.
    model = Model(Init=lambda: 0, Step=lambda s, i, o: (True, s))
    info = LinearizationInfo()
    info.AddAnnotations([Annotation(Tag="$ Test Info", Start=5, Description="TestX (3 servers)"),
                         Annotation(Tag="$ Failure", Start=10, End=20, Description="crash = [1]",
                                    BackgroundColor="#fcc")])
    out = io.BytesIO()
    Visualize(model, info, out)
    data = embedded_data(out.getvalue().decode("utf-8"))
    assert data["Partitions"] == []
    assert [a["Description"] for a in data["Annotations"]] == ["TestX (3 servers)", "crash = [1]"]
    with pytest.raises(ModelError, match="Annotation"):
        info.AddAnnotations([("not", "an", "annotation")])


def TestHostileTextIsEscaped(tmp_path):
    model = Model(Init=lambda: "", Step=lambda s, i, o: (o == s if i == "get" else True, s if i == "get" else i),
                  DescribeOperation=lambda i, o: f"{i}</script><script>alert(1)</script>\u2028{o}")
    ops = [Operation(ClientId=0, Input="</script>", Call=0, Output=None, Return=10),
           Operation(ClientId=1, Input="get", Call=20, Output="</script>", Return=30)]
    _, info = CheckOperationsVerbose(model, ops, 0)
    path = tmp_path / "view.html"
    VisualizePath(model, info, path)
    html = path.read_text(encoding="utf-8")
    data = embedded_data(html)
    assert data["Partitions"][0]["History"][0]["Description"] == model.DescribeOperation("</script>", None)
    assert html.count("<script") == 2


def TestMetadataShown():
    model = Model(Init=lambda: 0, Step=lambda s, i, o: (True, s),
                  DescribeOperationMetadata=lambda m: f"server {m}")
    ops = [Operation(ClientId=0, Input=1, Call=0, Output=None, Return=10, Metadata=3)]
    _, info = CheckOperationsVerbose(model, ops, 0)
    out = io.StringIO()
    Visualize(model, info, out)
    assert embedded_data(out.getvalue())["Partitions"][0]["History"][0]["Metadata"] == "server 3"


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (dev check only; apt-get install -y chromium)")
def TestRendersInHeadlessChromium(tmp_path):
    html = tmp_path / "demo.html"
    png = tmp_path / "demo.png"
    screenshot.write_demo(str(html))
    assert screenshot.rendered_ok(str(html)), "the page's script did not finish (JS error?)"
    screenshot.screenshot(str(html), str(png), "1200,700", show="1:3")
    assert png.stat().st_size > 10_000


def TestTimedOutPartitionIsMarkedUnknown():
    from porcupine.test_porcupine import APPEND, explosive_history

    res, info = CheckOperationsVerbose(APPEND, explosive_history(14), 0.1)
    assert res.value == "Unknown"
    out = io.StringIO()
    Visualize(APPEND, info, out)
    [part] = embedded_data(out.getvalue())["Partitions"]
    assert part["Result"] == "Unknown" and part["Linearizable"] is False
    assert part["PartialLinearizations"], "the prefixes found before the timeout are shown"


def TestNothingLinearizable():
    model = Model(Init=lambda: 0, Step=lambda s, i, o: (o == s, s))
    ops = [Operation(ClientId=0, Input="get", Call=0, Output=5, Return=10),
           Operation(ClientId=1, Input="get", Call=20, Output=0, Return=30)]
    res, info = CheckOperationsVerbose(model, ops, 0)
    assert res.value == "Illegal" and info.PartialLinearizations() == [[]]
    out = io.StringIO()
    Visualize(model, info, out)
    [part] = embedded_data(out.getvalue())["Partitions"]
    assert part["PartialLinearizations"] == [[]] and part["FailedAt"] == [0]


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (dev check only; apt-get install -y chromium)")
def TestClickSelectsAnotherLinearization(tmp_path):
    # Two concurrent puts, then two concurrent gets that saw different winners: two
    # longest prefixes of 3; clicking the get left out of the shown one shows the other.
    model = Model(Init=lambda: "", Step=lambda s, i, o: (True, i[1]) if i[0] == "put" else (o == s, s))
    ops = [Operation(ClientId=0, Input=("put", "a"), Call=0, Output=None, Return=10),
           Operation(ClientId=1, Input=("put", "b"), Call=0, Output=None, Return=10),
           Operation(ClientId=2, Input=("get",), Call=20, Output="a", Return=30),
           Operation(ClientId=3, Input=("get",), Call=20, Output="b", Return=30)]
    _, info = CheckOperationsVerbose(model, ops, 0)
    html = tmp_path / "two.html"
    VisualizePath(model, info, html)
    [part] = embedded_data(html.read_text())["Partitions"]
    assert len(part["PartialLinearizations"]) == 2
    shown_failed = part["FailedAt"][0]
    other = part["FailedAt"][1]
    assert {shown_failed, other} == {2, 3}

    def failed_ops(dom):
        return set(map(int, re.findall(r'class="op failed"[^>]*data-op="(\d+)"', dom)))

    assert failed_ops(screenshot.dump_dom(str(html))) == {shown_failed}
    dom = screenshot.dump_dom(str(html), f"click=0:{shown_failed}")
    assert 'data-rendered="true"' in dom
    assert failed_ops(dom) == {other}


def TestVisualizeTakesAnnotations():
    model = screenshot.demo_model()
    ops, annotations = screenshot.demo_history()
    _, info = CheckOperationsVerbose(model, ops, 0)
    out = io.StringIO()
    Visualize(model, info, out, annotations=annotations)
    assert len(embedded_data(out.getvalue())["Annotations"]) == len(annotations)
    assert info.annotations == [], "the caller's info is left alone"


def TestTimesInSecondsSinceTheStart():
    model = Model(Init=lambda: 0, Step=lambda s, i, o: (True, s))
    t0 = 7_000_000_000_000  # ns, as the tester's monotonic clock gives them
    ops = [Operation(ClientId=0, Input=1, Call=t0 + 1_234_000_000, Output=None, Return=t0 + 1_240_500_000)]
    _, info = CheckOperationsVerbose(model, ops, 0)
    info.AddAnnotations([Annotation(Tag="$ Test Info", Start=t0, Description="start"),
                         Annotation(Tag="$ Failure", Start=t0 + 500_000_000, End=t0 + 2_000_000_000,
                                    Description="crash = [1]")])
    out = io.StringIO()
    Visualize(model, info, out)
    data = embedded_data(out.getvalue())
    [op] = data["Partitions"][0]["History"]
    assert (op["StartSeconds"], op["EndSeconds"]) == (1.234, 1.2405)
    assert [(a["StartSeconds"], a["EndSeconds"]) for a in data["Annotations"]] == [(0.0, 0.0), (0.5, 2.0)]
    assert op["OriginalStart"] == str(t0 + 1_234_000_000), "the raw time stays in the data"


def _fault_history():
    """A history made with the tester's fault annotations: calm, a crash, calm, a partition, calm.

    Returns (info, [(name, call, return)] of the operations, in time order).
    """
    import time

    import tester
    from tester import annotation

    model = screenshot.demo_model()
    ops = []

    def op(name: str) -> None:
        call = annotation.timestamp()
        time.sleep(0.002)
        ops.append(Operation(ClientId=len(ops) % 2, Input=("put", "x", name), Call=call, Output=None,
                             Return=annotation.timestamp()))

    tester.AnnotateTest("fault spans", 3)
    tester.AnnotateClearFailure()            # healing a calm spell: nothing to draw
    op("before")
    tester.AnnotateShutdown([1])
    op("crashed")
    tester.AnnotateRestart([1])
    tester.AnnotateClearFailure()
    op("calm")
    tester.AnnotateTwoPartitions([0, 1], [2])
    op("partitioned")
    tester.AnnotateClearFailure()
    op("after")
    _, info = CheckOperationsVerbose(model, ops, 0)
    info.AddAnnotations(tester.FinalizeAnnotations("done"))
    return model, info


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (dev check only; apt-get install -y chromium)")
def TestFaultSpansDrawnInHeadlessChromium(tmp_path):
    model, info = _fault_history()
    html = tmp_path / "faults.html"
    VisualizePath(model, info, html)
    dom = screenshot.ViewDom(screenshot.dump_dom(str(html)))
    assert dom.rendered, "the page's script did not finish (JS error?)"
    faults = [a for a in dom.annotations if a.tag == "$ Failure"]
    # One span per fault, labelled; no blank bar from a heal with nothing open.
    assert [a.label for a in faults] == ["crash = [1]", "partition = [0 1] [2]"], dom.annotations
    ops = {box.index: box for box in dom.ops}
    assert len(ops) == 5
    crash, part = faults
    # Each span sits between the operations around it, so neither covers the run.
    assert ops[0].x1 <= crash.x0 < crash.x1 <= ops[2].x0, (ops, crash)
    assert ops[2].x1 <= part.x0 < part.x1 <= ops[4].x0, (ops, part)
    assert ops[1].x0 >= crash.x0 and ops[3].x0 >= part.x0


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed (dev check only; apt-get install -y chromium)")
def TestHoverShowsSecondsInHeadlessChromium(tmp_path):
    model, info = _fault_history()
    html = tmp_path / "faults.html"
    VisualizePath(model, info, html)
    data = embedded_data(html.read_text())
    k, crash = next((k, a) for k, a in enumerate(data["Annotations"]) if a["Description"] == "crash = [1]")
    tip = screenshot.ViewDom(screenshot.dump_dom(str(html), f"annot={k}")).tooltip
    assert f"from: {crash['StartSeconds']:.3f} s" in tip and f"to: {crash['EndSeconds']:.3f} s" in tip, tip
    assert re.search(r"lasted: \d+\.\d ms", tip), tip
    assert crash["OriginalStart"] not in tip, "raw nanoseconds are not shown"
    op = data["Partitions"][0]["History"][0]
    tip = screenshot.ViewDom(screenshot.dump_dom(str(html), "show=0:0")).tooltip
    assert f"call: {op['StartSeconds']:.3f} s" in tip and re.search(r"took: \d+\.\d ms", tip), tip
    assert op["OriginalStart"] not in tip
