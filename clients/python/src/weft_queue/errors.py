"""What can go wrong for a weft client."""

from __future__ import annotations

from typing import Optional

import grpc

__all__ = ["WeftError", "TaskFailed", "JobFailed", "ResultLost"]


class WeftError(Exception):
    """The coordinator refused or failed a call; ``code`` is the gRPC status code."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "WeftError":
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(details or str(error), code)


class TaskFailed(Exception):
    """A queue task failed after its attempts; the message is why."""


class ResultLost(Exception):
    """The batch's stream ended before this task's result came."""


class JobFailed(Exception):
    """A job ended without succeeding."""

    def __init__(self, status: object, reason: str) -> None:
        super().__init__(reason)
        self.status = status
