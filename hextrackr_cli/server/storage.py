"""SQLite storage: schema, import records, and the set-based, single-transaction bulk load.

Every import's data changes happen in one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); rows are first
staged in a TEMP table (outside the main database, so staging takes no write lock), then moved with
``INSERT … SELECT … ON CONFLICT DO UPDATE`` and a set-based resolve ``UPDATE``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from hextrackr_cli.formats import TICKET_FIELDS, VULN_FIELDS

SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    filename TEXT NOT NULL,
    vendor TEXT,
    scan_date TEXT,
    format TEXT,
    sha256 TEXT,
    size INTEGER,
    status TEXT NOT NULL DEFAULT 'running',
    runner TEXT,
    rows INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    resolved INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    last_event TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER
);
CREATE TABLE IF NOT EXISTS vulnerabilities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vendor TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    hostname TEXT, ip_address TEXT, asset_id TEXT, cve TEXT, plugin_id TEXT, plugin_name TEXT,
    severity TEXT, vpr_score REAL, cvss_score REAL, state TEXT, description TEXT, solution TEXT,
    first_seen TEXT, last_seen TEXT, scan_date TEXT,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_at TEXT,
    import_id INTEGER NOT NULL,
    created_import_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (vendor, dedup_key)
);
CREATE TABLE IF NOT EXISTS plugins (
    vendor TEXT NOT NULL,
    plugin_id TEXT NOT NULL,
    name TEXT, description TEXT, solution TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (vendor, plugin_id)
) WITHOUT ROWID;
-- open records by vendor and last import: counts and resolve without scanning the whole table
CREATE INDEX IF NOT EXISTS vulnerabilities_open ON vulnerabilities (vendor, import_id) WHERE status = 'open';
-- what each scan contained, row for row (the record is vulnerabilities(vendor of the import, dedup_key))
CREATE TABLE IF NOT EXISTS vulnerability_snapshots (
    import_id INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    severity TEXT, state TEXT, vpr_score REAL
);
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    xt_number TEXT NOT NULL UNIQUE,
    date_submitted TEXT, date_due TEXT, hexagon_ticket TEXT, service_now_ticket TEXT, location TEXT,
    devices TEXT, supervisor TEXT, tech TEXT, status TEXT, notes TEXT,
    import_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

IMPORT_STATUSES = ("running", "completed", "failed", "cancelled")
# PRAGMA user_version of the layout above. Databases from before versioning (0) are upgraded in place by
# _upgrade_unversioned; a later change to SCHEMA bumps this and adds a step to MIGRATIONS.
SCHEMA_VERSION = 1
RUNNER = f"{socket.gethostname()}:{os.getpid()}"  # which server process runs an import


class SchemaTooNew(ValueError):
    """The database was written by a newer hextrackr; ``str()`` is the one-line message for the user."""


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


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _upgrade_unversioned(conn: sqlite3.Connection) -> None:
    """Databases written before the schema had a version: add what later layouts added, keep every row."""
    if "runner" not in _columns(conn, "imports"):
        conn.execute("ALTER TABLE imports ADD COLUMN runner TEXT")
    if "created_import_id" not in _columns(conn, "vulnerabilities"):
        conn.execute("ALTER TABLE vulnerabilities ADD COLUMN created_import_id INTEGER NOT NULL DEFAULT 0")
        conn.execute("UPDATE vulnerabilities SET created_import_id = import_id")  # best known: the last import
    conn.execute("DROP INDEX IF EXISTS vulnerabilities_vendor_import")  # replaced by vulnerabilities_open
    if "vulnerability_id" in _columns(conn, "vulnerability_snapshots"):  # snapshots keyed by record id then
        conn.execute("ALTER TABLE vulnerability_snapshots RENAME TO vulnerability_snapshots_old")
        conn.execute("CREATE TABLE vulnerability_snapshots (import_id INTEGER NOT NULL, dedup_key TEXT NOT NULL,"
                     " severity TEXT, state TEXT, vpr_score REAL)")
        conn.execute("INSERT INTO vulnerability_snapshots (import_id, dedup_key, severity, state, vpr_score)"
                     " SELECT s.import_id, v.dedup_key, s.severity, s.state, s.vpr_score"
                     " FROM vulnerability_snapshots_old s JOIN vulnerabilities v ON v.id = s.vulnerability_id")
        conn.execute("DROP TABLE vulnerability_snapshots_old")


# MIGRATIONS[n - 1] upgrades a database of schema version n to n + 1 (none yet: version 1 is the first).
MIGRATIONS: list[Any] = []


def open_database(url: str) -> Any:
    """The database of a URL: ``postgresql://…`` (or ``postgres://…``) is PostgreSQL (storage_pg), anything else
    SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ValueError("a PostgreSQL database needs psycopg; install it with pip install 'hextrackr[postgres]'") \
                from None
        from hextrackr_cli.server.storage_pg import PgDatabase

        return PgDatabase(url)
    return Database(parse_database_url(url))


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


def parse_database_url(url: str) -> Path:
    """``sqlite:///PATH`` (or a plain path) -> Path. Raises ValueError for anything else."""
    if url.startswith("sqlite:///"):
        # SQLAlchemy convention: sqlite:///relative.db, sqlite:////absolute/path.db
        path = url[len("sqlite:///"):]
        if not path:
            raise ValueError("database URL sqlite:/// needs a path")
        return Path(path)
    if url.startswith("sqlite://"):
        raise ValueError(f"database URL must be sqlite:///PATH, not {url!r}")
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(f"database scheme {scheme!r} is not supported by this server; use sqlite:///PATH")
    return Path(url)


class Database:
    """One SQLite file. Connections are short-lived and per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.upload_dir = self.path.parent / "uploads"  # uploads wait here for their import
        self.runner = RUNNER  # which server runs an import (recorded with it)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-16384")  # 16 MiB page cache per connection
        conn.execute("PRAGMA temp_store=FILE")  # the staging table: OS page cache, not our RSS
        # checkpoints run where we choose (after an import has reported completion), never inside a commit
        # that someone is waiting for
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    # the bulk-load operations the pipeline calls through its database (storage_pg.PgDatabase has the same)
    def staging(self, conn: sqlite3.Connection, kind: str) -> "Staging":
        return Staging(conn, kind)

    def merge_vulnerabilities(self, conn: sqlite3.Connection, staging: "Staging", **kw: Any) -> "LoadCounts":
        return merge_vulnerabilities(conn, staging, **kw)

    def merge_tickets(self, conn: sqlite3.Connection, staging: "Staging", **kw: Any) -> "LoadCounts":
        return merge_tickets(conn, staging, **kw)

    def checkpoint(self) -> None:
        conn = self.connect()
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def initialize(self) -> None:
        """Create the schema, or upgrade an older database in place (one transaction); refuse a newer one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # refuse a newer database before changing anything in it (even its journal mode)
            probe = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                self._check_version(probe.execute("PRAGMA user_version").fetchone()[0])
            finally:
                probe.close()
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._check_version(version)
                existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "imports" in existing:  # not a new file: bring it up to date, step by step
                    if version == 0:
                        _upgrade_unversioned(conn)
                        version = 1
                    for step in MIGRATIONS[version - 1:]:
                        step(conn)
                for statement in SCHEMA.split(";"):  # not executescript(): it would COMMIT the transaction first
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        try:
            os.chmod(self.path, 0o600)
        except OSError:
            pass

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database {self.path} was written by a newer hextrackr (schema version {version}; this "
                f"one knows up to {SCHEMA_VERSION}): upgrade hextrackr, or use another --database"
            )

    def fail_stale_imports(self) -> int:
        """Imports left 'running' by a server process that died can never finish: record them as failed."""
        conn = self.connect()
        try:
            stale = [r[0] for r in conn.execute("SELECT id, runner FROM imports WHERE status = 'running'").fetchall()
                     if not runner_alive(r[1])]
            return sum(self.fail_import(conn, import_id) for import_id in stale)
        finally:
            conn.close()

    @staticmethod
    def fail_import(conn: Any, import_id: int,
                    error: str = "the server stopped during the import; nothing was changed") -> int:
        """Record a running import as failed; 1 if it was still running, else 0."""
        return conn.execute(
            "UPDATE imports SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'running'",
            (utc_now(), error, import_id)).rowcount

    def healthy(self) -> bool:
        try:
            conn = self.connect()
            try:
                conn.execute("SELECT 1 FROM imports LIMIT 1").fetchall()
            finally:
                conn.close()
            return True
        except sqlite3.Error:
            return False

    # ------------------------------------------------------------------ import records
    def create_import(self, *, session_id: str, owner: str, type_: str, filename: str, vendor: str | None,
                      scan_date: str | None, sha256: str, size: int) -> int:
        conn = self.connect()
        try:
            cur = conn.execute(
                "INSERT INTO imports (session_id, owner, type, filename, vendor, scan_date, sha256, size, status,"
                " runner, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (session_id, owner, type_, filename, vendor, scan_date, sha256, size, self.runner, utc_now()),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)
        finally:
            conn.close()

    def import_by_session(self, session_id: str) -> dict | None:
        return self._one("SELECT * FROM imports WHERE session_id = ?", (session_id,))

    def import_by_id(self, import_id: int) -> dict | None:
        return self._one("SELECT * FROM imports WHERE id = ?", (import_id,))

    def list_imports(self, limit: int, offset: int, owner: str | None) -> tuple[list[dict], int]:
        conn = self.connect()
        conn.row_factory = sqlite3.Row
        try:
            where, args = ("", ()) if owner is None else (" WHERE owner = ?", (owner,))
            total = conn.execute("SELECT count(*) FROM imports" + where, args).fetchone()[0]
            rows = conn.execute(
                "SELECT * FROM imports" + where + " ORDER BY id DESC LIMIT ? OFFSET ?", args + (limit, offset)
            ).fetchall()
            return [dict(r) for r in rows], int(total)
        finally:
            conn.close()

    def finish_import(self, conn: sqlite3.Connection, import_id: int, *, status: str, rows: int = 0,
                      records: int = 0, inserted: int = 0, updated: int = 0, resolved: int = 0,
                      error: str | None = None, last_event: dict | None = None, duration_ms: int | None = None,
                      fmt: str | None = None, vendor: str | None = None) -> None:
        conn.execute(
            "UPDATE imports SET status = ?, rows = ?, records = ?, inserted = ?, updated = ?, resolved = ?,"
            " error = ?, last_event = ?, finished_at = ?, duration_ms = ?, format = coalesce(?, format),"
            " vendor = coalesce(?, vendor) WHERE id = ?",
            (status, rows, records, inserted, updated, resolved, error,
             json.dumps(last_event) if last_event is not None else None, utc_now(), duration_ms, fmt, vendor,
             import_id),
        )

    def _one(self, sql: str, args: Sequence[Any]) -> dict | None:
        conn = self.connect()
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute(sql, args).fetchone()
            return dict(row) if row is not None else None
        finally:
            conn.close()


def import_record(row: dict) -> dict:
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
        "error": row["error"],
        "startedAt": row["started_at"],
        "finishedAt": row["finished_at"],
        "durationMs": row["duration_ms"],
    }


# --------------------------------------------------------------------------- bulk load
_V_COLS = ", ".join(VULN_FIELDS)
_T_COLS = ", ".join(TICKET_FIELDS)


@dataclass
class LoadCounts:
    records: int = 0
    inserted: int = 0
    updated: int = 0
    resolved: int = 0


class Staging:
    """A TEMP table of mapped records for one import on one connection."""

    def __init__(self, conn: sqlite3.Connection, kind: str) -> None:
        self.conn = conn
        self.kind = kind
        fields = VULN_FIELDS if kind == "vulnerabilities" else TICKET_FIELDS
        self.table = "staging_v" if kind == "vulnerabilities" else "staging_t"
        conn.execute(f"DROP TABLE IF EXISTS temp.{self.table}")
        conn.execute(f"CREATE TEMP TABLE {self.table} (seq INTEGER PRIMARY KEY, {', '.join(fields)})")
        self._insert = f"INSERT INTO temp.{self.table} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"

    def begin(self) -> None:
        """One transaction for the whole load: it writes only the temp database, so it locks nothing shared."""
        self.conn.execute("BEGIN")

    def add(self, records: Iterable[tuple]) -> None:
        self.conn.executemany(self._insert, records)

    def end(self) -> None:
        self.conn.execute("COMMIT")


# what the upsert of a staged record changes on the stored one (storage_pg.py uses it too)
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
    " import_id = excluded.import_id, updated_at = excluded.updated_at"
)


def merge_vulnerabilities(conn: sqlite3.Connection, staging: Staging, *, import_id: int, vendor: str,
                          scan_date: str, plugins: dict | None = None, check: Any = None) -> LoadCounts:
    """Upsert the staged records, resolve the vendor's records absent from this scan, snapshot the scan.

    Must run inside the import's transaction. ``check()`` is called between statements (cancel point).
    """
    check = check or (lambda stage: None)
    now = utc_now()
    t = f"temp.{staging.table}"
    check("upsert")
    id_before = conn.execute("SELECT coalesce(max(id), 0) FROM vulnerabilities").fetchone()[0]
    # key order: the unique index is walked sequentially, which keeps big tables out of random I/O
    conn.execute(
        f"INSERT INTO vulnerabilities ({_V_COLS}, vendor, scan_date, status, resolved_at, import_id,"
        " created_import_id, created_at, updated_at)"
        f" SELECT dedup_key, hostname, ip_address, asset_id, cve, plugin_id, plugin_name, severity, vpr_score,"
        " cvss_score, state, description, solution,"
        " CASE WHEN first_seen = '' THEN ? ELSE first_seen END,"
        " CASE WHEN last_seen = '' THEN ? ELSE last_seen END,"
        f" ?, ?, 'open', NULL, ?, ?, ?, ? FROM {t} WHERE true ORDER BY dedup_key, seq" + VULN_ON_CONFLICT,
        (scan_date, scan_date, vendor, scan_date, import_id, import_id, now, now),
    )
    return after_vuln_upsert(conn, t, import_id=import_id, vendor=vendor, plugins=plugins, now=now,
                             id_before=id_before, check=check)


def after_vuln_upsert(conn: Any, table: str, *, import_id: int, vendor: str, plugins: dict | None, now: str,
                      id_before: int, check: Any) -> LoadCounts:
    """The merge after the upsert of the staged ``table`` (SQLite and PostgreSQL alike): count the scan's records,
    store its plugins, resolve the vendor's records absent from it, snapshot it."""
    # every record of this scan now carries import_id (and is open); the new ones have ids above id_before
    records = conn.execute(
        "SELECT count(*) FROM vulnerabilities WHERE vendor = ? AND status = 'open' AND import_id = ?",
        (vendor, import_id),
    ).fetchone()[0]
    inserted = conn.execute("SELECT count(*) FROM vulnerabilities WHERE id > ?", (id_before,)).fetchone()[0]
    if plugins:
        conn.executemany(
            "INSERT INTO plugins (vendor, plugin_id, name, description, solution, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vendor, plugin_id) DO UPDATE SET name = excluded.name,"
            " description = excluded.description, solution = excluded.solution, updated_at = excluded.updated_at",
            [(vendor, pid, name, desc, sol, now) for pid, (name, desc, sol) in plugins.items()],
        )
    check("resolve")
    # the vendor's other open records were absent from this scan
    resolved = conn.execute(
        "UPDATE vulnerabilities SET status = 'resolved', resolved_at = ?, updated_at = ?"
        " WHERE vendor = ? AND status = 'open' AND import_id != ?",
        (now, now, vendor, import_id),
    ).rowcount
    check("snapshot")
    conn.execute(
        "INSERT INTO vulnerability_snapshots (import_id, dedup_key, severity, state, vpr_score)"
        f" SELECT ?, dedup_key, severity, state, vpr_score FROM {table} ORDER BY seq",  # seq: SQLite's rowid
        (import_id,),
    )
    return LoadCounts(records=records, inserted=inserted, updated=records - inserted, resolved=resolved)


def merge_tickets(conn: sqlite3.Connection, staging: Staging, *, import_id: int, check: Any = None) -> LoadCounts:
    """Upsert staged tickets by XT number (no resolve for tickets)."""
    check = check or (lambda stage: None)
    now = utc_now()
    t = f"temp.{staging.table}"
    conn.execute(f"CREATE INDEX temp.{staging.table}_key ON {staging.table} (xt_number)")
    records = conn.execute(f"SELECT count(DISTINCT xt_number) FROM {t}").fetchone()[0]
    existing = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT xt_number FROM {t}) s WHERE EXISTS"
        " (SELECT 1 FROM tickets k WHERE k.xt_number = s.xt_number)"
    ).fetchone()[0]
    check("upsert")
    updates = ", ".join(f"{f} = excluded.{f}" for f in TICKET_FIELDS[1:])
    conn.execute(
        f"INSERT INTO tickets ({_T_COLS}, import_id, created_at, updated_at)"
        f" SELECT {_T_COLS}, ?, ?, ? FROM {t} WHERE true ORDER BY seq"
        f" ON CONFLICT (xt_number) DO UPDATE SET {updates}, import_id = excluded.import_id,"
        " updated_at = excluded.updated_at",
        (import_id, now, now),
    )
    return LoadCounts(records=records, inserted=records - existing, updated=existing)
