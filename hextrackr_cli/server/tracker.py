"""The seed's ProgressTracker: sessions, throttled progress events, ETA, completion and cleanup.

Thread-safe: the import worker thread reports progress, the event loop thread serves joins and polls.
It does no I/O itself: ``emit(event, data, room)`` and ``call_later(delay, fn) -> handle`` are given by the
server (both safe to call from any thread), so the throttling rules are unit-testable with a fake clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from hextrackr_cli import protocol



class Handle(Protocol):
    def cancel(self) -> None: ...


Emit = Callable[[str, dict[str, Any], str], None]
CallLater = Callable[[float, Callable[[], None]], Handle]


@dataclass
class Session:
    """The seed's Session object (+ cancelled/endTime) and what the server needs to answer for it."""

    id: str
    startTime: int
    progress: int = 0
    status: str = protocol.ACTIVE
    totalRows: int = 0
    processedRows: int = 0
    cancelled: bool = False
    endTime: int | None = None
    committing: bool = False  # past the point of no return: the commit has started
    stop_reason: str | None = None  # why the server itself stopped the import (shutdown), not a cancel request
    # server-side bookkeeping (not part of the seed object)
    owner: str = ""
    import_id: int | None = None
    import_type: str = "vulnerabilities"
    last_event: dict[str, Any] | None = None  # the last event sent to the room
    latest: dict[str, Any] | None = None  # the latest reported state (may still be held back by the throttle)
    summary: dict[str, Any] | None = None
    error: str | None = None
    expires: float | None = None  # monotonic deadline of a reservation
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass
class _Timing:
    last_time: float | None = None
    last_progress: int = -1
    last_type: str | None = None
    last_message: str | None = None
    pending: dict[str, Any] | None = None
    timer: Handle | None = None


class ProgressTracker:
    """Sessions map + per-session throttle, as in the seed (THROTTLE_INTERVAL 0.5 s, MIN_PROGRESS_DELTA 1 %)."""

    def __init__(
        self,
        emit: Emit,
        call_later: CallLater,
        *,
        retention: float = protocol.SESSION_RETENTION,
        interval: float = protocol.THROTTLE_INTERVAL,
        min_delta: int = protocol.MIN_PROGRESS_DELTA,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = protocol.now_ms,
        on_cleanup: Callable[[Session], None] | None = None,
    ) -> None:
        self.sessions: dict[str, Session] = {}
        self.timing: dict[str, _Timing] = {}
        self._emit = emit
        self._call_later = call_later
        self.retention = retention
        self.interval = interval
        self.min_delta = min_delta
        self._clock = clock
        self._wall_ms = wall_ms
        self._on_cleanup = on_cleanup
        self._lock = threading.RLock()
        self._cleanup_handles: dict[str, Handle] = {}

    # ------------------------------------------------------------------ sessions
    def create_session(self, session_id: str, **meta: Any) -> Session:
        """A new active session (replaces a reservation of the same id)."""
        with self._lock:
            self._drop_timers(session_id)
            session = Session(id=session_id, startTime=self._wall_ms(), **meta)
            self.sessions[session_id] = session
            self.timing[session_id] = _Timing()
            return session

    def reserve(self, session_id: str, owner: str, ttl: float = 60.0) -> Session:
        """Extension: hold an unused id for ``owner`` for ``ttl`` seconds so a client can join before posting."""
        with self._lock:
            session = Session(id=session_id, startTime=self._wall_ms(), status=protocol.PENDING, owner=owner)
            session.expires = self._clock() + ttl
            self.sessions[session_id] = session
            self._cleanup_handles[session_id] = self._call_later(ttl, lambda: self._expire(session_id))
            return session

    def _expire(self, session_id: str) -> None:
        with self._lock:
            session = self.sessions.get(session_id)
            if session is not None and session.status == protocol.PENDING:
                self.sessions.pop(session_id, None)
                self._cleanup_handles.pop(session_id, None)

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            return self.sessions.get(session_id)

    # ------------------------------------------------------------------ events
    def calculate_eta(self, session: Session, current_progress: float) -> int | None:
        """Seconds remaining, the seed's algorithm (``protocol.calculate_eta``)."""
        return protocol.calculate_eta(session.startTime, current_progress, now=self._wall_ms())

    def emit_progress(self, session_id: str, type_: str, progress: float, message: str, **additional: Any) -> dict[str, Any] | None:
        """Report progress; sends it to the room now, later (trailing edge) or not at all per the throttle.

        ``complete`` and ``error`` are never throttled. Returns the event built, or None for an unknown session.
        """
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            pct = protocol.clamp_progress(progress)
            session.progress = pct
            if "processedRows" in additional:
                session.processedRows = int(additional["processedRows"])
            if "totalRows" in additional:
                session.totalRows = int(additional["totalRows"])
            additional.setdefault("processedRows", session.processedRows)
            additional.setdefault("totalRows", session.totalRows)
            additional.setdefault("stage", type_)
            if session.import_id is not None:
                additional.setdefault("importId", session.import_id)
            eta = 0 if type_ == protocol.COMPLETE else (None if type_ == protocol.ERROR else self.calculate_eta(session, pct))
            event = protocol.progress_event(
                session_id, type_, pct, message, eta=eta, timestamp=self._wall_ms(), **additional
            )
            session.latest = event
            timing = self.timing.setdefault(session_id, _Timing())
            if type_ in protocol.TERMINAL_TYPES:
                timing.pending = None
                if timing.timer is not None:
                    timing.timer.cancel()
                    timing.timer = None
                self._send(session, timing, event)
                return event
            now = self._clock()
            significant = (
                timing.last_time is None
                or type_ != timing.last_type
                or abs(pct - timing.last_progress) >= self.min_delta
            )
            if significant and (timing.last_time is None or now - timing.last_time >= self.interval):
                timing.pending = None
                self._send(session, timing, event)
            else:
                timing.pending = event
                if timing.timer is None:
                    wait = self.interval - (now - timing.last_time) if timing.last_time is not None else 0.0
                    timing.timer = self._call_later(max(0.0, wait), lambda: self._flush(session_id))
            return event

    def _send(self, session: Session, timing: _Timing, event: dict[str, Any]) -> None:
        timing.last_time = self._clock()
        timing.last_progress = event["progress"]
        timing.last_type = event["type"]
        timing.last_message = event["message"]
        session.last_event = event
        self._emit(protocol.IMPORT_PROGRESS, event, session.id)

    def _flush(self, session_id: str) -> None:
        """Trailing edge: send the latest held-back state if it says something new."""
        with self._lock:
            timing = self.timing.get(session_id)
            session = self.sessions.get(session_id)
            if timing is None or session is None:
                return
            timing.timer = None
            event = timing.pending
            if event is None:
                return
            now = self._clock()
            if timing.last_time is not None and now - timing.last_time < self.interval:
                # fired early (clock granularity): try again at the end of the window
                timing.timer = self._call_later(self.interval - (now - timing.last_time), lambda: self._flush(session_id))
                return
            timing.pending = None
            if (
                event["progress"] != timing.last_progress
                or event["type"] != timing.last_type
                or event["message"] != timing.last_message
            ):
                # stamped when sent, like every other event (the ETA is recomputed for that moment)
                event = dict(event, timestamp=self._wall_ms(), eta=self.calculate_eta(session, event["progress"]))
                session.latest = event
                self._send(session, timing, event)

    def emit_cancelled(self, session_id: str) -> None:
        """``importCancelled`` to the room (never throttled); call after the rollback is done."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is not None:
                session.cancelled = True
                self._drop_pending(session_id)
            self._emit(protocol.IMPORT_CANCELLED, {"sessionId": session_id}, session_id)

    def request_cancel(self, session_id: str, reason: str | None = None) -> bool:
        """Set the cancel flag of an active session; False when it is not running.

        ``reason``: the server itself stops the import (shutdown); the import then fails with that message
        instead of being reported as cancelled by a client.
        """
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None or session.status not in (protocol.ACTIVE, protocol.PENDING) or session.committing:
                return False
            session.cancelled = True
            if reason is not None:
                session.stop_reason = reason
            return True

    def try_commit(self, session_id: str) -> bool:
        """The import's point of no return: False if it was cancelled; afterwards cancel requests are refused."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return True
            if session.cancelled:
                return False
            session.committing = True
            return True

    def complete_session(self, session_id: str, success: bool = True) -> None:
        """Mark completed/failed, set endTime, and clean the session and timing maps after the retention."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return
            session.status = protocol.COMPLETED if success else protocol.FAILED
            session.endTime = self._wall_ms()
            if success:
                session.progress = 100
            self._drop_timers(session_id)
            self._cleanup_handles[session_id] = self._call_later(self.retention, lambda: self.cleanup(session_id))

    def cleanup(self, session_id: str) -> None:
        with self._lock:
            session = self.sessions.pop(session_id, None)
            self._drop_timers(session_id)
            self.timing.pop(session_id, None)
        if session is not None and self._on_cleanup is not None:
            self._on_cleanup(session)

    def _drop_pending(self, session_id: str) -> None:
        """Forget the session's event held back by the throttle, and its trailing-edge timer."""
        timing = self.timing.get(session_id)
        if timing is not None:
            timing.pending = None
            if timing.timer is not None:
                timing.timer.cancel()
                timing.timer = None

    def _drop_timers(self, session_id: str) -> None:
        self._drop_pending(session_id)
        handle = self._cleanup_handles.pop(session_id, None)
        if handle is not None:
            handle.cancel()

    def shutdown(self) -> None:
        """Cancel every timer (server stop)."""
        with self._lock:
            for sid in list(self.sessions):
                self._drop_timers(sid)

    # ------------------------------------------------------------------ views
    def state(self, session_id: str) -> dict[str, Any] | None:
        """SessionState (docs/wire.md) of an in-memory session, or None."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            return session_state(session)


def session_state(session: Session) -> dict[str, Any]:
    """The SessionState of an in-memory session."""
    return protocol.session_state(
        session.id, status=session.status, cancelled=session.cancelled, import_id=session.import_id,
        progress=session.progress, latest=session.latest, total_rows=session.totalRows,
        processed_rows=session.processedRows, start_time=session.startTime, end_time=session.endTime,
        last_event=session.last_event, summary=session.summary, error=session.error, import_type=session.import_type)
