"""NDJSON on stdout: every progress event as received, transport events, a final summary object."""

from __future__ import annotations

import json
from typing import IO, Any

from hextrackr_cli import events as ev
from hextrackr_cli.render import closing_lines, outcome_counts, summary_line


class JsonRenderer:
    def __init__(self, out: IO[str], err: IO[str], *, quiet: bool = False) -> None:
        self.out = out
        self.err = err
        self.quiet = quiet
        self.filename: str | None = None
        self.page_url: str | None = None

    def emit(self, obj: Any) -> None:
        try:
            self.out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Outcome):
            filename = event.filename or self.filename
            self.emit(summary_object(event, filename, self.page_url if filename == self.filename else None))
            try:
                self.err.write(summary_line(event, filename) + "\n")
                for text, _style in closing_lines(event, self.quiet):
                    self.err.write(text + "\n")
                self.err.flush()
            except (OSError, ValueError):
                pass
            return
        if isinstance(event, ev.Started):
            self.filename = event.filename
            self.page_url = event.page_url
        if self.quiet:
            return
        if isinstance(event, ev.Progress):
            self.emit(dict(event.event))
        elif isinstance(event, ev.TransportChanged):
            self.emit({"event": "transport", "transport": event.transport, "reason": event.reason})
        elif isinstance(event, ev.Reconnecting):
            self.emit({"event": "reconnecting", "attempt": event.attempt, "delay": event.delay, "reason": event.reason})
        elif isinstance(event, ev.Reconnected):
            self.emit({"event": "reconnected", "transport": event.transport})
        elif isinstance(event, ev.Cancelling):
            self.emit({"event": "cancelling", "sessionId": event.session_id})
        elif isinstance(event, ev.Started):
            self.emit(
                {"event": "start", "sessionId": event.session_id, "file": event.filename, "bytes": event.size,
                 "server": event.server}
            )
        elif isinstance(event, ev.Uploaded):
            self.emit({"event": "uploaded", **dict(event.answer)})
        elif isinstance(event, ev.Notice) and event.level == "warning":
            self.emit({"event": "warning", "message": event.message})

    def close(self) -> None:
        pass


def summary_object(outcome: ev.Outcome, filename: str | None = None, page_url: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "event": "summary",
        "outcome": outcome.outcome,
        "sessionId": outcome.session_id,
        "exitCode": int(outcome.exit_code),
        "importId": outcome.import_id,
        "rows": outcome.summary.get("rows"),
    }
    for key in ("records", "inserted", "updated", "resolved", "durationMs", "format", "findings", "severities",
                "skipped", "emptyRows", "cleanScan"):
        if key in outcome.summary:
            obj[key] = outcome.summary[key]
    if filename:
        obj["file"] = filename
    if page_url:  # the server's browser progress view of the session
        obj["browserUrl"] = page_url
    if outcome.message:
        obj["message"] = outcome.message
    if outcome.outcome == "cancelled":
        obj["confirmed"] = outcome.confirmed
    counts = outcome_counts(outcome)
    if counts is not None:  # per severity: the delta kinds as counted, and the open scope
        obj["counts"] = counts.to_json()
    if outcome.gate is not None:
        obj["gate"] = outcome.gate.to_json()
    return obj
