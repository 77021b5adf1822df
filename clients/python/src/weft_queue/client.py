"""The blocking client: jobs, workers, and task batches whose results are
``concurrent.futures.Future`` objects, set by a reader thread as results stream back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional, Sequence

import grpc

from ._proto import weft_pb2 as pb
from .connection import FOLLOW_FOR, Connected
from .errors import STREAM_ENDED, JobFailed, ResultLost, WeftError, cut_by
from .jobs import JobStatus, WorkerInfo, job_spec
from .tasks import BatchEvent, TaskLike, UnservedCallback, batch_parts, events_of, fail_pending, settle

if TYPE_CHECKING:
    from .durable import BatchInfo, DurableBatch
    from .submitter import Submitter

__all__ = ["Client", "Job"]

def _warn_unserved(waiting: Sequence[str], served: Sequence[str]) -> None:
    import warnings

    warnings.warn(
        f"tasks wait for {', '.join(waiting)}, which no connected worker serves; served: {', '.join(served)}",
        RuntimeWarning,
        stacklevel=1,
    )


class Client(Connected):
    """A connection to a weft coordinator, blocking; task results are
    ``concurrent.futures`` futures. See :class:`weft_queue.connection.Connected` for the
    arguments. Use it as a context manager, or ``close()`` it.
    """

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection; batches still running are cancelled."""
        for channel in [*self._retired, self._channel]:
            channel.close()

    def _call(self, method: str, request: object, *, changes: bool = False) -> object:
        """Calls ``method`` of the job service on the leader; given several coordinators,
        once more on the one that leads now when it was refused UNAVAILABLE (see
        :meth:`Connected._may_follow`). A ``request`` that is callable makes the request of
        each call (a stream's iterator, which one call uses up)."""
        make = request if callable(request) else (lambda: request)
        try:
            return getattr(self._stub, method)(make(), metadata=self._metadata)
        except grpc.RpcError as error:
            if not self._may_follow(error, changes) or not self._follow_leader():
                raise WeftError.from_rpc(error) from None
        try:
            return getattr(self._stub, method)(make(), metadata=self._metadata)
        except grpc.RpcError as error:
            raise WeftError.from_rpc(error) from None

    # Jobs -------------------------------------------------------------------------------

    def submit(self, inputs: Sequence[str], output: str, **spec: object) -> "Job":
        """Submits a job (see :func:`weft_queue.jobs.job_spec` for the options); returns it
        once it is durable."""
        request = job_spec(inputs, output, **spec)  # type: ignore[arg-type]
        response = self._call("SubmitJob", request, changes=True)
        return Job(self, response.job_id)  # type: ignore[attr-defined]

    def job(self, job_id: str) -> "Job":
        """A job submitted earlier."""
        return Job(self, job_id)

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_wire(self._call("GetJob", pb.JobRef(job_id=job_id)))  # type: ignore[arg-type]

    def jobs(self, limit: int = 100) -> List[JobStatus]:
        """The newest jobs: the caller's own, or every job for an admin."""
        listed = self._call("ListJobs", pb.ListJobsRequest(limit=limit))
        return [JobStatus.from_wire(j) for j in listed.jobs]  # type: ignore[attr-defined]

    def cancel(self, job_id: str) -> JobStatus:
        return JobStatus.from_wire(self._call("CancelJob", pb.JobRef(job_id=job_id)))  # type: ignore[arg-type]

    def workers(self) -> List[WorkerInfo]:
        """The connected workers, with the handlers each serves."""
        listed = self._call("ListWorkers", pb.ListWorkersRequest())
        return [WorkerInfo.from_wire(w) for w in listed.workers]  # type: ignore[attr-defined]

    # Task batches -----------------------------------------------------------------------

    def run_tasks(
        self,
        tasks: Iterable[TaskLike],
        *,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
        on_unserved: Optional[UnservedCallback] = _warn_unserved,
    ) -> List["Future[bytes]"]:
        """Runs ``tasks`` (``Task`` values or ``(handler, payload)`` pairs) as one batch;
        returns one future per task, in order. A future's result is the task's output;
        its exception is :class:`TaskFailed` (out of attempts), :class:`WeftError` (the
        batch was refused or broke) or :class:`ResultLost`.

        ``max_attempts`` (default 4) and ``timeout`` (seconds per attempt) apply to tasks
        that do not set their own; tasks whose handler no connected worker serves wait
        for one (``on_unserved`` is told), or fail after ``unserved_timeout`` seconds.
        Delivery is at least once (a task may run again after a lost worker), and each
        task's result is delivered once. Closing the client cancels what has not run.
        """
        tasks = list(tasks)
        futures: List["Future[bytes]"] = [Future() for _ in tasks]
        parts = batch_parts(tasks, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)
        try:
            responses = self._stub.RunTaskStream(parts, metadata=self._metadata)
        except grpc.RpcError as error:
            raise WeftError.from_rpc(error) from None
        reader = threading.Thread(
            target=_settle, args=(responses, futures, on_unserved), name="weft-batch", daemon=True
        )
        reader.start()
        return futures

    def submit_durable(
        self,
        tasks: Iterable[TaskLike],
        *,
        key: Optional[str] = None,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
    ) -> "DurableBatch":
        """Stores ``tasks`` as a durable batch; returns it once the coordinator has stored
        it. It runs whether or not anyone reads it, and outlives this client, coordinator
        restarts and takeovers; read its results with ``batch.results()`` or
        ``batch.wait()``, here or from any client of the same identity
        (``client.batch(id)``). ``key`` makes the submit idempotent: a submit with the key
        of a batch this identity already has returns that batch
        (``batch.submitted.created`` is False); without one, a random key is chosen.
        Execution is at least once, results exactly once."""
        from .durable import submit

        return submit(self, tasks, key, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)

    def batch(self, batch_id: str) -> "DurableBatch":
        """A durable batch submitted earlier, by its id (``batch-000042``)."""
        from .durable import DurableBatch

        return DurableBatch(self, batch_id)

    def batches(self, limit: int = 100) -> List["BatchInfo"]:
        """The newest durable batches: the caller's, or every one for an admin."""
        from .durable import BatchInfo

        listed = self._call("ListBatches", pb.ListBatchesRequest(limit=limit))
        return [BatchInfo.from_wire(b) for b in listed.batches]  # type: ignore[attr-defined]

    def map(self, handler: str, payloads: Iterable[object], **options: object) -> List["Future[bytes]"]:
        """``run_tasks`` of ``handler`` over ``payloads`` (bytes or str)."""
        return self.run_tasks(((handler, p) for p in payloads), **options)  # type: ignore[misc, arg-type]

    def submitter(
        self,
        *,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
        on_unserved: Optional[UnservedCallback] = _warn_unserved,
    ) -> "Submitter":
        """A :class:`Submitter` of single tasks over one standing stream, each task with
        these options (as in ``run_tasks``): for many small tasks as they come, a result
        without a new call's round trip."""
        from .submitter import Submitter

        return Submitter(
            self, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout, on_unserved=on_unserved
        )

    def stream_tasks(
        self,
        tasks: Iterable[TaskLike],
        *,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
    ) -> Iterator[BatchEvent]:
        """Streams ``tasks`` to the cluster as they are read (an endless iterator works:
        the coordinator reads only as fast as it runs them) and yields each result as it
        ends, with its index, and notices of unserved handlers."""
        parts = batch_parts(tasks, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)
        try:
            for message in self._stub.RunTaskStream(parts, metadata=self._metadata):
                yield from events_of(message)
        except grpc.RpcError as error:
            raise WeftError.from_rpc(error) from None


def _settle(responses: Iterator[pb.QueueTaskResults], futures: List["Future[bytes]"], on_unserved: Optional[UnservedCallback]) -> None:
    """Sets each task's future as its result comes; what never comes ends as lost."""
    pending = len(futures)
    failure: BaseException = ResultLost(STREAM_ENDED)
    received = False
    try:
        for message in responses:
            received = True
            pending -= settle(message, futures, on_unserved)
            if pending == 0:
                break
    except grpc.RpcError as error:
        # Broken once it ran: the batch was cut; before any answer: a refusal, or no connection.
        failure = cut_by(error) if received else WeftError.from_rpc(error)
    fail_pending(futures, failure)


class Job:
    """A submitted job."""

    def __init__(self, client: Client, job_id: str) -> None:
        self._client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def status(self) -> JobStatus:
        return self._client.status(self.id)

    def cancel(self) -> JobStatus:
        return self._client.cancel(self.id)

    def watch(self) -> Iterator[JobStatus]:
        """The job's status now, then on every change, until it ends. A client given several
        coordinators follows the leader to its successor (for up to a minute without one);
        the status is then given again from the new leader."""
        client = self._client
        following = bool(client._connection.targets)
        lost_since: Optional[float] = None
        while True:
            finished = False
            try:
                for status in client._stub.WatchJob(pb.JobRef(job_id=self.id), metadata=client._metadata):
                    lost_since = None
                    seen = JobStatus.from_wire(status)
                    finished = seen.finished
                    yield seen
                if finished or not following:
                    return
                failure: Optional[grpc.RpcError] = None
            except grpc.RpcError as error:
                passing = error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED)
                if not passing or not following:
                    raise WeftError.from_rpc(error) from None
                failure = error
            # The coordinator went away (a takeover): the one that leads now is watched.
            lost_since = lost_since if lost_since is not None else time.monotonic()
            if time.monotonic() - lost_since > FOLLOW_FOR:
                if failure is not None:
                    raise WeftError.from_rpc(failure) from None
                return
            time.sleep(0.25)
            client._follow_leader()

    def wait(self) -> JobStatus:
        """Waits until the job ends; raises :class:`JobFailed` unless it succeeded."""
        last = None
        for last in self.watch():
            if last.finished:
                break
        if last is None or last.state != "succeeded":
            state = last.state if last else "unknown"
            raise JobFailed(last, f"job {self.id} {state}: {last.error if last else ''}")
        return last
