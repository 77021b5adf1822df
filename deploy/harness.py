"""What the deploy scripts (fault-suite.py, soak.py, observe-test.py) share: printing
progress, picking a free port, waiting for a condition with a deadline, and a PostgreSQL
server of their own."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def log(message):
    print(message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what, timeout):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Postgres:
    """A PostgreSQL server of Debian's package in `dir`, as the postgres user when run as root."""

    def __init__(self, dir):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL's initdb is not installed (Debian's postgresql package)")
        self.bin = bins[-1].parent
        self.dir = dir
        self.port = free_port()
        dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(dir, "postgres")
            os.chmod(dir.parent, 0o755)
        self.run("initdb", "-D", dir / "data", "--username=weft", "--no-sync", "--auth=trust")
        self.run("pg_ctl", "-D", dir / "data", "-l", dir / "server.log", "-w", "-o",
                 f"-p {self.port} -k {dir} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")
        self.url = f"postgres://weft@127.0.0.1:{self.port}/postgres"

    def run(self, program, *args):
        command = [str(self.bin / program), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.dir / "data", "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
