"""Warm handlers in Python: a decorated function that a weft worker runs task after task.

Write a module::

    from weft_queue.handler import handler, serve

    @handler("resize")
    def resize(payload: bytes) -> bytes:
        ...

    if __name__ == "__main__":
        serve()

and start a worker with ``weft worker --handler resize="python3 -m mymodule"``. The worker
starts the module once per slot, when first needed, and sends it tasks over file
descriptors 3 and 4 (``WEFT_HANDLER_FDS``); what it prints goes to the worker's stderr.

A handler gets the task's payload as ``bytes`` and returns ``bytes``, ``bytearray``,
``memoryview``, ``str`` (sent as UTF-8) or ``None`` (an empty result). An exception fails
the attempt with its type and message (the task is tried again, up to its attempts). An
``async def`` handler runs on an event loop kept for the process.

The protocol (all integers little-endian): a request is ``id: u64, length: u32`` then the
payload; a result is ``id: u64, status: u8`` (0: output, 1: error text), ``length: u32``
then the body.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import struct
import sys
from typing import Any, Awaitable, Callable, Dict, Optional, Union

__all__ = ["handler", "serve", "Result"]

Result = Union[bytes, bytearray, memoryview, str, None]
HandlerFunction = Callable[[bytes], Union[Result, Awaitable[Result]]]

_REQUEST = struct.Struct("<QI")
_RESULT = struct.Struct("<QBI")
_handlers: Dict[str, HandlerFunction] = {}

def handler(name: Optional[str] = None) -> Callable[[HandlerFunction], HandlerFunction]:
    """Registers the decorated function as the handler ``name`` (default: its own name)."""

    def register(function: HandlerFunction) -> HandlerFunction:
        _handlers[name or function.__name__] = function
        return function

    return register


def _as_bytes(result: Result) -> bytes:
    if result is None:
        return b""
    if isinstance(result, str):
        return result.encode("utf-8")
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result)
    raise TypeError(f"a handler returns bytes, str or None, not {type(result).__name__}")


def _choose(name: Optional[str]) -> HandlerFunction:
    name = name or os.environ.get("WEFT_HANDLER")
    if name is None:
        if len(_handlers) != 1:
            raise SystemExit(
                f"weft_queue.handler.serve: which handler? WEFT_HANDLER is not set and "
                f"{len(_handlers)} are registered: {', '.join(sorted(_handlers)) or 'none'}"
            )
        return next(iter(_handlers.values()))
    if name not in _handlers:
        raise SystemExit(
            f"weft_queue.handler.serve: no handler {name!r} here; registered: "
            f"{', '.join(sorted(_handlers)) or 'none'}"
        )
    return _handlers[name]


def serve(name: Optional[str] = None) -> None:
    """Runs the handler ``name`` (default: ``$WEFT_HANDLER``, or the only one registered)
    until the worker closes the request pipe."""
    function = _choose(name)
    fds = os.environ.get("WEFT_HANDLER_FDS")
    if fds is None:
        raise SystemExit(
            "weft_queue.handler.serve runs under a weft worker: "
            "weft worker --handler NAME='python3 -m your_module'"
        )
    requests, results = (int(fd) for fd in fds.split(","))
    loop = asyncio.new_event_loop() if inspect.iscoroutinefunction(function) else None

    def call(payload: bytes) -> bytes:
        result: Any = function(payload)
        if loop is not None and inspect.isawaitable(result):
            result = loop.run_until_complete(result)
        return _as_bytes(result)

    buffer = bytearray()
    while True:
        chunk = os.read(requests, 1 << 16)
        if not chunk:
            break
        buffer += chunk
        offset = 0
        while len(buffer) - offset >= _REQUEST.size:
            request_id, length = _REQUEST.unpack_from(buffer, offset)
            end = offset + _REQUEST.size + length
            if len(buffer) < end:
                break
            payload = bytes(buffer[offset + _REQUEST.size : end])
            offset = end
            try:
                body, status = call(payload), 0
            except Exception as error:  # noqa: BLE001 - any failure is the task's
                body, status = f"{type(error).__name__}: {error}".encode("utf-8", "replace"), 1
            # Written before the next call: a handler that ends the process must not take
            # the results of the tasks before it with it (the worker would blame one of them).
            _write_all(results, _RESULT.pack(request_id, status, len(body)) + body)
        del buffer[:offset]
    if loop is not None:
        loop.close()
    sys.stdout.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
