"""The asyncio client: task batches whose results are ``asyncio`` futures, set by a
reader task as results stream back."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, List, Optional

import grpc

from ._proto import weft_pb2 as pb
from .client import _warn_unserved
from .connection import Connected
from .errors import STREAM_ENDED, ResultLost, WeftError, cut_by
from .jobs import JobStatus, WorkerInfo, job_spec
from .tasks import BatchEvent, TaskLike, UnservedCallback, batch_parts, events_of, fail_pending, settle

if TYPE_CHECKING:
    from .durable import BatchInfo
    from .durable_aio import AsyncDurableBatch

__all__ = ["AsyncClient"]


class AsyncClient(Connected):
    """Like :class:`weft_queue.Client`, on asyncio: ``await client.run_tasks(...)`` returns
    one ``asyncio.Future`` per task. Use ``async with``, or ``await close()``."""

    asynchronous = True

    def __init__(self, url: Optional[str] = None, **credentials: Any) -> None:
        super().__init__(url, **credentials)
        self._readers: "set[asyncio.Task[None]]" = set()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection; batches still running are cancelled."""
        for reader in list(self._readers):
            reader.cancel()
        for channel in [*self._retired, self._channel]:
            await channel.close(grace=None)

    async def _call(self, method: str, request: object, *, changes: bool = False) -> Any:
        """Calls ``method`` of the job service on the leader; given several coordinators,
        once more on the one that leads now when it was refused UNAVAILABLE (see
        :meth:`Connected._may_follow`). A ``request`` that is callable makes the request of
        each call (a stream's iterator, which one call uses up)."""
        make = request if callable(request) else (lambda: request)
        try:
            return await getattr(self._stub, method)(make(), metadata=self._metadata)
        except grpc.RpcError as error:
            leader = await asyncio.to_thread(self._leader_now) if self._may_follow(error, changes) else None
            if leader is None:
                raise WeftError.from_rpc(error) from None
        self._use(leader)
        try:
            return await getattr(self._stub, method)(make(), metadata=self._metadata)
        except grpc.RpcError as error:
            raise WeftError.from_rpc(error) from None

    async def submit(self, inputs: List[str], output: str, **spec: object) -> str:
        """Submits a job; returns its id once it is durable."""
        response = await self._call("SubmitJob", job_spec(inputs, output, **spec), changes=True)  # type: ignore[arg-type]
        return str(response.job_id)

    async def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_wire(await self._call("GetJob", pb.JobRef(job_id=job_id)))

    async def workers(self) -> List[WorkerInfo]:
        listed = await self._call("ListWorkers", pb.ListWorkersRequest())
        return [WorkerInfo.from_wire(w) for w in listed.workers]

    async def submit_durable(
        self,
        tasks: Iterable[TaskLike],
        *,
        key: Optional[str] = None,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
    ) -> "AsyncDurableBatch":
        """Stores ``tasks`` as a durable batch, as :meth:`weft_queue.Client.submit_durable`
        does; returns it once the coordinator has stored it."""
        from .durable import BatchInfo, durable_parts
        from .durable_aio import AsyncDurableBatch

        parts = durable_parts(tasks, key, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)
        info = BatchInfo.from_wire(await self._call("SubmitTasks", lambda: iter(parts)))
        return AsyncDurableBatch(self, info.id, info)

    def batch(self, batch_id: str) -> "AsyncDurableBatch":
        """A durable batch submitted earlier, by its id (``batch-000042``)."""
        from .durable_aio import AsyncDurableBatch

        return AsyncDurableBatch(self, batch_id)

    async def batches(self, limit: int = 100) -> "List[BatchInfo]":
        """The newest durable batches: the caller's, or every one for an admin."""
        from .durable import BatchInfo

        listed = await self._call("ListBatches", pb.ListBatchesRequest(limit=limit))
        return [BatchInfo.from_wire(b) for b in listed.batches]

    async def run_tasks(
        self,
        tasks: Iterable[TaskLike],
        *,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
        on_unserved: Optional[UnservedCallback] = _warn_unserved,
    ) -> "List[asyncio.Future[bytes]]":
        """Runs ``tasks`` as one batch; one future per task, in order (see
        :meth:`weft_queue.Client.run_tasks`)."""
        tasks = list(tasks)
        loop = asyncio.get_running_loop()
        futures: "List[asyncio.Future[bytes]]" = [loop.create_future() for _ in tasks]
        parts = batch_parts(tasks, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)
        call = self._stub.RunTaskStream(iter(parts), metadata=self._metadata)
        reader = asyncio.ensure_future(_settle(call, futures, on_unserved))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return futures

    async def stream_tasks(
        self,
        tasks: Iterable[TaskLike],
        *,
        max_attempts: int = 0,
        timeout: Optional[float] = None,
        unserved_timeout: Optional[float] = None,
    ) -> AsyncIterator[BatchEvent]:
        """Streams ``tasks`` as they are read; yields each result as it ends."""
        parts = batch_parts(tasks, max_attempts=max_attempts, timeout=timeout, unserved_timeout=unserved_timeout)
        try:
            async for message in self._stub.RunTaskStream(iter(parts), metadata=self._metadata):
                for event in events_of(message):
                    yield event
        except grpc.RpcError as error:
            raise WeftError.from_rpc(error) from None


async def _settle(call: "grpc.aio.StreamStreamCall", futures: "List[asyncio.Future[bytes]]", on_unserved: Optional[UnservedCallback]) -> None:
    pending = len(futures)
    failure: BaseException = ResultLost(STREAM_ENDED)
    received = False
    try:
        async for message in call:
            received = True
            pending -= settle(message, futures, on_unserved)
            if pending == 0:
                break
    except grpc.RpcError as error:
        # Broken once it ran: the batch was cut; before any answer: a refusal, or no connection.
        failure = cut_by(error) if received else WeftError.from_rpc(error)
    finally:
        fail_pending(futures, failure)
        call.cancel()
