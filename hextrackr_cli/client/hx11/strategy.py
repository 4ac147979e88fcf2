"""The HexTrackr 1.1.x Strategy for the Watcher: cookie socket, join-progress without ack, tracker polls
whose 404 means "not started yet" or "finished, ask the history", polls paced by the rate limit."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.client.strategy import Fetched, OutcomeUnknown, drain, verifying_session
from hextrackr_cli.errors import ExitStatus, ServerUnreachable

# 1.1: a finished session is deleted 5 s after it completes, so the polls must come closer than that near the
# end, and the production limit is 60 API requests per 15 minutes. A poll comes after 0.3x the ETA (the ETA is
# within 25 % from the staging on), at most HX11_POLL_CAP s and at least --poll-interval apart; HX11_POLL_NEAR
# while no ETA is known: a 100k-row import takes ~20 polls, and the last gaps before the end are < 5 s.
HX11_POLL_NEAR = 3.0
HX11_POLL_CAP = 20.0
HX11_POLL_ETA_SHARE = 0.3
# 1.1: a 404 after our upload was accepted but before any progress: keep looking this long, then ask the history.
HX11_NOT_STARTED_GRACE = 30.0



def hx11_not_known(session_id: str) -> OutcomeUnknown:
    """A 1.1.x server's 404 for a session we did not just upload: never started, or finished more than 5 s
    (10 s after an error) ago — which, the server cannot tell: not "failed" (exit 7)."""
    return OutcomeUnknown(
        f"session {session_id} is not known to the server: it may have finished (completed or failed) or "
        "never existed; HexTrackr 1.1.x forgets a session 5 s after it completes (10 s after an error)",
        hint="`hextrackr imports` shows the server's last import; check the id otherwise",
    )



class Hx11Strategy:
    """Deployed HexTrackr 1.1.x: cookie session, silent ``join-progress``, translated events, 404 semantics."""

    dialect = protocol.HEXTRACKR_11
    checks_on_start = True  # an unknown id gets no answer on the socket: one poll tells whether it exists
    keeps_socket_while_polling = True  # its progress-complete still decides a session the polls may miss

    def __init__(self, api: Any, *, now_ms: Callable[[], float] = protocol.now_ms) -> None:
        from hextrackr_cli.client.hx11.events import Translator

        self.api = api
        self.options = api.socket_options()
        self.auth_hint: str = api.credentials_hint
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self.translator = Translator("")
        self.posted_at_ms: float | None = None
        self._not_started_since: float | None = None
        self._running_sent: float | None = None  # monotonic send time of the last poll that saw it running

    # ------------------------------------------------------------------ socket.io
    def client_kwargs(self) -> dict[str, Any]:
        return {
            "http_session": verifying_session(self.options.verify, self.options.headers),
            "websocket_extra_options": dict(self.options.websocket_extra_options),
        }

    def connect_kwargs(self) -> dict[str, Any]:
        # A callable: python-engineio deletes the Cookie entry from the dict it is given, and python-socketio
        # hands the same value to every reconnection; a fresh dict each time keeps reconnects logged in.
        return {"headers": lambda: dict(self.options.headers), "socketio_path": self.options.socketio_path}

    def start(self, session_id: str) -> None:
        from hextrackr_cli.client.hx11.events import Translator

        with self._lock:
            self.translator = Translator(session_id)

    def join(self, sio: Any, session_id: str, *, reserve: bool, first: bool, timeout: float) -> Mapping[str, Any] | None:
        # No ack ever comes (and none at all for an unknown id). The server starts emitting before it answers
        # the upload, so the join must have left before the upload starts.
        sio.emit(self.dialect.join_event, session_id)
        drain(sio)
        return None

    def leave(self, sio: Any, session_id: str) -> None:
        if self.dialect.leave_event:
            sio.emit(self.dialect.leave_event, session_id)
            drain(sio, 0.5)

    def translate(self, name: str, data: Any) -> dict[str, Any] | None:
        with self._lock:
            return self.translator.event(name, data, self._now_ms())

    # ------------------------------------------------------------------ HTTP
    def posted(self, answer: Mapping[str, Any] | None) -> None:
        with self._lock:
            self.posted_at_ms = self._now_ms()
            t = self.translator
            if isinstance(answer, Mapping):
                t.filename = t.filename or (answer.get("filename") if isinstance(answer.get("filename"), str) else None)
                t.vendor = t.vendor or (answer.get("vendor") if isinstance(answer.get("vendor"), str) else None)
                t.scan_date = t.scan_date or (answer.get("scanDate") if isinstance(answer.get("scanDate"), str) else None)

    counts_from_file: bool = True  # 1.1.x reports no per-severity counts: a gate counts the file sent
    min_severity_refusal: str | None = ("--min-severity: a HexTrackr 1.1.x server marks resolved every open vulnerability an"
                            " import does not contain, so the skipped findings would be resolved; import without it")

    def import_guard(self, server_url: str, *, deadline: float | None, interrupted: Callable[[], bool],
                     say: Callable[[str], None]) -> Any:
        """1.1.12 loses data when two imports run at once: one at a time from this machine (client.hx11.guard)."""
        from hextrackr_cli.client.hx11.guard import one_import_at_a_time

        return one_import_at_a_time(server_url, deadline=deadline, interrupted=interrupted, say=say)

    def status(self, session_id: str) -> dict[str, Any]:
        """One look at a HexTrackr 1.1.x session: the server's answer plus the seed fields ``format_status`` reads."""
        from hextrackr_cli.client.hx11 import api as hx11_api
        from hextrackr_cli.client.hx11.events import Translator

        result = self.api.progress(session_id)
        if result.status == hx11_api.POLL_NOT_FOUND:
            raise hx11_not_known(session_id)
        if result.status == hx11_api.POLL_RATE_LIMITED:
            wait = result.retry_after or 60.0
            raise hx11_api.RateLimited(f"status of session {session_id}: the server's rate limit was reached (429)",
                                       retry_after=wait, hint=f"retry in {int(wait + 0.999)} s")
        if result.status != hx11_api.POLL_OK or result.body is None:
            from hextrackr_cli.errors import ServerUnreachable

            raise ServerUnreachable(f"status of session {session_id}: the server did not answer ({result.detail})",
                                    hint="HexTrackr stops answering for a while on large files; retry shortly")
        event = Translator(session_id).poll(result.body) or {}
        kind = str(event.get("type") or "")
        outcome = {protocol.COMPLETE: protocol.OUTCOME_COMPLETED, protocol.ERROR: protocol.OUTCOME_FAILED}.get(
            kind, protocol.OUTCOME_RUNNING)
        extra: dict[str, Any] = {k: event[k] for k in ("type", "totalRows", "processedRows", "importId", "eta") if k in event}
        if outcome == protocol.OUTCOME_COMPLETED:
            extra["summary"] = ev.summary_from(event)
        if outcome == protocol.OUTCOME_FAILED:
            extra["error"] = event.get("message")
        return {**dict(result.body), **extra, "outcome": outcome}

    def poll_gap(self, base: float, polls: int) -> float:
        """Seconds between two polls: 0.3x the ETA (HX11_POLL_NEAR without one), between ``--poll-interval``
        and HX11_POLL_CAP."""
        with self._lock:
            last = self.translator.last
        eta = last.get("eta") if isinstance(last, Mapping) else None
        gap = HX11_POLL_ETA_SHARE * eta if isinstance(eta, (int, float)) else HX11_POLL_NEAR
        return max(base, min(HX11_POLL_CAP, gap))

    def poll(self, session_id: str, *, retries: int | None = None) -> Fetched:
        from hextrackr_cli.client.hx11 import api as hx11_api
        from hextrackr_cli.client.hx11 import events as hx11

        sent = time.monotonic()
        result = self.api.progress(session_id)
        if result.status == hx11_api.POLL_OK:
            self._not_started_since = None
            with self._lock:
                event = self.translator.poll(result.body, self._now_ms())
            if event is not None and event.get("type") not in protocol.TERMINAL_TYPES:
                self._running_sent = sent
            return Fetched(event=event)
        if result.status == hx11_api.POLL_RATE_LIMITED:
            wait = result.retry_after if result.retry_after is not None else 60.0
            raise hx11_api.RateLimited(f"status of session {session_id}: the server's rate limit was reached (429)",
                                       retry_after=wait)
        if result.status == hx11_api.POLL_RESET:
            raise ServerUnreachable(f"the status poll was cut off ({result.detail}); HexTrackr stops answering "
                                    "for a while on large files")
        with self._lock:
            meaning = self.translator.not_found()
        if meaning == hx11.NOT_STARTED:
            if self.posted_at_ms is None:
                raise hx11_not_known(session_id)
            now = time.monotonic()
            if self._not_started_since is None:
                self._not_started_since = now
            if now - self._not_started_since < HX11_NOT_STARTED_GRACE:
                return Fetched()  # the upload was accepted; the session shows up shortly
        return Fetched(outcome=self._vanished(session_id, time.monotonic()))

    def _vanished(self, session_id: str, gone: float) -> ev.Outcome:
        """The session is gone (deleted 5 s after completion, 10 s after an error): decide from what 1.1.12
        really tells — when it vanished, then ``last-import`` — never a guess."""
        from hextrackr_cli.client.hx11 import history
        from hextrackr_cli.errors import HextrackrError

        with self._lock:
            t = self.translator
            last = dict(t.last or {})
            args = dict(running_seen_s=self._running_sent, gone_seen_s=gone, last_progress=last.get("progress"),
                        filename=t.filename, csv_rows=t.csv_rows, import_id=t.import_id)
            rows, records = t.csv_rows, t.records
        verdict = history.decide_vanished(**args)
        if verdict.outcome == history.HISTORY_UNKNOWN:
            try:
                verdict = history.decide_vanished(**args, last_import=self.api.last_import())
            except HextrackrError as exc:
                verdict = history.HistoryVerdict(history.HISTORY_UNKNOWN, None,
                                              f"{verdict.reason}, and last-import did not answer ({exc.message})")
        import_id = last.get("importId")
        if verdict.outcome == history.HISTORY_COMPLETED:
            counts = {k: v for k, v in (("rows", rows), ("records", records)) if v is not None}
            summary = ev.summary_from({**last, **counts, **verdict.summary})
            return ev.Outcome(protocol.OUTCOME_COMPLETED, session_id, ExitStatus.OK, import_id=import_id,
                              message=f"completed (the session had ended before it was seen: {verdict.reason})",
                              summary=summary, source="polling")
        raise OutcomeUnknown(
            f"session {session_id} ended, but how is not known: {verdict.reason}",
            hint="HexTrackr 1.1.x deletes a finished session after 5 s; check the server's web UI before "
                 "importing the file again",
        )
