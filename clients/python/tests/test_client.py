"""The Python client against a real cluster: futures in both flavours, DeferredList's
options, errors, streaming, unserved handlers, and jobs."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import subprocess
import time

import grpc
import pytest

from weft_queue import (
    AsyncClient,
    BatchCancelled,
    Client,
    Completed,
    DeferredList,
    FirstError,
    FirstSuccess,
    Task,
    TaskFailed,
    WeftError,
)


def test_task_futures_resolve_in_order_with_each_result(cluster):
    with Client(cluster.url) as client:
        futures = client.map("pyecho", [f"p{i}" for i in range(2000)])
        fired = DeferredList(futures).result(timeout=60)
        assert isinstance(fired, Completed)
        assert fired.values() == [f"p{i}".encode() for i in range(2000)]
        mixed = client.run_tasks([("echo", b"\xff\x00"), Task("pyasync", "shout"), ("noop", "")])
        assert [f.result(timeout=30) for f in mixed] == [b"\xff\x00", b"SHOUT", b""]


def test_failures_come_back_as_exceptions_and_are_logged_unless_consumed(cluster, caplog):
    with Client(cluster.url) as client:
        futures = client.run_tasks([("pyecho", "fine"), ("pyecho", "boom")], max_attempts=2)
        with caplog.at_level(logging.ERROR, logger="weft_queue"):
            fired = DeferredList(futures).result(timeout=30)
        assert fired.results[0] == (True, b"fine")
        ok, error = fired.results[1]
        assert not ok and isinstance(error, TaskFailed)
        assert "ValueError: asked to fail" in str(error) and "2 attempts" in str(error)
        assert "unhandled failure of future 1" in caplog.text
        caplog.clear()
        futures = client.run_tasks([("pyecho", "boom")], max_attempts=1)
        with caplog.at_level(logging.ERROR, logger="weft_queue"):
            DeferredList(futures, consume_errors=True).result(timeout=30)
        assert "unhandled" not in caplog.text
        with pytest.raises(TaskFailed):
            DeferredList(client.run_tasks([("pyecho", "boom")], max_attempts=1), consume_errors=True).result().values()


def test_a_handler_process_that_dies_fails_its_own_task_alone(cluster):
    with Client(cluster.url) as client:
        # The tasks waiting behind "die" in its process's pipe are handed back, not failed.
        tasks = [("pyecho", "die")] + [("pyecho", f"d{i}") for i in range(300)]
        fired = DeferredList(client.run_tasks(tasks, max_attempts=1), consume_errors=True).result(timeout=60)
        ok, error = fired.results[0]
        assert not ok and "ended" in str(error)
        assert [v for ok, v in fired.results[1:]] == [f"d{i}".encode() for i in range(300)]


def test_fire_on_one_callback_and_errback(cluster):
    with Client(cluster.url) as client:
        slow_fast_slow = client.run_tasks([("sleep", "3000"), ("sleep", "10"), ("sleep", "3000")])
        fired = DeferredList(slow_fast_slow, fire_on_one_callback=True).result(timeout=30)
        assert fired == FirstSuccess(1, b"")
        assert slow_fast_slow[0].cancelled() and slow_fast_slow[2].cancelled()
        failing = client.run_tasks([("sleep", "3000"), ("pyecho", "boom")], max_attempts=1)
        fired = DeferredList(failing, fire_on_one_errback=True, consume_errors=True).result(timeout=30)
        assert isinstance(fired, FirstError) and fired.index == 1
        assert isinstance(fired.error, TaskFailed)


def test_a_submitter_runs_single_tasks_over_one_stream_and_opens_another_after_a_refusal(cluster):
    with Client(cluster.url) as client, client.submitter(max_attempts=1) as submitter:
        futures = [submitter.submit("echo", f"s{i}") for i in range(300)]
        assert [f.result(timeout=60) for f in futures] == [f"s{i}".encode() for i in range(300)]
        assert submitter.submit(("pyecho", "py")).result(timeout=30) == b"py"
        failed = submitter.submit("exec", "exit 7").exception(timeout=30)
        assert isinstance(failed, TaskFailed) and "status 7" in str(failed)
        # A refused task ends its stream: the task running beside it fails too; the next
        # submission runs on a new stream.
        running = submitter.submit("sleep", "600000")
        refused = submitter.submit("not a name", "").exception(timeout=30)
        assert isinstance(refused, WeftError) and refused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert isinstance(running.exception(timeout=30), WeftError)
        assert submitter.submit("echo", "again").result(timeout=30) == b"again"
        # A stream whose 32-bit positions run out gives way to a new one.
        full = submitter._stream
        full._next = (1 << 32) - 1
        assert submitter.submit("echo", "next stream").result(timeout=30) == b"next stream"
        assert submitter._stream is not full
        # Closing cancels what still runs.
        left = submitter.submit("sleep", "600000")
        submitter.close()
        assert left.exception(timeout=30) is not None


def test_a_refused_batch_fails_every_future_with_the_status(cluster):
    with Client(cluster.url) as client:
        futures = client.run_tasks([("echo", "x"), ("not a name", "y")])
        for future in futures:
            error = future.exception(timeout=30)
            assert isinstance(error, WeftError)
            assert error.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "not a name" in str(error)


def test_unserved_handlers_wait_are_reported_and_fail_after_the_bound(cluster):
    seen = []
    with Client(cluster.url) as client:
        futures = client.run_tasks(
            [("nobody", "x"), ("pyecho", "y")],
            unserved_timeout=0.8,
            on_unserved=lambda waiting, served: seen.append((list(waiting), list(served))),
        )
        with pytest.raises(TaskFailed, match='no connected worker serves handler "nobody"'):
            futures[0].result(timeout=30)
        assert futures[1].result(timeout=30) == b"y"
    assert seen and seen[0][0] == ["nobody"] and "pyecho" in seen[0][1]


def test_stream_tasks_yields_results_as_an_endless_iterator_is_read(cluster):
    def endless():
        i = 0
        while True:
            yield ("pyecho", str(i))
            i += 1

    with Client(cluster.url) as client:
        got = {}
        for event in client.stream_tasks(endless()):
            got[event.index] = event.output
            if len(got) == 5000:
                break
        assert all(got[i] == str(i).encode() for i in range(100))


def test_the_workers_list_shows_their_handlers(cluster):
    with Client(cluster.url) as client:
        workers = client.workers()
        assert len(workers) == 2
        assert all(w.handlers["pyecho"] == "command" and w.handlers["echo"] == "builtin" for w in workers)


def test_the_asyncio_client_and_deferred_list(cluster):
    async def main():
        async with AsyncClient(cluster.url) as client:
            futures = await client.run_tasks([("pyecho", f"a{i}") for i in range(500)] + [("pyecho", "boom")], max_attempts=1)
            fired = await DeferredList(futures, consume_errors=True)
            assert [v for ok, v in fired.results[:500]] == [f"a{i}".encode() for i in range(500)]
            assert not fired.results[500][0]
            first = await DeferredList(
                await client.run_tasks([("sleep", "3000"), ("pyasync", "x")]), fire_on_one_callback=True
            )
            assert first == FirstSuccess(1, b"X")
            events = [e async for e in client.stream_tasks([("echo", "s1"), ("echo", "s2")])]
            assert sorted(e.output for e in events) == [b"s1", b"s2"]

    asyncio.run(main())


def test_the_asyncio_client_submits_and_reads_durable_batches(cluster):
    async def main():
        async with AsyncClient(cluster.url) as client:
            tasks = [Task("echo", f"p{i}", id=f"t{i}") for i in range(20)]
            batch = await client.submit_durable(tasks, key=f"aio-{time.monotonic()}")
            assert batch.submitted is not None and batch.submitted.created
            third = await batch.result("t3")
            assert third is not None and (third.index, third.output, third.task_id) == (3, b"p3", "t3")
            assert await batch.wait() == [f"p{i}".encode() for i in range(20)]
            stored = [r async for r in client.batch(batch.id).results(follow=False)]
            assert [r.position for r in stored] == list(range(20))
            assert {r.task_id for r in stored} == {f"t{i}" for i in range(20)}
            assert batch.id in [b.id for b in await client.batches()]
            assert (await batch.info()).state == "ended"
            with pytest.raises(WeftError) as unknown:
                await batch.result("t20")
            assert unknown.value.code == grpc.StatusCode.NOT_FOUND
            slow = await client.submit_durable([("sleep", "60000")] * 2)
            assert (await slow.cancel()).state == "cancelled"
            assert [r async for r in slow.results()] == []
            with pytest.raises(BatchCancelled) as cancelled:
                await slow.wait()
            assert (cancelled.value.batch_id, cancelled.value.tasks, cancelled.value.results) == (slow.id, 2, [])
            with pytest.raises(TypeError, match="task 0: its id is a int"):
                await client.submit_durable([Task("echo", "x", id=5)])  # type: ignore[arg-type]

    asyncio.run(main())


def test_jobs_are_submitted_and_waited_for(cluster, tmp_path: pathlib.Path):
    source = tmp_path / "in.txt"
    source.write_text("b a b\nc b\n")
    with Client(cluster.url) as client:
        job = client.submit([str(source)], str(tmp_path / "out"), app="wordcount", reduce_tasks=1)
        status = job.wait()
        assert status.state == "succeeded" and status.maps_done == status.maps_total
        counts = (tmp_path / "out" / "part-00000").read_text().split("\n")
        assert "b\t3" in counts
        with pytest.raises(WeftError) as refused:
            client.submit([str(source)], str(tmp_path / "out"), app="wordcount")
        assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
        assert "not empty" in str(refused.value)


def test_a_streaming_job_ships_its_script_and_variables_and_sorts_on_two_fields(cluster, tmp_path: pathlib.Path):
    source = tmp_path / "events.tsv"
    rows = [f"user{u}\t{t:04d}\tevent" for t, u in zip(range(200, 0, -1), [1, 2, 3, 4] * 50)]
    source.write_text("\n".join(rows) + "\n")
    script = tmp_path / "tag.sh"
    script.write_text('#!/bin/sh\nexec sed "s/event/$TAG/"\n')
    script.chmod(0o755)
    with Client(cluster.url) as client:
        job = client.submit(
            [str(source)],
            str(tmp_path / "out"),
            mapper="./tag.sh",
            reducer="cat",
            files=[script],
            env={"TAG": "seen"},
            key_fields=2,
            partition_fields=1,
            reduce_tasks=2,
        )
        assert job.wait().state == "succeeded"
    parts = sorted((tmp_path / "out").glob("part-*"))
    users = {}
    for index, part in enumerate(parts):
        lines = part.read_text().splitlines()
        keys = [tuple(line.split("\t")[:2]) for line in lines]
        assert keys == sorted(keys), "each part sorted by (user, time)"
        for user, _ in keys:
            assert users.setdefault(user, index) == index, "a user in one part"
        assert all(line.endswith("\tseen") for line in lines)
    assert sum(len(p.read_text().splitlines()) for p in parts) == len(rows)


def test_parts_written_compressed_read_back_as_the_lines(cluster, tmp_path: pathlib.Path):
    import gzip

    source = tmp_path / "words.txt"
    source.write_text("b a\nc a\n")
    with Client(cluster.url) as client:
        job = client.submit([str(source)], str(tmp_path / "out"), app="wordcount", output_compression="gzip")
        assert job.wait().state == "succeeded"
    parts = sorted((tmp_path / "out").glob("part-*"))
    assert [p.name for p in parts] == ["part-00000.gz"]
    assert gzip.decompress(parts[0].read_bytes()).decode() == "a\t2\nb\t1\nc\t1\n"


def test_a_handler_whose_interpreter_lacks_a_module_fails_its_tasks_saying_so(cluster):
    with Client(cluster.url) as client:
        error = client.run_tasks([("nomodule", "x")], max_attempts=1)[0].exception(timeout=30)
        assert isinstance(error, TaskFailed)
        assert "ModuleNotFoundError: No module named 'weft_queue_is_not_installed_here'" in str(error), str(error)


def test_a_secured_cluster_is_reached_with_https_its_ca_and_a_token(secured_cluster, monkeypatch):
    secrets = secured_cluster.secrets
    with Client(secured_cluster.url, tls_ca=secrets / "ca.pem", token_file=secrets / "admin.token") as client:
        assert client.map("pyecho", ["by arguments"])[0].result(timeout=30) == b"by arguments"
    monkeypatch.setenv("WEFT_COORDINATOR", secured_cluster.url)
    monkeypatch.setenv("WEFT_TLS_DIR", str(secrets))
    monkeypatch.setenv("WEFT_TOKEN_FILE", str(secrets / "admin.token"))
    with Client() as client:
        assert client.map("pyecho", ["by the environment"])[0].result(timeout=30) == b"by the environment"


def test_the_wrong_way_into_a_secured_cluster_is_named(secured_cluster, tmp_path: pathlib.Path, monkeypatch):
    for name in ["WEFT_COORDINATOR", "WEFT_TLS_DIR", "WEFT_TOKEN_FILE", "WEFT_TOKEN"]:
        monkeypatch.delenv(name, raising=False)
    secrets = secured_cluster.secrets
    plaintext = secured_cluster.url.replace("https://", "http://")

    def refusal(url, **credentials):
        with Client(url, **credentials) as client:
            error = client.map("pyecho", ["x"])[0].exception(timeout=30)
        assert isinstance(error, WeftError), error
        return str(error)

    assert "use https:// with the cluster's CA" in refusal(plaintext)
    with pytest.raises(ValueError, match="WEFT_TLS_DIR"):
        Client(secured_cluster.url)
    assert "token_file=" in refusal(secured_cluster.url, tls_ca=secrets / "ca.pem")
    other = tmp_path / "other"
    subprocess.run([secured_cluster.binary, "certs", "--dir", str(other)], check=True, capture_output=True)
    wrong_ca = refusal(secured_cluster.url, tls_ca=other / "ca.pem", token_file=secrets / "admin.token")
    assert "not one the CA given vouches for" in wrong_ca, wrong_ca


def test_several_coordinators_reach_the_one_that_leads(cluster):
    from conftest import free_port

    down = f"http://127.0.0.1:{free_port()}"
    with Client(f"{down},{cluster.url}") as client:
        assert [f.result(timeout=30) for f in client.map("echo", [b"a", b"b"])] == [b"a", b"b"]
    with pytest.raises(WeftError, match="none of the coordinators"):
        Client(f"{down},http://127.0.0.1:{free_port()}")


def test_a_job_waited_for_follows_the_leader_to_its_successor(tmp_path: pathlib.Path):
    """Given two coordinators, a waiter follows the job from the one that dies to the one
    that then leads (here a second coordinator started on the same SQLite state, as a
    restart elsewhere would be)."""
    import time

    from conftest import free_port, weft_binary

    binary = weft_binary()
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    processes = []

    def spawn(name, *args):
        log = open(tmp_path / f"{name}.log", "wb")
        process = subprocess.Popen([binary, *args], stdout=log, stderr=log)
        processes.append(process)
        return process

    def coordinator(i):
        return spawn(f"coordinator-{i}", "coordinator", "--listen", f"127.0.0.1:{ports[i]}",
                     "--state-dir", str(tmp_path / "state"), "--recovery-grace", "1")

    try:
        first = coordinator(0)
        spawn("worker", "worker", "--coordinator", ",".join(urls), "--slots", "2", "--work-dir", str(tmp_path / "work"))
        source = tmp_path / "in.txt"
        source.write_text("b a b\nc b\n")
        deadline = time.monotonic() + 30
        while subprocess.run([binary, "health", "--coordinator", urls[0]], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the coordinator did not start"
            time.sleep(0.1)
        with Client(",".join(urls)) as client:
            while not client.workers():
                assert time.monotonic() < deadline, "the worker did not join"
                time.sleep(0.1)
            job = client.submit([str(source)], str(tmp_path / "out"), mapper="sleep 2; cat", reducer="cat", reduce_tasks=1)
            seen = []
            for status in job.watch():
                seen.append(status.state)
                if status.state == "running" and first.poll() is None:
                    first.kill()
                    first.wait()
                    coordinator(1)
            assert first.poll() is not None, f"the job never ran on the first coordinator: {seen}"
            assert seen[-1] == "succeeded", seen
            assert job.wait().state == "succeeded"

            # Clients that use the second coordinator when it dies, and the first leads
            # again: their next calls follow the leader.
            async def after_another_takeover():
                async with AsyncClient(",".join(urls)) as later:
                    processes[-1].kill()
                    processes[-1].wait()
                    coordinator(0)
                    up = time.monotonic() + 30
                    while subprocess.run([binary, "health", "--coordinator", urls[0]], capture_output=True).returncode:
                        assert time.monotonic() < up, "the first coordinator did not start again"
                        time.sleep(0.1)
                    return await later.status(job.id)

            assert asyncio.run(after_another_takeover()).state == "succeeded"
            assert client.status(job.id).state == "succeeded"
            assert [j.id for j in client.jobs()] == [job.id]
        assert "recovering job" in (tmp_path / "coordinator-1.log").read_text()
        assert (tmp_path / "out" / "part-00000").read_text().split("\n")[:3] == ["b a b", "c b", ""]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_durable_batch_outlives_a_kill_of_its_coordinator_and_is_read_back_by_id(tmp_path: pathlib.Path):
    from conftest import Cluster

    cluster = Cluster(tmp_path, workers=1)
    try:
        with Client(cluster.url) as client:
            tasks = [Task("sleep", "10", id=f"t{i}") for i in range(300)]
            batch = client.submit_durable(tasks, key="nightly")
            assert batch.submitted is not None and batch.submitted.created
            again = client.submit_durable(tasks, key="nightly")
            assert again.id == batch.id and again.submitted is not None and not again.submitted.created
            deadline = time.monotonic() + 60
            while batch.info().results < 50:
                assert time.monotonic() < deadline, "no results stored"
                time.sleep(0.05)
        coordinator = cluster.processes[0]
        coordinator.kill()
        coordinator.wait()
        cluster.spawn("coordinator", "--listen", cluster.url.split("//")[1], "--state-dir", str(tmp_path / "state"))
        cluster.wait_for_workers(1)
        with Client(cluster.url) as reader:
            stored = list(reader.batch(batch.id).results())
            assert [r.position for r in stored] == list(range(300))
            assert sorted(r.index for r in stored) == list(range(300)), "each task's result once"
            assert reader.batch(batch.id).wait() == [b""] * 300
            assert all(r.task_id == f"t{r.index}" for r in stored), "each result carries its task's id"
            last = reader.batch(batch.id).result("t299")
            assert last is not None and (last.index, last.task_id, last.error) == (299, "t299", None)
            with pytest.raises(WeftError) as no_such_task:
                reader.batch(batch.id).result("t300")
            assert no_such_task.value.code == grpc.StatusCode.NOT_FOUND
            with pytest.raises(WeftError) as twins:
                reader.submit_durable([Task("echo", "1", id="x"), Task("echo", "2", id="x")])
            assert twins.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert reader.batch(batch.id).info().state == "ended"
            assert [b.id for b in reader.batches()] == [batch.id]
            with pytest.raises(WeftError) as unknown:
                reader.batch("batch-999999").info()
            assert unknown.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        cluster.stop()
