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


class ResultLost(Exception):
    """The batch's stream ended before this task's result came."""


class JobFailed(Exception):
    """A job ended without succeeding."""

    def __init__(self, status: object, reason: str) -> None:
        super().__init__(reason)
        self.status = status
