"""``--if-changed``: has exactly this content (sha256 of the bytes sent, with type and vendor) completed an import?

Our server answers it (``GET /api/imports/completed``, docs/wire.md); HexTrackr 1.1.x, or one of our servers
from before that endpoint, cannot, so the local ledger (``hextrackr_cli.ledger``) decides for them, and every
import completed against them is written to it. Failed and cancelled imports never count, on either side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hextrackr_cli import events as ev
from hextrackr_cli import protocol
from hextrackr_cli.errors import ExitStatus
from hextrackr_cli.formats import metadata_from_filename
from hextrackr_cli.ledger import Entry, Ledger, file_sha256, now_iso


@dataclass(frozen=True)
class Content:
    """What identifies a file's import: its bytes' sha256, the import type, the vendor it gets."""

    sha256: str
    import_type: str
    vendor: str | None  # given, else from the file name; None = the format's default
    filename: str

    @classmethod
    def of(cls, local_file: Any, import_type: str, vendor: str | None) -> "Content":
        return cls(file_sha256(local_file.path), import_type, vendor or metadata_from_filename(local_file.name)[0],
                   local_file.name)


@dataclass(frozen=True)
class Previous:
    """The completed import that makes a file unchanged."""

    session_id: str
    import_id: Any
    finished_at: str | None  # ISO 8601 UTC
    source: str  # "server" or "ledger"

    def message(self) -> str:
        when = local_minute(self.finished_at)
        what = f"import {self.import_id}" if self.import_id not in (None, "") else f"session {self.session_id}"
        return f"unchanged since {what}" + (f" ({when})" if when else "")

    def outcome(self, filename: str) -> ev.Outcome:
        return ev.Outcome(ev.OUTCOME_SKIPPED, self.session_id, ExitStatus.OK, import_id=self.import_id,
                          message=self.message(), filename=filename, source=self.source)


def local_minute(iso: str | None) -> str:
    """``2026-11-30T02:00:41Z`` -> ``2026-11-30 02:00`` in the local time zone ('' when unreadable)."""
    if not iso:
        return ""
    try:
        stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


class ContentCheck:
    """Asks the server when it can say, else the ledger; keeps the ledger for servers that cannot."""

    def __init__(self, conn: Any, ledger: Ledger | None = None) -> None:
        self.conn = conn
        self.ledger = ledger or Ledger()
        self.server_knows = conn.dialect is protocol.SEED  # until it turns out to predate the endpoint
        self.running: str | None = None  # the session of an identical import under way (server's answer)

    def previous(self, content: Content) -> Previous | None:
        """The latest completed import of ``content`` on this server, or None (then ``running`` names an
        identical import still under way, when the server knows one)."""
        self.running = None
        if self.server_knows:
            answerable, record, running = self.conn.api.completed_import(
                content.sha256, import_type=content.import_type, vendor=content.vendor, filename=content.filename)
            if running is not None and running.get("sessionId"):
                self.running = str(running["sessionId"])
            if answerable:
                if record is None:
                    return None
                return Previous(str(record.get("sessionId") or ""), record.get("id"), record.get("finishedAt"),
                                "server")
            self.server_knows = False
        entry = self.ledger.find(content.sha256, self.conn.url, content.import_type, content.vendor or "")
        if entry is None:
            return None
        return Previous(entry.session, entry.import_id, entry.time, "ledger")

    def remember(self, content: Content, outcome: ev.Outcome) -> None:
        """After a completed import on a server that cannot answer for itself: one ledger line."""
        if outcome.outcome != protocol.OUTCOME_COMPLETED or self.server_knows:
            return
        import_id = outcome.import_id
        self.ledger.record(Entry(
            sha256=content.sha256, server=self.conn.url, type=content.import_type, vendor=content.vendor or "",
            session=outcome.session_id, time=now_iso(),
            import_id=str(import_id) if import_id not in (None, "") else None, name=content.filename))
