"""HexTrackr 1.1.x (``hextrackr-1.1``) → seed ProgressEvents. Pure: no I/O, no third-party imports.

The 1.1 server emits ``progress-status`` / ``progress-update`` / ``progress-complete`` / ``progress-error``
to room ``progress-<sessionId>``, and its polling endpoint answers the tracker state. Its progress is a
float, its ``status`` stays ``"initialized"`` for the whole run, it sends no stage names and no ETA. This
module turns all of that into the seed's ProgressEvent dicts (``protocol.progress_event``) so the same
renderers and outcome logic serve both dialects:

- stage (``parsing``/``loading``/``processing``/``finalizing``) from the message, then ``metadata.currentStep``,
  then the progress range;
- progress clamped to the seed's 0-100 integer; rows from the metadata;
- ETA computed here from the rate of the stage in progress (1.1's percentages are not linear in time: the
  batches take most of it), since the server sends none;
- on ``progress-complete`` the import summary (rows, inserted, updated, resolved, duration) as the seed's
  complete-event fields;
- a 404 from the polling endpoint means "not started yet" before any progress was seen and "finished,
  outcome unknown here" after; ``decide_vanished`` then decides from when it vanished and ``last-import``
  (``GET /api/imports`` always answers 500 on 1.1.12), never a guess.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from hextrackr_cli import protocol
from hextrackr_cli.client.hx11.eta import StageEta

DIALECT = protocol.HEXTRACKR_11

PROGRESS_STATUS = "progress-status"
PROGRESS_UPDATE = "progress-update"
PROGRESS_COMPLETE = "progress-complete"
PROGRESS_ERROR = "progress-error"
EVENTS = (PROGRESS_STATUS, PROGRESS_UPDATE, PROGRESS_COMPLETE, PROGRESS_ERROR)

# What a 404 from /api/import/progress/<id> means, depending on what was seen before.
NOT_STARTED = "not-started"  # no progress seen yet: the upload has not landed
GONE = "finished-unknown"  # progress was seen: the session finished and was deleted (5 s / 10 s later)


_SUMMARY_NUMBERS = {
    # seed complete-event field: 1.1 complete metadata key(s), first present wins. ``rowCount`` ("Parsed N
    # rows") is the CSV rows, as 1.1's own history counts them; ``processedRows`` counts records (one per CVE).
    "rows": ("rowCount",),
    "records": ("processedRows", "insertedToSnapshots"),
    "inserted": ("insertedToCurrent",),
    "updated": ("updatedInCurrent",),
    "resolved": ("resolvedCount",),
    "rowsPerSecond": ("rowsPerSecond",),
}


_RECORDS_RE = re.compile(r"\b(\d+)/(\d+) records\b|\bprocessing (\d+) (?:rows|records)\b", re.I)

# A 1.1.12 /health: {"status":"ok","db":true,"uptime":…} — no dialect (ours names one), no version.
HEALTH_KEYS = ("db", "uptime")


def health_looks_hx11(body: Any) -> bool:
    """True for a ``/health`` answer shaped like HexTrackr 1.1.x's (``status``, ``db``, ``uptime``; no
    ``dialect``). Free to ask: ``/health`` is outside the rate-limited ``/api/``."""
    return (isinstance(body, Mapping) and not body.get("dialect") and body.get("status") == "ok"
            and all(k in body for k in HEALTH_KEYS))


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


def rows_of(stage: str, metadata: Mapping[str, Any], message: str = "",
            records: int | None = None) -> tuple[int | None, int | None]:
    """(done, total) in records (one per CVE: the unit of the server's staging and batches), or (None, None)
    while parsing. ``records``: the total seen earlier in the session, if any."""
    if stage == protocol.PARSING:
        return None, None
    m = _RECORDS_RE.search(message or "")
    if m and m.group(2):
        records = int(m.group(2))
    elif m and m.group(3):
        records = int(m.group(3))
    done: int | None = None
    if stage == protocol.LOADING:
        done = _int(metadata.get("insertedCount"))
        if m and m.group(1):
            done = int(m.group(1))
    else:
        done = _int(metadata.get("processedRows"))
    if records is None:
        return None, None
    return (min(done, records) if done is not None else None), records


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
    csv_rows: int | None = None  # "Parsed N rows"
    records: int | None = None  # records staged (one per CVE)
    _terminal: bool = field(default=False, repr=False)
    _eta: StageEta = field(default_factory=StageEta, repr=False)

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
        if _int(md.get("rowCount")) is not None:
            self.csv_rows = _int(md.get("rowCount"))
        for attr, key in (("filename", "filename"), ("vendor", "vendor"), ("scan_date", "scanDate")):
            if isinstance(md.get(key), str) and md.get(key):
                setattr(self, attr, md[key])
        return md

    def _progress(self, data: Mapping[str, Any], now: float) -> dict[str, Any]:
        md = self._remember(data)
        message = _text(data.get("message") or md.get("message"))
        progress = protocol.clamp_progress(_number(data.get("progress")) or 0)
        stage = stage_of(message, md.get("currentStep"), data.get("progress"))
        done, total = rows_of(stage, md, message, self.records)
        if total is not None:
            self.records = total
        eta = self._eta.update(_number(data.get("progress")) or 0.0, message, now)
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
        if "rows" not in summary and self.csv_rows is not None:
            summary["rows"] = self.csv_rows
        if "records" in summary:
            summary.setdefault("totalRows", summary["records"])
            summary.setdefault("processedRows", summary["records"])
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
