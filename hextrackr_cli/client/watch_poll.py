"""The Watcher's HTTP side: when a status poll is due, one poll and what it tells (rate limit, failures given
up after a while), and the check of a silent socket against the status endpoint.

The functions are the Watcher's methods (``self`` is the Watcher); they never print.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.client.strategy import Fetched, OutcomeUnknown, SessionNotFound
from hextrackr_cli.errors import AuthError, HextrackrError, ServerError, ServerUnreachable

if TYPE_CHECKING:
    from hextrackr_cli.client.watcher import Watcher


def event_key(e: Mapping[str, Any]) -> tuple[Any, ...]:
    return (e.get("type"), e.get("progress"), e.get("message"), e.get("processedRows"))


def poll_due(self: Watcher, now: float, base: float) -> bool:
    if now < self._poll_not_before:
        return False
    return now - self._last_poll >= self.strategy.poll_gap(base, self._polls)


def apply(self: Watcher, fetched: Fetched, source: str) -> None:
    if fetched.state is not None:
        self._on_status(fetched.state, source=source)
    elif fetched.event is not None:
        self._on_progress(fetched.event, source)
    elif fetched.outcome is not None:
        if fetched.outcome.message:  # how it was decided (e.g. from the import history)
            self.put(ev.Notice(fetched.outcome.message))
        self._finish(fetched.outcome)


def poll_once(self: Watcher, *, retries: int | None = None, quiet: bool = False) -> None:
    self._last_poll = time.monotonic()
    self._polls += 1
    sid = self.session_id or ""
    try:
        fetched = self.strategy.poll(sid, retries=retries)
    except SessionNotFound:
        if self._last is None and not quiet:
            raise
        return
    except (AuthError, ServerUnreachable, ServerError) as exc:
        if isinstance(exc, (AuthError, OutcomeUnknown)):
            raise
        wait = getattr(exc, "retry_after", None)
        if isinstance(wait, (int, float)):
            # 429: the server's rate limit; waiting it out is not a failure (--timeout still bounds it)
            self._poll_not_before = time.monotonic() + wait
            self.put(ev.Notice(f"the server's rate limit was reached; next status poll in {wait:g}s", "warning"))
            return
        if quiet:
            return
        now = time.monotonic()
        if self._poll_fail_since is None:
            self._poll_fail_since = now
            self.put(ev.Notice(f"status poll failed ({exc.message}); retrying", "warning"))
        elif now - self._poll_fail_since > self.give_up_after:
            how_long = int(now - self._poll_fail_since)
            if isinstance(exc, ServerUnreachable):
                raise ServerUnreachable(f"lost contact with the server for {how_long}s ({exc.message})",
                                        hint=f"the import may still be running: hextrackr watch {sid}") from None
            # The server answers, with errors: not a network failure, and not the import's failure either.
            raise ServerUnreachable(f"the server answered every status poll for {how_long}s with an error "
                                    f"({exc.message})",
                                    hint=f"the import may still be running: hextrackr watch {sid}") from None
        return
    if self._poll_fail_since is not None and not quiet:
        self._poll_fail_since = None
        self.put(ev.Notice("status polling recovered"))
    source = ev.POLLING if self.mode == "polling" else "status"
    self._apply(fetched, source)


def check_liveness(self: Watcher) -> None:
    """The socket has been silent: if the status endpoint has moved on, stop trusting the socket."""
    sid = self.session_id or ""
    try:
        fetched = self.strategy.poll(sid, retries=0)
    except OutcomeUnknown:
        raise
    except HextrackrError:
        return
    body = fetched.state
    if body is not None:
        event = protocol.state_event(body, sid)
        outcome = protocol.state_outcome(body)
    else:
        event = fetched.event
        outcome = protocol.OUTCOME_RUNNING if fetched.outcome is None else fetched.outcome.outcome
        if event is not None and event.get("type") in protocol.TERMINAL_TYPES:
            outcome = protocol.OUTCOME_COMPLETED
    last = self._last
    moved = outcome != protocol.OUTCOME_RUNNING or (
        event is not None
        and (last is None or (event_key(event) != event_key(last) and event["progress"] >= last.get("progress", 0)))
    )
    if moved:
        self._switch_to_polling(f"socket.io silent for {int(self.liveness)}s while the server reports progress",
                                keep_socket=self.strategy.keeps_socket_while_polling)
        self._apply(fetched, ev.POLLING)
