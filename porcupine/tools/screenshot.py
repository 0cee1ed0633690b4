"""Render porcupine's HTML view in headless Chromium and save a screenshot (dev check).

Usage:
    python -m porcupine.tools.screenshot                 # demo history -> /tmp/porcupine-demo.png
    python -m porcupine.tools.screenshot --html f.html --out f.png [--show 0:3] [--size 1400,900]

Without --html it writes a demo view (a KV history with one non-linearizable
key, several clients, interval and point annotations) to /tmp/porcupine-demo.html.
--show P:ID pins the hover tooltip of operation ID in partition P, so the
"state before/after" panel is in the picture. It also checks the page itself: the
HTML must reference no network URL and Chromium must report it rendered
(the DOM dump has data-rendered="true"). Needs the Debian package `chromium`;
CI has none, so the tests check the HTML structurally instead.

For tests: ViewDom(dump_dom(path, fragment)) reads what the page drew (its
annotation and operation boxes with their labels, and a tooltip pinned by the
fragment "show=P:ID" or "annot=K").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser

from .. import Annotation, CheckOperationsVerbose, Model, Operation, VisualizePath

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
CHROMIUM_TIMEOUT_S = 120


def demo_model() -> Model:
    """A per-key register model with put/get, for the demo."""
    def partition(ops):
        keys = sorted({op.Input[1] for op in ops})
        return [[op for op in ops if op.Input[1] == k] for k in keys]

    def step(state, inp, out):
        if inp[0] == "put":
            return True, inp[2]
        return out == state, state

    def describe(inp, out):
        if inp[0] == "put":
            return f"put('{inp[1]}', '{inp[2]}')"
        return f"get('{inp[1]}') -> '{out}'"

    return Model(Partition=partition, Init=lambda: "", Step=step, DescribeOperation=describe,
                 DescribeState=lambda s: repr(s))


# The demo's times are in units of 10 ms, written in ns as the view expects (tooltips: "0.400 s").
_T = 10_000_000


def demo_history():
    ops = [
        # key x: linearizable, with overlapping operations
        Operation(ClientId=0, Input=("put", "x", "1"), Call=0, Output=None, Return=40 * _T),
        Operation(ClientId=1, Input=("get", "x"), Call=10 * _T, Output="1", Return=60 * _T),
        Operation(ClientId=2, Input=("put", "x", "2"), Call=50 * _T, Output=None, Return=90 * _T),
        Operation(ClientId=0, Input=("get", "x"), Call=95 * _T, Output="2", Return=120 * _T),
        # key y: a stale read after a completed write: not linearizable
        Operation(ClientId=1, Input=("put", "y", "a"), Call=5 * _T, Output=None, Return=30 * _T),
        Operation(ClientId=2, Input=("put", "y", "b"), Call=35 * _T, Output=None, Return=55 * _T),
        Operation(ClientId=0, Input=("get", "y"), Call=60 * _T, Output="b", Return=75 * _T),
        Operation(ClientId=1, Input=("get", "y"), Call=80 * _T, Output="a", Return=110 * _T),
    ]
    annotations = [
        Annotation(Tag="$ Failure", Start=20 * _T, End=70 * _T, Description="partition = [0 1] [2]",
                   BackgroundColor="#ffd7d7", TextColor="#600"),
        Annotation(Tag="$ Test Info", Start=0, Description="demo (3 servers)", BackgroundColor="#d7e8ff"),
        Annotation(Tag="$ Test Info", Start=100 * _T, End=118 * _T, Description="checker", Details="porcupine: 1 s"),
        Annotation(ClientId=2, Start=92 * _T, Description="retry", BackgroundColor="#fff2b3"),
    ]
    return ops, annotations


def write_demo(path: str) -> None:
    model = demo_model()
    ops, annotations = demo_history()
    _, info = CheckOperationsVerbose(model, ops, 0)
    info.AddAnnotations(annotations)
    VisualizePath(model, info, path)


def external_urls(html: str) -> list:
    """Any http(s)/protocol-relative reference that a browser would fetch."""
    found = re.findall(r'''(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)''', html, re.I)
    found += re.findall(r'''url\(\s*["']?((?:https?:)?//[^)"']+)''', html, re.I)
    found += re.findall(r'''@import\s+["']?((?:https?:)?//[^"';]+)''', html, re.I)
    return found


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no chromium found: apt-get update && apt-get install -y chromium")


def run_chromium(args: list) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="porcupine-chromium-") as profile:
        cmd = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)


def screenshot(html_path: str, png_path: str, size: str, show: str = "") -> None:
    url = "file://" + os.path.abspath(html_path) + (f"#show={show}" if show else "")
    if os.path.exists(png_path):
        os.remove(png_path)
    res = run_chromium([f"--screenshot={png_path}", f"--window-size={size}", url])
    if not os.path.exists(png_path):
        raise SystemExit(f"chromium wrote no screenshot (exit {res.returncode}):\n{res.stderr[-2000:]}")


def dump_dom(html_path: str, fragment: str = "") -> str:
    """The DOM after the page's script ran (fragment: "click=0:3", "show=0:3" or "annot=2")."""
    url = "file://" + os.path.abspath(html_path) + (f"#{fragment}" if fragment else "")
    return run_chromium(["--dump-dom", url]).stdout


def rendered_ok(html_path: str, fragment: str = "") -> bool:
    return 'data-rendered="true"' in dump_dom(html_path, fragment)


@dataclass
class Box:
    """A drawn operation or annotation: its x extent on the canvas and its label."""

    x0: float
    x1: float
    label: str = ""
    tag: str = ""          # annotations: the row's tag ("" for a client row)
    index: int = -1        # data-annotation or data-op
    partition: int = -1    # operations only


class ViewDom(HTMLParser):
    """What a dumped view drew: ViewDom(dump_dom(path)).annotations / .ops / .tooltip / .rendered."""

    def __init__(self, dom: str) -> None:
        super().__init__(convert_charrefs=True)
        self.annotations: list[Box] = []
        self.ops: list[Box] = []
        self.tooltip = ""
        self.rendered = 'data-rendered="true"' in dom
        self._item: Box | None = None
        self._item_depth = 0
        self._in_text = False
        self._tooltip_depth = 0
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if self._tooltip_depth:
            self._tooltip_depth += 1
        elif a.get("id") == "tooltip":
            self._tooltip_depth = 1
        if self._item is not None and tag == "g":
            self._item_depth += 1
        if tag == "g" and "annot-item" in (a.get("class") or "").split():
            self._item = Box(0.0, 0.0, tag=a.get("data-tag") or "", index=int(a["data-annotation"]))
            self._item_depth = 1
            self.annotations.append(self._item)
        elif self._item is not None and tag == "rect":
            x = float(a["x"])
            self._item.x0, self._item.x1 = x, x + float(a["width"])
        elif self._item is not None and tag == "polygon":
            xs = [float(pt.split(",")[0]) for pt in a["points"].split()]
            self._item.x0, self._item.x1 = min(xs), max(xs)
        elif self._item is not None and tag == "text":
            self._in_text = True
        elif tag == "rect" and "data-op" in a:
            x = float(a["x"])
            self.ops.append(Box(x, x + float(a["width"]), index=int(a["data-op"]),
                                partition=int(a["data-partition"])))

    def handle_endtag(self, tag: str) -> None:
        if self._tooltip_depth:
            self._tooltip_depth -= 1
        if tag == "text":
            self._in_text = False
        if self._item is not None and tag == "g":
            self._item_depth -= 1
            if self._item_depth == 0:
                self._item = None

    def handle_data(self, data: str) -> None:
        if self._item is not None and self._in_text:
            self._item.label += data
        if self._tooltip_depth:
            self.tooltip += data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="screenshot porcupine's HTML view in headless Chromium")
    parser.add_argument("--html", help="view to render (default: write a demo view)")
    parser.add_argument("--out", default="/tmp/porcupine-demo.png", help="PNG to write")
    parser.add_argument("--show", default="", help="P:ID, pin the tooltip of operation ID in partition P")
    parser.add_argument("--size", default="1400,900", help="window size W,H")
    args = parser.parse_args(argv)
    html_path = args.html
    if not html_path:
        html_path = "/tmp/porcupine-demo.html"
        write_demo(html_path)
    with open(html_path, encoding="utf-8") as f:
        urls = external_urls(f.read())
    if urls:
        print(f"FAIL: the page references the network: {urls[:5]}")
        return 1
    if not rendered_ok(html_path):
        print("FAIL: chromium did not finish rendering the page (no data-rendered mark; a JS error?)")
        return 1
    screenshot(html_path, args.out, args.size, args.show)
    print(f"ok: rendered {html_path} -> {args.out} (look at it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
