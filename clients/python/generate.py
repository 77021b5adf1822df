#!/usr/bin/env python3
"""Generates weft_queue's gRPC stubs from proto/weft/v1/weft.proto, or with --check, fails
if the generated files differ from those in the repository.

Run it with grpcio-tools at the version pinned in pyproject.toml's "dev" extra (the stubs
record the version that made them):

    pip install './clients/python[dev]' && python3 clients/python/generate.py
"""

from __future__ import annotations

import argparse
import difflib
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
PROTO_DIR = HERE.parent.parent / "proto" / "weft" / "v1"
OUT = HERE / "src" / "weft_queue" / "_proto"
GENERATED = ["weft_pb2.py", "weft_pb2.pyi", "weft_pb2_grpc.py"]
PINNED_TOOLS = "1.76.0"


def generate(into: pathlib.Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    version = getattr(grpc_tools, "__version__", None)
    if version is None:
        from importlib.metadata import version as installed

        version = installed("grpcio-tools")
    if version != PINNED_TOOLS:
        sys.exit(f"generate.py: grpcio-tools {PINNED_TOOLS} is pinned, {version} is installed")
    includes = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    # The import path maps the proto into the package, so that the generated modules import
    # each other as weft_queue._proto.weft_pb2.
    args = [
        "protoc",
        f"-I{includes}",
        f"-Iweft_queue/_proto={PROTO_DIR}",
        f"--python_out={into}",
        f"--pyi_out={into}",
        f"--grpc_python_out={into}",
        "weft_queue/_proto/weft.proto",
    ]
    if protoc.main(args) != 0:
        sys.exit("generate.py: protoc failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the stubs in the repository are stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as scratch:
        root = pathlib.Path(scratch)
        generate(root)
        made = root / "weft_queue" / "_proto"
        stale = []
        for name in GENERATED:
            fresh = (made / name).read_text()
            target = OUT / name
            current = target.read_text() if target.exists() else ""
            if fresh == current:
                continue
            if check:
                stale.append(name)
                sys.stdout.writelines(
                    difflib.unified_diff(current.splitlines(True), fresh.splitlines(True), str(target), f"{name} (fresh)")
                )
            else:
                target.write_text(fresh)
                print(f"wrote {target.relative_to(HERE.parent.parent)}")
        if stale:
            sys.exit(f"generate.py --check: {', '.join(stale)} differ from proto/: run clients/python/generate.py")
        if check:
            print("generate.py --check: the stubs match proto/")


if __name__ == "__main__":
    main()
