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


#: A handler whose interpreter lacks what it imports, as a system python3 lacking weft_queue.
MISSING_MODULE = f"{sys.executable} -c 'import weft_queue_is_not_installed_here'"


class Cluster:
    """A coordinator and workers; with ``secured``, as the README's cluster runs them: TLS and
    tokens from ``weft certs`` (in ``root/secrets``), on loopback."""

    def __init__(self, root: pathlib.Path, workers: int = 2, secured: bool = False) -> None:
        self.binary = weft_binary()
        self.root = root
        self.secrets = root / "secrets" if secured else None
        scheme = "https" if secured else "http"
        self.url = f"{scheme}://127.0.0.1:{free_port()}"
        self.processes = []
        tls = []
        if self.secrets:
            subprocess.run([self.binary, "certs", "--dir", str(self.secrets)], check=True, capture_output=True)
            tls = ["--tls-dir", str(self.secrets)]
        self.spawn("coordinator", "--listen", self.url.split("//")[1], "--state-dir", str(root / "state"), *tls)
        package = REPO / "clients" / "python" / "src"
        command = f"PYTHONPATH={package}:$PYTHONPATH exec {sys.executable} {HERE / 'handlers_for_tests.py'}"
        for i in range(workers):
            self.spawn(
                "worker", "--coordinator", self.url, "--slots", "2", "--prefetch", "64",
                "--work-dir", str(root / f"work-{i}"), *tls,
                "--handler", f"pyecho={command}", "--handler", f"pyasync={command}",
                "--handler", f"nomodule={MISSING_MODULE}",
            )
        self.wait_for_workers(workers)

    def credentials(self) -> dict:
        """What a client of a secured cluster gives: the CA and the admin's token."""
        if not self.secrets:
            return {}
        return {"tls_ca": self.secrets / "ca.pem", "token_file": self.secrets / "admin.token"}

    def spawn(self, *args: str) -> None:
        log = open(self.root / f"{args[0]}-{len(self.processes)}.log", "wb")
        self.processes.append(subprocess.Popen([self.binary, *args], stdout=log, stderr=log))

    def wait_for_workers(self, count: int) -> None:
        from weft_queue import Client, WeftError

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with Client(self.url, **self.credentials()) as client:
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


@pytest.fixture(scope="session")
def secured_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("secured"), workers=1, secured=True)
    yield running
    running.stop()
