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

# Outcome of an import as the client reports it (derived from status + cancelled flag).
OUTCOME_RUNNING = "running"
OUTCOME_COMPLETED = "completed"
OUTCOME_FAILED = "failed"
OUTCOME_CANCELLED = "cancelled"

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
