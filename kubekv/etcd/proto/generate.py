"""Regenerate kubekv/etcd/pb/ from the .proto files next to this script.

Usage:
    python -m kubekv.etcd.proto.generate           # rewrite kubekv/etcd/pb/*_pb2*.py(i)
    python -m kubekv.etcd.proto.generate --check   # exit 1 if the checked-in code is stale

Needs grpcio-tools (a development dependency only; the generated code needs
protobuf and grpcio at run time). protoc writes flat imports such as
`import etcd_kv_pb2 as etcd__kv__pb2`; they are rewritten to
`from kubekv.etcd.pb import etcd_kv_pb2 as etcd__kv__pb2` so that the modules
work as a package without touching sys.path.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

PROTO_DIR = os.path.dirname(os.path.abspath(__file__))
PB_DIR = os.path.join(os.path.dirname(PROTO_DIR), "pb")
PB_PACKAGE = "kubekv.etcd.pb"
PROTOS = ("etcd_kv.proto", "etcd_rpc.proto")
# Protos that declare services, and so get a _pb2_grpc.py (etcd_kv.proto has none;
# protoc would still write an empty module holding only a grpcio version check).
SERVICE_PROTOS = ("etcd_rpc.proto",)

# `import etcd_kv_pb2 as etcd__kv__pb2` (in .py) / `import etcd_kv_pb2 as _etcd_kv_pb2` (in .pyi)
_FLAT_IMPORT = re.compile(r"^import (etcd_\w+_pb2(?:_grpc)?) as (\w+)$", re.MULTILINE)


def fix_imports(text: str) -> str:
    return _FLAT_IMPORT.sub(rf"from {PB_PACKAGE} import \1 as \2", text)


def generated_names() -> list[str]:
    names = []
    for proto in PROTOS:
        base = proto[: -len(".proto")]
        names += [f"{base}_pb2.py", f"{base}_pb2.pyi"]
        if proto in SERVICE_PROTOS:
            names.append(f"{base}_pb2_grpc.py")
    return names


def run_protoc(out_dir: str) -> None:
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        sys.exit("generate: grpcio-tools is not installed (pip install grpcio-tools)")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_DIR}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(os.path.join(PROTO_DIR, p) for p in PROTOS),
    ]
    rc = protoc.main(args)
    if rc != 0:
        sys.exit(f"generate: protoc failed with exit status {rc}")


def generate() -> dict[str, str]:
    """Run protoc into a scratch directory; return {file name: fixed text}."""
    with tempfile.TemporaryDirectory(prefix="kubekv-etcd-pb-") as tmp:
        run_protoc(tmp)
        out = {}
        for name in generated_names():
            with open(os.path.join(tmp, name), encoding="utf-8") as f:
                out[name] = fix_imports(f.read())
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kubekv.etcd.proto.generate",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the checked-in files instead of writing them")
    opts = ap.parse_args(argv)

    files = generate()
    if opts.check:
        stale = []
        for name, text in files.items():
            path = os.path.join(PB_DIR, name)
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() == text:
                        continue
            except FileNotFoundError:
                pass
            stale.append(name)
        for name in stale:
            print(f"stale: kubekv/etcd/pb/{name}")
        return 1 if stale else 0

    os.makedirs(PB_DIR, exist_ok=True)
    for name, text in files.items():
        path = os.path.join(PB_DIR, name)
        tmp_path = path + ".tmp"
        with open(tmp_path, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp_path, path)
        print(f"wrote kubekv/etcd/pb/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
