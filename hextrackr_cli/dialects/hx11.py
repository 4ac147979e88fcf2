"""HexTrackr 1.1.x (``hextrackr-1.1``) → seed ProgressEvents. Pure: no I/O, no third-party imports.

The 1.1 server emits ``progress-status`` / ``progress-update`` / ``progress-complete`` / ``progress-error``
to room ``progress-<sessionId>``, and its polling endpoint answers the tracker state. Its progress is a
float, its ``status`` stays ``"initialized"`` for the whole run, it sends no stage names and no ETA. This
module turns all of that into the seed's ProgressEvent dicts (``protocol.progress_event``) so the same
renderers and outcome logic serve both dialects:

- stage (``parsing``/``loading``/``processing``/``finalizing``) from the message, then ``metadata.currentStep``,
  then the progress range;
- progress clamped to the seed's 0-100 integer; rows from the metadata;
- ETA computed here with the seed's ``calculate_eta`` from the time the import started (the upload, or the
  first event seen), since the server sends none;
- on ``progress-complete`` the import summary (rows, inserted, updated, resolved, duration) as the seed's
  complete-event fields;
- a 404 from the polling endpoint means "not started yet" before any progress was seen and "finished,
  outcome unknown here" after; the import history (``GET /api/imports``) then decides, never a guess.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from hextrackr_cli import protocol

DIALECT = protocol.HEXTRACKR_11

PROGRESS_STATUS = "progress-status"
PROGRESS_UPDATE = "progress-update"
PROGRESS_COMPLETE = "progress-complete"
PROGRESS_ERROR = "progress-error"
EVENTS = (PROGRESS_STATUS, PROGRESS_UPDATE, PROGRESS_COMPLETE, PROGRESS_ERROR)

# What a 404 from /api/import/progress/<id> means, depending on what was seen before.
NOT_STARTED = "not-started"  # no progress seen yet: the upload has not landed
GONE = "finished-unknown"  # progress was seen: the session finished and was deleted (5 s / 10 s later)

# Outcomes decided from the import history.
HISTORY_COMPLETED = protocol.OUTCOME_COMPLETED
HISTORY_FAILED = protocol.OUTCOME_FAILED  # only when the history says so explicitly
HISTORY_UNKNOWN = "unknown"

# Server clocks differ from ours: accept history rows that claim to start this much before our upload.
CLOCK_SLACK_MS = 10 * 60 * 1000

_SUMMARY_NUMBERS = {
    # seed complete-event field: 1.1 complete metadata key(s), first present wins
    "rows": ("processedRows", "totalRows", "rowCount"),
    "records": ("insertedToSnapshots",),
    "inserted": ("insertedToCurrent",),
    "updated": ("updatedInCurrent",),
    "resolved": ("resolvedCount",),
    "rowsPerSecond": ("rowsPerSecond",),
}


def room(session_id: str) -> str:
    """The Socket.io room the 1.1 server emits a session's progress to."""
    return f"{DIALECT.room_prefix}{session_id}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):
            try:
                n = float(value)
            except ValueError:
                return None
            return n if math.isfinite(n) else None
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    n = _number(value)
    return None if n is None or n < 0 else int(n)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _metadata(data: Mapping[str, Any]) -> Mapping[str, Any]:
    md = data.get("metadata")
    return md if isinstance(md, Mapping) else {}


_STAGE_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bfinaliz|\bcleaning up\b|\bcommitting\b", re.I), protocol.FINALIZING),
    (re.compile(r"\bpars(e|ed|ing)\b|\breading csv\b|\bvalidat", re.I), protocol.PARSING),
    (re.compile(r"\bstaging\b|\binserted\b.*\brecords\b|\bloading\b", re.I), protocol.LOADING),
    (re.compile(r"\bprocess(ing)?\b|\bbatch\b|\bidentif|\bresolv|\bsnapshot|\bdedup", re.I), protocol.PROCESSING),
)
_STEP_STAGES = {1: protocol.PARSING, 2: protocol.LOADING, 3: protocol.PROCESSING}


def stage_of(message: str, current_step: Any = None, progress: Any = None) -> str:
    """The seed stage of a 1.1 update: from the message, else ``currentStep``, else the progress range.

    Observed: 5 "Parsing CSV file..." → 15 "Parsed N rows" → 25-60 "Inserted x/y records to staging table..."
    → 60-95 processing ("Processing batch b/B...") → 95 "Finalizing import and cleaning up...".
    """
    for pattern, stage in _STAGE_WORDS:
        if pattern.search(message or ""):
            # "Processing staging data" is processing, not loading: staging is only loading when inserting.
            if stage == protocol.LOADING and re.search(r"\bprocess", message, re.I) and not re.search(
                r"\binserted\b", message, re.I
            ):
                return protocol.PROCESSING
            return stage
    step = _int(current_step)
    if step in _STEP_STAGES:
        return _STEP_STAGES[step]
    p = _number(progress) or 0.0
    if p < 15:
        return protocol.PARSING
    if p < 60:
        return protocol.LOADING
    if p < 95:
        return protocol.PROCESSING
    return protocol.FINALIZING


def rows_of(stage: str, metadata: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(processed rows, total rows) as far as the metadata tells."""
    total = None
    for key in ("totalRows", "rowCount", "processedRows"):
        total = _int(metadata.get(key))
        if total is not None:
            break
    done: int | None = None
    if stage == protocol.PARSING:
        done = _int(metadata.get("rowCount"))
    elif stage == protocol.LOADING:
        done = _int(metadata.get("insertedCount"))
    elif stage in (protocol.PROCESSING, protocol.FINALIZING):
        for key in ("processedRows", "processedCount"):
            done = _int(metadata.get(key))
            if done is not None:
                break
    if done is not None and total is not None:
        done = min(done, total)
    return done, total


def summary_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The import summary of a ``progress-complete`` (or a completed status body), seed field names.

    ``rows``, ``records``, ``inserted``, ``updated``, ``resolved``, ``durationMs`` (and ``importId``,
    ``rowsPerSecond`` when known). The big ``importSummary`` object is not copied; see ``import_summary``.
    """
    md = _metadata(data)
    out: dict[str, Any] = {}
    for seed_key, keys in _SUMMARY_NUMBERS.items():
        for key in keys:
            v = _int(md.get(key))
            if v is not None:
                out[seed_key] = v
                break
    duration = _int(data.get("duration"))
    if duration is None:
        duration = _int(md.get("totalProcessingTime"))
    if duration is not None:
        out["durationMs"] = duration
    import_id = md.get("importId")
    if import_id is not None and not isinstance(import_id, bool):
        out["importId"] = import_id
    return out


def import_summary(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The server's own (possibly large, ~70 KB) ``metadata.importSummary`` object, if any."""
    value = _metadata(data).get("importSummary")
    return value if isinstance(value, Mapping) else None


@dataclass
class Translator:
    """Maps one session's 1.1 messages to seed ProgressEvents; remembers what ETA and 404 decisions need.

    ``start_ms``: when the import started on our side (the upload); defaults to when the first message
    arrives. Every method takes ``received_ms`` (our clock, Unix ms) so the result is deterministic.
    """

    session_id: str
    start_ms: float | None = None
    seen_progress: bool = False
    last: dict[str, Any] | None = None
    import_id: Any = None
    filename: str | None = None
    vendor: str | None = None
    scan_date: str | None = None
    _terminal: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ socket events
    def event(self, name: str, data: Any, received_ms: float | None = None) -> dict[str, Any] | None:
        """One Socket.io event → a seed ProgressEvent, or None when it is not ours / not a progress event."""
        if name not in EVENTS or not isinstance(data, Mapping):
            return None
        sid = data.get("sessionId", data.get("id"))
        if sid is not None and sid != self.session_id:
            return None
        now = self._now(received_ms, data)
        status = _text(data.get("status"))
        if name == PROGRESS_COMPLETE or (name == PROGRESS_STATUS and status == "completed"):
            return self._complete(data, now)
        if name == PROGRESS_ERROR or (name == PROGRESS_STATUS and status in ("error", "failed")):
            return self._error(data, now)
        return self._progress(data, now)

    # ------------------------------------------------------------------ polling
    def poll(self, body: Any, received_ms: float | None = None) -> dict[str, Any] | None:
        """A 200 body of ``GET /api/import/progress/<id>`` → a seed ProgressEvent (None if malformed)."""
        if not isinstance(body, Mapping) or body.get("success") is False:
            return None
        return self.event(PROGRESS_STATUS, {**body, "sessionId": body.get("sessionId", self.session_id)},
                          received_ms)

    def not_found(self) -> str:
        """What a 404 from the polling endpoint means now: ``NOT_STARTED`` or ``GONE``."""
        return GONE if self.seen_progress else NOT_STARTED

    @property
    def finished(self) -> bool:
        return self._terminal

    # ------------------------------------------------------------------ internals
    def _now(self, received_ms: float | None, data: Mapping[str, Any]) -> float:
        if received_ms is None:
            ts = _number(data.get("timestamp"))
            received_ms = ts if ts is not None else protocol.now_ms()
        if self.start_ms is None:
            self.start_ms = received_ms - self._server_elapsed(data)
        return received_ms

    @staticmethod
    def _server_elapsed(data: Mapping[str, Any]) -> float:
        """How long the session has run, by the server's own clock (``progress-status`` carries ``startTime``
        and ``lastUpdate``): a ``watch`` that attaches mid-import estimates from the real start, whatever the
        difference between the two clocks. 0 when the message does not say."""
        start = _number(data.get("startTime"))
        ref = _number(data.get("lastUpdate", data.get("timestamp")))
        if start is None or ref is None or not 0 <= ref - start <= 7 * 24 * 3600 * 1000:
            return 0.0
        return ref - start

    def _remember(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        md = _metadata(data)
        if md.get("importId") is not None:
            self.import_id = md.get("importId")
        for attr, key in (("filename", "filename"), ("vendor", "vendor"), ("scan_date", "scanDate")):
            if isinstance(md.get(key), str) and md.get(key):
                setattr(self, attr, md[key])
        return md

    def _progress(self, data: Mapping[str, Any], now: float) -> dict[str, Any]:
        md = self._remember(data)
        message = _text(data.get("message") or md.get("message"))
        progress = protocol.clamp_progress(_number(data.get("progress")) or 0)
        stage = stage_of(message, md.get("currentStep"), data.get("progress"))
        done, total = rows_of(stage, md)
        elapsed = now - (self.start_ms if self.start_ms is not None else now)
        eta = protocol.calculate_eta(self.start_ms or now, progress, now=now) if elapsed > 0 else None
        extra: dict[str, Any] = {"stage": stage}
        if done is not None:
            extra["processedRows"] = done
        if total is not None:
            extra["totalRows"] = total
        for seed_key, key in (("batchNumber", "batchNumber"), ("totalBatches", "totalBatches")):
            v = _int(md.get(key))
            if v is not None:
                extra[seed_key] = v
        if self.import_id is not None:
            extra["importId"] = self.import_id
        self.seen_progress = True
        event = protocol.progress_event(self.session_id, stage, progress, message, eta=eta,
                                        timestamp=int(now), **extra)
        self.last = event
        return event

    def _complete(self, data: Mapping[str, Any], now: float) -> dict[str, Any]:
        self._remember(data)
        summary = summary_of(data)
        if "importId" not in summary and self.import_id is not None:
            summary["importId"] = self.import_id
        if "rows" in summary:
            summary.setdefault("totalRows", summary["rows"])
            summary.setdefault("processedRows", summary["rows"])
        message = _text(data.get("message")) or "Import completed"
        self.seen_progress = True
        self._terminal = True
        event = protocol.progress_event(self.session_id, protocol.COMPLETE, 100, message, eta=0,
                                        timestamp=int(now), stage=protocol.COMPLETE, **summary)
        self.last = event
        return event

    def _error(self, data: Mapping[str, Any], now: float) -> dict[str, Any]:
        md = self._remember(data)
        message = _text(data.get("error")) or _text(data.get("message")) or _text(md.get("message"))
        progress = _number(data.get("progress"))
        if progress is None and self.last is not None:
            progress = self.last.get("progress")
        extra: dict[str, Any] = {"stage": protocol.ERROR, "error": message or "import failed"}
        if self.import_id is not None:
            extra["importId"] = self.import_id
        self.seen_progress = True
        self._terminal = True
        event = protocol.progress_event(self.session_id, protocol.ERROR, progress or 0,
                                        message or "import failed on the server", eta=None,
                                        timestamp=int(now), **extra)
        self.last = event
        return event


# --------------------------------------------------------------------------- history
@dataclass(frozen=True)
class HistoryVerdict:
    """The outcome of a finished session as far as the import history tells."""

    outcome: str  # HISTORY_COMPLETED | HISTORY_FAILED (explicit status only) | HISTORY_UNKNOWN
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


def decide_from_history(
    body: Any,
    *,
    import_id: Any = None,
    filename: str | None = None,
    vendor: str | None = None,
    scan_date: str | None = None,
    not_before_ms: float | None = None,
) -> HistoryVerdict:
    """Decide a deleted session's outcome from the import history.

    The row is found by ``import_id`` (seen in the progress metadata) or else by filename (+ vendor and
    scan date when given) among rows not older than ``not_before_ms`` (minus a clock slack), newest first.
    A row with a processing time (or a completed status) is a completed import, a row whose status says
    failed/error a failed one; anything else — no row, a row without processing time, an ambiguous
    match — is ``unknown``: we do not guess.
    """
    rows = history_rows(body)
    candidates: list[Mapping[str, Any]]
    if import_id is not None:
        candidates = [r for r in rows if str(r.get("id")) == str(import_id)]
        how = f"import #{import_id}"
    else:
        if not filename:
            return HistoryVerdict(HISTORY_UNKNOWN, None, "no import id or file name to look for in the history")
        candidates = [r for r in rows if r.get("filename") == filename]
        if vendor:
            candidates = [r for r in candidates if not r.get("vendor") or r.get("vendor") == vendor]
        if scan_date:
            candidates = [r for r in candidates
                          if not r.get("scan_date", r.get("scanDate"))
                          or str(r.get("scan_date", r.get("scanDate")))[:10] == scan_date]
        if not_before_ms is not None:
            kept = []
            for r in candidates:
                when = _when_ms(r.get("import_date", r.get("importDate", r.get("created_at"))))
                if when is None or when >= not_before_ms - CLOCK_SLACK_MS:
                    kept.append(r)
            candidates = kept
        how = f"an import of {filename}"
    if not candidates:
        return HistoryVerdict(HISTORY_UNKNOWN, None, f"the import history has no entry for {how}")
    if len(candidates) > 1:
        if not_before_ms is None:
            return HistoryVerdict(HISTORY_UNKNOWN, None, f"the import history has several entries for {how}")
        # All are recent enough to be ours: the newest one is the import we started last.
        candidates = sorted(candidates, key=lambda r: _number(r.get("id")) or 0, reverse=True)
    record = candidates[0]
    status = _text(record.get("status")).lower()
    if status in ("failed", "error"):
        return HistoryVerdict(HISTORY_FAILED, record, f"the import history marks {how} as {status}")
    if status in ("completed", "complete", "success") or record.get("processing_time") is not None \
            or record.get("processingTime") is not None:
        return HistoryVerdict(HISTORY_COMPLETED, record, f"the import history shows {how} as completed")
    return HistoryVerdict(HISTORY_UNKNOWN, record, f"the import history shows {how} without a completion")


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
