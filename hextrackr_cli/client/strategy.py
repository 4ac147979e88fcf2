"""What the one :class:`~hextrackr_cli.client.watcher.Watcher` needs to know about a server dialect.

The watcher owns the transport logic (Socket.io first, reconnects, liveness, HTTP polling fallback, the
outcome never missed); a strategy supplies the dialect's wire details:

- how to open the Socket.io connection (seed: ``auth={"token"}``; 1.1: the session cookie and
  ``X-Forwarded-Proto`` as headers, no ``http://`` Origin on the websocket upgrade);
- how to join the session's room (seed: ``joinSession`` with an ack carrying the state; 1.1: ``join-progress``
  with no answer at all) and leave it (1.1: ``leave-progress``);
- how a progress event is read (seed: validated as is; 1.1: mapped by ``client.hx11.events.Translator``);
- what one status poll means (seed: a SessionState; 1.1: a tracker body, or a 404 that means "not started
  yet" before any progress and "finished, see the import history" after) and how often to poll (1.1 servers
  allow about 60 API requests per 15 minutes, so the interval grows).

Strategies never print; what they learn goes back to the watcher as a :class:`Fetched`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import requests

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.client.http import VerifyingSession
from hextrackr_cli.errors import ExitStatus, ServerError, ServerUnreachable

class SessionNotFound(ServerError):
    """The server does not know this session id (or it belongs to another token)."""


class OutcomeUnknown(ServerUnreachable):
    """The session ended but nothing the server answers tells how (exit 7, ``ExitStatus.OUTCOME_UNKNOWN``)."""

    exit_status = ExitStatus.OUTCOME_UNKNOWN


def verifying_session(verify: bool | str, headers: Mapping[str, str] | None = None) -> requests.Session:
    s = VerifyingSession()
    s.verify = verify
    if headers:
        s.headers.update(headers)
    return s


@dataclass(frozen=True)
class Fetched:
    """What one status poll told: a seed SessionState, a ProgressEvent, a final Outcome, or nothing new."""

    state: Mapping[str, Any] | None = None
    event: dict[str, Any] | None = None
    outcome: ev.Outcome | None = None


class Strategy(Protocol):
    """What the Watcher needs of a dialect (``client.seed.strategy.SeedStrategy``, ``client.hx11.strategy.Hx11Strategy``); it never prints."""

    dialect: protocol.Dialect
    checks_on_start: bool  # one poll at start tells whether the session exists (no join ack says it)
    keeps_socket_while_polling: bool  # a silent socket stays open beside the polls (its outcome may come)
    auth_hint: str

    def client_kwargs(self) -> dict[str, Any]: ...

    def connect_kwargs(self) -> dict[str, Any]: ...

    def start(self, session_id: str) -> None: ...

    def join(self, sio: Any, session_id: str, *, reserve: bool, first: bool,
             timeout: float) -> Mapping[str, Any] | None: ...

    def leave(self, sio: Any, session_id: str) -> None: ...

    def translate(self, name: str, data: Any) -> dict[str, Any] | None: ...

    def posted(self, answer: Mapping[str, Any] | None) -> None: ...

    def poll(self, session_id: str, *, retries: int | None = None) -> "Fetched": ...

    def poll_gap(self, base: float, polls: int) -> float: ...

    # What the commands need to know of the dialect, so that they never ask which one it is.
    counts_from_file: bool  # a gate counts the severities of the file sent (the server reports none per severity)
    min_severity_refusal: str | None  # why --min-severity is refused on this dialect, else None

    def status(self, session_id: str) -> dict[str, Any]:
        """One HTTP look at a session (``hextrackr status``), in the seed's SessionState fields."""
        ...

    def import_guard(self, server_url: str, *, deadline: float | None, interrupted: Callable[[], bool],
                     say: Callable[[str], None]) -> Any:
        """A held lock an import keeps until it ends (None: the dialect needs none)."""
        ...


def drain(sio: Any, limit: float = 1.0) -> None:
    """Wait until engine.io has taken our queued packets off its send queue (a no-answer emit has no ack)."""
    q = getattr(getattr(sio, "eio", None), "queue", None)
    deadline = time.monotonic() + limit
    while q is not None and not q.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
