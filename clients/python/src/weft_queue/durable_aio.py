"""Durable task batches on asyncio: :class:`weft_queue.DurableBatch`'s methods as
coroutines and an async iterator, for :class:`weft_queue.AsyncClient`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, AsyncIterator, List, Optional, Union

import grpc

from ._proto import weft_pb2 as pb
from .durable import BatchInfo, BatchRef, StoredResult, in_task_order, results_request, still_passing
from .errors import TaskFailed, WeftError

if TYPE_CHECKING:
    from .aio import AsyncClient

__all__ = ["AsyncDurableBatch"]


class AsyncDurableBatch(BatchRef["AsyncClient"]):
    """A durable batch on a coordinator, by its id, read on asyncio; ``submitted`` is what
    the submit that made (or found) it answered."""

    async def info(self) -> BatchInfo:
        """Where it stands now."""
        return BatchInfo.from_wire(await self._client._call("GetBatch", pb.BatchRef(batch_id=self.id)))

    async def cancel(self) -> BatchInfo:
        """Stops it: tasks without a result never get one."""
        return BatchInfo.from_wire(await self._client._call("CancelBatch", pb.BatchRef(batch_id=self.id)))

    async def results(self, start: int = 0, follow: bool = True) -> AsyncIterator[StoredResult]:
        """Its results from position ``start``, in the order they were stored; with
        ``follow``, until the batch ends, else those stored now. A stream that breaks is
        opened again where it stopped, for up to two minutes."""
        position = start
        broken_since: Optional[float] = None
        while True:
            request = results_request(self.id, position, follow)
            try:
                async for message in self._client._stub.GetBatchResults(request, metadata=self._client._metadata):
                    broken_since = None
                    for r in message.results:
                        # At the position the coordinator gives: the next read starts after it.
                        yield StoredResult.from_wire(r)
                        position = r.position + 1
                if not follow:
                    return
                # A stream also ends when its coordinator stops: the end only once the
                # batch has, with every result read.
                info = await self.info()
                broken_since = None
                if info.is_final and position >= info.results:
                    return
            except (grpc.RpcError, WeftError) as error:
                broken_since = await self._may_retry(error, broken_since)
            await asyncio.sleep(0.5)

    async def result(self, task_id: str, wait: bool = True) -> Optional[StoredResult]:
        """The result of its task submitted with ``task_id`` (``Task(id=...)``), once
        stored; with ``wait``, waits for it (through restarts and takeovers), and None only
        if the batch ended or was cancelled without it. An id no task of the batch has
        raises a :class:`WeftError` with ``NOT_FOUND``."""
        broken_since: Optional[float] = None
        while True:
            try:
                found = await self._read_result(task_id, wait)
                if found is not None or not wait:
                    return found
                # A stream also ends when its coordinator stops: None once the batch has.
                if (await self.info()).is_final:
                    return await self._read_result(task_id, False)
                broken_since = None
            except (grpc.RpcError, WeftError) as error:
                broken_since = await self._may_retry(error, broken_since)
            await asyncio.sleep(0.5)

    async def wait(self) -> List[Union[bytes, TaskFailed]]:
        """Waits for every result; returns them in task order: each task's output, or a
        :class:`TaskFailed` for one that failed. A batch cancelled before every task had a
        result raises :class:`weft_queue.BatchCancelled` (with the results it stored)."""
        stored = [r async for r in self.results(0, follow=True)]
        return in_task_order(stored, await self.info())

    async def _may_retry(self, error: Exception, broken_since: Optional[float]) -> float:
        """:func:`weft_queue.durable.still_passing`, then to the coordinator that leads now."""
        broken_since = still_passing(error, broken_since)
        leader = await asyncio.to_thread(self._client._leader_now)
        if leader is not None:
            self._client._use(leader)
        return broken_since

    async def _read_result(self, task_id: str, follow: bool) -> Optional[StoredResult]:
        request = results_request(self.id, 0, follow, task_id)
        found = None
        async for message in self._client._stub.GetBatchResults(request, metadata=self._client._metadata):
            for r in message.results:
                found = found or StoredResult.from_wire(r)
        return found
