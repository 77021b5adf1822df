#!/usr/bin/env python3
"""The cluster fault suite: weft on real containers, one per machine, with real failures.

Builds the image, makes the cluster's certificates and tokens (`weft certs`), brings up the
secured compose cluster (a coordinator and 3 workers, each its own container and address,
TLS and tokens everywhere, jobs confined to the data directory), submits jobs from this host
with `weft` over TLS as admin, breaks machines while they run (docker kill, network
disconnect, coordinator kill, scaling, rolling restarts, the ssh deploy script, the
object-storage variant against an S3 server with a worker killed, and the HA cluster on
PostgreSQL: a rolling upgrade from an older commit's build, then a leader's faults) and
checks every output exactly against a computation in this process.

    deploy/fault-suite.py [--only STEP[,STEP...]] [--keep]

Needs a Docker engine with docker-compose; without one it says so and exits 0, or, under
CI=true, exits 1: a CI must not pass without it. Removes its containers, networks and
volumes whatever happens (unless --keep).
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import free_port, log, wait_until

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
WEFT = REPO / "target" / "release" / "weft"
PROJECT = f"weftfaults{os.getpid()}"
COMPOSE = ["docker-compose", "-p", PROJECT, "-f", str(DEPLOY / "compose.yaml")]
LEASE = 3
# The rolling upgrade starts from this commit's build: the last that landed before
# Register.version (the version-skew check) and the log store, so the upgrade crosses both.
UPGRADE_FROM = "dcc4c6b"
# moto (an S3 server from PyPI) for the object-storage step, in the venv the tests use.
S3_VENV = REPO / "target" / "s3-venv"


def run(args, check=True, capture=True, env=None, timeout=600):
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=capture,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class Cluster:
    """The compose cluster, and `weft` on this host pointed at it, as admin over TLS."""

    def __init__(self, data, secrets, compose=None, project=PROJECT, env=None):
        self.data = data
        self.port = free_port()
        self.project = project
        self.command = compose or COMPOSE
        self.env = dict(
            os.environ,
            WEFT_DATA=str(data),
            WEFT_SECRETS=str(secrets),
            WEFT_PORT=str(self.port),
            WEFT_LEASE_TIMEOUT=str(LEASE),
            WEFT_SLOTS="2",
            WEFT_LOG="info,weft_coordinator=debug",
            WEFT_COORDINATOR=f"https://127.0.0.1:{self.port}",
            WEFT_TLS_DIR=str(secrets),
            WEFT_TOKEN_FILE=str(secrets / "admin.token"),
        )
        if os.geteuid() != 0:
            # The containers read the secrets as this user (as root, they are chowned instead).
            self.env.update(WEFT_UID=str(os.getuid()), WEFT_GID=str(os.getgid()))
        self.env.update(env or {})
        self.jobs = 0

    def compose(self, *args, check=True, command=None, env=None):
        return run((command or self.command) + list(args), check=check, env={**self.env, **(env or {})})

    def weft(self, *args, check=True, timeout=600):
        return run([WEFT, *args], check=check, env=self.env, timeout=timeout)

    def up(self, workers):
        self.compose("up", "-d", "--no-recreate", "--scale", f"worker={workers}")
        self.wait_workers(workers)

    def containers(self, service):
        out = self.compose("ps", "-q", service).stdout.split()
        names = []
        for cid in out:
            info = json.loads(run(["docker", "inspect", cid]).stdout)[0]
            names.append(info["Name"].lstrip("/"))
        return sorted(names)

    def ip(self, container):
        info = json.loads(run(["docker", "inspect", container]).stdout)[0]
        return info["NetworkSettings"]["Networks"][self.network()]["IPAddress"]

    def coordinator(self):
        return self.containers("coordinator")[0]

    def network(self):
        return f"{self.project}_default"

    def coordinator_log(self):
        return run(["docker", "logs", self.coordinator()], check=False).stderr

    def joined_workers(self):
        """Workers the coordinator has now: those that joined and did not leave since."""
        text = self.coordinator_log()
        joined = re.findall(r"worker joined worker=(\d+)", text)
        gone = set(re.findall(r"worker (?:lost|left)[^\n]*?worker=(\d+)", text))
        return [w for w in joined if w not in gone]

    def wait_workers(self, n, timeout=60):
        wait_until(lambda: self.healthy_workers() >= n, f"{n} healthy workers", timeout)

    def healthy_workers(self):
        healthy = 0
        for name in self.containers("worker"):
            state = json.loads(run(["docker", "inspect", name]).stdout)[0]["State"]
            if state.get("Running") and state.get("Health", {}).get("Status") == "healthy":
                healthy += 1
        return healthy

    def submit(self, *flags):
        self.jobs += 1
        out = self.data / f"{self.project}-out-{self.jobs}"
        job = self.weft("submit", "--output", out, *flags).stdout.strip()
        return job, out

    def status(self, job):
        return json.loads(self.weft("status", "--json", job).stdout)

    def wait_status(self, job, what, check, timeout=120):
        deadline = time.time() + timeout
        while True:
            status = self.status(job)
            if check(status):
                return status
            if status["state"] in ("succeeded", "failed", "cancelled") or time.time() > deadline:
                raise RuntimeError(f"{job}: never {what}; status {json.dumps(status)[:2000]}")
            time.sleep(0.1)

    def wait_job(self, job, timeout=300):
        result = self.weft("wait", job, check=False, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{job} did not succeed: {result.stderr}\n{self.coordinator_log()[-4000:]}")


# What the jobs must produce, computed here.

# Runs of ASCII letters (the streaming commands' words), and of any letters (the built-in
# wordcount's: Rust's char::is_alphabetic, which for this text is Python's letters).
ASCII_WORD = re.compile(r"[A-Za-z]+")
WORD = re.compile(r"[^\W\d_]+")


def expected_wordcount(files, word):
    counts = collections.Counter()
    for f in files:
        counts.update(word.findall(f.read_text(encoding="utf-8")))
    return dict(counts)


def read_output(out):
    """The parts of an output directory as key → value, after checking `_SUCCESS`, that no
    key appears twice and that nothing but parts is there."""
    names = sorted(os.listdir(out))
    assert "_SUCCESS" in names, f"no _SUCCESS in {out}: {names}"
    parts = [n for n in names if n.startswith("part-")]
    assert len(parts) + 1 == len(names), f"stray files in {out}: {names}"
    records = {}
    for part in parts:
        for line in (out / part).read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("\t")
            assert key not in records, f"{key!r} twice in {out}"
            records[key] = int(value)
    return records


def check_counts(out, files, word=ASCII_WORD):
    got, want = read_output(out), expected_wordcount(files, word)
    if got != want:
        missing = sorted(set(want) - set(got))[:5]
        wrong = sorted(k for k in want if k in got and got[k] != want[k])[:5]
        raise AssertionError(f"{out}: {len(got)} keys, expected {len(want)}; missing {missing}; wrong {wrong}")
    return f"{len(got)} words exact"


# A streaming mapper slow enough to break things while it runs, and its reducer.
MAPPER = "sleep {sleep}; tr -cs 'A-Za-z' '\\n' | awk 'length($0) > 0 {{ print $0 \"\\t1\" }}'"
REDUCER = "sleep {sleep}; awk -F'\\t' '{{ s[$1] += $2 }} END {{ for (k in s) print k \"\\t\" s[k] }}'"


def streaming(inputs, map_sleep, reduce_sleep, reduces=3):
    return [
        "--input", inputs,
        "--mapper", MAPPER.format(sleep=map_sleep),
        "--reducer", REDUCER.format(sleep=reduce_sleep),
        "--reduce-tasks", str(reduces),
        "--split-size", "200000",
        "--max-attempts", "8",
    ]


# The steps.

def step_plain(c, files, inputs):
    job, out = c.submit("--input", inputs, "--app", "wordcount", "--reduce-tasks", "3")
    c.wait_job(job)
    first = check_counts(out, files, WORD)
    job, out = c.submit(*streaming(inputs, 0, 0))
    c.wait_job(job)
    return f"built-in wordcount: {first}; streaming: {check_counts(out, files)}"


def busy_workers(c):
    """The worker containers running a task's command now."""
    return [n for n in c.containers("worker") if "sleep" in run(["docker", "top", n], check=False).stdout]


def running_on(c, job, kind, spare=()):
    """A worker container (not one of `spare`) that runs an attempt of `job`'s `kind` now, or None."""
    hosts = {a["worker"].rsplit(":", 1)[0] for a in c.status(job)["attempts"]
             if a["kind"] == kind and a["outcome"] == "running" and a["worker"]}
    return next((n for n in c.containers("worker") if n not in spare and c.ip(n) in hosts), None)


def step_kill_workers(c, files, inputs):
    job, out = c.submit(*streaming(inputs, 1, 3))
    # Each victim runs an attempt of the phase at its kill, so that one is surely lost there.
    c.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 2)
    wait_until(lambda: running_on(c, job, "map"), "a worker to run a map", 60)
    first = running_on(c, job, "map")
    run(["docker", "kill", first])
    c.wait_status(job, "the reduce phase", lambda s: s["phase"] == "reduce" and s["running_attempts"] > 0)
    wait_until(lambda: running_on(c, job, "reduce", spare=[first]), "a live worker to run a reduce", 60)
    second = running_on(c, job, "reduce", spare=[first])
    run(["docker", "kill", second])
    c.wait_job(job)
    result = check_counts(out, files)
    attempts = c.status(job)["attempts"]
    lost = [a for a in attempts if a["outcome"] == "lost"]
    lost_maps = [a for a in lost if a["kind"] == "map"]
    lost_reduces = [a for a in lost if a["kind"] == "reduce"]
    assert lost_maps and lost_reduces, f"an attempt lost in each phase: {lost}"
    for name in (first, second):
        run(["docker", "start", name])
    c.wait_workers(3)
    return (f"killed {first} running a map and {second} running a reduce; {len(lost_maps)} map and "
            f"{len(lost_reduces)} reduce attempts lost; {result}")


def step_partition(c, files, inputs):
    job, out = c.submit(*streaming(inputs, 2, 1))
    # The victim is a worker with a task running, so that it has something to report late.
    wait_until(lambda: busy_workers(c), "a worker to run a task", 60)
    victim = busy_workers(c)[0]
    before = c.coordinator_log().count("lease expired")
    run(["docker", "network", "disconnect", c.network(), victim])
    wait_until(lambda: c.coordinator_log().count("lease expired") > before, "the lease to expire", LEASE * 5)
    time.sleep(1)
    run(["docker", "network", "connect", c.network(), victim])
    c.wait_job(job)
    result = check_counts(out, files)
    c.wait_workers(3)
    ignored = c.coordinator_log().count("late or unknown report ignored")
    assert ignored > 0, "the cut-off worker's reports for attempts it lost were rejected"
    return (
        f"disconnected {victim} until its lease expired, then reconnected; "
        f"{ignored} late reports rejected; no duplicate part; {result}"
    )


def step_coordinator_restart(c, files, inputs):
    job, out = c.submit(*streaming(inputs, 1, 2))
    c.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 2)
    coordinator = c.coordinator()
    run(["docker", "kill", coordinator])
    run(["docker", "start", coordinator])
    wait_until(lambda: c.weft("health", check=False).returncode == 0, "the coordinator to serve", 60)
    c.wait_job(job)
    result = check_counts(out, files)
    recovered = "recovering job" in c.coordinator_log()
    assert recovered, "the restarted coordinator recovered the job"
    return f"killed and restarted {coordinator} mid-job; job recovered; {result}"


def step_scale_and_rolling_restart(c, files, inputs):
    job, out = c.submit(*streaming(inputs, 1, 1))
    before = set(c.containers("worker"))
    c.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 1)
    c.up(5)
    new = set(c.containers("worker")) - before
    c.wait_job(job)
    result = check_counts(out, files)
    addresses = {c.ip(n) for n in new}
    used = {a["worker"].rsplit(":", 1)[0] for a in c.status(job)["attempts"]}
    assert addresses & used, f"new workers {addresses} took no task; attempts ran on {used}"
    scaled = f"scaled 3 → 5 mid-job, new workers took tasks; {result}"

    job, out = c.submit(*streaming(inputs, 1, 1))
    c.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 1)
    for name in c.containers("worker"):
        run(["docker", "restart", "--time", "30", name])
        wait_until(lambda: c.healthy_workers() >= 5, "the restarted worker to be healthy", 60)
    c.wait_job(job)
    return f"{scaled}; then restarted all 5 workers one by one during a job: {check_counts(out, files)}"


def s3_tool(endpoint, *args):
    """boto3 against the host's moto: make a bucket, put files, get the keys and open uploads."""
    script = """
import boto3, json, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="faults", aws_secret_access_key="faults")
command, args = sys.argv[2], sys.argv[3:]
if command == "bucket":
    s3.create_bucket(Bucket=args[0])
elif command == "put":
    for path in args[2:]:
        s3.upload_file(path, args[0], args[1] + "/" + path.rsplit("/", 1)[-1])
elif command == "get":
    for o in s3.list_objects_v2(Bucket=args[0], Prefix=args[1]).get("Contents", []):
        s3.download_file(args[0], o["Key"], args[2] + "/" + o["Key"].rsplit("/", 1)[-1])
elif command == "uploads":
    print(json.dumps(s3.list_multipart_uploads(Bucket=args[0]).get("Uploads", []), default=str))
"""
    return run([S3_VENV / "bin" / "python", "-c", script, endpoint, *args]).stdout


def step_s3(c, files, inputs):
    # A second compose cluster, from compose.s3.yaml: no shared volume, its data in an S3
    # server (moto) on this host, reached from the containers at the host's gateway.
    if not (S3_VENV / "bin" / "moto_server").exists():
        run(["python3", "-m", "venv", S3_VENV])
        run([S3_VENV / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", "moto[server]==5.*", "boto3"])
    port = free_port()
    moto = subprocess.Popen([S3_VENV / "bin" / "moto_server", "-H", "0.0.0.0", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="weft-s3-"))
    credentials = work / "s3.env"
    credentials.write_text("AWS_ACCESS_KEY_ID=faults\nAWS_SECRET_ACCESS_KEY=faults\n")
    credentials.chmod(0o644 if os.geteuid() == 0 else 0o600)
    gateway = work / "gateway.yaml"
    gateway.write_text("services:\n" + "".join(f"  {s}:\n    extra_hosts: [\"host.docker.internal:host-gateway\"]\n" for s in ("coordinator", "worker")))
    project = f"{PROJECT}s3"
    compose = ["docker-compose", "-p", project, "-f", str(DEPLOY / "compose.s3.yaml"), "-f", str(gateway)]
    env = {
        "WEFT_S3_ENV": str(credentials),
        "WEFT_S3_ROOT": "s3://faults/data",
        "AWS_ENDPOINT_URL": f"http://host.docker.internal:{port}",
        "AWS_ALLOW_HTTP": "true",
        "WEFT_HTTP_PORT": str(free_port()),
    }
    s3 = Cluster(c.data, Path(c.env["WEFT_SECRETS"]), compose=compose, project=project, env=env)
    try:
        listening = ["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]
        wait_until(lambda: subprocess.run(listening, stderr=subprocess.DEVNULL).returncode == 0, "moto listening", 30)
        s3_tool(host, "bucket", "faults")
        s3_tool(host, "put", "faults", "data/in", *map(str, files))
        s3.up(2)
        flags = streaming("s3://faults/data/in", 1, 2, reduces=2)
        job = s3.weft("submit", "--output", "s3://faults/data/out", *flags).stdout.strip()
        workers = s3.containers("worker")
        s3.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 2)
        run(["docker", "kill", workers[0]])
        run(["docker", "start", workers[0]])
        s3.wait_job(job)
        out = work / "out"
        out.mkdir()
        s3_tool(host, "get", "faults", "data/out/", str(out))
        result = check_counts(out, files)
        left = json.loads(s3_tool(host, "uploads", "faults"))
        if left:
            raise AssertionError(f"{len(left)} multipart uploads left open: {left[:3]}")
        outside = s3.weft("submit", "--output", "s3://faults/elsewhere", "--input", "s3://faults/data/in", "--app", "wordcount", check=False)
        if outside.returncode == 0 or "outside the data roots" not in outside.stderr:
            raise AssertionError(f"a prefix outside WEFT_S3_ROOT was accepted: {outside.stderr}")
        return f"s3:// to s3:// with no shared volume, {workers[0]} killed mid-map: {result}; no upload left open; outside the root refused"
    finally:
        s3.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
        moto.kill()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


def step_ssh(c, files, inputs):
    # Its own cluster, with weft-cluster's defaults: none of the compose cluster's settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
    return run([DEPLOY / "ssh" / "test-on-containers.sh", WEFT, inputs, c.data], env=env, timeout=900).stdout.strip()


# The HA cluster: two coordinators on PostgreSQL (compose.ha.yaml).

HA_LEASE = 3


class HaCluster(Cluster):
    """compose.ha.yaml's cluster: PostgreSQL, coordinator-a and coordinator-b on it, workers
    given both; `weft` on this host given both too."""

    SERVICES = ("coordinator-a", "coordinator-b")

    def __init__(self, data, secrets):
        project = f"{PROJECT}ha"
        compose = ["docker-compose", "-p", project, "-f", str(DEPLOY / "compose.ha.yaml")]
        super().__init__(data, secrets, compose=compose, project=project)
        self.ports = {"coordinator-a": self.port, "coordinator-b": free_port()}
        # The log store: beside the data, not inside it (a coordinator refuses that).
        self.logs = Path(tempfile.mkdtemp(prefix="weft-logs-"))
        self.logs.chmod(0o1777)
        self.env.update(
            WEFT_LOGS=str(self.logs),
            WEFT_PORT_B=str(self.ports["coordinator-b"]),
            WEFT_LEADER_LEASE=str(HA_LEASE),
            WEFT_COORDINATOR=",".join(self.url(s) for s in self.SERVICES),
        )

    def url(self, service):
        return f"https://127.0.0.1:{self.ports[service]}"

    def container(self, service):
        return self.containers(service)[0]

    def leads(self, service):
        return self.weft("health", "--leader", "--coordinator", self.url(service), check=False, timeout=30).returncode == 0

    def leader(self, other_than=None):
        """Which coordinator leads (not asking `other_than`, which may be paused), or None."""
        return next((s for s in self.SERVICES if s != other_than and self.leads(s)), None)

    def wait_leader(self, other_than=None, timeout=60):
        """The coordinator that leads once one other than `other_than` does, and how long that took."""
        started = time.time()
        found = []
        wait_until(lambda: found.append(self.leader(other_than)) or found[-1] is not None, f"a leader other than {other_than}", timeout)
        return found[-1], time.time() - started

    def wait_standby(self, service, timeout=60):
        def stands_by():
            said = self.weft("health", "--coordinator", self.url(service), check=False, timeout=30)
            return said.returncode == 0 and "standing by" in said.stdout
        wait_until(stands_by, f"{service} to stand by", timeout)

    def coordinator_log(self):
        return "".join(run(["docker", "logs", self.container(s)], check=False).stderr for s in self.SERVICES)

    def state(self, name):
        return json.loads(run(["docker", "inspect", name]).stdout)[0]

    def start_when_stepped_down(self, service, restarts_before):
        """Waits for a deposed leader to step down and exit, then starts it again as a
        supervisor would (compose's restart policy may have already; `docker kill` of a
        signal marks a container stopped by hand, which that policy leaves alone)."""
        name = self.container(service)
        wait_until(lambda: "no longer the leader" in run(["docker", "logs", name], check=False).stderr, f"{service} to step down", 60)
        wait_until(lambda: not self.state(name)["State"]["Running"] or self.state(name)["RestartCount"] > restarts_before,
                   f"{service} to exit", 60)
        run(["docker", "start", name], check=False)


def noted_job(inputs, notes, map_sleep, reduce_sleep, reduces=3):
    """A streaming job whose maps and reduces each append a line to `notes` as they start."""
    flags = streaming(inputs, map_sleep, reduce_sleep, reduces)
    flags[flags.index("--mapper") + 1] = f"echo map >> {notes}; " + MAPPER.format(sleep=map_sleep)
    flags[flags.index("--reducer") + 1] = f"echo reduce >> {notes}; " + REDUCER.format(sleep=reduce_sleep)
    return flags


def ran_once(c, job, notes):
    """Checks that no task of `job` started twice (beyond its backups): every attempt running
    at a takeover was adopted by the new leader, not run again."""
    status = c.status(job)
    lines = notes.read_text().split()
    backups = int(status.get("counters", {}).get("weft:backup_attempts", 0))
    maps, reduces = lines.count("map"), lines.count("reduce")
    want_maps, want_reduces = status["maps"]["total"], status["reduces"]["total"]
    assert want_maps <= maps <= want_maps + backups and want_reduces <= reduces <= want_reduces + backups, (
        f"tasks started {maps} maps for {want_maps}, {reduces} reduces for {want_reduces} ({backups} backups): "
        f"a running attempt ran again")
    return f"{maps} map and {reduces} reduce starts for {want_maps} + {want_reduces} tasks"


def ha_round(ha, files, inputs, phase, fault):
    """A job whose tasks note their starts; once its `phase` runs, `fault(ha, leader)` (which
    says what it did); then the job must end exact with no task started twice, and the old
    leader must stand by."""
    notes = ha.data / f"notes-{ha.jobs + 1}"
    job, out = ha.submit(*noted_job(inputs, notes, 1, 3))
    if phase == "map":
        ha.wait_status(job, "maps running", lambda s: s["maps"]["done"] >= 2 and s["running_attempts"] > 0)
    else:
        ha.wait_status(job, "reduces running", lambda s: s["phase"] == "reduce" and s["running_attempts"] > 0)
    leader = ha.leader()
    said = fault(ha, leader)
    ha.wait_job(job)
    result = check_counts(out, files)
    once = ran_once(ha, job, notes)
    ha.wait_standby(leader, timeout=120)
    return f"{said} mid-{phase}; {result}; {once}"


def kill_leader(ha, leader):
    killed = time.time()
    run(["docker", "kill", ha.container(leader)])
    successor, _ = ha.wait_leader(other_than=leader)
    took = time.time() - killed
    run(["docker", "start", ha.container(leader)])
    return f"kill -9 of {leader}: {successor} led {took:.1f} s later"


def pause_leader(ha, leader):
    name = ha.container(leader)
    restarts = ha.state(name)["RestartCount"]
    run(["docker", "kill", "--signal", "STOP", name])
    successor, took = ha.wait_leader(other_than=leader)
    time.sleep(HA_LEASE)
    run(["docker", "kill", "--signal", "CONT", name])
    # The old leader finds its lease taken, changes nothing and exits; started again, it
    # stands by.
    ha.start_when_stepped_down(leader, restarts)
    return f"SIGSTOP of {leader} past its lease: {successor} led after {took:.1f} s; on SIGCONT it stepped down"


def cut_leader_from_database(ha, leader):
    name = ha.container(leader)
    restarts = ha.state(name)["RestartCount"]
    network = f"{ha.project}_state"
    run(["docker", "network", "disconnect", network, name])
    try:
        successor, took = ha.wait_leader(other_than=leader)
        wait_until(lambda: "no longer the leader" in run(["docker", "logs", name], check=False).stderr, f"{leader} to step down", 60)
    finally:
        run(["docker", "network", "connect", network, name], check=False)
    ha.start_when_stepped_down(leader, restarts)
    return f"{leader} cut off from PostgreSQL: it stepped down, {successor} led after {took:.1f} s"


def ha_postgres_restart(ha, files, inputs):
    job, out = ha.submit(*streaming(inputs, 1, 2))
    ha.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 2)
    postgres = ha.container("postgres")
    run(["docker", "stop", "--time", "10", postgres])
    refused = ha.weft("submit", "--output", ha.data / "never", "--input", inputs, "--app", "wordcount", check=False, timeout=120)
    run(["docker", "start", postgres])
    assert refused.returncode != 0, "a submit while PostgreSQL is down is refused"
    ha.wait_leader(timeout=120)
    ha.wait_job(job)
    result = check_counts(out, files)
    assert not (ha.data / "never" / "_SUCCESS").exists(), "the refused job ran"
    # Submits are refused (UNAVAILABLE, nothing written) until the server accepts
    # connections again: PostgreSQL starting up says so for a while after `docker start`.
    later = None
    deadline = time.time() + 120
    while later is None:
        try:
            later, later_out = ha.submit("--input", inputs, "--app", "wordcount", "--reduce-tasks", "2")
        except RuntimeError as e:
            if "PostgreSQL at" not in str(e) or time.time() > deadline:
                raise
            time.sleep(0.5)
    ha.wait_job(later)
    check_counts(later_out, files, WORD)
    why = refused.stderr.strip().splitlines()[-1][:160] if refused.stderr.strip() else "?"
    return f"PostgreSQL stopped mid-job: a submit refused ({why}); the job {result}; a new job after ran exact"


def build_upgrade_from(work):
    """The image of UPGRADE_FROM's weft (`weft:upgrade-from`) and that commit's
    compose.ha.yaml. A debug build of a worktree of that commit, in this checkout's target
    directory, so the dependencies the tests built are reused (the fault suite runs after
    them). Its packages' version gets build metadata (`+upgrade-from`, which the version
    policy ignores), so that cargo keeps their artifacts apart from this checkout's rather
    than taking one for the other; the debug `weft` it leaves is removed, so the next build
    links this checkout's again."""
    tree = work / "upgrade-from"
    run(["git", "-C", REPO, "worktree", "add", "--force", "--detach", tree, UPGRADE_FROM])
    try:
        manifest = tree / "Cargo.toml"
        text = manifest.read_text()
        version = re.search(r'(?m)^version = "([^"+]+)"$', text)
        manifest.write_text(text[:version.start()] + f'version = "{version.group(1)}+upgrade-from"' + text[version.end():])
        env = dict(os.environ, CARGO_TARGET_DIR=str(REPO / "target"))
        subprocess.run(["cargo", "build", "--bin", "weft"], cwd=tree, env=env, check=True, timeout=1200)
        binary = work / "weft-upgrade-from"
        shutil.copy(REPO / "target" / "debug" / "weft", binary)
        (REPO / "target" / "debug" / "weft").unlink()
        run([DEPLOY / "docker" / "build.sh", "weft:upgrade-from"], env=dict(os.environ, WEFT_BINARY=str(binary)), capture=False)
        compose_file = work / "compose.ha.upgrade-from.yaml"
        shutil.copy(tree / "deploy" / "compose.ha.yaml", compose_file)
        return compose_file
    finally:
        run(["git", "-C", REPO, "worktree", "remove", "--force", tree], check=False)


def ha_upgrade(ha, files, inputs):
    """A rolling upgrade from UPGRADE_FROM's build and compose file to this one's, jobs running
    throughout: the standby, then the leader (a clean stop hands the lease on) during one job,
    whose attempts must not run twice; then the workers one at a time (each drained by
    SIGTERM, then replaced; what a drained worker held runs again) during another. Both jobs
    and one after must end exact, and every container must run the new image."""
    new = dict(WEFT_IMAGE="weft:latest")
    notes = ha.data / f"notes-{ha.jobs + 1}"
    job, out = ha.submit(*noted_job(inputs, notes, 1, 2))
    ha.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 1)
    leader = ha.leader()
    standby = next(s for s in ha.SERVICES if s != leader)
    for service in (standby, leader):
        # Recreated from this build's file and image: stopped cleanly (SIGTERM), so a leader
        # hands its lease to the standby at once; it comes back as a standby.
        ha.compose("up", "-d", "--no-deps", service, env=new)
        ha.wait_leader()
        ha.wait_standby(service, timeout=120)
    ha.wait_job(job)
    coordinators = f"{check_counts(out, files)}; {ran_once(ha, job, notes)}"
    job, out = ha.submit(*streaming(inputs, 1, 2))
    ha.wait_status(job, "map progress", lambda s: s["maps"]["done"] >= 1)
    for old in ha.containers("worker"):
        run(["docker", "stop", "--time", "30", old])
        run(["docker", "rm", old])
        ha.compose("up", "-d", "--no-deps", "--no-recreate", "--scale", "worker=3", "worker", env=new)
        ha.wait_workers(3, timeout=120)
    ha.wait_job(job)
    workers = check_counts(out, files)
    after, out = ha.submit(*streaming(inputs, 0, 0))
    ha.wait_job(after)
    images = {name: run(["docker", "inspect", "--format", "{{.Config.Image}}", name]).stdout.strip()
              for name in ha.containers("worker") + [ha.container(s) for s in ha.SERVICES]}
    stale = {name: image for name, image in images.items() if image != "weft:latest"}
    assert not stale, f"containers not upgraded: {stale}"
    return (f"from {UPGRADE_FROM}: coordinators rolled mid-job ({coordinators}); workers rolled mid-job ({workers}); "
            f"a job after: {check_counts(out, files)}")


def ha_worker_logs(ha, files, inputs):
    """A job, then every worker killed: `weft logs` still shows each attempt's log, read from
    the log store the coordinators and workers share (compose.ha.yaml's WEFT_LOGS)."""
    job, out = ha.submit(*streaming(inputs, 0, 0))
    ha.wait_job(job)
    result = check_counts(out, files)
    attempts = len(ha.status(job)["attempts"])
    workers = ha.containers("worker")
    for name in workers:
        run(["docker", "kill", name])
    text = ha.weft("logs", job).stdout
    assert "(no log:" not in text and text.count("ended succeeded") == attempts, (
        f"{job}: {attempts} attempts, logs once their workers were killed:\n{text[-3000:]}")
    for name in workers:
        run(["docker", "start", name])
    return f"{result}; {attempts} attempts' logs read after kill -9 of all {len(workers)} workers"


def step_ha(c, files, inputs):
    """The two-coordinator cluster on PostgreSQL, through the faults a leader meets."""
    run([DEPLOY / "postgres" / "build.sh"], capture=False)
    t = time.time()
    old_compose = build_upgrade_from(c.data.parent / f"{PROJECT}-upgrade")
    log(f"  ha: built {UPGRADE_FROM}'s weft to upgrade from ({time.time() - t:.1f} s)")
    ha = HaCluster(c.data, Path(c.env["WEFT_SECRETS"]))
    said = []
    try:
        # The cluster starts as UPGRADE_FROM deployed it, and is upgraded to this build first.
        old = ["docker-compose", "-p", ha.project, "-f", str(old_compose)]
        ha.compose("up", "-d", "--no-recreate", "--scale", "worker=3", command=old, env=dict(WEFT_IMAGE="weft:upgrade-from"))
        ha.wait_workers(3)
        leader, _ = ha.wait_leader()
        ha.wait_standby(next(s for s in ha.SERVICES if s != leader))
        for name, scenario in [
            ("rolling upgrade", lambda: ha_upgrade(ha, files, inputs)),
            ("kill -9 mid-map", lambda: ha_round(ha, files, inputs, "map", kill_leader)),
            ("kill -9 mid-reduce", lambda: ha_round(ha, files, inputs, "reduce", kill_leader)),
            ("pause", lambda: ha_round(ha, files, inputs, "map", pause_leader)),
            ("cut from the database", lambda: ha_round(ha, files, inputs, "map", cut_leader_from_database)),
            ("PostgreSQL restart", lambda: ha_postgres_restart(ha, files, inputs)),
            ("workers killed, logs kept", lambda: ha_worker_logs(ha, files, inputs)),
        ]:
            t = time.time()
            said.append(scenario())
            log(f"  ha: {name} ({time.time() - t:.1f} s): {said[-1]}")
        jobs = json.loads(ha.weft("jobs", "--json").stdout)
        failed = [j for j in jobs if j["state"] != "succeeded"]
        assert not failed, f"jobs not succeeded: {failed}"
        return f"{len(said)} faults, {len(jobs)} jobs, all succeeded exact"
    except Exception:
        log(ha.coordinator_log()[-6000:])
        raise
    finally:
        ha.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
        shutil.rmtree(ha.logs, ignore_errors=True)


STEPS = [
    ("plain", step_plain),
    ("kill-workers", step_kill_workers),
    ("partition", step_partition),
    ("coordinator-restart", step_coordinator_restart),
    ("scale-and-rolling-restart", step_scale_and_rolling_restart),
    ("ssh", step_ssh),
    ("s3", step_s3),
    ("ha", step_ha),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated steps: " + ", ".join(n for n, _ in STEPS))
    parser.add_argument("--keep", action="store_true", help="leave the cluster up afterwards")
    args = parser.parse_args()
    if shutil.which("docker") is None or shutil.which("docker-compose") is None or run(["docker", "info"], check=False).returncode != 0:
        why = "no Docker engine with docker-compose here (docker, docker-compose and a running daemon are needed)"
        if os.environ.get("CI") == "true":
            # A CI without the suite must not pass for one that ran it.
            log(f"fault suite cannot run: {why}")
            return 1
        log(f"fault suite skipped: {why}")
        return 0
    only = set(args.only.split(",")) if args.only else None
    started = time.time()
    log("== building the weft image")
    run([DEPLOY / "docker" / "build.sh"], capture=False)
    data = Path(tempfile.mkdtemp(prefix="weft-faults-"))
    data.chmod(0o1777)
    inputs = data / "in"
    run([WEFT, "generate-text", "--output", inputs, "--files", "6", "--size", "1MiB"])
    files = sorted(inputs.iterdir())
    for f in files:
        f.chmod(0o644)
    secrets = Path(tempfile.mkdtemp(prefix="weft-secrets-"))
    # The HA cluster's PostgreSQL presents a certificate of its own, for the name postgres;
    # as UPGRADE_FROM deployed it, the coordinators' (so theirs names postgres too).
    run([WEFT, "certs", "--dir", secrets, "--host", "postgres", "--server", "postgres"])
    password = secrets / "state.password"
    password.write_text(os.urandom(18).hex() + "\n")
    password.chmod(0o600)
    if os.geteuid() == 0:
        for path in [secrets, *secrets.iterdir()]:
            os.chown(path, 10001, 10001)
    c = Cluster(data, secrets)
    failed = []
    try:
        log("== secured compose cluster: 1 coordinator, 3 workers")
        c.up(3)
        for name, step in STEPS:
            if only and name not in only:
                continue
            t = time.time()
            try:
                what = step(c, files, inputs)
                log(f"PASS {name} ({time.time() - t:.1f} s): {what}")
            except Exception as e:  # a failed step is reported and the rest still run
                failed.append(name)
                log(f"FAIL {name} ({time.time() - t:.1f} s): {e}")
    finally:
        if args.keep:
            log(f"left running: {' '.join(COMPOSE)}")
        else:
            c.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(secrets, ignore_errors=True)
    log(f"== fault suite: {len(failed)} failed ({', '.join(failed) or 'none'}) in {time.time() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
