#!/usr/bin/env python3
"""The other systems' side of bench/run.py: each subcommand runs one system on the same work
weft does and writes the same output format, so that run.py can check they agree.

    systems.py spark-wordcount INPUT-DIR OUTPUT.tsv
    systems.py dask-wordcount INPUT-DIR OUTPUT.tsv
    systems.py gensort OUTPUT-DIR BYTES
    systems.py spark-sort INPUT-DIR OUTPUT-DIR
    systems.py dask-queue|ray-queue|celery-queue TASKS      (prints one JSON line)
    systems.py celery-echo TASKS PAYLOAD_BYTES              (prints one JSON line)
    systems.py chart OUTPUT.png      (bars from JSON on stdin)
"""

import collections
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORD = re.compile(r"[A-Za-z]+")
SINGLES = 2000


def write_counts(counts, output):
    with open(output, "w", encoding="utf-8") as out:
        for word in sorted(counts, key=lambda w: w.encode()):
            out.write(f"{word}\t{counts[word]}\n")


def spark_session():
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("weft-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )


def spark_wordcount(inputs, output):
    spark = spark_session()
    counts = (
        spark.sparkContext.textFile(str(inputs))
        .flatMap(WORD.findall)
        .map(lambda w: (w, 1))
        .reduceByKey(lambda a, b: a + b)
        .collectAsMap()
    )
    write_counts(counts, output)
    spark.stop()


def count_partition(lines):
    counts = collections.Counter()
    for line in lines:
        counts.update(WORD.findall(line))
    return [counts]


def dask_wordcount(inputs, output):
    import dask.bag as db
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster):
        bag = db.read_text(f"{inputs}/*.txt", blocksize="32MiB")
        partials = bag.map_partitions(count_partition).compute()
    total = collections.Counter()
    for partial in partials:
        total.update(partial)
    write_counts(total, output)


def gensort(output, size):
    """100-byte records: 99 printable ASCII bytes and a newline, TeraSort-style, seeded."""
    rng = random.Random(42)
    printable = bytes(range(33, 127))
    table = bytes(printable[b % len(printable)] for b in range(256))
    records_per_chunk = 1 << 16
    files = 8
    per_file = size // files // 100
    for f in range(files):
        with open(Path(output) / f"records-{f}.txt", "wb") as out:
            left = per_file
            while left > 0:
                n = min(left, records_per_chunk)
                raw = rng.randbytes(n * 99).translate(table)
                view = memoryview(raw)
                out.write(b"\n".join(view[i * 99:(i + 1) * 99] for i in range(n)) + b"\n")
                left -= n


def spark_sort(inputs, output):
    spark = spark_session()
    shutil.rmtree(output, ignore_errors=True)
    spark.sparkContext.textFile(str(inputs)).sortBy(lambda line: line, numPartitions=4).saveAsTextFile(str(output))
    spark.stop()


def noop(_=None):
    return None


def percentiles(latencies):
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def report(tasks, seconds, latencies):
    p50, p99 = percentiles(latencies)
    print(json.dumps({"tasks": tasks, "seconds": seconds, "p50_ms": p50, "p99_ms": p99}))


def dask_queue(tasks):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(noop, pure=False).result()
        started = time.perf_counter()
        client.gather(client.map(noop, range(tasks), pure=False))
        seconds = time.perf_counter() - started
        latencies = []
        for i in range(SINGLES):
            t = time.perf_counter()
            client.submit(noop, i, pure=False).result()
            latencies.append((time.perf_counter() - t) * 1000)
    report(tasks, seconds, latencies)


def ray_queue(tasks):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    remote = ray.remote(noop)
    ray.get(remote.remote())
    started = time.perf_counter()
    ray.get([remote.remote(i) for i in range(tasks)])
    seconds = time.perf_counter() - started
    latencies = []
    for i in range(SINGLES):
        t = time.perf_counter()
        ray.get(remote.remote(i))
        latencies.append((time.perf_counter() - t) * 1000)
    ray.shutdown()
    report(tasks, seconds, latencies)


CELERY_APP = """
from celery import Celery
app = Celery("bench", broker="{url}", backend="{url}")
app.conf.update(worker_prefetch_multiplier=64, task_acks_late=False, result_expires=600)

@app.task
def noop(i=None):
    return None

@app.task
def echo(payload):
    return payload
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def celery_queue(tasks, payload=None):
    work = Path(tempfile.mkdtemp(prefix="weft-bench-celery-"))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    (work / "bench_app.py").write_text(CELERY_APP.format(url=url))
    env = dict(os.environ, PYTHONPATH=str(work))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_app", "worker", "--concurrency=2", "--pool=prefork", "--loglevel=ERROR"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        sys.path.insert(0, str(work))
        from bench_app import echo, noop  # noqa: E402
        from celery import group

        task = noop if payload is None else echo
        argument = (lambda i: i) if payload is None else (lambda _: payload)

        deadline = time.time() + 60
        while True:
            try:
                task.delay(argument(0)).get(timeout=5)
                break
            except Exception:
                if time.time() > deadline:
                    raise
        started = time.perf_counter()
        results = group(task.s(argument(i)) for i in range(tasks)).apply_async().get(timeout=3600)
        if payload is not None and any(r != payload for r in results):
            raise RuntimeError("echoed payloads came back wrong")
        seconds = time.perf_counter() - started
        latencies = []
        for i in range(SINGLES):
            t = time.perf_counter()
            task.delay(argument(i)).get(timeout=60)
            latencies.append((time.perf_counter() - t) * 1000)
        report(tasks, seconds, latencies)
    finally:
        worker.terminate()
        worker.wait()
        redis.terminate()
        redis.wait()
        shutil.rmtree(work, ignore_errors=True)


def chart(path):
    """Bars per benchmark from the JSON on stdin: [{title, unit, bars: [[system, rate]]}]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections = json.load(sys.stdin)
    fig, axes = plt.subplots(len(sections), 1, figsize=(9, 2.4 * len(sections)), squeeze=False)
    for ax, section in zip(axes[:, 0], sections):
        names = [name for name, _ in section["bars"]][::-1]
        rates = [value for _, value in section["bars"]][::-1]
        colors = ["#c0392b" if n.startswith("weft") else "#7f8c8d" for n in names]
        ax.barh(names, rates, color=colors)
        ax.set_title(section["title"], fontsize=9)
        ax.set_xlabel(section["unit"])
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "chart":
        chart(args[0])
    elif command == "spark-wordcount":
        spark_wordcount(*args)
    elif command == "dask-wordcount":
        dask_wordcount(*args)
    elif command == "gensort":
        gensort(args[0], int(args[1]))
    elif command == "spark-sort":
        spark_sort(*args)
    elif command == "celery-echo":
        # Celery's documented path for many tasks at once: a group, applied and gathered.
        celery_queue(min(int(args[0]), 20_000), payload="x" * int(args[1]))
    elif command in ("dask-queue", "ray-queue", "celery-queue"):
        # The slower systems get fewer tasks, so that a run stays within minutes; the rate is per task.
        tasks = int(args[0])
        {"dask-queue": dask_queue, "ray-queue": ray_queue, "celery-queue": celery_queue}[command](
            tasks if command != "celery-queue" else min(tasks, 20_000)
        )
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
