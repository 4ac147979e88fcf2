"""Plain lines for logs and CI: one per stage change, at most one per ``--log-interval`` otherwise.

No carriage returns, no colour, no cursor movement: every line ends with a newline.
"""

from __future__ import annotations

import time
from typing import IO

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.render import closing_lines, summary_line


def _clean(text: str) -> str:
    # Server text must not smuggle control characters (\r, ESC) into a log.
    return "".join(ch if ch.isprintable() else " " for ch in text)


class PlainRenderer:
    def __init__(self, stream: IO[str], *, quiet: bool = False, log_interval: float = 10.0, verbose: int = 0) -> None:
        self.stream = stream
        self.quiet = quiet
        self.log_interval = log_interval
        self.verbose = verbose
        self.stage: str | None = None
        self.last_line = 0.0
        self.last_progress: ev.Progress | None = None
        self.filename: str | None = None
        self.started = time.monotonic()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(_clean(text) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def _line(self, text: str) -> None:
        self._write(f"{time.strftime('%H:%M:%S')} {text}")

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Outcome):
            self._write(summary_line(event, event.filename or self.filename, time.monotonic() - self.started))
            for text, _style in closing_lines(event, self.quiet):
                self._write(text)
            return
        if isinstance(event, ev.Notice) and event.level == "warning":
            self._line(f"warning: {event.message}")
            return
        if isinstance(event, ev.Started):
            self.filename = event.filename
            self.started = time.monotonic()
        if self.quiet:
            return
        if isinstance(event, ev.Started):
            size = f" ({event.size:,} bytes)" if event.size is not None else ""
            target = f" {event.filename}{size}" if event.filename else ""
            self._line(f"{event.title}{target}, session {event.session_id}")
        elif isinstance(event, ev.Progress):
            self._progress(event)
        elif isinstance(event, ev.TransportChanged):
            self._line(f"transport: {event.transport} ({event.reason})")
        elif isinstance(event, ev.Reconnecting):
            delay = f" in {event.delay:g}s" if event.delay is not None else ""
            reason = f" ({event.reason})" if event.reason else ""
            self._line(f"connection lost{reason}; reconnecting, attempt {event.attempt}{delay}")
        elif isinstance(event, ev.Reconnected):
            self._line(f"reconnected over {event.transport}")
        elif isinstance(event, ev.Cancelling):
            self._line("cancelling... (Ctrl-C again to detach)")
        elif isinstance(event, ev.Uploaded):
            self._line(f"uploaded, import {event.import_id}" if event.import_id is not None else "uploaded")
        elif isinstance(event, ev.Notice):
            self._line(event.message)
        elif isinstance(event, ev.UploadProgress) and self.verbose:
            now = time.monotonic()
            if now - self.last_line >= self.log_interval or event.sent >= event.total:
                self.last_line = now
                self._line(f"uploading {event.sent:,}/{event.total:,} bytes")

    def _progress(self, event: ev.Progress) -> None:
        now = time.monotonic()
        stage_changed = event.type != self.stage
        if not stage_changed and now - self.last_line < self.log_interval:
            self.last_progress = event
            return
        self.stage = event.type
        self.last_line = now
        self.last_progress = None
        parts = [f"{event.type:<10}", f"{event.progress:3d}%"]
        if event.message:
            parts.append(event.message)
        if event.total_rows:
            parts.append(f"rows {event.processed_rows or 0:,}/{event.total_rows:,}")
        if event.type not in protocol.TERMINAL_TYPES and event.eta is not None:
            parts.append(f"ETA {protocol.format_eta(event.eta)}")
        self._line(" ".join(parts))

    def close(self) -> None:
        pass
