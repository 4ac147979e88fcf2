"""What the server may know of its database, whichever it is: the protocols, the storage-neutral errors, the
wire shape of an import record and the small helpers every backend shares. Imports nothing of the package.

A backend translates its driver's errors into these (the driver's error chained), so the HTTP layer and the
pipeline never name a driver: ``Unavailable`` (503 and retry), ``Busy`` (locked beyond the wait), ``Duplicate``
(a unique key taken), ``Interrupted`` (a statement stopped by the cancel check), ``SchemaTooNew``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

RUNNER = f"{socket.gethostname()}:{os.getpid()}"  # which server process runs an import
IMPORT_STATUSES = ("running", "completed", "failed", "cancelled")
STOPPED = "the server stopped during the import; nothing was changed"


class StorageError(Exception):
    """A database error; ``str()`` is the driver's one-line message (no secret: URLs are masked)."""


class Unavailable(StorageError):
    """The database cannot serve now (unreachable, disk full, read-only, locked): try again later."""


class Busy(Unavailable):
    """Locked by another writer beyond the wait."""


class Duplicate(StorageError):
    """A unique key (an import's session id) is already taken."""


class Interrupted(StorageError):
    """The running statement was stopped by the connection's progress handler (a cancel)."""


class SchemaTooNew(StorageError, ValueError):
    """The database was written by a newer hextrackr; ``str()`` is the one-line message for the user."""


@dataclass
class LoadCounts:
    records: int = 0
    inserted: int = 0
    updated: int = 0
    resolved: int = 0
    deltas: dict[str, Any] | None = None  # vulnerabilities: per kind and severity (storage.deltas, docs/wire.md)


Row = dict[str, Any]
Check = Callable[[str], None]  # the pipeline's cancel point between statements: check(stage)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """One connection, used by one thread: explicit BEGIN/COMMIT/ROLLBACK, ``?`` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ...) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @property
    def in_transaction(self) -> bool: ...

    def set_progress_handler(self, handler: Callable[[], int] | None, n: int) -> None: ...

    def close(self) -> None: ...


class Staging(Protocol):
    """A TEMP table of one import's mapped records, on the import's connection."""

    kind: str
    table: str

    def begin(self) -> None: ...

    def add(self, records: Iterable[tuple[Any, ...]]) -> None: ...

    def end(self) -> None: ...


class Database(Protocol):
    """What the server asks of its database (storage.sqlite.SqliteDatabase, storage.postgres.PgDatabase)."""

    url: str  # printable (no password)
    path: Path  # the file (PostgreSQL: a name under the data directory, no file)
    upload_dir: Path  # uploads wait here for their import
    runner: str  # which server runs an import (recorded with it)
    # capabilities the server adapts to
    shared_by_workers: bool  # several servers share it: the Redis sweep fails their orphaned imports
    counts_steps: bool  # set_progress_handler(h, n) calls h every n statement steps (measurable progress)

    def connect(self, *, cache_kib: int | None = None) -> Connection: ...

    def initialize(self) -> None: ...

    def healthy(self) -> bool: ...

    def checkpoint(self) -> None: ...

    def fail_stale_imports(self) -> int: ...

    def fail_import(self, conn: Connection, import_id: int, error: str = STOPPED) -> int: ...

    def running_imports(self) -> list[Row]: ...

    def create_import(self, *, session_id: str, owner: str, type_: str, filename: str, vendor: str | None,
                      scan_date: str | None, sha256: str, size: int) -> int: ...

    def import_by_session(self, session_id: str) -> Row | None: ...

    def import_by_id(self, import_id: int) -> Row | None: ...

    def completed_import(self, *, sha256: str, type_: str, vendor: str | None, owner: str | None,
                         status: str = "completed") -> Row | None: ...

    def list_imports(self, limit: int, offset: int, owner: str | None) -> tuple[list[Row], int]: ...

    def finish_import(self, conn: Connection, import_id: int, *, status: str, durable: bool = True, rows: int = 0,
                      records: int = 0, inserted: int = 0, updated: int = 0, resolved: int = 0,
                      error: str | None = None, last_event: dict[str, Any] | None = None,
                      duration_ms: int | None = None, fmt: str | None = None, vendor: str | None = None,
                      findings: int = 0, severities: dict[str, int] | None = None, skipped: int = 0,
                      deltas: dict[str, Any] | None = None) -> None: ...

    def store_last_event(self, conn: Connection, import_id: int, event: dict[str, Any]) -> None: ...

    def staging(self, conn: Connection, kind: str) -> Staging: ...

    def merge_vulnerabilities(self, conn: Connection, staging: Staging, *, import_id: int, vendor: str,
                              scan_date: str, plugins: dict[str, tuple[str, str, str]] | None = None,
                              check: Check | None = None, levels: Sequence[str] | None = None) -> LoadCounts: ...

    def merge_tickets(self, conn: Connection, staging: Staging, *, import_id: int,
                      check: Check | None = None) -> LoadCounts: ...


def runner_alive(runner: str | None) -> bool:
    """False when ``runner`` (host:pid, or host:pid:tag for a PostgreSQL worker) is a process of this host that no
    longer exists, or this one's past (its imports can never finish)."""
    if runner and runner.count(":") >= 2:
        runner = runner.rsplit(":", 1)[0]  # the instance tag
    if not runner or ":" not in runner:
        return False
    host, _, pid = runner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's server: not ours to judge
    if int(pid) == os.getpid():
        return False  # this process just started: whatever it ran before was another life
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def masked_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``****``: what may be printed or logged."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:****@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_or_none(text: Any) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def import_record(row: Row) -> dict[str, Any]:
    """The wire's ImportRecord for an ``imports`` row."""
    return {
        "id": row["id"],
        "sessionId": row["session_id"],
        "type": row["type"],
        "filename": row["filename"],
        "vendor": row["vendor"],
        "scanDate": row["scan_date"],
        "format": row.get("format"),
        "status": row["status"],
        "rows": row["rows"],
        "records": row["records"],
        "inserted": row["inserted"],
        "updated": row["updated"],
        "resolved": row["resolved"],
        "findings": row.get("findings"),
        "severities": _json_or_none(row.get("severities")),
        "skipped": row.get("skipped"),
        "deltas": _json_or_none(row.get("deltas")),
        "error": row["error"],
        "startedAt": row["started_at"],
        "finishedAt": row["finished_at"],
        "durationMs": row["duration_ms"],
    }
