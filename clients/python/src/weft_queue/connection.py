"""How a client reaches the coordinator: its URL, the cluster's CA for ``https://``, and
the bearer token, from arguments or the environment the ``weft`` command reads
(``WEFT_COORDINATOR``, ``WEFT_TLS_DIR``, ``WEFT_TOKEN``, ``WEFT_TOKEN_FILE``). Several
comma-separated URLs (a leader and its standbys) reach the one that leads."""

from __future__ import annotations

import os
import pathlib
import threading
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import grpc

__all__ = ["Connection"]

#: The name in the coordinator's certificate, checked instead of the address dialled.
COORDINATOR_NAME = "coordinator.weft"
MAX_MESSAGE_BYTES = 16 << 20
#: How long a client given several coordinators waits for one to lead during a takeover.
TAKEOVER_WAIT = 30.0
#: How long a job's waiter looks for a leader after losing the one it watched.
FOLLOW_FOR = 60.0
#: The metadata key by which a standby names the leader when it refuses a call.
LEADER_METADATA = "weft-leader"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Connection:
    """Where the coordinator is and how to prove who we are."""

    target: str
    tls_ca: Optional[bytes]
    token: Optional[str]
    #: Every coordinator given, when several were (a leader and its standbys).
    targets: Optional[List[str]] = None

    @classmethod
    def resolve(
        cls,
        url: Optional[str] = None,
        *,
        tls_ca: Optional[PathLike] = None,
        token: Optional[str] = None,
        token_file: Optional[PathLike] = None,
    ) -> "Connection":
        url = url or os.environ.get("WEFT_COORDINATOR", "http://127.0.0.1:7070")
        urls = [u.strip() for u in url.split(",") if u.strip()]
        schemes = set()
        targets = []
        for one in urls:
            scheme, _, target = one.partition("://")
            if not target or scheme not in ("http", "https"):
                raise ValueError(f"bad coordinator URL {one!r}: give http://HOST:PORT or https://HOST:PORT")
            schemes.add(scheme)
            targets.append(target.rstrip("/"))
        if len(schemes) != 1:
            raise ValueError(f"bad coordinator URLs {url!r}: give them all http:// or all https://")
        scheme, target = schemes.pop(), targets[0]
        ca = None
        if scheme == "https":
            path = tls_ca
            if path is None and os.environ.get("WEFT_TLS_DIR"):
                path = pathlib.Path(os.environ["WEFT_TLS_DIR"]) / "ca.pem"
            if path is None:
                raise ValueError(f"{url} speaks TLS: give tls_ca= (the cluster's ca.pem) or set WEFT_TLS_DIR")
            ca = pathlib.Path(path).read_bytes()
        elif tls_ca is not None:
            raise ValueError(f"{url} is plaintext, yet a CA was given: use https://")
        token_file = token_file or os.environ.get("WEFT_TOKEN_FILE")
        if token is None and token_file:
            token = pathlib.Path(token_file).read_text().strip()
        if token is None:
            token = os.environ.get("WEFT_TOKEN")
        connection = cls(target=target, tls_ca=ca, token=token)
        if len(targets) > 1:
            connection.targets = targets
            connection.target = connection.leader_among(targets)
        return connection

    def leader_among(self, targets: List[str]) -> str:
        """The target that leads: the first that says it leads, or the one a standby names
        when it is in the list and says so itself. While none leads but one stands by (a
        takeover under way), asked again for up to 30 s; when none answers, refused at once."""
        deadline = time.monotonic() + TAKEOVER_WAIT
        while True:
            found, standing_by, heard = self._look_for_leader(targets)
            if found is not None:
                return found
            if not standing_by or time.monotonic() >= deadline:
                from .errors import WeftError

                scheme = "https" if self.tls_ca is not None else "http"
                raise WeftError(
                    f"none of the coordinators {', '.join(f'{scheme}://{t}' for t in targets)} leads ({'; '.join(heard)})",
                    grpc.StatusCode.UNAVAILABLE,
                )
            time.sleep(0.25)

    def _look_for_leader(self, targets: List[str]) -> Tuple[Optional[str], bool, List[str]]:
        """One round: the leader if one says so, whether one stood by, and what each said."""
        from ._proto.weft_pb2 import LeaderRequest
        from ._proto.weft_pb2_grpc import LeaderServiceStub

        def ask(target: str) -> Any:
            with Connection(target=target, tls_ca=self.tls_ca, token=None).channel() as channel:
                try:
                    return LeaderServiceStub(channel).GetLeader(LeaderRequest(), timeout=5)
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                        return None  # a coordinator too old to say leads alone
                    raise

        heard = []
        standing_by = False
        for target in targets:
            try:
                info = ask(target)
            except grpc.RpcError as e:
                heard.append(f"{target}: {e.details()}")
                continue
            if info is None or info.leading:
                return target, True, heard
            standing_by = True
            named = info.leader.partition("://")[2].rstrip("/")
            if named in targets:
                try:
                    again = ask(named)
                except grpc.RpcError:
                    again = None
                if again is not None and again.leading:
                    return named, True, heard
            heard.append(f"{target}: stands by for {info.leader or 'no leader known yet'}")
        return None, standing_by, heard

    def options(self) -> List[Tuple[str, object]]:
        options: List[Tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if self.tls_ca is not None:
            options.append(("grpc.ssl_target_name_override", COORDINATOR_NAME))
        return options

    def metadata(self) -> Tuple[Tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel(self) -> grpc.Channel:
        if self.tls_ca is None:
            return grpc.insecure_channel(self.target, options=self.options())
        credentials = grpc.ssl_channel_credentials(root_certificates=self.tls_ca)
        return grpc.secure_channel(self.target, credentials, options=self.options())

    def aio_channel(self) -> "grpc.aio.Channel":
        if self.tls_ca is None:
            return grpc.aio.insecure_channel(self.target, options=self.options())
        credentials = grpc.ssl_channel_credentials(root_certificates=self.tls_ca)
        return grpc.aio.secure_channel(self.target, credentials, options=self.options())


class Connected:
    """What both clients hold: the coordinator's connection, its stub, and the metadata
    every call carries. ``url`` defaults to ``$WEFT_COORDINATOR`` (else
    ``http://127.0.0.1:7070``); for an ``https://`` coordinator, ``tls_ca`` is the
    cluster's ``ca.pem`` (default: ``$WEFT_TLS_DIR/ca.pem``); the token comes from
    ``token``, ``token_file``, ``$WEFT_TOKEN_FILE`` or ``$WEFT_TOKEN``."""

    #: Whether the channel is asyncio's.
    asynchronous = False

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        tls_ca: Optional[PathLike] = None,
        token: Optional[str] = None,
        token_file: Optional[PathLike] = None,
    ) -> None:
        from ._proto.weft_pb2_grpc import JobServiceStub

        self._connection = Connection.resolve(url, tls_ca=tls_ca, token=token, token_file=token_file)
        self._channel: Any = self._connection.aio_channel() if self.asynchronous else self._connection.channel()
        self._stub = JobServiceStub(self._channel)
        self._metadata = self._connection.metadata()
        #: Channels of coordinators that no longer led, closed with the client.
        self._retired: List[Any] = []
        self._switching = threading.Lock()

    def _follow_leader(self) -> bool:
        """After losing the coordinator, with several given: connects to the one that leads
        now; whether there was one. Calls under way on the old channel fail."""
        leader = self._leader_now()
        if leader is None:
            return False
        self._use(leader)
        return True

    def _leader_now(self) -> Optional[str]:
        """The coordinator that leads now, with several given (waiting through a takeover as
        :meth:`Connection.leader_among` does); None with one given, or when none leads."""
        from .errors import WeftError

        targets = self._connection.targets
        if not targets:
            return None
        try:
            return self._connection.leader_among(targets)
        except WeftError:
            return None

    def _use(self, leader: str) -> None:
        """Calls go to ``leader`` from now on."""
        from ._proto.weft_pb2_grpc import JobServiceStub

        with self._switching:
            if leader == self._connection.target:
                return
            self._connection.target = leader
            # Calls under way on the old channel (another thread's) end there: it is closed
            # with the client, not now.
            self._retired.append(self._channel)
            self._channel = self._connection.aio_channel() if self.asynchronous else self._connection.channel()
            self._stub = JobServiceStub(self._channel)

    def _may_follow(self, error: grpc.RpcError, changes: bool) -> bool:
        """Whether a call that failed with ``error`` may go once more to the coordinator
        that leads now: with several given, a call refused UNAVAILABLE; one that
        ``changes`` something (a submit) only when a standby refused it, naming the leader
        (it did not run), so that a submit whose answer was lost with its leader is not
        sent twice."""
        if not self._connection.targets or error.code() != grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            return False
        if not changes:
            return True
        said = [*(error.initial_metadata() or ()), *(error.trailing_metadata() or ())]  # type: ignore[attr-defined]
        return any(key == LEADER_METADATA for key, _ in said)
