"""Typed events: what the transport reports and the renderers render.

The watcher and the uploader produce these; ``hextrackr_cli.render`` consumes them. Nothing here does I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from hextrackr_cli import protocol

# Transports as shown to the user.
WEBSOCKET = "websocket"
POLLING = "polling"  # HTTP polling of the progress endpoint (the fallback)
SOCKET_POLLING = "socket.io polling"  # engine.io long-polling (still Socket.io)

# Outcome words beyond protocol.OUTCOME_*: what the *client* ended with.
OUTCOME_TIMEOUT = "timeout"
OUTCOME_DETACHED = "detached"
OUTCOME_INTERRUPTED = "interrupted"
OUTCOME_BROKEN = "broken"
OUTCOME_SKIPPED = "skipped"  # --if-changed: these bytes already completed an import; nothing sent


class Event:
    """Base class of everything a renderer may receive."""


@dataclass(frozen=True)
class Started(Event):
    """An import or watch begins (before the upload)."""

    title: str
    session_id: str
    filename: str | None = None
    size: int | None = None
    server: str = ""
    page_url: str | None = None  # the server's browser progress view of the session, when it has one


@dataclass(frozen=True)
class UploadProgress(Event):
    sent: int
    total: int


@dataclass(frozen=True)
class Uploaded(Event):
    """The server accepted the upload (202 / 200)."""

    answer: Mapping[str, Any]

    @property
    def import_id(self) -> Any:
        return self.answer.get("importId")


@dataclass(frozen=True)
class Progress(Event):
    """One ProgressEvent, exactly as received (validated), plus where it came from."""

    event: Mapping[str, Any]
    source: str = WEBSOCKET  # websocket | socket.io polling | polling | join
    received: float = field(default_factory=time.time)

    @property
    def type(self) -> str:
        return str(self.event.get("type", ""))

    @property
    def progress(self) -> int:
        return protocol.clamp_progress(self.event.get("progress"))

    @property
    def message(self) -> str:
        return str(self.event.get("message") or "")

    @property
    def eta(self) -> int | None:
        eta = self.event.get("eta")
        return eta if isinstance(eta, int) else None

    @property
    def processed_rows(self) -> int | None:
        v = self.event.get("processedRows")
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    @property
    def total_rows(self) -> int | None:
        v = self.event.get("totalRows")
        return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class TransportChanged(Event):
    transport: str
    reason: str


@dataclass(frozen=True)
class Reconnecting(Event):
    attempt: int
    delay: float | None
    reason: str = ""


@dataclass(frozen=True)
class Reconnected(Event):
    transport: str


@dataclass(frozen=True)
class Cancelling(Event):
    session_id: str


@dataclass(frozen=True)
class Notice(Event):
    """A one-line remark for the human (never for the NDJSON stream unless ``level`` is warning)."""

    message: str
    level: str = "info"  # info | warning


@dataclass(frozen=True)
class Outcome(Event):
    """How a watch ended. ``exit_code`` is what the process will return for this import."""

    outcome: str  # completed | failed | cancelled | timeout | detached | interrupted | broken | skipped
    session_id: str
    exit_code: int
    import_id: Any = None
    message: str = ""
    filename: str | None = None  # the file, when no Started event named it (a skipped file)
    summary: Mapping[str, Any] = field(default_factory=dict)
    confirmed: bool = False  # cancel: the server confirmed it
    source: str = ""  # which transport decided
    counts: Any = None  # gate.Counts of a completed import, when known (the server's deltas or the file's)
    gate: Any = None  # gate.Verdict, once the command decided it (only after the import completed)


def summary_from(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The counters we report, from a complete event, a status body's summary or an import record."""
    out: dict[str, Any] = {}
    if not data:
        return out
    for key in ("rows", "records", "inserted", "updated", "resolved", "durationMs", "totalRows", "processedRows"):
        v = data.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    if "rows" not in out:
        for alt in ("totalRows", "processedRows"):
            if alt in out:
                out["rows"] = out[alt]
                break
    out.pop("totalRows", None)
    out.pop("processedRows", None)
    for key in ("findings", "skipped", "emptyRows"):
        v = data.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            out[key] = v
    fmt = data.get("format")
    if isinstance(fmt, str) and fmt:
        out["format"] = fmt
    sev = data.get("severities")
    if isinstance(sev, Mapping):
        out["severities"] = {k: v for k, v in sev.items() if isinstance(k, str) and isinstance(v, int)}
    if data.get("cleanScan") is True:
        out["cleanScan"] = True
    if isinstance(data.get("deltas"), Mapping):  # per-severity new/reopened/unchanged/resolved (docs/wire.md)
        out["deltas"] = data["deltas"]
    return out
