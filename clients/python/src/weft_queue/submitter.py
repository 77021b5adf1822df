"""Single tasks as they come, over one standing stream: a task's result without a new
call's round trip, for many small tasks submitted one at a time (a web handler's, a
crawler's). The blocking client's futures; results are set by a reader thread."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional

import grpc

from ._proto import weft_pb2 as pb
from .errors import ResultLost, WeftError
from .tasks import Payload, Task, TaskLike, UnservedCallback, batch_parts, fail_pending, resolve

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Submitter"]

#: Tasks one stream takes: positions in a batch are 32-bit.
_MAX_TASKS = (1 << 32) - 1


class Submitter:
    """Runs each task it is given as the next task of one endless batch on a stream it
    keeps open. Tasks are retried on their own and have their own results, as in
    ``Client.run_tasks``. Make one with ``client.submitter(...)``.

    A task the coordinator refuses (a handler that is not a name, say) ends the stream: the
    tasks still on it fail with that error, and the next submission opens a new stream.
    ``close()`` (or leaving a ``with`` block) cancels the tasks still running.
    """

    def __init__(
        self,
        client: "Client",
        *,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
        on_unserved: Optional[UnservedCallback] = None,
    ) -> None:
        self._client = client
        self._settings = dict(max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)
        self._on_unserved = on_unserved
        self._lock = threading.Lock()
        self._stream: Optional[_Stream] = None

    def __enter__(self) -> "Submitter":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(self, task: TaskLike | str, payload: Payload = b"") -> "Future[bytes]":
        """Sends a task (a ``Task``, a ``(handler, payload)`` pair, or a handler name and
        ``payload``); returns the future of its output."""
        if isinstance(task, str):
            task = Task(task, payload)
        part = next(batch_parts([task], opening=False, **self._settings))  # type: ignore[arg-type]
        future: "Future[bytes]" = Future()
        with self._lock:
            while True:
                # A stream's batch numbers its tasks with 32 bits: a new one before they run out.
                if self._stream is None or self._stream.ended or self._stream.full:
                    if self._stream is not None:
                        self._stream.finish()
                    self._stream = _Stream(self._client, self._settings, self._on_unserved)
                if self._stream.send(part, future):
                    return future

    def close(self) -> None:
        """Ends the stream; tasks still running are cancelled and their futures fail."""
        with self._lock:
            if self._stream is not None:
                self._stream.cancel()
                self._stream = None


class _Stream:
    """One RunTaskStream call: the parts to send, and the futures of the tasks sent whose
    results have not come, by position in the stream's batch."""

    def __init__(self, client: "Client", settings: dict, on_unserved: Optional[UnservedCallback]) -> None:
        self._outgoing: "queue.SimpleQueue[Optional[pb.TaskBatch]]" = queue.SimpleQueue()
        self._pending: Dict[int, "Future[bytes]"] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._on_unserved = on_unserved
        self.ended = False
        # The first part carries the settings and no task.
        first = next(batch_parts([], **settings))
        self._responses = client._stub.RunTaskStream(self._parts(first), metadata=client._metadata)
        threading.Thread(target=self._read, name="weft-submitter", daemon=True).start()

    def _parts(self, first: pb.TaskBatch) -> Iterator[pb.TaskBatch]:
        yield first
        while True:
            part = self._outgoing.get()
            if part is None:
                return
            yield part

    def send(self, part: pb.TaskBatch, future: "Future[bytes]") -> bool:
        """Sends a one-task part whose result sets ``future``; False if the stream ended."""
        with self._lock:
            if self.ended:
                return False
            self._pending[self._next] = future
            self._next += 1
            self._outgoing.put(part)
            return True

    @property
    def full(self) -> bool:
        return self._next >= _MAX_TASKS

    def finish(self) -> None:
        """Sends no more: the stream ends once the tasks on it have."""
        self._outgoing.put(None)

    def cancel(self) -> None:
        self.finish()
        self._responses.cancel()

    def _read(self) -> None:
        failure: BaseException = ResultLost("the submitter's stream ended before this task's result came")
        try:
            for message in self._responses:
                if message.unserved_handlers and self._on_unserved is not None:
                    self._on_unserved(list(message.unserved_handlers), list(message.served_handlers))
                for result in message.results:
                    with self._lock:
                        future = self._pending.pop(result.index, None)
                    if future is not None:
                        resolve(future, result)
        except grpc.RpcError as error:
            failure = WeftError.from_rpc(error)
        with self._lock:
            self.ended = True
            left: List["Future[bytes]"] = list(self._pending.values())
            self._pending.clear()
        self._outgoing.put(None)
        fail_pending(left, failure)
