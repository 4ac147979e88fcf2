"""The seed dialect's Strategy for the Watcher: token auth, acked joins, SessionState polls."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from hextrackr_cli import protocol
from hextrackr_cli.client.strategy import SessionNotFound, Fetched, verifying_session
from hextrackr_cli.errors import ServerError, ServerUnreachable


class SeedStrategy:
    """The seed protocol (``hextrackr serve``): token auth, acked joins, SessionState polls."""

    dialect = protocol.SEED
    checks_on_start = False  # the join ack already says whether the session exists
    keeps_socket_while_polling = False

    def __init__(self, api: Any, token: str | None, verify: bool | str = True) -> None:
        self.api = api
        self.token = token
        self.verify = verify
        self.auth_hint: str = getattr(api, "token_hint", "check the credentials")

    # ------------------------------------------------------------------ socket.io
    def client_kwargs(self) -> dict[str, Any]:
        return {"http_session": verifying_session(self.verify)}

    def connect_kwargs(self) -> dict[str, Any]:
        return {"auth": {"token": self.token or ""}}

    def start(self, session_id: str) -> None:
        pass

    def join(self, sio: Any, session_id: str, *, reserve: bool, first: bool, timeout: float) -> Mapping[str, Any] | None:
        """Join the room; returns the session state the server sent with its ack (if any)."""
        import socketio

        payload: Any = {"sessionId": session_id, "reserve": True} if reserve else session_id
        try:
            ack = sio.call(self.dialect.join_event, payload, timeout=timeout)
        except socketio.exceptions.TimeoutError:
            if first:
                raise ServerError(f"the server did not acknowledge joining session {session_id}") from None
            return None
        except socketio.exceptions.SocketIOError:
            if first:
                raise ServerUnreachable("the socket.io connection dropped while joining the session") from None
            return None
        if isinstance(ack, Mapping) and ack.get("ok") is False:
            error = str(ack.get("error") or "refused")
            if "not found" in error.lower():
                raise SessionNotFound(f"session {session_id}: {error}")
            raise ServerError(f"joining session {session_id}: {error}")
        if isinstance(ack, Mapping) and isinstance(ack.get("session"), Mapping):
            return ack["session"]
        return None

    def leave(self, sio: Any, session_id: str) -> None:
        pass

    def translate(self, name: str, data: Any) -> dict[str, Any] | None:
        return protocol.validate_progress_event(data)

    # ------------------------------------------------------------------ HTTP
    def posted(self, answer: Mapping[str, Any] | None) -> None:
        pass

    def poll(self, session_id: str, *, retries: int | None = None) -> Fetched:
        return Fetched(state=self.api.progress(session_id, retries=retries))

    counts_from_file: bool = False  # the server counts each import's findings per severity
    min_severity_refusal: str | None = None

    def status(self, session_id: str) -> dict[str, Any]:
        return dict(self.api.progress(session_id))

    def import_guard(self, server_url: str, *, deadline: float | None, interrupted: Callable[[], bool],
                     say: Callable[[str], None]) -> Any:
        return None  # the server runs concurrent imports safely

    def poll_gap(self, base: float, polls: int) -> float:
        return base
