"""The HexTrackr 1.1.x wire facts: its paths, cookie and markers, the typed answers (PollResult, RateLimited,\nSocketOptions) and the small readers of its responses (Set-Cookie, RateLimit-Reset, the upload name)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Callable, Mapping

import requests

from hextrackr_cli.errors import ExitStatus, ServerError


COOKIE_NAME = "hextrackr.sid"
PATH_LOGIN = "/api/auth/login"
PATH_LOGOUT = "/api/auth/logout"
PATH_CSRF = "/api/auth/csrf"
PATH_STATUS = "/api/auth/status"
PATH_LAST_IMPORT = "/api/vulnerabilities/last-import"
INTERNAL_ERROR = "Internal server error"

# PollResult.status
POLL_OK = "ok"
POLL_NOT_FOUND = "not-found"
POLL_RATE_LIMITED = "rate-limited"
POLL_RESET = "reset"

CREDENTIALS_HINT = "check --username / HEXTRACKR_USERNAME and the password (HEXTRACKR_PASSWORD, the prompt or --password-stdin)"


class RateLimited(ServerError):
    """429 from the server that could not be waited out within ``--timeout``; ``retry_after`` is how long it
    asked us to wait (seconds). Exit 5 (the time ran out), never 1: nothing failed on the server."""

    exit_status = ExitStatus.TIMEOUT

    def __init__(self, message: str, *, retry_after: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PollResult:
    """One look at ``GET /api/import/progress/<id>``."""

    status: str  # POLL_OK | POLL_NOT_FOUND | POLL_RATE_LIMITED | POLL_RESET
    body: Mapping[str, Any] | None = None
    retry_after: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class SocketOptions:
    """How to connect python-socketio's ``Client`` to a 1.1 server.

    ``socketio.Client(**opts.client_kwargs)`` then ``client.connect(**opts.connect_kwargs())``.
    ``connect_kwargs()`` builds fresh dicts each call: python-engineio deletes the ``Cookie`` entry from the
    headers dict it is given when it opens the websocket, so a dict must never be reused.
    """

    url: str
    headers: Mapping[str, str]
    websocket_extra_options: Mapping[str, Any]
    verify: bool | str
    socketio_path: str = "socket.io"
    _session_factory: Callable[[], requests.Session] | None = field(default=None, repr=False, compare=False)

    @property
    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "websocket_extra_options": dict(self.websocket_extra_options),
            "ssl_verify": self.verify is not False,
        }
        if self._session_factory is not None:
            kwargs["http_session"] = self._session_factory()
        return kwargs

    def connect_kwargs(self, transports: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        return {
            "url": self.url,
            "headers": dict(self.headers),
            "transports": list(transports) if transports else ["polling", "websocket"],
            "socketio_path": self.socketio_path,
        }


def reset_seconds(resp: requests.Response) -> float:
    """``RateLimit-Reset`` (seconds until the window resets), else 60."""
    value = resp.headers.get("RateLimit-Reset", "").strip()
    return float(value) if value.isdigit() else 60.0


def csv_upload_name(name: str) -> str:
    """The file name the 1.1 server accepts: base name ending in ``.csv``."""
    base = os.path.basename(name.replace("\\", "/")) or "upload.csv"
    return base if base.lower().endswith(".csv") else base + ".csv"



def cookie_from(resp: requests.Response) -> str | None:
    """The ``hextrackr.sid`` value a response set, as sent (URL-encoded), Secure or not."""
    raw_headers = getattr(getattr(resp, "raw", None), "headers", None)
    values: list[str] = []
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        values = list(raw_headers.getlist("Set-Cookie"))
    elif resp.headers.get("Set-Cookie"):
        values = [resp.headers["Set-Cookie"]]
    for value in values:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except Exception:
            continue
        morsel = jar.get(COOKIE_NAME)
        if morsel is not None and morsel.value:
            return morsel.value
    fallback = resp.cookies.get(COOKIE_NAME)
    return fallback or None
