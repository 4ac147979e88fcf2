"""What a HexTrackr 1.1.x server can tell about finished imports, in the seed's shapes. Pure: no I/O.

1.1.12's ``GET /api/imports`` always answers 500; ``GET /api/vulnerabilities/last-import`` names the newest
import record (date, CSV rows, vendor, file name; no id, no outcome). ``decide_vanished`` decides a session
the progress endpoint no longer knows from when it vanished and that answer; ``import_record`` reads the rows
of a build whose history route works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from hextrackr_cli import protocol
from hextrackr_cli.client.hx11.events import _int, _number, _text
from hextrackr_cli.client.hx11.eta import BATCHES

# Outcomes decided without the session.
HISTORY_COMPLETED = protocol.OUTCOME_COMPLETED
HISTORY_UNKNOWN = "unknown"


@dataclass(frozen=True)
class HistoryVerdict:
    """The outcome of a finished session as far as the import history tells."""

    outcome: str  # HISTORY_COMPLETED | HISTORY_UNKNOWN
    record: Mapping[str, Any] | None
    reason: str

    @property
    def summary(self) -> dict[str, Any]:
        """Seed-style summary fields from the history row (rows, durationMs, importId)."""
        if not self.record:
            return {}
        out: dict[str, Any] = {}
        rows = _int(self.record.get("row_count", self.record.get("rowCount")))
        if rows is not None:
            out["rows"] = rows
        duration = _int(self.record.get("processing_time", self.record.get("processingTime")))
        if duration is not None:
            out["durationMs"] = duration
        if self.record.get("id") is not None:
            out["importId"] = self.record.get("id")
        return out


def history_rows(body: Any) -> list[Mapping[str, Any]]:
    """The rows of a ``GET /api/imports`` answer (``{"success":true,"data":[...]}``; a bare list too)."""
    rows = body.get("data", body.get("imports")) if isinstance(body, Mapping) else body
    return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


def _when_ms(value: Any) -> float | None:
    n = _number(value)
    if n is not None:
        return n if n > 1e11 else n * 1000  # ms or s since the epoch
    if isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00")
        if " " in text and "T" not in text:
            text = text.replace(" ", "T", 1)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is None:  # SQLite CURRENT_TIMESTAMP is UTC without a zone
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp() * 1000
    return None


def import_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A 1.1 history row in the seed's ImportRecord shape (fields the row does not have stay None).

    1.1 rows carry ``id, filename, vendor, scan_date, import_date, row_count, file_size, processing_time,
    vulnerability_count``; there is no session id and no status, so ``status`` is ``completed`` only when the
    row has a processing time, else ``unknown``.
    """
    status = _text(row.get("status")).lower()
    if not status:
        done = row.get("processing_time", row.get("processingTime")) is not None
        status = protocol.OUTCOME_COMPLETED if done else HISTORY_UNKNOWN
    started = row.get("import_date", row.get("importDate", row.get("created_at")))
    when = _when_ms(started)
    return {
        "id": row.get("id"),
        "sessionId": row.get("session_id", row.get("sessionId")),
        "type": "vulnerabilities",
        "filename": row.get("filename"),
        "vendor": row.get("vendor"),
        "scanDate": row.get("scan_date", row.get("scanDate")),
        "status": status,
        "rows": _int(row.get("row_count", row.get("rowCount"))),
        "records": _int(row.get("vulnerability_count", row.get("vulnerabilityCount"))),
        "inserted": None,
        "updated": None,
        "resolved": None,
        "error": row.get("error"),
        "startedAt": (datetime.fromtimestamp(when / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
                      if when is not None else None),
        "finishedAt": None,
        "durationMs": _int(row.get("processing_time", row.get("processingTime"))),
    }


# --------------------------------------------------------------------------- a vanished session
# ProgressTracker (1.1.12) deletes a session 5 s after completeSession() and 10 s after errorSession().
COMPLETE_RETENTION_S = 5.0
ERROR_RETENTION_S = 10.0


def last_import_record(body: Any) -> dict[str, Any] | None:
    """The answer of ``GET /api/vulnerabilities/last-import`` as one seed ImportRecord, marked
    ``lastImportOnly`` (1.1.12 tells no id, no session, no outcome: ``status`` is ``unknown``)."""
    if not isinstance(body, Mapping) or not body.get("lastImport"):
        return None
    return {"id": None, "sessionId": None, "type": "vulnerabilities", "filename": body.get("filename"),
            "vendor": body.get("vendor"), "scanDate": body.get("lastImport"), "status": HISTORY_UNKNOWN,
            "rows": _int(body.get("rowCount")), "records": None, "inserted": None, "updated": None,
            "resolved": None, "error": None, "startedAt": _text(body.get("lastImport")), "finishedAt": None,
            "durationMs": None, "lastImportOnly": True}


def decide_vanished(
    *,
    running_seen_s: float | None,
    gone_seen_s: float,
    last_progress: float | None,
    last_import: Mapping[str, Any] | None = None,
    filename: str | None = None,
    csv_rows: int | None = None,
    import_id: Any = None,
) -> HistoryVerdict:
    """The outcome of a session the progress endpoint no longer knows, from what 1.1.12 really tells.

    ``running_seen_s``: when (our monotonic clock, seconds) the poll that last saw it running was *sent*;
    ``gone_seen_s``: when the 404 was *received*. A failed session stays 10 s after its error, so one that
    vanished less than 10 s after it was seen running completed (its 5 s retention passed). Else the
    ``last-import`` answer (newest import record: file name, CSV rows; written once parsing is done, whatever
    the outcome) settles it only when the session had reached its finalizing step (95 %), past the last step
    that can fail. Anything else is ``unknown``: no guess.
    """
    ident = f"import #{import_id}" if import_id is not None else (filename or "the import")
    if running_seen_s is not None and gone_seen_s - running_seen_s < ERROR_RETENTION_S:
        gap = max(0.0, gone_seen_s - running_seen_s)
        return HistoryVerdict(HISTORY_COMPLETED, None,
                              f"the server forgot {ident} within {gap:.1f}s of it running; HexTrackr 1.1.x keeps "
                              f"a failed session {ERROR_RETENTION_S:g}s, a completed one {COMPLETE_RETENTION_S:g}s")
    if not isinstance(last_import, Mapping):
        return HistoryVerdict(HISTORY_UNKNOWN, None, "the server no longer knows the session and nothing else "
                                                     "tells how it ended")
    rows = _int(last_import.get("rowCount"))
    ours = bool(filename) and last_import.get("filename") == filename and (csv_rows is None or rows == csv_rows)
    said = f"last-import shows {last_import.get('filename')!s} with {rows if rows is not None else '?'} rows"
    if ours and last_progress is not None and last_progress >= BATCHES[1]:
        record = {"row_count": rows} if rows is not None else {}
        return HistoryVerdict(HISTORY_COMPLETED, record,
                              f"{ident} had reached its finalizing step and {said}")
    why = "it had not reached its finalizing step" if ours else "that is not this import"
    return HistoryVerdict(HISTORY_UNKNOWN, None, f"{said}, but {why} (1.1.12 records no outcome)")
