"""``DeferredList``: futures collected the way Twisted's ``DeferredList`` collects
Deferreds, with the options of weft's Rust ``DeferredList``. Results come back in
submission order, as ``(success, value)`` pairs; ``fire_on_one_callback`` fires on the
first success, ``fire_on_one_errback`` on the first failure; without ``consume_errors``,
every failure is also logged when the list fires, as Twisted logs an unhandled failure.
When it fires early, the futures still pending are cancelled.

It collects ``concurrent.futures`` futures (``result()`` blocks) and ``asyncio`` futures
(``await`` it) alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import dataclass
from typing import Any, Generator, Generic, List, Optional, Sequence, Tuple, TypeVar, Union, cast

__all__ = ["DeferredList", "Completed", "FirstSuccess", "FirstError", "Fired"]

T = TypeVar("T")
log = logging.getLogger("weft_queue")


@dataclass(frozen=True)
class Completed(Generic[T]):
    """Every future finished: ``(True, value)`` or ``(False, exception)`` for each, in
    submission order."""

    results: List[Tuple[bool, Union[T, BaseException]]]

    def values(self) -> List[T]:
        """The values, in order; raises the first failure's exception if any failed."""
        out: List[T] = []
        for ok, value in self.results:
            if not ok:
                raise value  # type: ignore[misc]
            out.append(value)  # type: ignore[arg-type]
        return out


@dataclass(frozen=True)
class FirstSuccess(Generic[T]):
    """With ``fire_on_one_callback``: the first future to succeed."""

    index: int
    value: T


@dataclass(frozen=True)
class FirstError:
    """With ``fire_on_one_errback``: the first future to fail."""

    index: int
    error: BaseException


Fired = Union[Completed[T], FirstSuccess[T], FirstError]
AnyFuture = Union["concurrent.futures.Future[T]", "asyncio.Future[T]"]


class DeferredList(Generic[T]):
    """Collects ``futures``; see the module's documentation for the options."""

    def __init__(
        self,
        futures: Sequence[AnyFuture],
        *,
        fire_on_one_callback: bool = False,
        fire_on_one_errback: bool = False,
        consume_errors: bool = False,
    ) -> None:
        self.futures = list(futures)
        self.fire_on_one_callback = fire_on_one_callback
        self.fire_on_one_errback = fire_on_one_errback
        self.consume_errors = consume_errors

    def _outcome(self, future: AnyFuture) -> Tuple[bool, Any]:
        error = future.exception()
        return (False, error) if error is not None else (True, future.result())

    def _early(self, index: int, outcome: Tuple[bool, Any]) -> Optional[Fired]:
        ok, value = outcome
        if ok and self.fire_on_one_callback:
            return FirstSuccess(index, value)
        if not ok and self.fire_on_one_errback:
            return FirstError(index, value)
        return None

    def _finish(self, fired: Fired, outcomes: Sequence[Optional[Tuple[bool, Any]]]) -> Fired:
        for future in self.futures:
            if not future.done():
                future.cancel()
        if not self.consume_errors:
            for index, outcome in enumerate(outcomes):
                if outcome is not None and not outcome[0]:
                    log.error("unhandled failure of future %d: %s", index, outcome[1])
        return fired

    def result(self, timeout: Optional[float] = None) -> Fired:
        """Blocks until the list fires (``concurrent.futures`` futures)."""
        early = self.fire_on_one_callback or self.fire_on_one_errback
        if not early:
            # In order, one at a time: cheaper than a waiter on every future at once.
            deadline = None if timeout is None else time.monotonic() + timeout
            results = []
            for future in cast("List[concurrent.futures.Future[Any]]", self.futures):
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    error = future.exception(timeout=left)
                except concurrent.futures.TimeoutError:
                    raise TimeoutError(f"the list did not fire within {timeout} s") from None
                except concurrent.futures.CancelledError as cancelled:
                    error = cancelled
                results.append((False, error) if error is not None else (True, future.result()))
            return self._finish(Completed(results), results)
        outcomes: List[Optional[Tuple[bool, Any]]] = [None] * len(self.futures)
        index_of = {id(f): i for i, f in enumerate(self.futures)}
        for future in concurrent.futures.as_completed(self.futures, timeout=timeout):  # type: ignore[arg-type]
            index = index_of[id(future)]
            if future.cancelled():
                continue
            outcomes[index] = self._outcome(future)
            fired = self._early(index, outcomes[index])  # type: ignore[arg-type]
            if fired is not None:
                return self._finish(fired, outcomes)
        results = [o if o is not None else (False, concurrent.futures.CancelledError()) for o in outcomes]
        return self._finish(Completed(results), results)

    async def _wait(self) -> Fired:
        futures: List["asyncio.Future[Any]"] = [asyncio.ensure_future(cast(Any, f)) for f in self.futures]
        self.futures = futures  # type: ignore[assignment]
        outcomes: List[Optional[Tuple[bool, Any]]] = [None] * len(futures)
        index_of = {id(f): i for i, f in enumerate(futures)}
        pending = set(futures)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: index_of[id(f)]):
                index = index_of[id(future)]
                if future.cancelled():
                    outcomes[index] = (False, asyncio.CancelledError())
                    continue
                outcomes[index] = self._outcome(future)
                fired = self._early(index, outcomes[index])  # type: ignore[arg-type]
                if fired is not None:
                    return self._finish(fired, outcomes)
        results = [o for o in outcomes if o is not None]
        return self._finish(Completed(results), results)

    def __await__(self) -> Generator[Any, None, Fired]:
        """Waits until the list fires (``asyncio`` futures)."""
        return self._wait().__await__()
