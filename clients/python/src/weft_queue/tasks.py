"""Tasks of a batch, and how they go over the wire."""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ._proto import weft_pb2 as pb
from .errors import TaskFailed

__all__ = ["Task", "TaskLike", "batch_parts", "BatchEvent"]

#: A part of a streamed batch holds at most this many tasks, and about this many bytes.
TASKS_PER_PART = 4096
BYTES_PER_PART = 4 << 20

Payload = Union[bytes, bytearray, memoryview, str]


def _bytes(payload: Payload) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


@dataclass(frozen=True)
class Task:
    """A queue task: the handler that runs it and its payload; optionally its own attempts
    and per-attempt timeout (seconds), instead of its batch's. ``id`` (durable batches only,
    unique in the batch, at most 200 bytes) names it: its stored result carries it, and
    :meth:`DurableBatch.result` reads the result by it."""

    handler: str
    payload: Payload = b""
    max_attempts: int = 0
    timeout: Optional[float] = None
    id: Optional[str] = None


#: A task, or a ``(handler, payload)`` pair.
TaskLike = Union[Task, Tuple[str, Payload]]


def _ms(seconds: Optional[float]) -> int:
    return 0 if seconds is None else max(1, int(seconds * 1000))


def batch_parts(
    tasks: Iterable[TaskLike],
    *,
    max_attempts: int = 0,
    timeout: Optional[float] = None,
    unserved_timeout: Optional[float] = None,
    counted: Optional[List[int]] = None,
    opening: bool = True,
) -> Iterator[pb.TaskBatch]:
    """The parts RunTaskStream takes, built as ``tasks`` is read; every part carries the
    batch's settings, and the first (with ``opening``) only them. ``counted[0]`` tracks how
    many tasks were read."""
    def new_part() -> pb.TaskBatch:
        return pb.TaskBatch(
            max_attempts=max_attempts,
            task_timeout_ms=_ms(timeout),
            unserved_timeout_ms=_ms(unserved_timeout),
        )

    # The settings go first, alone, at once: the coordinator answers a stream only once its
    # first part came, and cuts a call unanswered past its --request-timeout, which a first
    # task that comes late (a slow generator) would otherwise exceed.
    if opening:
        yield _padded(new_part())
    part = new_part()
    size = 0
    read = 0
    add = part.tasks.add
    for task in tasks:
        read += 1
        if isinstance(task, Task):
            if task.id is not None and not isinstance(task.id, str):
                raise TypeError(f"task {read - 1}: its id is a {type(task.id).__name__}, not a str")
            payload = _bytes(task.payload)
            add(handler=task.handler, payload=payload, max_attempts=task.max_attempts, timeout_ms=_ms(task.timeout),
                id=task.id or "")
        else:
            handler, given = task
            payload = _bytes(given)
            add(handler=handler, payload=payload)
        size += len(payload) + 16
        if len(part.tasks) >= TASKS_PER_PART or size >= BYTES_PER_PART:
            if counted is not None:
                counted[0] = read
            yield _padded(part)
            part = new_part()
            add = part.tasks.add
            size = 0
    if counted is not None:
        counted[0] = read
    if len(part.tasks) or read == 0:
        yield _padded(part)


# The least a part is padded to, in bytes: the coordinator's HTTP/2 server (h2) counts each
# DATA frame under 256 bytes against a budget, and closes a connection that spends it, as a
# slow generator's parts of one task each would while the batch's window is full.
MIN_PART_BYTES = 256


def _padded(part: pb.TaskBatch) -> pb.TaskBatch:
    size = part.ByteSize()
    if size < MIN_PART_BYTES:
        part.padding = bytes(MIN_PART_BYTES - size)
    return part


@dataclass(frozen=True)
class BatchEvent:
    """What a streamed batch yields: a task's result (``index``, and ``output`` or
    ``error``), or, with ``unserved`` set, the handlers its tasks wait for that no connected
    worker serves (``served`` lists what is served)."""

    index: int = -1
    output: Optional[bytes] = None
    error: Optional[str] = None
    unserved: Tuple[str, ...] = ()
    served: Tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and not self.unserved


def events_of(message: pb.QueueTaskResults) -> Iterator[BatchEvent]:
    """The events one results message holds."""
    if message.unserved_handlers:
        yield BatchEvent(unserved=tuple(message.unserved_handlers), served=tuple(message.served_handlers))
    for result in message.results:
        if result.WhichOneof("outcome") == "output":
            yield BatchEvent(index=result.index, output=result.output)
        else:
            yield BatchEvent(index=result.index, error=result.error or "empty result")


#: Called with (waiting, served) handler names when tasks wait for an unserved handler.
UnservedCallback = Callable[[Sequence[str], Sequence[str]], None]
AnyFuture = Union["concurrent.futures.Future[bytes]", "asyncio.Future[bytes]"]
_SETTLED = (concurrent.futures.InvalidStateError, asyncio.InvalidStateError)


def settle(message: pb.QueueTaskResults, futures: Sequence[AnyFuture], on_unserved: Optional[UnservedCallback]) -> int:
    """Resolves the futures whose results ``message`` holds (a future its caller cancelled
    stays so) and passes on a notice of unserved handlers; returns how many results."""
    if message.unserved_handlers and on_unserved is not None:
        on_unserved(list(message.unserved_handlers), list(message.served_handlers))
    for result in message.results:
        resolve(futures[result.index], result)
    return len(message.results)


def resolve(future: AnyFuture, result: pb.QueueTaskResult) -> None:
    """Sets ``future`` from its task's ``result`` (a future its caller cancelled stays so)."""
    try:
        if result.WhichOneof("outcome") == "output":
            future.set_result(result.output)
        else:
            future.set_exception(TaskFailed(result.error))
    except _SETTLED:
        pass


def fail_pending(futures: Sequence[AnyFuture], failure: BaseException) -> None:
    """Fails every future not resolved yet with ``failure``."""
    for future in futures:
        try:
            if not future.done():
                future.set_exception(failure)
        except _SETTLED:
            pass
