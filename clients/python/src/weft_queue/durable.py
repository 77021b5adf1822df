"""Durable task batches: stored by the coordinator before they run, read back by id from
any client, as often as wanted, through coordinator restarts and takeovers (Celery's
``AsyncResult``, for a whole batch). A task runs at least once; its result is stored, and
read, exactly once, at a position among the batch's results that never changes."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Iterable, Iterator, List, Optional, TypeVar, Union

import grpc

from ._proto import weft_pb2 as pb
from .errors import BatchCancelled, TaskFailed, WeftError
from .tasks import TaskLike, _padded, batch_parts

if TYPE_CHECKING:
    from .client import Client

__all__ = ["BatchInfo", "DurableBatch", "StoredResult"]

#: The client a batch is read with.
C = TypeVar("C")

#: How long a reader keeps opening a broken stream again (a restart, a takeover).
RECONNECT_FOR = 120.0

#: Codes of a failure that may pass: the coordinator went away, and one may come back.
_PASSING = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED,
            grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED}


@dataclass(frozen=True)
class BatchInfo:
    """A durable batch as the coordinator keeps it; ``state`` is ``running``, ``ended``
    (every task has its result) or ``cancelled``; ``created`` is False when a submit's key
    named a batch submitted before."""

    id: str
    owner: str
    state: str
    tasks: int
    results: int
    failed: int
    result_bytes: int
    created_ms: int
    ended_ms: Optional[int]
    idempotency_key: str
    created: bool

    @classmethod
    def from_wire(cls, b: pb.BatchInfo) -> "BatchInfo":
        return cls(b.batch_id, b.owner, b.state, b.tasks, b.results, b.failed, b.result_bytes,
                   b.created_ms, b.ended_ms or None, b.idempotency_key, b.created)

    @property
    def is_final(self) -> bool:
        return self.state != "running"


@dataclass(frozen=True)
class StoredResult:
    """One stored result: its ``position`` among the batch's results, the task's
    ``index``, its ``output`` or ``error``, and the ``task_id`` the task was submitted with
    (if any)."""

    position: int
    index: int
    output: Optional[bytes] = None
    error: Optional[str] = None
    task_id: Optional[str] = None

    @classmethod
    def from_wire(cls, r: pb.QueueTaskResult) -> "StoredResult":
        which = r.WhichOneof("outcome")
        return cls(r.position, r.index, r.output if which == "output" else b"",
                   r.error if which == "error" else None, r.task_id or None)


def durable_parts(tasks: Iterable[TaskLike], key: Optional[str], **settings: object) -> List[pb.TaskBatch]:
    """The parts ``SubmitTasks`` takes for ``tasks``: the first carries the settings and
    the idempotency key (a random one when ``key`` is None)."""
    parts = list(batch_parts(tasks, opening=False, **settings))  # type: ignore[arg-type]
    parts[0].idempotency_key = key or secrets.token_hex(16)
    parts[0].padding = b""
    _padded(parts[0])
    return parts


def submit(client: "Client", tasks: Iterable[TaskLike], key: Optional[str], **settings: object) -> "DurableBatch":
    """Stores ``tasks`` as a durable batch on ``client``'s coordinator (see
    :meth:`Client.submit_durable`)."""
    parts = durable_parts(tasks, key, **settings)
    info = BatchInfo.from_wire(client._call("SubmitTasks", lambda: iter(parts)))  # type: ignore[arg-type]
    return DurableBatch(client, info.id, info)


def results_request(batch_id: str, start: int, follow: bool, task_id: str = "") -> pb.BatchResultsRequest:
    """A ``GetBatchResults`` request: from position ``start``, or one task's by its id."""
    request = pb.BatchResultsRequest(batch_id=batch_id, follow=follow, task_id=task_id)
    setattr(request, "from", start)  # a Python keyword
    return request


def still_passing(error: Exception, broken_since: Optional[float]) -> float:
    """Raises ``error`` (as a :class:`WeftError`) unless it may pass (the coordinator went
    away, and one may come back) and has lasted under :data:`RECONNECT_FOR`; returns since
    when it lasts."""
    code = error.code if isinstance(error, WeftError) else error.code()  # type: ignore[attr-defined]
    broken_since = broken_since or time.monotonic()
    if code not in _PASSING or time.monotonic() - broken_since > RECONNECT_FOR:
        if isinstance(error, grpc.RpcError):
            raise WeftError.from_rpc(error) from None
        raise error
    return broken_since


def in_task_order(stored: List[StoredResult], info: BatchInfo) -> List[Union[bytes, TaskFailed]]:
    """Each result's output, or a :class:`TaskFailed`, in task order; raises
    :class:`BatchCancelled` when some task has none (``info``: the batch, ended)."""
    if len(stored) < info.tasks:
        raise BatchCancelled(info.id, info.tasks, stored)
    ordered = sorted(stored, key=lambda r: r.index)
    return [r.output if r.error is None else TaskFailed(r.error) for r in ordered]  # type: ignore[misc]


class BatchRef(Generic[C]):
    """A durable batch by its id, on client ``C``; ``submitted`` is what the submit that
    made (or found) it answered."""

    def __init__(self, client: C, batch_id: str, submitted: Optional[BatchInfo] = None) -> None:
        self._client = client
        self.id = batch_id
        self.submitted = submitted

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class DurableBatch(BatchRef["Client"]):
    """A durable batch on a coordinator, by its id; ``submitted`` is what the submit that
    made (or found) it answered."""

    def info(self) -> BatchInfo:
        """Where it stands now."""
        return BatchInfo.from_wire(self._client._call("GetBatch", pb.BatchRef(batch_id=self.id)))  # type: ignore[arg-type]

    def cancel(self) -> BatchInfo:
        """Stops it: tasks without a result never get one."""
        return BatchInfo.from_wire(self._client._call("CancelBatch", pb.BatchRef(batch_id=self.id)))  # type: ignore[arg-type]

    def results(self, start: int = 0, follow: bool = True) -> Iterator[StoredResult]:
        """Its results from position ``start``, in the order they were stored; with
        ``follow``, until the batch ends, else those stored now. A stream that breaks is
        opened again where it stopped, for up to two minutes."""
        position = start
        broken_since: Optional[float] = None
        while True:
            request = results_request(self.id, position, follow)
            try:
                stream = self._client._stub.GetBatchResults(request, metadata=self._client._metadata)
                for message in stream:
                    broken_since = None
                    for r in message.results:
                        # At the position the coordinator gives: the next read starts after it.
                        yield StoredResult.from_wire(r)
                        position = r.position + 1
                if not follow:
                    return
                # A stream also ends when its coordinator stops: the end only once the
                # batch has, with every result read.
                info = self.info()
                broken_since = None
                if info.is_final and position >= info.results:
                    return
                time.sleep(0.5)
            except (grpc.RpcError, WeftError) as error:
                broken_since = self._may_retry(error, broken_since)
                time.sleep(0.5)

    def result(self, task_id: str, wait: bool = True) -> Optional[StoredResult]:
        """The result of its task submitted with ``task_id`` (``Task(id=...)``), once
        stored; with ``wait``, waits for it (through restarts and takeovers, as
        :meth:`results` does), and None only if the batch ended or was cancelled without it.
        An id no task of the batch has raises a :class:`WeftError` with ``NOT_FOUND``."""
        broken_since: Optional[float] = None
        while True:
            try:
                found = self._read_result(task_id, wait)
                if found is not None or not wait:
                    return found
                # A stream also ends when its coordinator stops: None once the batch has.
                if self.info().is_final:
                    return self._read_result(task_id, False)
                broken_since = None
            except (grpc.RpcError, WeftError) as error:
                broken_since = self._may_retry(error, broken_since)
            time.sleep(0.5)

    def _may_retry(self, error: Exception, broken_since: Optional[float]) -> float:
        """:func:`still_passing`, then to the coordinator that leads now."""
        broken_since = still_passing(error, broken_since)
        self._client._follow_leader()
        return broken_since

    def _read_result(self, task_id: str, follow: bool) -> Optional[StoredResult]:
        request = results_request(self.id, 0, follow, task_id)
        found = None
        for message in self._client._stub.GetBatchResults(request, metadata=self._client._metadata):
            for r in message.results:
                found = found or StoredResult.from_wire(r)
        return found

    def wait(self) -> List[Union[bytes, TaskFailed]]:
        """Waits for every result; returns them in task order: each task's output, or a
        :class:`TaskFailed` for one that failed. A batch cancelled before every task had a
        result raises :class:`BatchCancelled` (with the results it stored)."""
        stored = list(self.results(0, follow=True))
        return in_task_order(stored, self.info())
