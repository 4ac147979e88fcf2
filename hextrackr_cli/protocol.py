"""The progress protocol, shared by the client and the embedded server.

Pure: names, schemas, validation and the seed's algorithms (ETA, formatETA).
No I/O, no third-party imports, so both sides and the tests can use it freely.

Source of truth: the seed API reference (``websocket-progress-api.md``) for the
``seed`` dialect and the observed HexTrackr 1.1.x protocol for ``hextrackr-1.1``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

# --------------------------------------------------------------------------- seed event names
JOIN_SESSION = "joinSession"
CANCEL_IMPORT = "cancelImport"
IMPORT_PROGRESS = "importProgress"
IMPORT_CANCELLED = "importCancelled"

# --------------------------------------------------------------------------- event types
PARSING = "parsing"
LOADING = "loading"
PROCESSING = "processing"
FINALIZING = "finalizing"
COMPLETE = "complete"
ERROR = "error"

STAGES: tuple[str, ...] = (PARSING, LOADING, PROCESSING, FINALIZING)
TERMINAL_TYPES: frozenset[str] = frozenset({COMPLETE, ERROR})
EVENT_TYPES: frozenset[str] = frozenset(STAGES) | TERMINAL_TYPES

# --------------------------------------------------------------------------- seed tuning
THROTTLE_INTERVAL = 0.5  # seconds: 2 events/s per session
MIN_PROGRESS_DELTA = 1  # percent
SESSION_RETENTION = 300.0  # seconds a finished session stays in memory
RECONNECT_DELAY = 1.0  # seconds, doubled per attempt: 1, 2, 4, 8, 16
RECONNECT_DELAY_MAX = 16.0
MAX_RECONNECT_ATTEMPTS = 5
CONNECT_TIMEOUT = 20.0  # seed client `timeout: 20000`
PING_INTERVAL = 25  # seed server pingInterval 25000 ms
PING_TIMEOUT = 60  # seed server pingTimeout 60000 ms

# --------------------------------------------------------------------------- session status
ACTIVE = "active"
COMPLETED = "completed"
FAILED = "failed"
SESSION_STATUSES: frozenset[str] = frozenset({ACTIVE, COMPLETED, FAILED})
PENDING = "pending"  # extension: reserved by joinSession({"reserve": true}), not yet posted

# Outcome of an import as the client reports it (derived from status + cancelled flag).
OUTCOME_RUNNING = "running"
OUTCOME_COMPLETED = "completed"
OUTCOME_FAILED = "failed"
OUTCOME_CANCELLED = "cancelled"
OUTCOMES: frozenset[str] = frozenset({OUTCOME_RUNNING, OUTCOME_COMPLETED, OUTCOME_FAILED, OUTCOME_CANCELLED})

# --------------------------------------------------------------------------- HTTP (seed dialect)
PATH_HEALTH = "/health"
PATH_IMPORT_VULNS = "/api/vulnerabilities/import"
PATH_IMPORT_TICKETS = "/api/tickets/import"
PATH_PROGRESS = "/api/import/progress/{session_id}"
PATH_IMPORTS = "/api/imports"
PATH_IMPORT = "/api/imports/{import_id}"
PATH_COMPLETED = "/api/imports/completed"  # ?sha256=&type=&vendor=&filename=: did this content complete? (extension)
UPLOAD_FIELD = "csvFile"
# extension: the browser progress view of `hextrackr serve` (its /health says "browserView": true)
PAGE_IMPORT_PREFIX = "/imports/"
HEALTH_BROWSER_VIEW = "browserView"

IMPORT_TYPES = ("vulnerabilities", "tickets")

_UUID_RE = re.compile(
    r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


def is_session_id(value: object) -> bool:
    """True for a canonical textual UUID (what the seed recommends for session ids)."""
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def page_url(server_url: str, session_id: str) -> str:
    """The browser URL of an import's progress page, on a server that serves one (``hextrackr serve``)."""
    return f"{server_url.rstrip('/')}{PAGE_IMPORT_PREFIX}{session_id}"


def now_ms() -> int:
    """Unix time in milliseconds, the seed's timestamp unit."""
    return int(time.time() * 1000)


def calculate_eta(start_time_ms: float, current_progress: float, now: float | None = None) -> int | None:
    """Seconds remaining, exactly the seed's ``calculateETA``.

    ``start_time_ms`` and ``now`` are Unix milliseconds. ``None`` when progress is 0.
    """
    if current_progress <= 0:
        return None
    if now is None:
        now = time.time() * 1000
    elapsed = now - start_time_ms
    total_time = (elapsed / current_progress) * 100
    remaining = total_time - elapsed
    # JavaScript Math.round rounds .5 up; Python's round() is banker's rounding.
    return int(math.floor(remaining / 1000 + 0.5)) if remaining > 0 else 0


def format_eta(seconds: float | None) -> str:
    """The seed's ``formatETA``: 45 -> "45s", 90 -> "1m 30s", 3665 -> "61m 5s"."""
    if seconds is None:
        return ""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m {s % 60}s"


def progress_event(
    session_id: str,
    type_: str,
    progress: float,
    message: str,
    *,
    eta: int | None = None,
    timestamp: int | None = None,
    **additional: Any,
) -> dict[str, Any]:
    """Build a seed ProgressEvent (additional data is merged at top level, as in the seed)."""
    event: dict[str, Any] = dict(additional)
    event.update(
        sessionId=session_id,
        type=type_,
        progress=clamp_progress(progress),
        message=message,
        timestamp=now_ms() if timestamp is None else int(timestamp),
        eta=eta,
    )
    return event


def clamp_progress(progress: Any) -> int:
    """Progress as the seed's 0-100 integer."""
    try:
        p = float(progress)
    except (TypeError, ValueError):
        return 0
    if p != p:  # NaN
        return 0
    if math.isinf(p):
        return 100 if p > 0 else 0
    return int(min(100, max(0, math.floor(p))))


class ProtocolError(ValueError):
    """A message that does not follow the protocol."""


def validate_progress_event(data: Any) -> dict[str, Any]:
    """Check an incoming ProgressEvent and return it normalized; raise ProtocolError otherwise."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"progress event is not an object: {type(data).__name__}")
    sid = data.get("sessionId")
    if not isinstance(sid, str) or not sid:
        raise ProtocolError("progress event has no sessionId")
    type_ = data.get("type")
    if type_ not in EVENT_TYPES:
        raise ProtocolError(f"progress event has unknown type {type_!r}")
    message = data.get("message")
    out = dict(data)
    out["progress"] = clamp_progress(data.get("progress"))
    out["message"] = message if isinstance(message, str) else ("" if message is None else str(message))
    ts = data.get("timestamp")
    out["timestamp"] = int(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else now_ms()
    eta = data.get("eta")
    out["eta"] = int(eta) if isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta >= 0 else None
    return out


def outcome_of(status: str | None, cancelled: bool = False) -> str:
    """Map a seed session status (+ cancel flag) to the client's outcome word."""
    if status == COMPLETED:
        return OUTCOME_COMPLETED
    if status == FAILED:
        return OUTCOME_CANCELLED if cancelled else OUTCOME_FAILED
    return OUTCOME_RUNNING


# --------------------------------------------------------------------------- SessionState (docs/wire.md)
def session_state(
    session_id: str,
    *,
    status: str,
    cancelled: bool = False,
    import_id: int | None = None,
    progress: int = 0,
    latest: Mapping[str, Any] | None = None,
    total_rows: int = 0,
    processed_rows: int = 0,
    start_time: int | None = None,
    end_time: int | None = None,
    last_event: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    import_type: str = "vulnerabilities",
    **extra: Any,
) -> dict[str, Any]:
    """Build a SessionState, the answer of the status endpoint and of ``joinSession`` (the one builder of it).

    ``latest``: the latest reported event, whose ``type``/``message``/``eta`` the state shows (a session with none
    shows the stage it is in: waiting for the upload while pending, else starting). A completed session is never
    ``cancelled``; ``outcome`` follows from status and cancelled. ``extra`` fields are appended."""
    latest = latest or {}
    pending = status == PENDING
    cancelled = bool(cancelled) and status != COMPLETED
    state = {
        "sessionId": session_id,
        "importId": import_id,
        "status": status,
        "cancelled": cancelled,
        "outcome": outcome_of_status(status, cancelled),
        "progress": progress,
        "type": latest.get("type", None if pending else PARSING),
        "message": latest.get("message", "Waiting for the upload" if pending else "Starting"),
        "eta": latest.get("eta"),
        "totalRows": total_rows,
        "processedRows": processed_rows,
        "startTime": start_time,
        "endTime": end_time,
        "lastEvent": last_event,
        "summary": summary,
        "error": error,
        "importType": import_type,
    }
    state.update(extra)
    return state


def outcome_of_status(status: str | None, cancelled: bool = False) -> str:
    """The outcome of a session status: a pending (reserved) session is running; see ``outcome_of``."""
    return OUTCOME_RUNNING if status == PENDING else outcome_of(status, cancelled)


def validate_session_state(data: Any) -> dict[str, Any]:
    """Check a SessionState the server sent and return it normalized: ``outcome`` one of OUTCOMES (derived from
    status and cancelled when missing or unknown, as an older server sends it), ``cancelled`` a bool, ``progress``
    0-100. Raises ProtocolError for what is not a state at all."""
    if not isinstance(data, Mapping):
        raise ProtocolError(f"session state is not an object: {type(data).__name__}")
    out = dict(data)
    out["cancelled"] = bool(data.get("cancelled"))
    if data.get("outcome") not in OUTCOMES:
        out["outcome"] = outcome_of_status(data.get("status"), out["cancelled"])
    out["progress"] = clamp_progress(data.get("progress", 0))
    return out


def state_outcome(state: Mapping[str, Any]) -> str:
    """The outcome a SessionState reports (see ``validate_session_state``)."""
    outcome = state.get("outcome")
    return outcome if outcome in OUTCOMES else outcome_of_status(state.get("status"), bool(state.get("cancelled")))


def state_event(state: Mapping[str, Any], session_id: str) -> dict[str, Any] | None:
    """The ProgressEvent a SessionState shows: its ``lastEvent`` (rows filled from the state), else one made of
    its ``type``/``progress``/``message``/``eta``; None when it names no stage."""
    last = state.get("lastEvent")
    if isinstance(last, Mapping):
        try:
            event = validate_progress_event({**last, "sessionId": session_id})
            for key in ("totalRows", "processedRows"):
                if key not in event and isinstance(state.get(key), int):
                    event[key] = state[key]
            return event
        except ProtocolError:
            pass
    type_ = state.get("type")
    if type_ not in EVENT_TYPES:
        return None
    extra = {k: state[k] for k in ("totalRows", "processedRows", "importId") if state.get(k) is not None}
    eta = state.get("eta")
    return validate_progress_event(progress_event(session_id, type_, state.get("progress", 0),
                                                  str(state.get("message") or ""),
                                                  eta=eta if isinstance(eta, int) else None, **extra))


def final_event(state: Mapping[str, Any], session_id: str) -> dict[str, Any]:
    """The terminal ProgressEvent of a SessionState whose outcome is completed (``complete``, with the summary)
    or failed (``error``, with the state's error)."""
    final = dict(state_event(state, session_id) or {})
    if state_outcome(state) == OUTCOME_COMPLETED:
        summary = state.get("summary")
        final.update(summary if isinstance(summary, Mapping) else {})
        final.update(sessionId=session_id, type=COMPLETE, progress=100,
                     importId=state.get("importId", final.get("importId")))
        final.setdefault("message", "Import completed")
        final.setdefault("eta", 0)
    else:
        error = state.get("error")
        if isinstance(error, Mapping):
            error = error.get("message") or error.get("error")
        message = str(error or (final.get("message") if final.get("type") == ERROR else "") or "")
        final.update(sessionId=session_id, type=ERROR, importId=state.get("importId"))
        final["message"] = message or "the import failed on the server"
    final.setdefault("timestamp", state.get("endTime") or now_ms())
    return validate_progress_event(final)


# --------------------------------------------------------------------------- dialects
@dataclass(frozen=True)
class Dialect:
    """Wire names of one server family."""

    name: str
    join_event: str
    leave_event: str | None
    cancel_event: str | None
    room_prefix: str
    progress_events: tuple[str, ...]
    cancelled_event: str | None
    import_path: str
    progress_path: str
    imports_path: str


SEED = Dialect(
    name="seed",
    join_event=JOIN_SESSION,
    leave_event=None,
    cancel_event=CANCEL_IMPORT,
    room_prefix="",
    progress_events=(IMPORT_PROGRESS,),
    cancelled_event=IMPORT_CANCELLED,
    import_path=PATH_IMPORT_VULNS,
    progress_path=PATH_PROGRESS,
    imports_path=PATH_IMPORTS,
)

HEXTRACKR_11 = Dialect(
    name="hextrackr-1.1",
    join_event="join-progress",
    leave_event="leave-progress",
    cancel_event=None,  # 1.1.x has no cancel at all
    room_prefix="progress-",
    progress_events=("progress-status", "progress-update", "progress-complete", "progress-error"),
    cancelled_event=None,
    import_path="/api/vulnerabilities/import-staging",
    progress_path="/api/import/progress/{session_id}",
    imports_path="/api/imports",
)

DIALECTS: dict[str, Dialect] = {SEED.name: SEED, HEXTRACKR_11.name: HEXTRACKR_11}
