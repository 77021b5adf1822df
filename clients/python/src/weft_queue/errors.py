"""What can go wrong for a weft client."""

from __future__ import annotations

from typing import Optional

import grpc

__all__ = ["WeftError", "TaskFailed", "JobFailed", "ResultLost", "BatchCancelled"]


class WeftError(Exception):
    """The coordinator refused or failed a call; ``code`` is the gRPC status code."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "WeftError":
        code = error.code() if hasattr(error, "code") else None
        details = (error.details() if hasattr(error, "details") else None) or str(error)
        return cls(explain(code, details), code)


#: What a call's error most likely means, by words of its details, in words a user can act on.
_CAUSES = [
    ("Connection refused", "cannot reach the coordinator: nothing listens there; is it running, at this address and port?"),
    ("Socket closed", "the coordinator closed the connection at once: if it serves TLS (a secured cluster), "
     "use https:// with the cluster's CA (tls_ca=, or $WEFT_TLS_DIR)"),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS: use http://, or start it with --tls-dir"),
    ("BAD_SIGNATURE", "the server's certificate is not one the CA given vouches for: give the ca.pem of this "
     "cluster's `weft certs` (tls_ca=, or $WEFT_TLS_DIR)"),
    ("CERTIFICATE_VERIFY_FAILED", "the server's certificate is not one the CA given vouches for: give the ca.pem "
     "of this cluster's `weft certs` (tls_ca=, or $WEFT_TLS_DIR)"),
]


def explain(code: Optional[grpc.StatusCode], details: str) -> str:
    """A call's error in words a user can act on: the likely cause first, then what gRPC
    said; a missing token in this client's own terms (the coordinator's words are the
    command line's)."""
    if code == grpc.StatusCode.UNAUTHENTICATED and details.startswith("no token"):
        return ("no token: the coordinator asks for one: give token_file= (a NAME.token that `weft certs` wrote) "
                "or token=, or set $WEFT_TOKEN_FILE or $WEFT_TOKEN")
    cause = next((cause for words, cause in _CAUSES if words in details), None)
    return f"{cause} ({details})" if cause else details


class TaskFailed(Exception):
    """A queue task failed after its attempts; the message is why."""


class BatchCancelled(Exception):
    """A durable batch waited for was cancelled before every task had a result; ``results``
    are those it stored (each a :class:`weft_queue.StoredResult`)."""

    def __init__(self, batch_id: str, tasks: int, results: list) -> None:  # type: ignore[type-arg]
        super().__init__(f"{batch_id} was cancelled: {len(results)} of {tasks} tasks have a result")
        self.batch_id = batch_id
        self.tasks = tasks
        self.results = results


class ResultLost(Exception):
    """The batch's stream ended before this task's result came: the batch was cut (its
    coordinator stopped, or another took over; a batch does not outlive either)."""


#: Why a task of a batch whose stream ended without its result has none.
STREAM_ENDED = ("the batch's stream ended before this task's result came: a batch is cut when its coordinator "
                "stops or another takes over; run the task again")

#: Codes of a stream that broke, rather than being refused.
_BROKEN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED)


def cut_by(error: grpc.RpcError) -> Exception:
    """What a batch's broken stream means for its tasks still waiting: a lost connection cut
    the batch (:class:`ResultLost`); a refusal stays a :class:`WeftError`."""
    failure = WeftError.from_rpc(error)
    if failure.code in _BROKEN:
        return ResultLost(f"the batch was cut before this task's result came ({failure}): a batch does not "
                          "outlive its coordinator's restart or a takeover; run the task again")
    return failure


class JobFailed(Exception):
    """A job ended without succeeding."""

    def __init__(self, status: object, reason: str) -> None:
        super().__init__(reason)
        self.status = status
