"""The SQL both backends speak (``?`` placeholders; PgConnection maps them): import records and the merge's steps.

Neither backend subclasses the other; both mix in ``ImportRecords`` and call the merge helpers with their own
connection.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, ContextManager, Sequence

from hextrackr_cli.formats import TICKET_FIELDS, VULN_FIELDS
from hextrackr_cli.server.storage.base import STOPPED, Check, Connection, LoadCounts, Row, StorageError, \
    runner_alive, utc_now
from hextrackr_cli.server.storage.deltas import REOPEN_ON_CONFLICT, open_split, resolved_row
from hextrackr_cli.server.storage.schema import TABLES, missing_columns, statements


def no_check(stage: str) -> None:
    """The merge's cancel point when nobody asks."""


class ImportRecords:
    """The ``imports`` table: what a backend gets by defining ``connect()``, ``runner``, ``_rows(sql, args)`` and
    ``_insert(conn, sql, args) -> id``."""

    runner: str

    def connect(self, *, cache_kib: int | None = None) -> Connection:
        raise NotImplementedError

    def _rows(self, sql: str, args: Sequence[Any]) -> list[Row]:
        raise NotImplementedError

    def _insert(self, conn: Connection, sql: str, args: Sequence[Any]) -> int:
        raise NotImplementedError

    def _one(self, sql: str, args: Sequence[Any]) -> Row | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def healthy(self) -> bool:
        try:
            self._rows("SELECT 1 FROM imports LIMIT 1", ())
            return True
        except StorageError:
            return False

    def create_import(self, *, session_id: str, owner: str, type_: str, filename: str, vendor: str | None,
                      scan_date: str | None, sha256: str, size: int) -> int:
        conn = self.connect()
        try:
            return self._insert(
                conn,
                "INSERT INTO imports (session_id, owner, type, filename, vendor, scan_date, sha256, size, status,"
                " runner, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (session_id, owner, type_, filename, vendor, scan_date, sha256, size, self.runner, utc_now()),
            )
        finally:
            conn.close()

    def import_by_session(self, session_id: str) -> Row | None:
        return self._one("SELECT * FROM imports WHERE session_id = ?", (session_id,))

    def import_by_id(self, import_id: int) -> Row | None:
        return self._one("SELECT * FROM imports WHERE id = ?", (import_id,))

    def completed_import(self, *, sha256: str, type_: str, vendor: str | None, owner: str | None,
                         status: str = "completed") -> Row | None:
        """The latest import of these bytes (and type, and vendor when given) with ``status`` that ``owner`` may
        see (None: any owner): one lookup in ``imports_sha256``."""
        sql, args = completed_query(sha256, type_, vendor, owner, status)
        return self._one(sql, args)

    def list_imports(self, limit: int, offset: int, owner: str | None) -> tuple[list[Row], int]:
        where, args = ("", ()) if owner is None else (" WHERE owner = ?", (owner,))
        total = self._rows("SELECT count(*) AS n FROM imports" + where, args)[0]["n"]
        rows = self._rows("SELECT * FROM imports" + where + " ORDER BY id DESC LIMIT ? OFFSET ?", args + (limit, offset))
        return rows, int(total)

    def running_imports(self) -> list[Row]:
        return self._rows("SELECT id, session_id, runner, started_at FROM imports WHERE status = 'running'", ())

    def finish_import(self, conn: Connection, import_id: int, *, status: str, durable: bool = True, rows: int = 0,
                      records: int = 0, inserted: int = 0, updated: int = 0, resolved: int = 0,
                      error: str | None = None, last_event: dict[str, Any] | None = None,
                      duration_ms: int | None = None, fmt: str | None = None, vendor: str | None = None,
                      findings: int = 0, severities: dict[str, int] | None = None, skipped: int = 0,
                      deltas: dict[str, Any] | None = None) -> None:
        """Record an import's outcome (on ``conn``: inside the import's transaction when it completes).
        ``durable=False``: the backend may skip syncing this one row (a failure lost to a power cut is recorded
        failed at the next start anyway)."""
        with contextlib.nullcontext() if durable else self._unsynced(conn):
            conn.execute(
                "UPDATE imports SET status = ?, rows = ?, records = ?, inserted = ?, updated = ?, resolved = ?,"
                " error = ?, last_event = ?, finished_at = ?, duration_ms = ?, format = coalesce(?, format),"
                " vendor = coalesce(?, vendor), findings = ?, severities = ?, skipped = ?, deltas = ? WHERE id = ?",
                (status, rows, records, inserted, updated, resolved, error,
                 json.dumps(last_event) if last_event is not None else None, utc_now(), duration_ms, fmt, vendor,
                 findings, json.dumps(severities) if severities is not None else None, skipped,
                 json.dumps(deltas, separators=(",", ":")) if deltas is not None else None, import_id),
            )

    def _unsynced(self, conn: Connection) -> ContextManager[None]:
        """Around a write that need not be synced (finish_import(durable=False)): nothing unless the backend
        can skip the sync."""
        return contextlib.nullcontext()

    def store_last_event(self, conn: Connection, import_id: int, event: dict[str, Any]) -> None:
        conn.execute("UPDATE imports SET last_event = ? WHERE id = ?", (json.dumps(event), import_id))

    def fail_import(self, conn: Connection, import_id: int, error: str = STOPPED) -> int:
        """Record a running import as failed; 1 if it was still running, else 0."""
        return conn.execute(
            "UPDATE imports SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'running'",
            (utc_now(), error, import_id)).rowcount

    def fail_stale_imports(self) -> int:
        """Imports left 'running' by a server process of this host that died can never finish: record them as
        failed (other hosts' workers are judged by their heartbeat in Redis: ``state.sweep``)."""
        stale = [r["id"] for r in self.running_imports() if not runner_alive(r["runner"])]
        conn = self.connect()
        try:
            return sum(self.fail_import(conn, import_id) for import_id in stale)
        finally:
            conn.close()


def completed_query(sha256: str, type_: str, vendor: str | None, owner: str | None,
                    status: str = "completed") -> tuple[str, tuple[Any, ...]]:
    """The SQL behind ``GET /api/imports/completed``: equality on the three columns of ``imports_sha256``."""
    sql = "SELECT * FROM imports WHERE sha256 = ? AND type = ? AND status = ?"
    args: tuple[Any, ...] = (sha256, type_, status)
    if vendor is not None:
        sql, args = sql + " AND vendor = ?", args + (vendor,)
    if owner is not None:
        sql, args = sql + " AND owner = ?", args + (owner,)
    return sql + " ORDER BY id DESC LIMIT 1", args


def create_schema(conn: Connection, dialect: str, columns: dict[str, set[str]]) -> None:
    """Create what is missing of the layout on ``conn`` (inside the caller's transaction): tables, then the columns
    ``columns`` (table -> its existing columns) lacks, then indexes (which may name a new column)."""
    todo = statements(dialect)
    tables, indexes = todo[:len(TABLES)], todo[len(TABLES):]
    for statement in tables:
        conn.execute(statement)
    for table in TABLES:
        if table.name in columns:
            for statement in missing_columns(table, columns[table.name], dialect):
                conn.execute(statement)
    for statement in indexes:
        conn.execute(statement)


_V_INSERT = (", ".join(VULN_FIELDS) + ", vendor, scan_date, status, resolved_at, import_id, created_import_id,"
             " created_at, updated_at")
# what the upsert of a staged record changes on the stored one
VULN_ON_CONFLICT = (
    " ON CONFLICT (vendor, dedup_key) DO UPDATE SET"
    " hostname = excluded.hostname, ip_address = excluded.ip_address, asset_id = excluded.asset_id,"
    " plugin_id = excluded.plugin_id, plugin_name = excluded.plugin_name, severity = excluded.severity,"
    " vpr_score = excluded.vpr_score, cvss_score = excluded.cvss_score, state = excluded.state,"
    " description = excluded.description, solution = excluded.solution,"
    " first_seen = CASE WHEN vulnerabilities.first_seen IS NULL OR vulnerabilities.first_seen = ''"
    "   OR excluded.first_seen < vulnerabilities.first_seen THEN excluded.first_seen"
    "   ELSE vulnerabilities.first_seen END,"
    " last_seen = excluded.last_seen, scan_date = excluded.scan_date, status = 'open', resolved_at = NULL,"
    " import_id = excluded.import_id, updated_at = excluded.updated_at" + REOPEN_ON_CONFLICT
)
_T_COLS = ", ".join(TICKET_FIELDS)
_TICKET_UPDATES = ", ".join(f"{f} = excluded.{f}" for f in TICKET_FIELDS[1:])


def merge_vulnerabilities(conn: Connection, table: str, select: str, args: Sequence[Any], *, import_id: int,
                          vendor: str, plugins: dict[str, tuple[str, str, str]] | None, now: str,
                          check: Check, levels: Sequence[str] | None = None) -> LoadCounts:
    """Upsert the staged records, resolve the vendor's records absent from this scan, snapshot the scan.

    ``select`` (with ``args``) is the backend's SELECT of the staged ``table``: the inserted columns in order
    (VULN_FIELDS, then vendor, scan_date, status, resolved_at, import_id, created_import_id, created_at,
    updated_at), one row a key, the last row of a key winning and first_seen the earliest.
    Runs inside the import's transaction; ``check(stage)`` between statements (cancel point). ``levels``: the
    severities the scan was read for (--min-severity): only records of those levels can be absent from it."""
    check("upsert")
    id_before = conn.execute("SELECT coalesce(max(id), 0) FROM vulnerabilities").fetchone()[0]
    conn.execute(f"INSERT INTO vulnerabilities ({_V_INSERT}) {select}{VULN_ON_CONFLICT}", args)
    # every record of this scan now carries import_id (and is open); the new ones have ids above id_before, the
    # reopened ones this import's reopened_import_id
    records, inserted, deltas = open_split(conn, vendor=vendor, import_id=import_id, id_before=id_before)
    if plugins:
        conn.executemany(
            "INSERT INTO plugins (vendor, plugin_id, name, description, solution, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vendor, plugin_id) DO UPDATE SET name = excluded.name,"
            " description = excluded.description, solution = excluded.solution, updated_at = excluded.updated_at",
            [(vendor, pid, name, desc, sol, now) for pid, (name, desc, sol) in plugins.items()],
        )
    check("resolve")
    # the vendor's other open records were absent from this scan
    deltas["resolved"] = resolved_row(conn.execute(
        "UPDATE vulnerabilities SET status = 'resolved', resolved_at = ?, updated_at = ?"
        " WHERE vendor = ? AND status = 'open' AND import_id != ?"
        + (f" AND severity IN ({', '.join('?' * len(levels))})" if levels else "") + " RETURNING severity",
        (now, now, vendor, import_id, *(levels or ())),
    ).fetchall())
    resolved = deltas["resolved"]["total"]
    check("snapshot")
    conn.execute(
        "INSERT INTO vulnerability_snapshots (import_id, dedup_key, severity, state, vpr_score)"
        f" SELECT ?, dedup_key, severity, state, vpr_score FROM {table} ORDER BY seq",  # seq: SQLite's rowid
        (import_id,),
    )
    return LoadCounts(records=records, inserted=inserted, updated=records - inserted, resolved=resolved,
                      deltas=deltas)


def merge_tickets(conn: Connection, table: str, source: str, *, import_id: int, check: Check) -> LoadCounts:
    """Upsert the staged tickets by XT number (no resolve for tickets). ``source``: the backend's FROM clause
    giving the staged ``table``'s rows (TICKET_FIELDS), the last row of a number winning."""
    now = utc_now()
    records = conn.execute(f"SELECT count(DISTINCT xt_number) FROM {table}").fetchone()[0]
    existing = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT xt_number FROM {table}) s WHERE EXISTS"
        " (SELECT 1 FROM tickets k WHERE k.xt_number = s.xt_number)"
    ).fetchone()[0]
    check("upsert")
    conn.execute(
        f"INSERT INTO tickets ({_T_COLS}, import_id, created_at, updated_at) SELECT {_T_COLS}, ?, ?, ? FROM {source}"
        f" ON CONFLICT (xt_number) DO UPDATE SET {_TICKET_UPDATES}, import_id = excluded.import_id,"
        " updated_at = excluded.updated_at",
        (import_id, now, now),
    )
    return LoadCounts(records=records, inserted=records - existing, updated=existing)
