#!/usr/bin/env python3
"""weft against what users would pick instead, on the same machine, in one run.

    bench/run.py [--size 1GiB] [--only wordcount,sort,queue,handlers,scale,wide] [--weft-only] [--tasks N]
    bench/run.py --weft-only --only security [--rounds 5]   # what TLS and tokens cost
    bench/run.py --weft-only --only observed [--rounds 5]   # what the dashboard and scrapes cost
    bench/run.py --weft-only --only objects                 # one 1 GiB object in S3 (moto), counted
    bench/run.py --weft-only --only takeover [--kills 20] [--lease 10]   # standbys taking over from killed leaders

Installs what it needs (a venv under target/bench-venv from PyPI; redis-server from Debian's
packages for Celery), builds weft and the bench programs in release mode, generates the data,
runs every system on the same data, checks that every system's output is identical to
weft's, and writes bench/results/<date>.md (system, wall time, MB/s or tasks/s, peak RSS,
ratio to weft) with a PNG chart beside it. A system that cannot be installed or fails is
reported with its error. --weft-only runs weft alone (the CI smoke).
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RELEASE = REPO / "target" / "release"
VENV = REPO / "target" / "bench-venv"
PY = VENV / "bin" / "python"
WORK = REPO / "target" / "bench"


def log(message):
    print(message, flush=True)


def parse_size(text):
    m = re.fullmatch(r"(\d+)\s*(k|kib|m|mib|g|gib)?", text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    scale = {None: 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
    return int(m.group(1)) * scale[m.group(2)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Measured:
    """One run of one system: wall time, peak RSS of its processes, output or error."""

    def __init__(self, system, seconds=None, rss=None, error=None, note=""):
        self.system, self.seconds, self.rss, self.error, self.note = system, seconds, rss, error, note
        self.extra = system.endswith("(extra)")


def timed(args, env=None, cwd=None, timeout=3600, stdout=None):
    """Runs a command; returns (seconds, peak RSS in bytes of it and its children, output).
    A command that prints much writes to `stdout` (an open file) instead: nothing reads the
    pipe while it runs."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(a) for a in args], env=env, cwd=cwd, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    deadline = started + timeout
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        if time.perf_counter() > deadline:
            proc.kill()
            raise RuntimeError(f"timed out after {timeout} s")
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {err.strip()[-1500:]}")
    return seconds, peak, out


def tree_rss(pid):
    """Resident bytes of a process and all its descendants now."""
    return sum(rss_of(p) for p in descendants(pid))


def process_children():
    """Every process's children now (pid → child pids): one scan of /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return children


def descendants(pid, children=None):
    """A process and all its descendants, now (or in `children`, a scan already made)."""
    children = process_children() if children is None else children
    stack, found = [pid], []
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(children.get(p, []))
    return found


def rss_of(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# Setup.

def build():
    log("== building weft and the bench programs (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "weft-cli", "-p", "weft-bench"], cwd=REPO, check=True)


def ensure_venv(packages):
    """Installs PyPI packages into the bench venv; returns {package: error} for failures."""
    if not PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    errors = {}
    for package in packages:
        name = re.split(r"[\[=<>]", package)[0]
        probe = subprocess.run([PY, "-c", f"import {name.replace('-', '_')}"], capture_output=True)
        if probe.returncode == 0:
            continue
        log(f"   installing {package} from PyPI")
        result = subprocess.run([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", package], capture_output=True, text=True)
        if result.returncode != 0:
            errors[name] = result.stderr.strip()[-500:]
    return errors


def ensure_redis():
    if shutil.which("redis-server"):
        return None
    log("   installing redis-server from Debian's packages")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    result = subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "redis-server"], capture_output=True, text=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return None if result.returncode == 0 else result.stderr.strip()[-500:]


class WeftCluster:
    """A coordinator and two workers, each its own process, on loopback; `secure`: TLS on
    every connection (the coordinator's, the workers' shuffle servers) and a bearer token on
    every client call, as a cluster on a network runs."""

    def __init__(self, slots, prefetch=0, secure=False, observed=False, worker=("weft", "worker"), worker_flags=(), env=None, workers=2, pin=None, state=None):
        self.dir = Path(tempfile.mkdtemp(prefix="weft-bench-"))
        self.port = free_port()
        http_ports = [free_port() for _ in range(1 + workers)] if observed else []
        # `pin`: the CPUs every process of the cluster may run on (taskset).
        self.pinned = ["taskset", "-c", pin] if pin else []
        pinned = self.pinned
        http = lambda i: ["--http", f"127.0.0.1:{http_ports[i]}"] if observed else []  # noqa: E731
        quiet = dict(os.environ, WEFT_LOG="warn", **(env or {}))
        tls = []
        self.client_env = dict(os.environ, **(env or {}))
        if secure:
            secrets = self.dir / "secrets"
            subprocess.run([RELEASE / "weft", "certs", "--dir", secrets], check=True, capture_output=True)
            tls = ["--tls-dir", secrets]
            self.client_env.update(WEFT_TLS_DIR=str(secrets), WEFT_TOKEN_FILE=str(secrets / "admin.token"))
        self.url = f"{'https' if secure else 'http'}://127.0.0.1:{self.port}"
        # `state`: a PostgreSQL URL for the coordinator's state (else SQLite in the state dir).
        stored = ["--state", state] if state else []
        self.coordinator = subprocess.Popen([*pinned, RELEASE / "weft", "coordinator", "--listen", f"127.0.0.1:{self.port}", "--state-dir", self.dir / "state", *stored, *tls, *http(0)], env=quiet, stderr=subprocess.DEVNULL)
        self.workers = [
            subprocess.Popen([*pinned, RELEASE / worker[0], *worker[1:], "--coordinator", self.url, "--slots", str(slots), "--prefetch", str(prefetch), "--work-dir", self.dir / f"work-{i}", *tls, *http(1 + i), *worker_flags], env=quiet, stderr=subprocess.DEVNULL)
            for i in range(workers)
        ]
        self.watcher = Watcher([f"http://127.0.0.1:{p}" for p in http_ports]) if observed else None
        deadline = time.time() + 30
        while subprocess.run([RELEASE / "weft", "health", "--coordinator", self.url], env=self.client_env, capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError("the coordinator did not start")
            time.sleep(0.1)
        time.sleep(0.5)

    def rss(self):
        # The workers' trees: warm handler processes count too.
        return rss_of(self.coordinator.pid) + sum(tree_rss(p.pid) for p in self.workers)

    def close(self):
        if self.watcher:
            self.watcher.stop()
        for p in [*self.workers, self.coordinator]:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Watcher:
    """What an operator's second screen and a Prometheus server do to a cluster: the
    dashboard's live jobs view held open (the coordinator re-renders it every second), and
    every /metrics read every second. `urls`: the coordinator's HTTP listener, then the
    workers'."""

    def __init__(self, urls):
        self.urls = urls
        self.stopping = threading.Event()
        self.scrapes = 0
        self.threads = [threading.Thread(target=self.scrape, daemon=True), threading.Thread(target=self.watch, daemon=True)]
        for t in self.threads:
            t.start()

    def scrape(self):
        while not self.stopping.wait(1.0):
            for url in self.urls:
                try:
                    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
                        r.read()
                    self.scrapes += 1
                except OSError:
                    pass

    def watch(self):
        while not self.stopping.is_set():
            try:
                with urllib.request.urlopen(f"{self.urls[0]}/live/jobs", timeout=5) as r:
                    while not self.stopping.is_set() and r.readline():
                        pass
            except OSError:
                self.stopping.wait(0.2)

    def stop(self):
        self.stopping.set()
        log(f"   watched: {self.scrapes} scrapes of /metrics")


def weft_cluster_job(flags, secure=False, observed=False, env=None, worker_peaks=None, workers=2, pin=None, kill_after=None, process_peaks=None, killed=None, state=None):
    # One slot per worker: two workers on two cores, as `weft run` sets them (two slots each
    # would run four tasks on two cores: 3.5 s against 2.8-3.1 s on the 1 GiB wordcount).
    # `worker_peaks`, a list: each worker's own peak RSS (its process tree) goes in it;
    # `process_peaks`, a list: the peak RSS of every single process of the cluster (the
    # coordinator, each worker, each of their children). `kill_after`: seconds after the
    # submission at which the first worker is killed (SIGKILL), mid-job; `killed`, a list: the
    # seconds into the job at which it was killed go in it.
    cluster = WeftCluster(slots=1, secure=secure, observed=observed, env=env, workers=workers, pin=pin, state=state)
    try:
        started = time.perf_counter()
        proc = subprocess.Popen([*cluster.pinned, RELEASE / "weft", "submit", "--coordinator", cluster.url, "--wait", *flags], env=cluster.client_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak = 0
        peaks = [0] * len(cluster.workers)
        singles = {}
        while proc.poll() is None:
            # One scan of /proc and one read of each process's RSS per tick.
            children = process_children()
            trees = [descendants(p.pid, children) for p in cluster.workers]
            now = {pid: rss_of(pid) for pid in [cluster.coordinator.pid, *descendants(proc.pid, children), *itertools.chain(*trees)]}
            peak = max(peak, sum(now.values()))
            peaks = [max(w, sum(now[pid] for pid in tree)) for w, tree in zip(peaks, trees)]
            if process_peaks is not None:
                for pid in [cluster.coordinator.pid, *itertools.chain(*trees)]:
                    singles[pid] = max(singles.get(pid, 0), now[pid])
            if kill_after is not None and time.perf_counter() - started > kill_after and cluster.workers[0].poll() is None:
                cluster.workers[0].send_signal(signal.SIGKILL)
                if killed is not None:
                    killed.append(time.perf_counter() - started)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.read().strip()[-1500:])
        if worker_peaks is not None:
            worker_peaks.extend(peaks)
        if process_peaks is not None:
            process_peaks.extend(singles.values())
        return seconds, peak
    finally:
        cluster.close()


def weft_queue(tasks, singles, secure=False, observed=False, handler="noop", payload=0, **cluster_options):
    """The queue benchmark on a cluster of 2 workers × 2 slots, 64 prefetched each: its
    JSON line and the cluster's RSS."""
    cluster = WeftCluster(2, prefetch=64, secure=secure, observed=observed, **cluster_options)
    try:
        _, rss, out = timed([*cluster.pinned, RELEASE / "queue", cluster.url, str(tasks), str(singles), handler, str(payload)], env=cluster.client_env)
        return json.loads(out.strip().splitlines()[-1]), cluster.rss() + rss
    finally:
        cluster.close()


def read_counts(path):
    """word → count from `word<TAB>count` files (a directory: its part files)."""
    files = sorted(path.glob("part-*")) if path.is_dir() else [path]
    counts = {}
    for f in files:
        with open(f, encoding="utf-8") as lines:
            for line in lines:
                word, _, n = line.rstrip("\n").partition("\t")
                counts[word] = counts.get(word, 0) + int(n)
    return counts


def same_lines(a, b):
    """Whether two outputs (files or directories of parts) hold the same lines, in order."""
    def lines(p):
        files = sorted(p.glob("part-*")) if p.is_dir() else [p]
        for f in files:
            with open(f, "rb") as handle:
                yield from handle
    missing = object()
    return all(x == y for x, y in itertools.zip_longest(lines(a), lines(b), fillvalue=missing))


# The benchmarks.

class Runs:
    """The systems run so far in one benchmark: their measurements and where their output is."""

    def __init__(self):
        self.results, self.outputs = [], {}

    def attempt(self, system, run, output, needs=None, errors=None):
        """Runs one system (`run` returns seconds and peak RSS); a failure, or the failed
        install of the package it `needs`, is recorded, not raised."""
        log(f"   {system}")
        if needs and needs in (errors or {}):
            self.results.append(Measured(system, error=f"cannot install {needs}: {errors[needs]}"))
            return
        try:
            # `run` may add a note: (seconds, RSS[, note]).
            seconds, rss, *note = run()
            self.results.append(Measured(system, seconds, rss, note="".join(note)))
            self.outputs[system] = output
        except Exception as e:
            self.results.append(Measured(system, error=str(e)))

    def check(self, reference_system, same):
        """Marks as failed every system whose output differs from the reference's."""
        reference = self.outputs.get(reference_system)
        for r in self.results:
            if r.error is None and reference is not None:
                difference = same(self.outputs[r.system], reference)
                if difference:
                    r.error, r.seconds = f"output differs from weft's: {difference}", None
        return self.results


def prepare(name, size, generate):
    """The data of a benchmark, generated once per size: (directory, files, total bytes)."""
    data = WORK / f"{name}-data"
    stamp = data / f".size-{size}"
    if not stamp.exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        generate(data)
        stamp.touch()
    inputs = sorted(p for p in data.iterdir() if not p.name.startswith("."))
    return data, inputs, sum(p.stat().st_size for p in inputs)


def human(size):
    """A size as people write it: 10 GiB, 64 MiB."""
    return f"{size / (1 << 30):.3g} GiB" if size >= 1 << 29 else f"{size / (1 << 20):.0f} MiB"


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


VOCABULARY = 1_000_000
LETTERS = {"ascii": "ASCII text", "world": "text in Latin, Cyrillic and CJK letters"}


def text_data(size, letters="ascii"):
    """Generated text for the wordcount, Zipf over a vocabulary of a million words (so that a
    word table does not fit in cache): (directory, files, total bytes)."""
    files = 8 if size >= (64 << 20) else 2

    def generate(data):
        log(f"   generating {size >> 20} MiB of {LETTERS[letters]}")
        subprocess.run([RELEASE / "weft", "generate-text", "--letters", letters, "--vocabulary", str(VOCABULARY), "--output", data, "--files", str(files), "--size", str(size // files), "--seed", "7"], check=True, capture_output=True)

    return prepare(f"wordcount-{letters}-{VOCABULARY}", size, generate)


def record_data(size):
    """100-byte records for the sort: (directory, files, total bytes)."""

    def generate(data):
        log(f"   generating {size >> 20} MiB of 100-byte records")
        subprocess.run([PY if PY.exists() else sys.executable, BENCH / "systems.py", "gensort", data, str(size)], check=True)

    return prepare(f"sort-{size >> 20}m", size, generate)


def jvm(args, total):
    """Runs a JVM peer through systems.py: (seconds, RSS), with the compute time (after the
    session started) it prints put in the note of the row `attempt` adds."""
    seconds, rss, out = timed([PY, BENCH / "systems.py", *args])
    compute = json.loads(out.strip().splitlines()[-1])["compute_seconds"]
    return seconds, rss, f"compute {compute:.2f} s ({total / compute / 1e6:,.0f} MB/s) after the session started"


WEFT_CLUSTER = "weft (coordinator + 2 workers, TLS + tokens)"
REFERENCE = "Rust, one thread (reference)"


def wordcount(size, letters, weft_only, errors):
    """The wordcount on one corpus: weft (a secured cluster, and `weft run`), the fastest
    single-threaded counter we could write, and the peers on their best paths; the RDD and
    GNU pipelines where their tokenizers can split the text the same way."""
    data, inputs, total = text_data(size, letters)
    out = fresh_dir(WORK / "wordcount-out")
    runs = Runs()
    split = str(max(total // 8, 1 << 20))
    job = ["--input", data, "--app", "wordcount", "--reduce-tasks", "2", "--split-size", split]
    runs.attempt(WEFT_CLUSTER, lambda: weft_cluster_job([*job, "--output", out / "weft-cluster"], secure=True), out / "weft-cluster")
    runs.attempt("weft run", lambda: timed([RELEASE / "weft", "run", *job, "--output", out / "weft-run"])[:2], out / "weft-run")
    runs.attempt(REFERENCE, lambda: timed([RELEASE / "wordcount-single", out / "single.tsv", data])[:2], out / "single.tsv")
    if not weft_only:
        runs.attempt("Spark local[2], DataFrame API", lambda: jvm(["spark-wordcount", letters, data, out / "spark"], total), out / "spark", "pyspark", errors)
        runs.attempt("Dask distributed (2 workers), a Counter per partition", lambda: timed([PY, BENCH / "systems.py", "dask-wordcount", letters, data, out / "dask.tsv"])[:2], out / "dask.tsv", "dask", errors)
        if letters == "ascii":
            gnu = f"cat {' '.join(map(str, inputs))} | tr -cs 'A-Za-z' '\\n' | grep -v '^$' | LC_ALL=C sort -S 50% --parallel=2 | uniq -c | awk '{{ print $2 \"\\t\" $1 }}' > {out / 'gnu.tsv'}"
            runs.attempt("GNU tr | sort | uniq -c (extra)", lambda: timed(["bash", "-c", gnu])[:2], out / "gnu.tsv")
            runs.attempt("Spark local[2], RDD API with Python lambdas (extra)", lambda: jvm(["spark-rdd-wordcount", data, out / "spark-rdd.tsv"], total), out / "spark-rdd.tsv", "pyspark", errors)

    want = {}

    def differs(output, reference):
        if not want:
            want.update(read_counts(reference))
        got = read_counts(output)
        return None if got == want else f"{len(got)} words vs {len(want)}"

    results = runs.check(WEFT_CLUSTER, differs)
    reference = next((r for r in results if r.system == REFERENCE and r.seconds), None)
    for r in results:
        if reference and r.seconds and r is not reference:
            r.note = (r.note + "; " if r.note else "") + f"{reference.seconds / r.seconds:.2f}× the one-thread reference"
    shutil.rmtree(out, ignore_errors=True)
    return {"title": f"wordcount, {total / (1 << 20):.0f} MiB of {LETTERS[letters]} (Zipf, {VOCABULARY:,} words)", "unit": "MB/s", "bytes": total, "results": results}


def gnu_sort(inputs, output, scratch):
    return timed(["bash", "-c", f"LC_ALL=C sort --parallel=2 -S 50% -T {scratch} {' '.join(map(str, inputs))} > {output}"])[:2]


def weft_sort(data, output, total, process_peaks=None):
    split = str(max(total // 8, 1 << 20))
    reduces = str(max(4, total // (256 << 20)))
    return weft_cluster_job(["--input", data, "--output", output, "--app", "sort", "--reduce-tasks", reduces, "--split-size", split], secure=True, process_peaks=process_peaks)


def sort(size, weft_only, errors):
    data, inputs, total = record_data(size)
    out = fresh_dir(WORK / "sort-out")
    runs = Runs()
    weft = "weft sort (coordinator + 2 workers, TLS + tokens)"
    runs.attempt(weft, lambda: weft_sort(data, out / "weft", total), out / "weft")
    if not weft_only:
        runs.attempt("GNU sort --parallel=2 -S 50%", lambda: gnu_sort(inputs, out / "gnu.txt", out), out / "gnu.txt")
        runs.attempt("Spark local[2], DataFrame API", lambda: jvm(["spark-sort", data, out / "spark"], total), out / "spark", "pyspark", errors)
        runs.attempt("Spark local[2], RDD API with a Python key (extra)", lambda: jvm(["spark-rdd-sort", data, out / "spark-rdd"], total), out / "spark-rdd", "pyspark", errors)
    results = runs.check(weft, lambda output, reference: None if same_lines(output, reference) else "different lines")
    shutil.rmtree(out, ignore_errors=True)
    return {"title": f"sort, {total / (1 << 20):.0f} MiB of 100-byte records", "unit": "MB/s", "bytes": total, "results": results}


def big_sort(size, big):
    """The sort at `size` and at `big` (10 GiB by default): weft's cluster and GNU sort, each
    process's peak RSS, and each system's big/small time ratio (how it scales past memory)."""
    free = shutil.disk_usage(WORK).free
    if free < big * 4:
        error = f"needs about {big * 4 >> 30} GiB free for input, shuffle and output; {free >> 30} GiB free"
        return {"title": "sort at two sizes", "unit": "MB/s", "results": [Measured("weft sort", error=error)]}
    results = []
    times = {}
    for amount in (size, big):
        data, inputs, total = record_data(amount)
        out = fresh_dir(WORK / "bigsort-out")
        peaks = []
        label = human(total)
        for system, run in [
            (f"weft sort, {label}", lambda: weft_sort(data, out / "weft", total, process_peaks=peaks)),
            (f"GNU sort --parallel=2 -S 50%, {label}", lambda: gnu_sort(inputs, out / "gnu.txt", out)),
        ]:
            log(f"   {system}")
            os.sync()
            try:
                seconds, rss = run()
                r = Measured(system, seconds, rss)
                r.bytes = total
                times[system.split(",")[0], amount] = seconds
                if peaks and system.startswith("weft"):
                    r.note = f"largest single process {max(peaks) / (1 << 20):,.0f} MiB (target < 1,536 MiB)"
                results.append(r)
            except Exception as e:
                results.append(Measured(system, error=str(e)))
        weft_row, gnu_row = results[-2:]
        if weft_row.error is None and gnu_row.error is None and not same_lines(out / "weft", out / "gnu.txt"):
            weft_row.error, weft_row.seconds = "weft's output differs from GNU sort's", None
        shutil.rmtree(out, ignore_errors=True)
    for r in results[2:]:
        name = r.system.split(",")[0]
        if (name, size) in times and (name, big) in times:
            r.note = (r.note + "; " if r.note else "") + f"{big // size}× the data in {times[name, big] / times[name, size]:.1f}× the time"
    return {"title": f"sort at {human(size)} and {human(big)} of 100-byte records", "unit": "MB/s", "results": results, "per_row_bytes": True}


QUEUE_BATCH = 1000


QUEUE_ROUNDS = 3


def queue(tasks, weft_only, errors):
    results = []
    # Workers configured for a work queue of short tasks: 64 prefetched each (Celery's
    # prefetch multiplier is set to 64 as well).
    # The floor under a single task's latency here: a loopback TCP round trip between two
    # processes, on two CPUs (waking the other CPU included) and on one. A task makes two:
    # client ↔ coordinator, coordinator ↔ worker.
    floors = {}
    for cpus, pinned in (("two CPUs", []), ("one CPU", ["taskset", "-c", "0"])):
        try:
            floors[cpus] = json.loads(timed([*pinned, RELEASE / "loopback-rtt"])[2])["p50_ms"]
        except Exception as e:
            log(f"   (no loopback round trip on {cpus}: {e})")
    floor = "; a loopback TCP round trip between two processes: p50 " + ", ".join(f"{ms:.3f} ms on {cpus}" for cpus, ms in floors.items())
    # Each weft row is the median of `QUEUE_ROUNDS` clusters by rate (this VM's rate spreads
    # by ±20% from one to the next), with every round's figures in its note.
    for system, pin in (("weft", None), ("weft, every process on CPU 0 (extra)", "0")):
        log(f"   {system} (coordinator + 2 workers × 2 slots, --prefetch 64), {QUEUE_ROUNDS} rounds")
        try:
            rounds = sorted((weft_queue(tasks, 2000, pin=pin) for _ in range(QUEUE_ROUNDS)), key=lambda r: r[0]["tasks_per_second"])
            stats, rss = rounds[len(rounds) // 2]
            # Singles two ways: a call (a batch) per task, and a TaskSubmitter's standing
            # stream (as the peers' clients submit over the connection they keep).
            note = (f"median of {QUEUE_ROUNDS}: {stats['tasks_per_second']:.0f} tasks/s, single tasks through a submitter p50 {stats['submitter_p50_ms']:.3f} ms, "
                    f"p99 {stats['submitter_p99_ms']:.3f} ms, a call each p50 {stats['p50_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms; all: "
                    + ", ".join(f"{r['tasks_per_second']:.0f}/s p50 {r['submitter_p50_ms']:.3f} / {r['p50_ms']:.3f} ms" for r, _ in rounds))
            results.append(Measured(system, stats["seconds"], rss, note=note + (floor if pin is None else "")))
        except Exception as e:
            results.append(Measured(system, error=str(e)))
    if not weft_only:
        peers = [("Dask distributed", "dask", None), ("Ray", "ray", None), ("Celery + Redis, -O fair", "celery", None)]
        # Their documentation's advice for tiny tasks, batching, as labelled extra rows: one
        # task of these rows runs BATCH calls, so a call has no retries or result of its own.
        peers += [(f"{system}, {QUEUE_BATCH:,} calls per task (extra)", package, QUEUE_BATCH) for system, package, _ in peers]
        for system, package, batch in peers:
            log(f"   {system} (2 worker processes)")
            if package in errors:
                results.append(Measured(system, error=f"cannot install {package}: {errors[package]}"))
                continue
            if package == "celery" and errors.get("redis-server"):
                results.append(Measured(system, error=f"cannot install redis-server: {errors['redis-server']}"))
                continue
            results.append(queue_peer(system, [f"{package}-queue", str(tasks), *([str(batch)] if batch else [])]))
    for r in results:
        if not hasattr(r, "tasks"):
            r.tasks = tasks
    return {"title": f"work queue, {tasks:,} no-op tasks in one batch, then 2,000 single tasks one at a time", "unit": "tasks/s", "results": results}


def queue_peer(system, args, latency=True):
    """Another system's queue measured by `systems.py ARGS`: its rate over the tasks it ran
    (and, with `latency`, that of single tasks when it measured them)."""
    try:
        _, rss, out = timed([PY, BENCH / "systems.py", *args], timeout=1800)
        stats = json.loads(out.strip().splitlines()[-1])
        note = f"{stats['tasks'] / stats['seconds']:.0f} tasks/s ({stats['tasks']} tasks)"
        if latency and "p50_ms" in stats:
            note += f"; p50 {stats['p50_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms"
        measured = Measured(system, stats["seconds"], rss, note=note)
        measured.tasks = stats["tasks"]
        return measured
    except Exception as e:
        return Measured(system, error=str(e))


def durable(tasks, weft_only, errors):
    """Durable task batches: `tasks` no-op tasks stored by the coordinator before they run,
    each result stored as it arrives and read back by the batch's id, with the state on
    SQLite and on PostgreSQL (a server on loopback, durable as shipped); beside them, in the
    same run, the same batch not durable, and Celery with Redis in its durable
    configuration (late acknowledgement, a result backend, Redis syncing every write). On
    SQLite also with an id on every task (as each Celery task has), and results then read
    one at a time by id."""
    results = []
    server = None
    stores = [("SQLite", lambda: None, False), ("SQLite", lambda: None, True)]
    try:
        server = PostgresServer()
        stores.append(("PostgreSQL", server.database, False))
    except Exception as e:
        results.append(Measured("weft, durable, state on PostgreSQL", error=f"no PostgreSQL server: {e}"))
    try:
        for store, database, ids in stores:
            name = f"weft, durable, state on {store}" + (", every task with an id" if ids else "")
            log(f"   {name}")
            cluster = WeftCluster(2, prefetch=64, state=database())
            try:
                command = [RELEASE / "durable", cluster.url, str(tasks), "noop"] + (["ids"] if ids else [])
                _, rss, out = timed(command, env=cluster.client_env)
                stats = json.loads(out.strip().splitlines()[-1])
                note = f"{stats['tasks_per_second']:.0f} tasks/s; the {tasks:,} tasks stored in {stats['stored_seconds']:.2f} s"
                if ids:
                    note += f"; one result read by its task's id in {stats['lookup_ms']:.2f} ms"
                results.append(Measured(name, stats["seconds"], cluster.rss() + rss, note=note))
            except Exception as e:
                results.append(Measured(name, error=str(e)))
            finally:
                cluster.close()
    finally:
        if server:
            server.close()
    log("   weft, the same batch not durable")
    try:
        stats, rss = weft_queue(tasks, 10)
        results.append(Measured("weft, not durable (as in the queue section)", stats["seconds"], rss, note=f"{stats['tasks_per_second']:.0f} tasks/s"))
    except Exception as e:
        results.append(Measured("weft, not durable (as in the queue section)", error=str(e)))
    if not weft_only:
        system = "Celery + Redis, durable (acks_late, result backend, appendfsync always)"
        log(f"   {system}")
        if "celery" in errors or errors.get("redis-server"):
            results.append(Measured(system, error=f"cannot install: {errors.get('celery') or errors.get('redis-server')}"))
        else:
            results.append(queue_peer(system, ["celery-durable", str(tasks)], latency=False))
    for r in results:
        if not hasattr(r, "tasks"):
            r.tasks = tasks
    return {"title": f"durable task batches, {tasks:,} no-op tasks stored, run and read back by id", "unit": "tasks/s", "results": results}


def ensure_weft_queue():
    """weft's own Python package, from this checkout, in the bench venv."""
    if not PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO / "clients" / "python")], check=True)


def handlers(tasks, weft_only, errors):
    """Your own code in the queue, 100-byte payloads echoed: the built-in echo and a Rust
    handler registered in a worker binary (both from the Rust client), a Python warm
    handler from the Python client gathered as futures, `weft tasks` feeding it lines, and
    Celery + Redis running a Python echo task, on 2 workers × 2 slots each."""
    payload = 100
    results = []

    def measure(system, run):
        log(f"   {system}")
        try:
            results.append(run())
        except Exception as e:
            results.append(Measured(system, error=str(e)))
        results[-1].tasks = getattr(results[-1], "tasks", tasks)

    def rust_client(system, **options):
        stats, rss = weft_queue(tasks, 200, handler=options.pop("handler"), payload=payload, **options)
        return Measured(system, stats["seconds"], rss, note=f"{stats['tasks_per_second']:,.0f} tasks/s; p50 {stats['p50_ms']:.3f} ms one at a time")

    measure("weft, built-in echo (Rust client)", lambda: rust_client("weft, built-in echo (Rust client)", handler="echo"))
    measure("weft, registered Rust handler (Rust client)", lambda: rust_client(
        "weft, registered Rust handler (Rust client)", handler="linked-echo", worker=("linked-worker",)))
    ensure_weft_queue()
    handler = f"pyecho=exec {PY} {BENCH / 'py_handler.py'}"

    def python_client():
        cluster = WeftCluster(2, prefetch=64, worker_flags=("--handler", handler))
        try:
            _, rss, out = timed([PY, BENCH / "py_queue.py", cluster.url, str(tasks), "pyecho", str(payload)])
            stats = json.loads(out.strip().splitlines()[-1])
            return Measured("weft, Python warm handler (Python client, futures)", stats["seconds"], cluster.rss() + rss, note=f"{stats['tasks_per_second']:,.0f} tasks/s")
        finally:
            cluster.close()

    def weft_tasks():
        lines = WORK / "task-lines.txt"
        lines.write_text("".join(f"{i:0{payload}d}\n" for i in range(tasks)))
        cluster = WeftCluster(2, prefetch=64, worker_flags=("--handler", handler))
        try:
            printed = WORK / "task-results.jsonl"
            with open(printed, "w") as results_file:
                seconds, rss, _ = timed([RELEASE / "weft", "tasks", "--coordinator", cluster.url, "--handler", "pyecho", lines], stdout=results_file)
            out = printed.read_text()
            if out.count("\n") != tasks or '"ok":false' in out:
                raise RuntimeError("weft tasks printed the wrong results")
            return Measured("weft tasks, Python warm handler (lines/s)", seconds, cluster.rss() + rss, note=f"{tasks / seconds:,.0f} lines/s end to end, read from a file, JSON lines out")
        finally:
            cluster.close()

    measure("weft, Python warm handler (Python client, futures)", python_client)
    measure("weft tasks, Python warm handler (lines/s)", weft_tasks)
    if not weft_only:
        def celery():
            if "celery" in errors or errors.get("redis-server"):
                raise RuntimeError(f"cannot install: {errors.get('celery') or errors.get('redis-server')}")
            seconds, rss, out = timed([PY, BENCH / "systems.py", "celery-echo", str(tasks), str(payload)], timeout=1800)
            stats = json.loads(out.strip().splitlines()[-1])
            r = Measured("Celery + Redis, Python echo task (group)", stats["seconds"], rss, note=f"{stats['tasks'] / stats['seconds']:,.0f} tasks/s ({stats['tasks']} tasks); p50 {stats['p50_ms']:.3f} ms one at a time")
            r.tasks = stats["tasks"]
            return r

        measure("Celery + Redis, Python echo task (group)", celery)
    return {"title": f"your own code in the queue: {tasks:,} tasks echoing {payload}-byte payloads", "unit": "tasks/s", "results": results}


def scale(tasks):
    results = []
    for per_connection, shape in ((100, "100 per connection"), (1, "a connection each")):
        base = None
        for workers in (10, 1000):
            system = f"weft, {workers} workers, {shape}"
            log(f"   {system}, {tasks:,} tasks")
            port = free_port()
            state = Path(tempfile.mkdtemp(prefix="weft-bench-"))
            coordinator = subprocess.Popen([RELEASE / "weft", "coordinator", "--listen", f"127.0.0.1:{port}", "--state-dir", state], env=dict(os.environ, WEFT_LOG="warn"), stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                _, _, out = timed([RELEASE / "sim-workers", f"http://127.0.0.1:{port}", str(coordinator.pid), str(workers), str(tasks), "4", str(per_connection)])
                stats = json.loads(out.strip().splitlines()[-1])
                per_second = stats["dispatch_per_second"]
                base = base or per_second
                note = f"{per_second:.0f} dispatches/s ({per_second / base:.0%} of 10 workers'); {stats['assignments_per_message']:.2f} assignments per message; {stats['rss_bytes_per_queued_task']:.0f} B RSS per queued task"
                r = Measured(system, stats["seconds"], stats["queued_rss"], note=note)
                r.tasks = tasks
                r.stats = stats
                results.append(r)
            except Exception as e:
                results.append(Measured(system, error=str(e)))
            finally:
                coordinator.kill()
                coordinator.wait()
                shutil.rmtree(state, ignore_errors=True)
    return {"title": f"coordinator scale: simulated workers draining {tasks:,} queued tasks", "unit": "tasks/s", "results": results}


def wide(tasks):
    """A job of `tasks` reduce tasks over a tiny input, on `weft run`: what scheduling costs
    per task when the work itself is nothing (the target: 100,000 in under 60 s)."""
    data = fresh_dir(WORK / "wide-data")
    (data / "words.txt").write_text("hello world hello\nfoo bar\n")
    out = WORK / "wide-out"
    shutil.rmtree(out, ignore_errors=True)
    log(f"   weft run --reduce-tasks {tasks:,} over 2 lines")
    results = []
    try:
        seconds, rss, _ = timed([RELEASE / "weft", "run", "--input", data, "--output", out, "--app", "wordcount", "--reduce-tasks", str(tasks)])
        parts = sorted(out.glob("part-*"))
        counts = read_counts(out)
        if len(parts) != tasks or counts != {"hello": 2, "world": 1, "foo": 1, "bar": 1}:
            raise RuntimeError(f"{len(parts)} parts, counts {counts}")
        r = Measured(f"weft run, {tasks:,} reduce tasks", seconds, rss, note=f"{tasks / seconds:,.0f} tasks/s")
        r.tasks = tasks
        results.append(r)
    except Exception as e:
        results.append(Measured(f"weft run, {tasks:,} reduce tasks", error=str(e)))
    shutil.rmtree(out, ignore_errors=True)
    return {"title": f"a wide job: {tasks:,} reduce tasks over a tiny input", "unit": "tasks/s", "results": results}


def recovery(size):
    """What losing a worker costs: the wordcount on 4 workers of 1 slot each (a secured
    cluster), undisturbed, then with one worker killed (SIGKILL) at 40% of the undisturbed
    time, mid-map: the maps it ran and the one it was running are run again elsewhere."""
    data, _, total = text_data(size)
    out = fresh_dir(WORK / "recovery-out")
    job = ["--input", data, "--app", "wordcount", "--reduce-tasks", "4", "--split-size", str(max(total // 16, 1 << 20))]
    results = []
    undisturbed = "weft, 4 workers × 1 slot, undisturbed"
    killed = "weft, 4 workers × 1 slot, one killed mid-map"
    try:
        log(f"   {undisturbed}")
        seconds, rss = weft_cluster_job([*job, "--output", out / "undisturbed"], secure=True, workers=4)
        results.append(Measured(undisturbed, seconds, rss))
        log(f"   {killed}")
        when = []
        lost_seconds, lost_rss = weft_cluster_job([*job, "--output", out / "killed"], secure=True, workers=4, kill_after=0.4 * seconds, killed=when)
        if read_counts(out / "killed") != read_counts(out / "undisturbed"):
            raise RuntimeError("the counts differ from the undisturbed run's")
        if not when:
            # Nothing was measured: a job of a few MiB ends between two looks.
            raise RuntimeError(f"the job ended in {lost_seconds:.2f} s, before the worker was to be killed: "
                               "too little data to measure a recovery (give --size 64MiB or more)")
        note = f"killed {when[0]:.2f} s into the job; {lost_seconds - seconds:+.2f} s ({lost_seconds / seconds - 1:+.0%}) against the undisturbed run"
        results.append(Measured(killed, lost_seconds, lost_rss, note=note))
    except Exception as e:
        results.append(Measured(killed if results else undisturbed, error=str(e)))
    shutil.rmtree(out, ignore_errors=True)
    return {"title": f"recovery: wordcount of {total / (1 << 20):.0f} MiB with a worker killed mid-map", "unit": "MB/s", "bytes": total, "results": results}


class PostgresServer:
    """A PostgreSQL server for the state benchmark, from Debian's `postgresql` package
    (installed when missing), in a temporary directory on a free loopback port, run as the
    `postgres` user under root (initdb and pg_ctl refuse root); durable as shipped (fsync,
    synchronous commit), as the SQLite store is (synchronous=FULL)."""

    def __init__(self):
        if not self.bin():
            log("   installing postgresql from Debian's packages")
            sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
            apt = dict(capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            subprocess.run(sudo + ["apt-get", "update", "-qq"], **apt)
            subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], check=True, **apt)
        self.dir = Path(tempfile.mkdtemp(prefix="weft-bench-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.databases = 0
        try:
            if self.as_user:
                shutil.chown(self.dir, user="postgres")
            self.port = free_port()
            self.run("initdb", "-D", self.dir / "data", "--auth=trust", "--username=weft", "-E", "UTF8")
            self.run("pg_ctl", "-D", self.dir / "data", "-l", self.dir / "log", "-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        except Exception:
            self.close()
            raise

    @staticmethod
    def bin():
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        return found[-1].parent if found else None

    def run(self, program, *args):
        subprocess.run([*self.as_user, self.bin() / program, *map(str, args)], check=True, capture_output=True)

    def database(self):
        """A fresh database's URL, as `weft coordinator --state` takes it."""
        self.databases += 1
        name = f"bench_{self.databases}"
        subprocess.run([self.bin() / "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "weft", "-d", "postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return f"postgres://weft@127.0.0.1:{self.port}/{name}?sslmode=disable"

    def close(self):
        if self.bin() and (self.dir / "data").exists():
            subprocess.run([*self.as_user, self.bin() / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def state(size, jobs, rounds):
    """What the coordinator's state store costs, SQLite (the default) against PostgreSQL (a
    server on loopback, started here), in one run: a burst of `jobs` submits, 32 at a time,
    each timed to its acknowledgement (the job durable in the store), on a coordinator with
    no workers; and the wordcount on a secured cluster. Each store `rounds` times,
    alternately (which goes first swaps each round); the median of each, with the spread."""
    data, _, total = text_data(size)
    out = fresh_dir(WORK / "state-out")
    tiny = out / "tiny.txt"
    tiny.write_text("a few words\n")
    burst, counted = [], []
    server = None
    try:
        server = PostgresServer()
        stores = [("SQLite", lambda: None), ("PostgreSQL", server.database)]
    except Exception as e:
        stores = [("SQLite", lambda: None)]
        burst.append(Measured("weft, state on PostgreSQL", error=f"no PostgreSQL server: {e}"))
        counted.append(Measured("weft, state on PostgreSQL", error=f"no PostgreSQL server: {e}"))
    job = ["--input", data, "--app", "wordcount", "--reduce-tasks", "2", "--split-size", str(max(total // 8, 1 << 20))]
    try:
        state_runs(stores, rounds, jobs, job, tiny, out, burst, counted)
    finally:
        if server:
            server.close()
    if all(r.seconds for r in counted) and len(counted) == 2 and read_counts(out / "wordcount-SQLite") != read_counts(out / "wordcount-PostgreSQL"):
        counted[1] = Measured(counted[1].system, error="its counts differ from the run on SQLite")
    for r in burst:
        r.tasks = jobs
    shutil.rmtree(out, ignore_errors=True)
    return [
        {"title": f"the state store: {jobs:,} job submits, 32 at a time, each to its acknowledgement", "unit": "jobs/s", "results": burst},
        {"title": f"the state store: wordcount of {total / (1 << 20):.0f} MiB, secured cluster", "unit": "MB/s", "bytes": total, "results": counted},
    ]


def state_runs(stores, rounds, jobs, job, tiny, out, burst, counted):
    """The burst and the wordcount on each store, `rounds` times alternately; a row for
    each store's median goes in `burst` and `counted`, the measured ones first."""
    samples = {name: {"burst": [], "counted": []} for name, _ in stores}
    failed = {}
    for round_ in range(rounds):
        for name, database in stores if round_ % 2 == 0 else stores[::-1]:
            if name in failed:
                continue
            system = f"weft, state on {name}"
            try:
                log(f"   {system}, round {round_ + 1}: {jobs:,} submits")
                cluster = WeftCluster(slots=1, secure=True, workers=0, state=database())
                try:
                    _, rss, printed = timed([RELEASE / "submits", cluster.url, tiny, out / f"burst-{name}-{round_}", str(jobs)], env=cluster.client_env)
                    stats = json.loads(printed.strip().splitlines()[-1])
                    samples[name]["burst"].append((stats["seconds"], rss + cluster.rss(), stats))
                finally:
                    cluster.close()
                log(f"   {system}, round {round_ + 1}: the wordcount")
                target = out / f"wordcount-{name}"
                shutil.rmtree(target, ignore_errors=True)
                seconds, rss = weft_cluster_job([*job, "--output", target], secure=True, state=database())
                samples[name]["counted"].append((seconds, rss, None))
            except Exception as e:
                failed[name] = str(e)
    for name, _ in stores:
        system = f"weft, state on {name}"
        for rows, kind in ((burst, "burst"), (counted, "counted")):
            runs = sorted(samples[name][kind], key=lambda r: r[0])
            if name in failed or not runs:
                rows.append(Measured(system, error=failed.get(name, "no run")))
                continue
            seconds, rss, stats = runs[len(runs) // 2]
            note = f"median of {len(runs)}: " + ", ".join(f"{r[0]:.2f}" for r in runs) + " s"
            if stats:
                note += f"; its submit latency p50 {stats['p50_ms']:.2f} ms, p99 {stats['p99_ms']:.2f} ms"
            rows.insert(len([r for r in rows if r.seconds]), Measured(system, seconds, rss, note=note))


def takeover(kills, lease, grace):
    """How long a standby takes to lead after the leader dies: two coordinators on one
    PostgreSQL state (a server on loopback, started here), each with a host name of its own
    (as on two machines), `--leader-lease LEASE`, and a worker given both. Each of `kills` rounds submits a job whose maps run until cancelled,
    kills the leader (SIGKILL) once they run, and reads from the other's log when it led and
    when it dispatched its first attempt (the recovered job's maps: the running ones are
    adopted from the worker that carried them over, logged as dispatched when claimed, or
    dispatched again after `--recovery-grace GRACE`); then the job is cancelled and the killed one started again to
    stand by for the next round, in which it is the other that is killed. The median and
    the worst of each, against the target of lease + 5 s."""
    server = PostgresServer()
    base = Path(tempfile.mkdtemp(prefix="weft-bench-takeover-"))
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    env = dict(os.environ, WEFT_COORDINATOR=",".join(urls))
    state = server.database()
    procs, logs, worker = [None, None], [None, None], None
    started = [0]

    def start(i):
        started[0] += 1
        logs[i] = base / f"coordinator-{i}-{started[0]}.log"
        # Each coordinator with a host name of its own (a UTS namespace), as on two machines:
        # a standby then cannot tell the leader's process is gone, and waits out its lease.
        own_host = ["unshare", "--user", "--map-root-user", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', f"weft-bench-host-{i}"]
        procs[i] = subprocess.Popen(
            [*own_host, RELEASE / "weft", "coordinator", "--listen", f"127.0.0.1:{ports[i]}", "--state-dir", base / f"state-{i}", "--state", state,
             "--leader-lease", str(lease), "--recovery-grace", str(grace)],
            env=dict(os.environ, WEFT_LOG="info,weft_coordinator::driver=debug"), stderr=open(logs[i], "w"))

    def health(i, *flags):
        return subprocess.run([RELEASE / "weft", "health", "--coordinator", urls[i], *flags], capture_output=True, text=True)

    def wait(what, check, timeout=60):
        deadline = time.time() + timeout
        while not check():
            if time.time() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def logged_after(i, needle, after):
        stamp = re.compile(r"^(\S+?)(\.\d{1,6})\d*Z ")
        for line in logs[i].read_text(errors="replace").splitlines():
            found = stamp.match(line)
            if needle in line and found:
                when = datetime.datetime.fromisoformat(found.group(1) + found.group(2) + "+00:00").timestamp()
                if when > after:
                    return when
        return None

    led, dispatched = [], []
    try:
        start(0)
        wait("the first coordinator to lead", lambda: health(0, "--leader").returncode == 0)
        start(1)
        wait("the second to stand by", lambda: "standing by" in health(1).stdout)
        worker = subprocess.Popen([RELEASE / "weft", "worker", "--coordinator", ",".join(urls), "--slots", "2", "--work-dir", base / "work"],
                                  env=dict(os.environ, WEFT_LOG="warn"), stderr=subprocess.DEVNULL)
        inputs = base / "in"
        inputs.mkdir()
        for n in range(2):
            (inputs / f"{n}.txt").write_text("a line\n")
        leader = 0
        for round_ in range(kills):
            out = base / f"out-{round_}"
            submitted = subprocess.run([RELEASE / "weft", "submit", "--input", inputs, "--output", out, "--mapper", "sleep 3600", "--reduce-tasks", "0"],
                                       env=env, capture_output=True, text=True, check=True)
            job = submitted.stdout.strip()
            def running():
                status = subprocess.run([RELEASE / "weft", "status", "--json", job], env=env, capture_output=True, text=True)
                return status.returncode == 0 and json.loads(status.stdout).get("running_attempts", 0) > 0
            wait("the job's maps to run", running)
            standby = 1 - leader
            killed = time.time()
            procs[leader].send_signal(signal.SIGKILL)
            procs[leader].wait()
            wait("the standby to lead and dispatch", lambda: logged_after(standby, "dispatch task=", killed), timeout=lease + 120)
            led.append(logged_after(standby, "leading", killed) - killed)
            dispatched.append(logged_after(standby, "dispatch task=", killed) - killed)
            log(f"   kill {round_ + 1}: led after {led[-1]:.2f} s, first dispatch after {dispatched[-1]:.2f} s")
            subprocess.run([RELEASE / "weft", "cancel", job], env=env, capture_output=True)
            start(leader)
            wait("the killed one to stand by", lambda: "standing by" in health(leader).stdout)
            leader = standby
    except Exception as e:
        return {"title": f"takeover after the leader is killed ({kills} kills, lease {lease} s)", "unit": "s⁻¹", "results": [Measured("weft, takeover", error=str(e))]}
    finally:
        for p in [*procs, worker]:
            if p and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        server.close()
        shutil.rmtree(base, ignore_errors=True)
    results = []
    for what, times in (("the standby leads", led), (f"its first dispatch (recovery grace {grace} s)", dispatched)):
        ordered = sorted(times)
        median, worst = ordered[len(ordered) // 2], ordered[-1]
        verdict = "within" if worst <= lease + 5 else "BEYOND"
        r = Measured(f"weft, the leader killed → {what}", median, 0, note=f"median of {len(times)}; worst {worst:.2f} s, {verdict} the target of lease + 5 s = {lease + 5} s; all: " + ", ".join(f"{t:.2f}" for t in times))
        r.tasks = 1
        results.append(r)
    return {"title": f"takeover after the leader is killed ({kills} kills, --leader-lease {lease})", "unit": "s⁻¹", "results": results}


def streaming(size, rounds):
    """weft's own cost around user code: a Python streaming mapper and reducer on one worker
    of one slot, one split, every process on CPU 0, against the same scripts piped by hand
    on CPU 0 (`cat | mapper | LC_ALL=C sort | reducer`): the median of `rounds` runs each,
    alternated. Python buffers its output as it does by default (`PYTHONUNBUFFERED` empty,
    whatever the bench's own environment says); the extra rows run it unbuffered, a write
    per word, where the cost of each read around the scripts is what is measured."""
    def generate(data):
        subprocess.run([RELEASE / "weft", "generate-text", "--letters", "ascii", "--output", data, "--files", "1", "--size", str(size), "--seed", "11"], check=True, capture_output=True)
    _, (text,), total = prepare("streaming", size, generate)
    mapper, reducer = f"{sys.executable} {BENCH / 'streaming' / 'mapper.py'}", f"{sys.executable} {BENCH / 'streaming' / 'reducer.py'}"
    out = fresh_dir(WORK / "streaming-out")
    results = []
    for unbuffered, label in (("", ""), ("1", ", Python unbuffered (extra)")):
        env = {"PYTHONUNBUFFERED": unbuffered}
        samples = {"weft": [], "pipe": []}
        try:
            for round_ in range(rounds):
                for side in ("weft", "pipe") if round_ % 2 == 0 else ("pipe", "weft"):
                    target = out / f"{side}-{unbuffered}-{round_}"
                    if side == "weft":
                        flags = ["--input", text, "--output", target, "--mapper", mapper, "--reducer", reducer, "--reduce-tasks", "1", "--split-size", str(total * 2)]
                        samples[side].append(weft_cluster_job(flags, secure=True, workers=1, pin="0", env=env))
                    else:
                        pipe = f"cat {text} | {mapper} | LC_ALL=C sort | {reducer} > {target}"
                        samples[side].append(timed(["taskset", "-c", "0", "bash", "-c", pipe], env=dict(os.environ, **env))[:2])
                    log(f"   {side}{label} round {round_ + 1}: {samples[side][-1][0]:.2f} s")
            if read_counts(out / f"weft-{unbuffered}-0") != read_counts(out / f"pipe-{unbuffered}-0"):
                raise RuntimeError("weft's counts differ from the hand pipe's")
        except Exception as e:
            results.append(Measured(f"weft streaming{label}", error=str(e)))
            continue
        medians = {side: sorted(times)[len(times) // 2] for side, times in samples.items()}
        for side, system in [("weft", f"weft streaming, 1 worker × 1 slot, 1 split, on CPU 0{label}"), ("pipe", f"cat | mapper | LC_ALL=C sort | reducer, on CPU 0{label}")]:
            seconds, rss = medians[side]
            runs = ", ".join(f"{t:.2f}" for t, _ in samples[side])
            note = f"median of {rounds}: {runs} s"
            if side == "weft":
                note += f"; {seconds / medians['pipe'][0] - 1:+.1%} against the hand pipe" + ("" if unbuffered else " (target ≤ +10%)")
            results.append(Measured(system, seconds, rss, note=note))
    shutil.rmtree(out, ignore_errors=True)
    return {"title": f"streaming overhead: Python mapper and reducer on {total >> 20} MiB, one core", "unit": "MB/s", "bytes": total, "results": results}


def objects(size):
    """One object of `size` bytes (the wordcount's text, concatenated) in an S3 server (moto,
    from PyPI, on loopback), counted by a cluster from s3:// to s3://, beside the same job on
    the local files: the rate, and each worker's peak RSS (the target: under 256 MiB, so
    that a map streams its ranges and never holds its split)."""
    missing = ensure_venv(["moto[server]", "boto3"])
    if missing:
        return {"title": "wordcount from and to S3", "unit": "MB/s", "bytes": size, "results": [Measured("weft s3", error=str(missing))]}
    data, inputs, total = text_data(size)
    corpus = WORK / "objects-corpus.txt"
    if not corpus.exists() or corpus.stat().st_size != total:
        with open(corpus, "wb") as joined:
            for path in inputs:
                with open(path, "rb") as part:
                    shutil.copyfileobj(part, joined, 1 << 20)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    s3_env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    moto = subprocess.Popen([VENV / "bin" / "moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = fresh_dir(WORK / "objects-out")
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("moto did not start")
                time.sleep(0.2)
        env = dict(os.environ, **s3_env)
        subprocess.run([PY, "-c", "import boto3, os; boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).create_bucket(Bucket='bench')"], env=env, check=True)
        log(f"   uploading one {total >> 20} MiB object")
        subprocess.run([PY, "-c", f"import boto3, os; boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).upload_file('{corpus}', 'bench', 'corpus.txt')"], env=env, check=True)
        split = str(max(total // 8, 1 << 20))
        runs = Runs()
        peaks = {}
        local = "weft, local files (coordinator + 2 workers)"
        remote = "weft, one object s3:// to s3:// (coordinator + 2 workers)"
        for system, flags, output in [
            (local, ["--input", data, "--output", out / "local"], out / "local"),
            (remote, ["--input", "s3://bench/corpus.txt", "--output", "s3://bench/counts"], out / "s3"),
        ]:
            peaks[system] = []
            job = ["--app", "wordcount", "--reduce-tasks", "2", "--split-size", split]

            def run(flags=flags, system=system, output=output):
                measured = weft_cluster_job([*flags, *job], env=s3_env, worker_peaks=peaks[system])
                if system == remote:
                    output.mkdir(parents=True, exist_ok=True)
                    for r in range(2):
                        subprocess.run([PY, "-c", f"import boto3, os; boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL']).download_file('bench', 'counts/part-0000{r}', '{output / f'part-0000{r}'}')"], env=env, check=True)
                return measured

            runs.attempt(system, run, output)
        results = runs.check(local, lambda output, reference: None if read_counts(output) == read_counts(reference) else "different counts")
        for r in results:
            if peaks.get(r.system):
                worst = max(peaks[r.system])
                r.note = (r.note + "; " if r.note else "") + f"worker peak RSS {worst / (1 << 20):.0f} MiB (target < 256 MiB)"
        return {"title": f"wordcount of one {total / (1 << 20):.0f} MiB object in S3 (moto), against local files", "unit": "MB/s", "bytes": total, "results": results}
    finally:
        moto.send_signal(signal.SIGKILL)
        moto.wait()
        shutil.rmtree(out, ignore_errors=True)


def security(size, tasks, rounds):
    """What TLS and tokens cost: each workload on a plaintext cluster and on a secured one
    (TLS on every connection, a token on every call)."""
    return paired("TLS and tokens against plaintext", [("plaintext", {}), ("TLS + tokens", {"secure": True})], size, tasks, rounds)


def observed(size, tasks, rounds):
    """What watching costs: each workload on a cluster nobody looks at, and on one whose
    dashboard is open (its live jobs view re-rendered every second) while Prometheus-style
    scrapes read the coordinator's and both workers' /metrics every second."""
    return paired("With the dashboard open and metrics scraped every second", [("unwatched", {}), ("watched", {"observed": True})], size, tasks, rounds)


def paired(title, sides, size, tasks, rounds):
    """Each workload on two kinds of cluster (`sides`: a label and WeftCluster options each),
    alternately, `rounds` times each; the median and the spread of each."""
    wc_data, _, wc_total = text_data(size)
    sort_data, _, sort_total = record_data(size)
    out = fresh_dir(WORK / "paired-out")
    workloads = [
        ("wordcount", wc_total, "MB/s", lambda mode, o: weft_cluster_job(["--input", wc_data, "--output", o, "--app", "wordcount", "--reduce-tasks", "2", "--split-size", str(max(wc_total // 8, 1 << 20))], **mode), read_counts),
        ("sort", sort_total, "MB/s", lambda mode, o: weft_cluster_job(["--input", sort_data, "--output", o, "--app", "sort", "--reduce-tasks", "4", "--split-size", str(max(sort_total // 8, 1 << 20))], **mode), None),
        ("queue", None, "tasks/s", lambda mode, o: weft_queue(tasks, 500, **mode), None),
    ]
    sections = []
    for name, total, unit, run, read in workloads:
        samples = {0: [], 1: []}
        notes = {0: [], 1: []}
        error = None
        for round_ in range(rounds):
            # Each side goes first in every other round, so that neither always runs in the
            # other's wake; written data is synced first, so that no run pays for another's
            # writeback.
            for side in (0, 1) if round_ % 2 == 0 else (1, 0):
                label, mode = sides[side]
                target = out / f"{name}-{side}-{round_}"
                os.sync()
                try:
                    result = run(mode, target)
                except Exception as e:
                    error = error or f"{label}: {e}"
                    continue
                if name == "queue":
                    stats, rss = result
                    samples[side].append((stats["seconds"], rss))
                    notes[side].append(stats["p50_ms"])
                else:
                    samples[side].append(result)
                log(f"   {name} {label} round {round_ + 1}: {samples[side][-1][0]:.3f} s")
                if round_ > 0:
                    shutil.rmtree(target, ignore_errors=True)
            if round_ == 0 and name != "queue" and not error:
                first, second = out / f"{name}-0-0", out / f"{name}-1-0"
                same = read_counts(first) == read_counts(second) if read else same_lines(first, second)
                if not same:
                    error = f"the {sides[1][0]} cluster's output differs from the {sides[0][0]} one's"
                shutil.rmtree(first, ignore_errors=True)
                shutil.rmtree(second, ignore_errors=True)
        results = []
        for side, (label, _) in enumerate(sides):
            times = sorted(t for t, _ in samples[side])
            if not times or error:
                results.append(Measured(f"weft {name}, {label}", error=error or "no run finished"))
                continue
            median = times[len(times) // 2]
            note = f"median of {len(times)}; runs {', '.join(f'{t:.2f}' for t in times)} s; spread {(times[-1] - times[0]) / median:.0%}"
            if notes[side]:
                p50 = sorted(notes[side])[len(notes[side]) // 2]
                note += f"; single-task p50 {p50:.3f} ms"
            r = Measured(f"weft {name}, {label}", median, max(m for _, m in samples[side]), note=note)
            r.tasks = tasks
            results.append(r)
        section = {"title": f"{title}: {name}", "unit": unit, "results": results}
        if total:
            section["bytes"] = total
        sections.append(section)
    shutil.rmtree(out, ignore_errors=True)
    return sections


# The report.

def rate(section, r):
    if r.seconds is None:
        return None
    if section["unit"] == "MB/s":
        return (r.bytes if section.get("per_row_bytes") else section["bytes"]) / r.seconds / 1e6
    return r.tasks / r.seconds


def report(sections, args, started):
    date = datetime.date.today().isoformat()
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    name = date + ("-smoke" if args.weft_only else "") + (f"-{args.only.replace(',', '-')}" if args.only else "")
    lines = [
        f"# weft benchmarks, {date}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / (1 << 30))} GiB RAM, {platform.platform()}.",
        f"Command: `bench/run.py {' '.join(sys.argv[1:])}` ({time.time() - started:.0f} s). Every system ran in this one run on the same data; outputs were checked against weft's.",
        "",
    ]
    for section in sections:
        lines += [f"## {section['title']}", "", "| system | wall time | rate | peak RSS | ratio to weft | notes |", "|---|---|---|---|---|---|"]
        base = rate(section, section["results"][0])
        for r in section["results"]:
            system, note = r.system.replace("|", "\\|"), r.note.replace("|", "\\|")
            if r.error:
                reason = (r.error.strip().splitlines() or ["failed"])[0][:300].replace("|", "\\|")
                lines.append(f"| {system} | failed | | | | {reason} |")
                continue
            value = rate(section, r)
            ratio = f"{value / base:.3g}×" if base else ""
            lines.append(f"| {system} | {r.seconds:.2f} s | {value:,.0f} {section['unit']} | {r.rss / (1 << 20):,.0f} MiB | {ratio} | {note} |")
        lines.append("")
    path = results_dir / f"{name}.md"
    path.write_text("\n".join(lines))
    chart(sections, results_dir / f"{name}.png")
    log(f"== wrote {path.relative_to(REPO)}")
    print("\n".join(lines))


def chart(sections, path):
    """A bar chart of every section's rates, drawn by matplotlib (in the bench venv if this
    interpreter lacks it)."""
    data = [
        {"title": s["title"], "unit": s["unit"], "bars": [(r.system, rate(s, r)) for r in s["results"] if r.seconds]}
        for s in sections
    ]
    python = sys.executable
    if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        python = PY if PY.exists() else None
    if python is None or subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
        log("   (no chart: matplotlib is not installed; run without --weft-only to install it)")
        return
    result = subprocess.run([python, BENCH / "systems.py", "chart", path], input=json.dumps(data), text=True, capture_output=True)
    if result.returncode != 0:
        log(f"   (no chart: {result.stderr.strip()[-300:]})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="data per data benchmark (default 1GiB)")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks in the work-queue batch (default 100000)")
    parser.add_argument("--scale-tasks", type=int, default=1_000_000, help="tasks the simulated workers drain (default 1000000)")
    parser.add_argument("--only", help="comma-separated: wordcount, wordcount-world, sort, bigsort, queue, handlers, scale, wide, recovery, streaming, state, security, observed, objects, takeover (the last four only when named)")
    parser.add_argument("--streaming-size", type=parse_size, default=32 << 20, help="text for the streaming overhead (default 32MiB)")
    parser.add_argument("--big-size", type=parse_size, default=10 << 30, help="the larger sort of bigsort (default 10GiB)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side in the security, observed and state comparisons (default 5)")
    parser.add_argument("--wide-tasks", type=int, default=100_000, help="reduce tasks of the wide job (default 100000)")
    parser.add_argument("--weft-only", action="store_true", help="run weft alone (no other system installed)")
    parser.add_argument("--submits", type=int, default=1_000, help="job submits in the state store's burst (default 1000)")
    parser.add_argument("--kills", type=int, default=20, help="leaders killed in the takeover section (default 20)")
    parser.add_argument("--lease", type=int, default=10, help="--leader-lease of the takeover section's coordinators (default 10)")
    parser.add_argument("--recovery-grace", type=int, default=1, help="--recovery-grace of the takeover section's coordinators (default 1)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else {"wordcount", "wordcount-world", "sort", "bigsort", "queue", "durable", "handlers", "scale", "wide", "recovery", "streaming", "state"}
    started = time.time()
    build()
    WORK.mkdir(parents=True, exist_ok=True)
    errors = {}
    if not args.weft_only:
        log("== installing the other systems")
        # Only what the chosen sections compare with.
        needs = {
            "wordcount": ["pyspark==4.3.0", "dask[distributed]"],
            "wordcount-world": ["pyspark==4.3.0", "dask[distributed]"],
            "sort": ["pyspark==4.3.0"],
            "queue": ["dask[distributed]", "ray", "celery[redis]"],
            "durable": ["celery[redis]"],
            "handlers": ["celery[redis]"],
        }
        packages = sorted({p for section in only for p in needs.get(section, [])}) + ["matplotlib"]
        errors.update(ensure_venv(packages))
        if "celery[redis]" in packages:
            redis = ensure_redis()
            if redis:
                errors["redis-server"] = redis
    sections = []
    for name, run in [
        ("wordcount", lambda: wordcount(args.size, "ascii", args.weft_only, errors)),
        ("wordcount-world", lambda: wordcount(args.size, "world", args.weft_only, errors)),
        ("sort", lambda: sort(args.size, args.weft_only, errors)),
        ("bigsort", lambda: big_sort(args.size, args.big_size)),
        ("queue", lambda: queue(args.tasks, args.weft_only, errors)),
        ("durable", lambda: durable(args.tasks, args.weft_only, errors)),
        ("handlers", lambda: handlers(args.tasks, args.weft_only, errors)),
        ("scale", lambda: scale(args.scale_tasks)),
        ("wide", lambda: wide(args.wide_tasks)),
        ("recovery", lambda: recovery(args.size)),
        ("streaming", lambda: streaming(args.streaming_size, 3)),
        ("state", lambda: state(args.size, args.submits, args.rounds)),
        ("security", lambda: security(args.size, args.tasks, args.rounds)),
        ("observed", lambda: observed(args.size, args.tasks, args.rounds)),
        ("objects", lambda: objects(args.size)),
        ("takeover", lambda: takeover(args.kills, args.lease, args.recovery_grace)),
    ]:
        if name in only:
            log(f"== {name}")
            made = run()
            sections.extend(made if isinstance(made, list) else [made])
    report(sections, args, started)
    failed = [r.system for s in sections for r in s["results"] if r.error and r.system.startswith("weft")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
