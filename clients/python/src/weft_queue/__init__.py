"""weft's Python client and handler kit.

- :class:`Client` (blocking; task results are ``concurrent.futures`` futures) and
  :class:`AsyncClient` (asyncio) submit and follow jobs and run task batches;
- :class:`DeferredList` collects task futures like Twisted's, with the same options as
  weft's Rust one;
- :mod:`weft_queue.handler` makes a Python function a warm handler that a worker runs
  (``weft worker --handler NAME="python3 -m your_module"``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .client import Client, Job
    from .deferred import Completed, DeferredList, FirstError, FirstSuccess
    from .durable import BatchInfo, DurableBatch, StoredResult
    from .durable_aio import AsyncDurableBatch
    from .errors import BatchCancelled, JobFailed, ResultLost, TaskFailed, WeftError
    from .jobs import JobStatus, WorkerInfo
    from .submitter import Submitter
    from .tasks import BatchEvent, Task

# Imported when first named, so that a handler process (``weft_queue.handler``) needs
# neither grpcio nor protobuf.
_HOMES = {
    "AsyncClient": "aio",
    "AsyncDurableBatch": "durable_aio",
    "Client": "client",
    "Job": "client",
    "Completed": "deferred",
    "DeferredList": "deferred",
    "FirstError": "deferred",
    "FirstSuccess": "deferred",
    "BatchInfo": "durable",
    "DurableBatch": "durable",
    "StoredResult": "durable",
    "BatchCancelled": "errors",
    "JobFailed": "errors",
    "ResultLost": "errors",
    "TaskFailed": "errors",
    "WeftError": "errors",
    "JobStatus": "jobs",
    "WorkerInfo": "jobs",
    "Submitter": "submitter",
    "BatchEvent": "tasks",
    "Task": "tasks",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'weft_queue' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)


__all__ = [
    "AsyncClient",
    "AsyncDurableBatch",
    "BatchCancelled",
    "BatchEvent",
    "BatchInfo",
    "Client",
    "Completed",
    "DeferredList",
    "DurableBatch",
    "FirstError",
    "FirstSuccess",
    "Job",
    "JobFailed",
    "JobStatus",
    "ResultLost",
    "StoredResult",
    "Submitter",
    "Task",
    "TaskFailed",
    "WeftError",
    "WorkerInfo",
]
__version__ = "0.1.0"
