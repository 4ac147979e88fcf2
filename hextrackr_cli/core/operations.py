"""What one session needs, shared by the commands and ``Client``: the upload thread, the cancel with its
confirmation, and one look at a session's state (either dialect)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Callable

from hextrackr_cli import protocol
from hextrackr_cli.core.connection import Connection
from hextrackr_cli.errors import ExitStatus, ServerError
from hextrackr_cli.settings import Settings

EventSink = Callable[[Any], Any]


class Upload:
    """One file's upload in a thread; what happens is reported through the session's watcher (progress,
    ``Uploaded``, or the error the watcher then raises from ``get``). ``abort`` stops it at its next chunk;
    ``uploading`` is set until the server has answered the POST (the Follower holds outcomes until then)."""

    def __init__(self, conn: Connection, settings: Settings, watcher: Any, lf: Any, session_id: str, *,
                 import_type: str, vendor: str | None = None, scan_date: str | None = None,
                 fields: dict[str, str] | None = None) -> None:
        self.conn, self.settings, self.watcher, self.lf, self.session_id = conn, settings, watcher, lf, session_id
        self.import_type, self.vendor, self.scan_date = import_type, vendor, scan_date
        self.fields = fields or {}  # extra form fields (--format, --min-severity)
        self.abort = threading.Event()
        self.uploading = threading.Event()
        self.uploading.set()
        self.thread = threading.Thread(target=self._run, name="hextrackr-upload", daemon=True)

    def start(self) -> "Upload":
        self.thread.start()
        return self

    def _run(self) -> None:
        from hextrackr_cli import events as ev

        watcher = self.watcher
        # a 1.1.x server is sent the file converted to the columns it reads; -v says so
        said: dict[str, Any] = ({"on_notice": lambda m: watcher.put(ev.Notice(m))} if self.settings.verbose else {})
        try:
            answer = self.conn.api.upload(
                self.lf.path, import_type=self.import_type, session_id=self.session_id, vendor=self.vendor,
                scan_date=self.scan_date, filename=self.lf.name, abort=self.abort, fields=self.fields,
                on_progress=lambda s, t: watcher.put(ev.UploadProgress(s, t)), **said,
            )
        except BaseException as exc:  # reported in the following thread
            from hextrackr_cli.client.http import NothingToSend

            if isinstance(exc, NothingToSend):  # e.g. a clean scan not sent to a 1.1.x server: a good result
                self.uploading.clear()
                watcher.put(ev.Outcome(
                    protocol.OUTCOME_COMPLETED, self.session_id, ExitStatus.OK,
                    message=exc.note,
                    summary={"rows": exc.rows, "records": 0, "findings": 0, "cleanScan": True}))
                return
            watcher.fail(exc)
            return
        watcher.mark_posted(answer)
        watcher.put(ev.Uploaded(answer))


def check_can_cancel(conn: Connection) -> None:
    if conn.dialect.cancel_event is None:
        raise ServerError("this server has no cancel (HexTrackr 1.1.x); the import runs to its end")


def cancel_session(conn: Connection, settings: Settings, session_id: str, timeout: float, on_event: EventSink) -> Any:
    """Send the cancel and wait for the server's confirmation; the Outcome (exit 0 when confirmed, 1 when the
    import had already ended, 5 without an answer), after ``on_event`` was given every event on the way."""
    from hextrackr_cli import events as ev

    check_can_cancel(conn)
    watcher = conn.watcher(settings, "auto", timeout)
    try:
        on_event(ev.Started("Cancelling import", session_id, None, None, conn.url))
        watcher.start(session_id)
        if not watcher.done:  # already finished: the join reported its outcome
            watcher.request_cancel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = watcher.get(0.1)
            if isinstance(event, ev.Outcome):
                if event.outcome == protocol.OUTCOME_CANCELLED:
                    done = replace(event, exit_code=ExitStatus.OK,
                                   message="the server confirmed the cancel and rolled the import back")
                else:
                    on_event(ev.Notice(f"nothing to cancel: the import already {event.outcome}", "warning"))
                    done = replace(event, exit_code=ExitStatus.IMPORT_FAILED)
                on_event(done)
                return done
            if event is not None:
                on_event(event)
        done = ev.Outcome(ev.OUTCOME_TIMEOUT, session_id, ExitStatus.TIMEOUT,
                          message=f"the server did not confirm the cancel within {timeout:g}s; "
                          f"check with: hextrackr status {session_id}")
        on_event(done)
        return done
    finally:
        watcher.close()


def session_status(conn: Connection, session_id: str) -> dict[str, Any]:
    """One HTTP look at a session (no socket): the server's answer, in the seed's fields whatever the dialect."""
    return conn.strategy.status(session_id)
