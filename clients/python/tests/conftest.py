"""A real weft cluster for the tests: a coordinator and two workers that serve the
handlers in handlers_for_tests.py, each its own process on free loopback ports."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import Iterator

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent


def weft_binary() -> str:
    if os.environ.get("WEFT_BIN"):
        return os.environ["WEFT_BIN"]
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / "weft"
        if candidate.exists():
            return str(candidate)
    pytest.exit("no weft binary: build it (cargo build --release) or set WEFT_BIN", returncode=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, root: pathlib.Path, workers: int = 2) -> None:
        self.binary = weft_binary()
        self.url = f"http://127.0.0.1:{free_port()}"
        self.root = root
        self.processes = []
        self.spawn("coordinator", "--listen", self.url.split("//")[1], "--state-dir", str(root / "state"))
        package = REPO / "clients" / "python" / "src"
        command = f"PYTHONPATH={package}:$PYTHONPATH exec {sys.executable} {HERE / 'handlers_for_tests.py'}"
        for i in range(workers):
            self.spawn(
                "worker", "--coordinator", self.url, "--slots", "2", "--prefetch", "64",
                "--work-dir", str(root / f"work-{i}"),
                "--handler", f"pyecho={command}", "--handler", f"pyasync={command}",
            )
        self.wait_for_workers(workers)

    def spawn(self, *args: str) -> None:
        log = open(self.root / f"{args[0]}-{len(self.processes)}.log", "wb")
        self.processes.append(subprocess.Popen([self.binary, *args], stdout=log, stderr=log))

    def wait_for_workers(self, count: int) -> None:
        from weft_queue import Client, WeftError

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with Client(self.url) as client:
                    if len(client.workers()) >= count:
                        return
            except WeftError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{count} workers did not join {self.url}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    yield running
    running.stop()
