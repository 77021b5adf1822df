#!/usr/bin/env python3
"""The chaos soak: many jobs of every kind and work-queue batches, for a bounded time, while
faults are injected at random moments, then checks that nothing was lost.

A coordinator and four workers run as local processes (the fourth with its work directory
on a small tmpfs of its own, in a user and mount namespace made with `unshare`). Jobs:
built-in wordcount and sort, streaming wordcount with a combiner, map-only streaming jobs,
chains (`--after`), jobs cancelled at a random moment, and task batches (`weft tasks`, every
result checked against its task; a batch cut by a coordinator kill is run again whole), and
durable batches (`weft tasks --durable`, with an idempotency key: a submit that failed is sent
again with the same key; its results read back with `weft results --follow` through the
faults, every task's result once and right, and one by its task's id). Faults, in turn at
random moments: a worker killed (SIGKILL) and started again, a worker paused (SIGSTOP) past
its lease and resumed, the coordinator killed and started again, the tmpfs worker's work
directory filled up and freed.

With --ha, the same against two coordinators with their state on PostgreSQL (a server of
Debian's package started here, in the run's directory): the faults that hit the coordinator
hit the leader instead, killed (SIGKILL) and started again as a standby, or paused (SIGSTOP)
past its lease and resumed, when it steps down and exits and is started again; workers and
clients are given both coordinators and follow the leader.

At the end: every acknowledged job is in a final state; every succeeded job's output is
exact against a computation in this process, each part once and nothing else beside it; a
cancelled job left no part; no task process and no temporary file remains; the
coordinator's memory is under a bound. One summary line says what ran and what was
injected; a run that injected fewer than three faults of a kind fails.

    deploy/soak.py [--seconds 120] [--seed N] [--ha] [--keep]
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import Postgres, free_port, log, wait_until

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
WEFT = REPO / "target" / "release" / "weft"
LEASE = 3
MARKER = "weft-soak-task"
ASCII_WORD_MAPPER = "tr -cs 'A-Za-z' '\\n' | awk 'length($0) > 0 { print $0 \"\\t1\" }'"
SUM = "awk -F'\\t' '{ s[$1] += $2 } END { for (k in s) print k \"\\t\" s[k] }'"
FAULTS = ["kill-worker", "pause-worker", "kill-coordinator", "fill-disk"]
HA_FAULTS = ["kill-worker", "pause-worker", "kill-leader", "pause-leader", "fill-disk"]
RSS_BOUND = 300 << 20
BATCH_TASKS = 2000


def marked(command):
    """A task command that can be told apart from every other process on the machine."""
    return f": {MARKER}; {command}"


class Cluster:
    """The processes, their directories, and how to break and mend them."""

    def __init__(self, root, ha=False):
        self.root = root
        self.postgres = Postgres(root / "pg") if ha else None
        self.ports = [free_port() for _ in range(2 if ha else 1)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.url = ",".join(self.urls)
        self.env = dict(os.environ, WEFT_COORDINATOR=self.url)
        self.lock = threading.Lock()
        self.kills_begun = self.kills_done = 0
        self.coordinators = [None] * len(self.ports)
        for i in range(len(self.ports)):
            self.start_coordinator(i)
            if i == 0:
                wait_until(lambda: self.leader() == 0, "the first coordinator to lead", 30)
        self.workers = [self.start_worker(i) for i in range(3)]
        self.tmpfs_work = root / "work-tmpfs"
        self.tmpfs_work.mkdir()
        script = 'mount -t tmpfs -o size=24m tmpfs "$1" || exit 97; while :; do "$2" worker --coordinator "$3" --slots 2 --work-dir "$1" 2>>"$4"; sleep 0.2; done'
        self.holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
             self.tmpfs_work, WEFT, self.url, root / "worker-tmpfs.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.weft("health", check=False).returncode == 0, "the coordinator to serve", 30)

    def start_coordinator(self, i=0):
        log_file = open(self.root / f"coordinator-{i}.log", "a")
        state = ["--state", self.postgres.url, "--leader-lease", str(LEASE), "--recovery-grace", "2"] if self.postgres \
            else ["--state-dir", self.root / "state"]
        self.coordinators[i] = subprocess.Popen(
            [WEFT, "coordinator", "--listen", f"127.0.0.1:{self.ports[i]}", *state,
             "--lease-timeout", str(LEASE), "--retain-for", "5", "--retain-jobs", "20"],
            stdout=subprocess.DEVNULL, stderr=log_file, env=dict(os.environ, WEFT_LOG="info"))

    def leader(self):
        """Which coordinator leads now (None while none does)."""
        for i, url in enumerate(self.urls):
            said = subprocess.run([WEFT, "health", "--leader", "--coordinator", url], capture_output=True, timeout=30)
            if said.returncode == 0:
                return i
        return None

    def start_worker(self, i):
        log_file = open(self.root / f"worker-{i}.log", "a")
        return subprocess.Popen(
            [WEFT, "worker", "--coordinator", self.url, "--slots", "2", "--work-dir", self.root / f"work-{i}"],
            stdout=subprocess.DEVNULL, stderr=log_file)

    def weft(self, *args, check=True, timeout=120):
        result = subprocess.run([str(a) for a in [WEFT, *args]], capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"weft {' '.join(map(str, args))}: {result.stderr.strip()[-500:]}")
        return result

    def tmpfs_path(self):
        """The tmpfs worker's work directory as its namespace sees it."""
        return Path(f"/proc/{self.holder.pid}/root") / self.tmpfs_work.relative_to("/")

    # The faults.

    def kill_worker(self, rng):
        i = rng.randrange(len(self.workers))
        self.workers[i].kill()
        self.workers[i].wait()
        time.sleep(rng.uniform(0.2, 1.5))
        self.workers[i] = self.start_worker(i)

    def pause_worker(self, rng):
        worker = self.workers[rng.randrange(len(self.workers))]
        worker.send_signal(signal.SIGSTOP)
        time.sleep(LEASE + rng.uniform(1, 2))
        worker.send_signal(signal.SIGCONT)

    def kill_coordinator(self, rng):
        """Kills the coordinator (with --ha, the leader) and starts it again."""
        with self.lock:
            # Counted as begun before the kill and done once one leads again: a batch that
            # overlapped one can tell that the kill explains its broken stream.
            self.kills_begun += 1
            i = (self.leader() or 0) if self.postgres else 0
            self.coordinators[i].kill()
            self.coordinators[i].wait()
            time.sleep(rng.uniform(0.2, 1.5))
            self.start_coordinator(i)
        self.wait_serving()
        self.kills_done += 1

    def pause_leader(self, rng):
        """Pauses the leader past its lease; woken, it finds another in its place, steps down
        and exits, and is started again (as a supervisor would)."""
        with self.lock:
            self.kills_begun += 1
            i = self.leader()
            if i is None:
                self.kills_done += 1
                return
            leader = self.coordinators[i]
            leader.send_signal(signal.SIGSTOP)
            wait_until(lambda: self.leader() not in (None, i), "a standby to take over", 30)
            time.sleep(rng.uniform(0, 1))
            leader.send_signal(signal.SIGCONT)
            try:
                code = leader.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise RuntimeError("a leader paused past its lease did not step down")
            if code == 0:
                raise RuntimeError("a deposed leader exited 0")
            self.start_coordinator(i)
        self.wait_serving()
        self.kills_done += 1

    def wait_serving(self):
        serving = ["health", "--leader"] if self.postgres else ["health"]
        wait_until(lambda: self.weft(*serving, check=False).returncode == 0, "a coordinator to serve again", 30)

    def fill_disk(self, rng):
        filler = self.tmpfs_path() / "filler"
        block = b"\0" * (1 << 16)
        try:
            with open(filler, "wb") as f:
                while True:
                    f.write(block)
                    f.flush()
        except OSError:
            pass
        time.sleep(rng.uniform(2, 5))
        filler.unlink(missing_ok=True)

    def coordinator_rss(self):
        i = (self.leader() or 0) if self.postgres else 0
        for line in Path(f"/proc/{self.coordinators[i].pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        terminate(self.workers)
        children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children")
        inner = children.read_text().split() if children.exists() else []
        self.holder.kill()
        self.holder.wait()
        for pid in inner:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
        terminate(self.coordinators)
        if self.postgres:
            self.postgres.stop()


def terminate(processes):
    """SIGTERM to each, then up to 30 s for each to exit before it is killed."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# What the jobs must produce, computed here.

def lines_of(files):
    out = []
    for f in files:
        out.extend(Path(f).read_bytes().splitlines())
    return out


def word_counts(files):
    counts = collections.Counter()
    for f in files:
        counts.update(re.findall(rb"[A-Za-z]+", Path(f).read_bytes()))
    return counts


def counts_as_lines(counts):
    return sorted(k + b"\t" + str(v).encode() for k, v in counts.items())


def check_results(tasks, printed):
    """What is wrong with the results `weft tasks --json` printed for `tasks` (in order, a
    prefix of them when the stream was cut): each is its task's, ok, and its output the
    echo's payload (empty for a sleep)."""
    results = [json.loads(line) for line in printed.splitlines() if line.strip()]
    for position, result in enumerate(results):
        if result.get("index") != position:
            return f"result {position} has index {result.get('index')}"
        task = tasks[position]
        if not result.get("ok"):
            return f"task {position} ({task['handler']}) failed: {result.get('error')}"
        want = task["payload"] if task["handler"] == "echo" else ""
        if result.get("output") != want:
            return f"task {position} answered {result.get('output')!r}, not {want!r}"
        if result.get("id") != task.get("id"):
            return f"task {position}'s result has the id {result.get('id')!r}, not {task.get('id')!r}"
    if len(results) > len(tasks):
        return f"{len(results)} results for {len(tasks)} tasks"
    return None


def parts_of(out):
    """The part files in order; raises if anything else but _SUCCESS is there."""
    names = sorted(p.name for p in out.iterdir())
    parts = [n for n in names if n.startswith("part-")]
    others = [n for n in names if not n.startswith("part-") and n != "_SUCCESS"]
    if others:
        raise AssertionError(f"{out}: unexpected {others}")
    if parts != [f"part-{i:05d}" for i in range(len(parts))]:
        raise AssertionError(f"{out}: parts {parts}")
    return [(out / n).read_bytes() for n in parts]


class Job:
    def __init__(self, kind, out, expected, ordered=False, reduces=None):
        self.kind, self.out, self.expected, self.ordered, self.reduces = kind, out, expected, ordered, reduces
        self.id = None
        self.cancel_requested = False


class Soak:
    def __init__(self, cluster, data, seconds, rng):
        self.cluster, self.data, self.seconds, self.rng = cluster, data, seconds, rng
        self.jobs = []
        self.jobs_lock = threading.Lock()
        self.faults = collections.Counter()
        self.kinds = HA_FAULTS if cluster.postgres else FAULTS
        self.batches = collections.Counter()
        self.durable = collections.Counter()
        self.stop = threading.Event()
        self.errors = []
        self.outputs = 0

    def out(self, kind):
        with self.jobs_lock:
            self.outputs += 1
            return self.cluster.root / "out" / f"{kind}-{self.outputs:04d}"

    def submit(self, job, flags, extra=()):
        """Submits until the coordinator acknowledges (it may be down for a moment). A submit
        whose answer a coordinator kill cut may have been made durable all the same: the
        retry then finds its output taken, and the job is found by that output."""
        deadline = time.time() + 60
        cut = False
        while True:
            result = self.cluster.weft("submit", "--max-attempts", "10", *flags, *extra, check=False)
            if result.returncode == 0:
                job.id = result.stdout.strip()
                break
            taken = "is not empty" in result.stderr or "being written" in result.stderr
            if taken and cut:
                job.id = self.job_writing(job.out)
                if job.id:
                    break
            if time.time() > deadline or taken:
                raise RuntimeError(f"submit {job.kind}: {result.stderr.strip()[-400:]}")
            cut = "cannot reach the coordinator" in result.stderr or "transport error" in result.stderr
            time.sleep(0.5)
        with self.jobs_lock:
            self.jobs.append(job)
        return job

    def job_writing(self, out):
        """The id of the job whose output is `out`, if the coordinator has one."""
        listed = self.cluster.weft("jobs", "--json", "--limit", "10000", check=False)
        if listed.returncode != 0:
            return None
        return next((j["id"] for j in json.loads(listed.stdout) if j.get("output") == str(out)), None)

    def one_job(self):
        kind = self.rng.choice(["wordcount", "streaming", "sort", "map-only", "chain", "cancelled"])
        files = self.rng.choice(self.data)
        inputs = ["--input", files[0].parent]
        split = ["--split-size", str(self.rng.choice([16 << 10, 64 << 10, 256 << 10]))]
        out = self.out(kind)
        if kind == "wordcount":
            reduces = self.rng.randint(1, 4)
            job = Job(kind, out, counts_as_lines(word_counts(files)))
            self.submit(job, [*inputs, "--output", out, "--app", "wordcount", "--reduce-tasks", reduces, *split])
        elif kind == "streaming":
            job = Job(kind, out, counts_as_lines(word_counts(files)))
            self.submit(job, [*inputs, "--output", out, "--mapper", marked(ASCII_WORD_MAPPER), "--combiner", SUM,
                              "--reducer", marked(SUM), "--reduce-tasks", self.rng.randint(1, 3), *split])
        elif kind == "sort":
            job = Job(kind, out, sorted(lines_of(files)), ordered=True)
            self.submit(job, [*inputs, "--output", out, "--app", "sort", "--reduce-tasks", 3, *split])
        elif kind == "map-only":
            job = Job(kind, out, sorted(line.upper() for line in lines_of(files)))
            self.submit(job, [*inputs, "--output", out, "--mapper", marked("tr a-z A-Z"), "--reduce-tasks", 0, *split])
        elif kind == "chain":
            first = Job("chain-first", out, counts_as_lines(word_counts(files)))
            self.submit(first, [*inputs, "--output", out, "--mapper", marked(ASCII_WORD_MAPPER), "--reducer", marked(SUM),
                                "--reduce-tasks", 2, *split])
            second_out = self.out("chain-second")
            second = Job("chain-second", second_out, sorted(first.expected), ordered=True)
            self.submit(second, ["--input", out, "--output", second_out, "--app", "sort", "--reduce-tasks", 2],
                        ["--after", first.id])
        else:
            job = Job(kind, out, counts_as_lines(word_counts(files)))
            self.submit(job, [*inputs, "--output", out, "--mapper", marked(f"sleep 2; {ASCII_WORD_MAPPER}"),
                              "--reducer", marked(SUM), *split])
            time.sleep(self.rng.uniform(0.2, 3))
            job.cancel_requested = True
            self.cluster.weft("cancel", job.id, check=False, timeout=60)

    def submitter(self):
        while not self.stop.is_set():
            try:
                self.one_job()
            except Exception as e:
                self.errors.append(f"submitter: {e}")
            self.stop.wait(self.rng.uniform(0.3, 1.5))

    def batcher(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                self.one_batch(n)
            except Exception as e:
                self.errors.append(f"batch {n}: {e}")
            self.stop.wait(self.rng.uniform(0.5, 2))

    def one_batch(self, n):
        """A batch of `weft tasks` (echo tasks, each payload its own, and short sleeps), every
        result checked against its task. A batch is not durable: one whose stream a
        coordinator kill cut is run again until it comes back whole; one cut by anything
        else, or with a wrong or failed result, is a failure."""
        tasks = []
        for i in range(BATCH_TASKS):
            if i % 100 == 99:
                tasks.append({"handler": "sleep", "payload": str(self.rng.randint(1, 50))})
            else:
                tasks.append({"handler": "echo", "payload": f"batch {n} task {i} {self.rng.random()}"})
        lines = "".join(json.dumps(task) + "\n" for task in tasks)
        for _ in range(20):
            done_before = self.cluster.kills_done
            result = subprocess.run([WEFT, "tasks", "--json", "--max-attempts", "10"], input=lines,
                                    capture_output=True, text=True, timeout=600, env=self.cluster.env)
            wrong = check_results(tasks, result.stdout)
            if wrong:
                raise AssertionError(wrong)
            if result.returncode == 0:
                self.batches["whole"] += 1
                return
            # Failed tasks were caught above: what is left is the stream (or the connection).
            begun = self.cluster.kills_begun
            if begun > done_before:
                self.batches["cut by a coordinator kill, run again"] += 1
                wait_until(lambda: self.cluster.kills_done >= begun, "the killed coordinator to serve again", 120)
                continue
            raise AssertionError(f"weft tasks exited {result.returncode}, no coordinator kill during it: "
                                 f"{result.stderr.strip()[-500:]}")
        raise AssertionError(f"cut by coordinator kills 20 times running; last: {result.stderr.strip()[-300:]}")

    def durable_batcher(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                self.one_durable_batch(n)
            except Exception as e:
                self.errors.append(f"durable batch {n}: {e}")
            self.stop.wait(self.rng.uniform(0.5, 2))

    def one_durable_batch(self, n):
        """A durable batch like `one_batch`'s, submitted with a key of its own (sent again with
        it while the submit fails: a fault may take the coordinator or its disk), then read
        back by its id through whatever faults come: every task has exactly one result, its
        own, carrying its task's id if it has one (every tenth); one task's result read by its
        id is its own; a second submit with the key names the same batch."""
        tasks = []
        for i in range(BATCH_TASKS):
            if i % 100 == 99:
                tasks.append({"handler": "sleep", "payload": str(self.rng.randint(1, 50))})
            else:
                tasks.append({"handler": "echo", "payload": f"durable {n} task {i} {self.rng.random()}"})
            if i % 10 == 0:
                tasks[-1]["id"] = f"d{n}-{i}"
        lines = "".join(json.dumps(task) + "\n" for task in tasks)
        key = f"soak-{self.rng.random()}"
        submit = [WEFT, "tasks", "--json", "--max-attempts", "10", "--durable", "--detach", "--key", key]
        batch = None
        for attempt in range(30):
            result = subprocess.run(submit, input=lines, capture_output=True, text=True, timeout=300, env=self.cluster.env)
            if result.returncode == 0:
                batch = result.stdout.strip()
                break
            self.durable["submits sent again"] += 1
            time.sleep(1)
        if batch is None:
            raise AssertionError(f"no submit of 30 was answered; last: {result.stderr.strip()[-300:]}")
        for _ in range(10):
            read = subprocess.run([WEFT, "results", batch, "--follow", "--ordered"], capture_output=True, text=True,
                                  timeout=600, env=self.cluster.env)
            if read.returncode == 0:
                break
            # A reader gives up after two minutes without a coordinator; start another.
            self.durable["readers started again"] += 1
        else:
            raise AssertionError(f"{batch}: its results could not be read: {read.stderr.strip()[-300:]}")
        printed = [line for line in read.stdout.splitlines() if line.strip()]
        if len(printed) != len(tasks):
            raise AssertionError(f"{batch}: {len(printed)} results for {len(tasks)} tasks")
        wrong = check_results(tasks, read.stdout)
        if wrong:
            raise AssertionError(f"{batch}: {wrong}")
        i = self.rng.randrange(0, BATCH_TASKS, 10)
        for _ in range(10):
            one = subprocess.run([WEFT, "results", batch, "--task", tasks[i]["id"], "--follow"], capture_output=True,
                                 text=True, timeout=600, env=self.cluster.env)
            if one.returncode == 0:
                break
            self.durable["readers started again"] += 1
        else:
            raise AssertionError(f"{batch}: task {tasks[i]['id']}'s result could not be read: {one.stderr.strip()[-300:]}")
        if json.loads(one.stdout) != json.loads(read.stdout.splitlines()[i]):
            raise AssertionError(f"{batch}: task {tasks[i]['id']}'s result by its id is {one.stdout.strip()!r}")
        again = subprocess.run(submit, input=lines, capture_output=True, text=True, timeout=300, env=self.cluster.env)
        if again.returncode == 0 and again.stdout.strip() != batch:
            raise AssertionError(f"the key of {batch} made another batch: {again.stdout.strip()}")
        self.durable["whole"] += 1

    def injector(self):
        actions = {
            "kill-worker": self.cluster.kill_worker,
            "pause-worker": self.cluster.pause_worker,
            "kill-coordinator": self.cluster.kill_coordinator,
            "kill-leader": self.cluster.kill_coordinator,
            "pause-leader": self.cluster.pause_leader,
            "fill-disk": self.cluster.fill_disk,
        }
        # Rounds of every kind of fault in a random order, a moment apart, until the end.
        order = []
        while not self.stop.wait(self.rng.uniform(0.5, 2.0)):
            if not order:
                order = self.kinds[:]
                self.rng.shuffle(order)
            fault = order.pop()
            try:
                actions[fault](self.rng)
                self.faults[fault] += 1
            except Exception as e:
                self.errors.append(f"{fault}: {e}")

    def run(self):
        threads = [threading.Thread(target=t, daemon=True) for t in
                   [self.submitter, self.submitter, self.submitter, self.batcher, self.durable_batcher, self.injector]]
        for t in threads:
            t.start()
        time.sleep(self.seconds)
        self.stop.set()
        for t in threads:
            t.join(timeout=120)

    def check(self):
        """Every acknowledged job ends, and ends right."""
        states = collections.Counter()
        checked = 0
        deadline = time.time() + 300
        for job in self.jobs:
            while True:
                result = self.cluster.weft("status", "--json", job.id, check=False)
                status = json.loads(result.stdout) if result.returncode == 0 else {}
                if status.get("state") in ("succeeded", "failed", "cancelled"):
                    break
                if time.time() > deadline:
                    self.errors.append(f"{job.id} ({job.kind}) never ended: {status.get('state')}")
                    break
                time.sleep(0.5)
            state = status.get("state", "unknown")
            states[state] += 1
            if state == "succeeded":
                try:
                    parts = parts_of(job.out)
                    lines = [line for part in parts for line in part.splitlines()]
                    if any(part and not part.endswith(b"\n") for part in parts):
                        raise AssertionError("a part without its last newline")
                    got = lines if job.ordered else sorted(lines)
                    if got != job.expected:
                        raise AssertionError(f"{len(got)} lines, {len(job.expected)} expected")
                    checked += sum(len(p) for p in parts)
                except AssertionError as e:
                    self.errors.append(f"{job.id} ({job.kind}) output {job.out}: {e}")
            elif state == "cancelled":
                left = [p.name for p in job.out.iterdir()] if job.out.exists() else []
                if left:
                    self.errors.append(f"{job.id} cancelled but left {left}")
                if not job.cancel_requested and job.kind != "chain-second":
                    self.errors.append(f"{job.id} ({job.kind}) cancelled by nobody")
            elif state == "failed":
                self.errors.append(f"{job.id} ({job.kind}) failed: {status.get('error')}")
        return states, checked

    def leftovers(self):
        """Task processes and temporary files still there once every job ended."""
        time.sleep(2)
        found = []
        tasks = subprocess.run(["pgrep", "-f", MARKER], capture_output=True, text=True).stdout.split()
        tasks = [p for p in tasks if int(p) != os.getpid()]
        if tasks:
            found.append(f"task processes {tasks}")
        out = self.cluster.root / "out"
        if out.exists():
            found += [str(p) for p in out.glob("*/.weft-tmp")]
        for work in [self.cluster.root / f"work-{i}" for i in range(3)] + [self.cluster.tmpfs_path()]:
            for name in ("map-output", "scratch"):
                d = work / name
                if d.exists() and any(d.iterdir()):
                    found.append(f"{d}: {sorted(p.name for p in d.iterdir())[:5]}")
        return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=120, help="how long jobs are submitted and faults injected")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="the random seed (printed; give it to replay)")
    parser.add_argument("--ha", action="store_true", help="two coordinators on PostgreSQL; the leader killed and paused")
    parser.add_argument("--keep", action="store_true", help="keep the directory of the run")
    args = parser.parse_args()
    log(f"== building weft and the queue load (release); seed {args.seed}")
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "weft"], cwd=REPO, check=True)
    if subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True).returncode != 0:
        log("soak: cannot make a user and mount namespace here (unshare); the tmpfs worker needs one")
        return 1
    root = Path(tempfile.mkdtemp(prefix="weft-soak-"))
    rng = random.Random(args.seed)
    started = time.time()
    cluster = None
    try:
        data = []
        for i, size in enumerate([64 << 10, 256 << 10, 1 << 20]):
            d = root / f"data-{i}"
            subprocess.run([WEFT, "generate-text", "--ascii", "--output", d, "--files", "3", "--size", str(size // 3),
                            "--seed", str(args.seed + i)], check=True, capture_output=True)
            data.append(sorted(d.iterdir()))
        (root / "out").mkdir()
        cluster = Cluster(root, ha=args.ha)
        soak = Soak(cluster, data, args.seconds, rng)
        log(f"== soaking for {args.seconds} s")
        soak.run()
        log("== waiting for every acknowledged job to end, and checking each")
        states, checked = soak.check()
        leftovers = soak.leftovers()
        rss = cluster.coordinator_rss()
        if rss > RSS_BOUND:
            soak.errors.append(f"coordinator RSS {rss >> 20} MiB, over {RSS_BOUND >> 20} MiB")
        soak.errors += [f"left behind: {x}" for x in leftovers]
        if soak.durable["whole"] == 0:
            soak.errors.append("no durable batch was read back whole")
        few = [f for f in soak.kinds if soak.faults[f] < 3]
        if few:
            soak.errors.append(f"fewer than three faults of {few}: {dict(soak.faults)}")
        faults = ", ".join(f"{f} {soak.faults[f]}" for f in soak.kinds)
        log(f"soak{' (ha: two coordinators on PostgreSQL)' if args.ha else ''}: {time.time() - started:.0f} s, seed {args.seed}; {len(soak.jobs)} jobs "
            f"({states['succeeded']} succeeded, {states['cancelled']} cancelled, {states['failed']} failed), "
            f"{sum(soak.batches.values())} runs of batches of {BATCH_TASKS:,} tasks, every result checked "
            f"({soak.batches['cut by a coordinator kill, run again']} cut by a coordinator kill and run again); "
            f"{soak.durable['whole']} durable batches, every result read once "
            f"({soak.durable['submits sent again']} submits sent again with their key, {soak.durable['readers started again']} readers started again); "
            f"faults: {faults}; {len(soak.errors)} failures; {checked / 1e6:.1f} MB of output checked; "
            f"coordinator RSS {rss / (1 << 20):.0f} MiB")
        for e in soak.errors:
            log(f"FAIL {e}")
        return 1 if soak.errors else 0
    finally:
        if cluster:
            cluster.stop()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
