#!/usr/bin/env python3
"""The other systems' side of bench/run.py: each subcommand runs one system on the same work
weft does and writes the same output format, so that run.py can check they agree.

    systems.py spark-wordcount ascii|world INPUT-DIR OUTPUT-DIR      (DataFrame API; prints one JSON line)
    systems.py spark-rdd-wordcount INPUT-DIR OUTPUT.tsv              (RDD API, Python lambdas; JSON line)
    systems.py dask-wordcount ascii|world INPUT-DIR OUTPUT.tsv
    systems.py gensort OUTPUT-DIR BYTES
    systems.py spark-sort INPUT-DIR OUTPUT-DIR                       (DataFrame API; JSON line)
    systems.py spark-rdd-sort INPUT-DIR OUTPUT-DIR                   (RDD API; JSON line)
    systems.py dask-queue|ray-queue|celery-queue TASKS [BATCH]       (prints one JSON line)
    systems.py celery-echo TASKS PAYLOAD_BYTES                       (prints one JSON line)
    systems.py celery-durable TASKS                                  (prints one JSON line)
    systems.py chart OUTPUT.png      (bars from JSON on stdin)

Each peer runs on the path its own documentation recommends for speed: Spark through the
DataFrame API (the work stays in the JVM; the RDD API with Python lambdas is kept as a
labelled extra), Dask's bag with one Counter per partition (its best-practices advice: work
on whole partitions, not on one Python object per element), Ray's and Dask's futures gathered
in one call, Celery's group with a high prefetch multiplier and fair scheduling (its
optimizing guide, for short tasks). A BATCH runs that many calls inside one task (Ray's and
Dask's advice against tiny tasks; Celery's chunks): reported as labelled extra rows, since
one task of weft's queue is one function with its own retries and its own result.
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

# A word: a maximal run of letters, as weft's wordcount and the single-thread reference split
# text. ASCII text: A-Za-z. Text of every script: Unicode's Alphabetic property in Java
# (`\p{IsAlphabetic}`, the same property as Rust's `char::is_alphabetic`); Python's `re` has
# no such class, and letters (`[^\W\d_]`) are the same set on the generator's syllables.
WORDS = {"ascii": re.compile(r"[A-Za-z]+"), "world": re.compile(r"[^\W\d_]+")}
JAVA_SEPARATORS = {"ascii": "[^A-Za-z]+", "world": "[^\\p{IsAlphabetic}]+"}
WORD = WORDS["ascii"]
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


def compute_time(started):
    """The JSON line run.py reads: the seconds the work took once the session was up (a JVM
    peer's wall time also holds the JVM's and the session's start)."""
    print(json.dumps({"compute_seconds": time.perf_counter() - started}), flush=True)


def spark_wordcount(letters, inputs, output):
    """The DataFrame wordcount: split on non-letters, explode, group and count, written as
    `word<TAB>count` part files, all in the JVM."""
    from pyspark.sql import functions as F

    spark = spark_session()
    started = time.perf_counter()
    words = spark.read.text(str(inputs)).select(F.explode(F.split("value", JAVA_SEPARATORS[letters])).alias("word"))
    counts = words.where(F.col("word") != "").groupBy("word").count()
    counts.write.option("sep", "\t").mode("overwrite").csv(str(output))
    compute_time(started)
    spark.stop()


def spark_rdd_wordcount(inputs, output):
    """The RDD wordcount with Python lambdas: Spark's slowest path, kept as an extra row."""
    spark = spark_session()
    started = time.perf_counter()
    counts = (
        spark.sparkContext.textFile(str(inputs))
        .flatMap(WORD.findall)
        .map(lambda w: (w, 1))
        .reduceByKey(lambda a, b: a + b)
        .collectAsMap()
    )
    write_counts(counts, output)
    compute_time(started)
    spark.stop()


def count_partition(lines, word=WORD):
    counts = collections.Counter()
    for line in lines:
        counts.update(word.findall(line))
    return [counts]


def dask_wordcount(letters, inputs, output):
    import dask.bag as db
    from dask.distributed import Client, LocalCluster

    word = WORDS[letters]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster):
        bag = db.read_text(f"{inputs}/*.txt", blocksize="32MiB", encoding="utf-8")
        partials = bag.map_partitions(count_partition, word=word).compute()
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
    """The DataFrame sort: lines ordered by their bytes (Spark compares strings as UTF-8 bytes,
    as `LC_ALL=C sort` does), written as text part files in order."""
    spark = spark_session()
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    spark.read.text(str(inputs)).orderBy("value").write.text(str(output))
    compute_time(started)
    spark.stop()


def spark_rdd_sort(inputs, output):
    """The RDD sort with a Python key function: kept as an extra row."""
    spark = spark_session()
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    spark.sparkContext.textFile(str(inputs)).sortBy(lambda line: line, numPartitions=4).saveAsTextFile(str(output))
    compute_time(started)
    spark.stop()


def noop(_=None):
    return None


def noop_batch(items):
    """BATCH calls in one task, each with its own result."""
    return [noop(i) for i in items]


def batches(tasks, batch):
    return [range(start, min(start + batch, tasks)) for start in range(0, tasks, batch)]


def percentiles(latencies):
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def report(tasks, seconds, latencies):
    """One JSON line; a batched run has no single-task latencies."""
    line = {"tasks": tasks, "seconds": seconds}
    if latencies:
        line["p50_ms"], line["p99_ms"] = percentiles(latencies)
    print(json.dumps(line))


def singles(call):
    latencies = []
    for i in range(SINGLES):
        t = time.perf_counter()
        call(i)
        latencies.append((time.perf_counter() - t) * 1000)
    return latencies


def dask_queue(tasks, batch=None):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(noop, pure=False).result()
        started = time.perf_counter()
        if batch:
            results = [r for part in client.gather(client.map(noop_batch, batches(tasks, batch), pure=False)) for r in part]
        else:
            results = client.gather(client.map(noop, range(tasks), pure=False))
        seconds = time.perf_counter() - started
        assert len(results) == tasks
        latencies = None if batch else singles(lambda i: client.submit(noop, i, pure=False).result())
    report(tasks, seconds, latencies)


def ray_queue(tasks, batch=None):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    remote = ray.remote(noop)
    ray.get(remote.remote())
    started = time.perf_counter()
    if batch:
        remote_batch = ray.remote(noop_batch)
        results = [r for part in ray.get([remote_batch.remote(b) for b in batches(tasks, batch)]) for r in part]
    else:
        results = ray.get([remote.remote(i) for i in range(tasks)])
    seconds = time.perf_counter() - started
    assert len(results) == tasks
    latencies = None if batch else singles(lambda i: ray.get(remote.remote(i)))
    ray.shutdown()
    report(tasks, seconds, latencies)


# Celery as its optimizing guide sets it up for many short tasks: a high prefetch multiplier
# (64, as weft's workers prefetch 64), early acknowledgement, rate limits off, and workers
# started with `-O fair`.
CELERY_APP = """
from celery import Celery
app = Celery("bench", broker="{url}", backend="{url}")
app.conf.update(worker_prefetch_multiplier=64, task_acks_late={acks_late}, task_reject_on_worker_lost={acks_late}, worker_disable_rate_limits=True, result_expires=600)

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


def celery_queue(tasks, payload=None, batch=None, durable=False):
    """`durable`: Celery's durable configuration, for the comparison with weft's durable
    batches: late acknowledgement (a task is acknowledged once it ran, so a worker's death
    redelivers it), tasks rejected back to the queue when their worker is lost, the results
    in the Redis backend, and Redis appending every write to its log and fsyncing it before
    it answers (`appendfsync always`, as weft's SQLite store syncs every commit)."""
    work = Path(tempfile.mkdtemp(prefix="weft-bench-celery-"))
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(work)] if durable else ["--appendonly", "no"]
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", *persistence], stdout=subprocess.DEVNULL)
    (work / "bench_app.py").write_text(CELERY_APP.format(url=url, acks_late=durable))
    env = dict(os.environ, PYTHONPATH=str(work))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_app", "worker", "--concurrency=2", "--pool=prefork", "-O", "fair", "--loglevel=ERROR"],
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
        if batch:
            # Celery's own batching: chunks of BATCH calls, one message each.
            parts = task.chunks(((argument(i),) for i in range(tasks)), batch).group().apply_async().get(timeout=3600)
            results = [r for part in parts for r in part]
        else:
            results = group(task.s(argument(i)) for i in range(tasks)).apply_async().get(timeout=3600)
        seconds = time.perf_counter() - started
        if len(results) != tasks or (payload is not None and any(r != payload for r in results)):
            raise RuntimeError("the results came back wrong")
        latencies = None if batch else singles(lambda i: task.delay(argument(i)).get(timeout=60))
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
        colors = ["#c0392b" if n.startswith("weft") else "#d5dbdb" if n.endswith("(extra)") else "#7f8c8d" for n in names]
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
    elif command == "spark-rdd-wordcount":
        spark_rdd_wordcount(*args)
    elif command == "dask-wordcount":
        dask_wordcount(*args)
    elif command == "gensort":
        gensort(args[0], int(args[1]))
    elif command == "spark-sort":
        spark_sort(*args)
    elif command == "spark-rdd-sort":
        spark_rdd_sort(*args)
    elif command == "celery-echo":
        # Celery's documented path for many tasks at once: a group, applied and gathered.
        celery_queue(min(int(args[0]), 20_000), payload="x" * int(args[1]))
    elif command == "celery-durable":
        # Durable tasks: fewer, as for celery-queue; the rate is per task.
        celery_queue(min(int(args[0]), 20_000), durable=True)
    elif command in ("dask-queue", "ray-queue", "celery-queue"):
        # The slower systems get fewer tasks unbatched, so that a run stays within minutes; the
        # rate is per task.
        tasks = int(args[0])
        batch = int(args[1]) if len(args) > 1 else None
        if command == "celery-queue" and not batch:
            tasks = min(tasks, 20_000)
        {"dask-queue": dask_queue, "ray-queue": ray_queue, "celery-queue": celery_queue}[command](tasks, batch=batch)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
