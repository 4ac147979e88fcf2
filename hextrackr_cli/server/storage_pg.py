"""PostgreSQL storage (psycopg 3): the SQLite backend's schema semantics on a database several workers share.

The import pipeline talks to the database it is given through the small surface it uses with SQLite
(``connect()`` -> a connection with ``execute``/``in_transaction``/``set_progress_handler``/``close``,
``staging()``, ``merge_vulnerabilities()``, ``merge_tickets()``, ``finish_import()``), so one pipeline drives both.
Errors are raised as the DB-API classes the server already handles (subclasses of ``sqlite3.Error``:
``OperationalError`` for a lost connection or a cancelled statement, ``IntegrityError`` for a duplicate session id),
with the psycopg error chained.

- Migration: ``initialize()`` creates the schema (version 1) under an advisory lock, so workers starting together
  do it once.
- Transactions: one per import, as with SQLite; rows are staged in a TEMP table with ``COPY`` and merged with
  ``INSERT … SELECT … ON CONFLICT DO UPDATE`` plus a set-based resolve ``UPDATE``.
- Imports are serialized across every worker by a transaction-scoped advisory lock taken when the merge begins
  (``lock_imports``; the import can be cancelled while it waits).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from typing import Any, Callable, Iterable, Sequence

from hextrackr_cli.formats import TICKET_FIELDS, VULN_FIELDS
from hextrackr_cli.server.storage import (RUNNER, VULN_ON_CONFLICT, Database, LoadCounts, after_vuln_upsert, masked_url,
                                          utc_now)

SCHEMA_VERSION = 1
MIGRATION_LOCK = 0x6878_7472_0001  # advisory lock keys ("hxtr" + n)
IMPORT_LOCK = 0x6878_7472_0002
LOCK_WAIT = 600.0  # seconds an import waits for another worker's import before it fails

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS imports (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    filename TEXT NOT NULL,
    vendor TEXT,
    scan_date TEXT,
    format TEXT,
    sha256 TEXT,
    size BIGINT,
    status TEXT NOT NULL DEFAULT 'running',
    runner TEXT,
    rows BIGINT NOT NULL DEFAULT 0,
    records BIGINT NOT NULL DEFAULT 0,
    inserted BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    resolved BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    last_event TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms BIGINT
);
CREATE INDEX IF NOT EXISTS imports_running ON imports (status) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS vulnerabilities (
    id BIGSERIAL PRIMARY KEY,
    vendor TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    hostname TEXT, ip_address TEXT, asset_id TEXT, cve TEXT, plugin_id TEXT, plugin_name TEXT,
    severity TEXT, vpr_score DOUBLE PRECISION, cvss_score DOUBLE PRECISION, state TEXT, description TEXT,
    solution TEXT, first_seen TEXT, last_seen TEXT, scan_date TEXT,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_at TEXT,
    import_id BIGINT NOT NULL,
    created_import_id BIGINT NOT NULL,
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
);
CREATE INDEX IF NOT EXISTS vulnerabilities_open ON vulnerabilities (vendor, import_id) WHERE status = 'open';
CREATE TABLE IF NOT EXISTS vulnerability_snapshots (
    import_id BIGINT NOT NULL,
    dedup_key TEXT NOT NULL,
    severity TEXT, state TEXT, vpr_score DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS tickets (
    id BIGSERIAL PRIMARY KEY,
    xt_number TEXT NOT NULL UNIQUE,
    date_submitted TEXT, date_due TEXT, hexagon_ticket TEXT, service_now_ticket TEXT, location TEXT,
    devices TEXT, supervisor TEXT, tech TEXT, status TEXT, notes TEXT,
    import_id BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class PgError(sqlite3.DatabaseError):
    pass


class PgOperationalError(sqlite3.OperationalError):
    pass


class PgIntegrityError(sqlite3.IntegrityError):
    pass


def _translate(exc: Exception) -> sqlite3.Error:
    import psycopg

    if isinstance(exc, psycopg.errors.QueryCanceled):
        return PgOperationalError("interrupted")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.IntegrityError):
        return PgIntegrityError(text)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return PgOperationalError(f"PostgreSQL unavailable: {text}")
    return PgError(f"PostgreSQL: {text}")


class PgConnection:
    """A psycopg connection (autocommit; transactions are explicit) with the sqlite3 calls the pipeline makes."""

    def __init__(self, raw: Any, reconnect: Callable[[], Any]) -> None:
        self.raw = raw
        self._reconnect = reconnect
        self._in_tx = False
        self._watch_stop: threading.Event | None = None

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        head = sql.lstrip()[:16].upper()
        if head.startswith("PRAGMA"):
            return None  # SQLite tuning has no meaning here
        try:
            if self.raw.broken or self.raw.closed:
                # the connection was lost: its transaction is gone with it (PostgreSQL rolled it back). Only what
                # runs outside a transaction (the rollback itself, recording the outcome) may go on, on a new one.
                if self._in_tx and not head.startswith("ROLLBACK"):
                    raise PgOperationalError("PostgreSQL unavailable: the connection was lost mid-transaction")
                self._in_tx = False
                self.raw = self._reconnect()
                if head.startswith("ROLLBACK"):
                    return None
            if head.startswith("BEGIN"):  # (IMMEDIATE: the merge takes the import lock itself, see lock_imports)
                self.raw.execute("BEGIN")
                self._in_tx = True
                return None
            if head.startswith(("COMMIT", "ROLLBACK")):
                self._in_tx = False
            return self.raw.execute(sql.replace("?", "%s") if args else sql, args or None)
        except sqlite3.Error:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self.raw.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        except Exception as exc:
            raise _translate(exc) from exc

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def set_progress_handler(self, handler: Callable[[], int] | None, n: int) -> None:
        """Like SQLite's: while set, ``handler()`` returning 1 interrupts the running statement (server-side cancel)."""
        if self._watch_stop is not None:
            self._watch_stop.set()
            self._watch_stop = None
        if handler is None:
            return
        stop = threading.Event()
        self._watch_stop = stop

        def watch() -> None:
            while not stop.wait(0.05):
                if handler():
                    try:
                        self.raw.cancel_safe(timeout=2.0)
                    except Exception:
                        pass
                    return

        threading.Thread(target=watch, name="pg-cancel-watch", daemon=True).start()

    def close(self) -> None:
        self.set_progress_handler(None, 0)
        try:
            self.raw.close()
        except Exception:
            pass


class PgStaging:
    """A TEMP table of one import's mapped records, filled with COPY."""

    def __init__(self, conn: PgConnection, kind: str) -> None:
        self.conn = conn
        self.kind = kind
        fields = VULN_FIELDS if kind == "vulnerabilities" else TICKET_FIELDS
        self.table = "staging_v" if kind == "vulnerabilities" else "staging_t"
        types = {"vpr_score": "DOUBLE PRECISION", "cvss_score": "DOUBLE PRECISION"}
        cols = ", ".join(f"{f} {types.get(f, 'TEXT')}" for f in fields)
        conn.execute(f"DROP TABLE IF EXISTS pg_temp.{self.table}")
        conn.execute(f"CREATE TEMP TABLE {self.table} (seq BIGSERIAL, {cols})")
        self._copy = f"COPY pg_temp.{self.table} ({', '.join(fields)}) FROM STDIN"

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def add(self, records: Iterable[tuple]) -> None:
        try:
            with self.conn.raw.cursor() as cur, cur.copy(self._copy) as copy:
                for record in records:
                    copy.write_row(record)
        except sqlite3.Error:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def end(self) -> None:
        self.conn.execute("COMMIT")


def lock_imports(conn: PgConnection, check: Any) -> None:
    """One import's merge at a time across every worker: a transaction-scoped advisory lock, waited for with the
    import's cancel check (so a waiting import can be cancelled) and at most LOCK_WAIT seconds."""
    deadline = time.monotonic() + LOCK_WAIT
    while not conn.execute("SELECT pg_try_advisory_xact_lock(?)", (IMPORT_LOCK,)).fetchone()[0]:
        check("wait")  # says so (the heartbeat repeats it with the seconds waited); a cancel stops the wait
        if time.monotonic() > deadline:
            raise PgOperationalError("database is locked: another worker's import holds it")
        time.sleep(0.05)


def merge_vulnerabilities(conn: PgConnection, staging: PgStaging, *, import_id: int, vendor: str, scan_date: str,
                          plugins: dict | None = None, check: Any = None) -> LoadCounts:
    """Same semantics as the SQLite merge: last row of a key wins, first_seen is the earliest, absent ones resolve."""
    check = check or (lambda stage, done=None, total=None: None)
    now = utc_now()
    t = f"pg_temp.{staging.table}"
    lock_imports(conn, check)
    check("upsert")
    id_before = conn.execute("SELECT coalesce(max(id), 0) FROM vulnerabilities").fetchone()[0]
    cols = ", ".join(VULN_FIELDS)
    conn.execute(
        f"INSERT INTO vulnerabilities ({cols}, vendor, scan_date, status, resolved_at, import_id,"
        " created_import_id, created_at, updated_at)"
        " SELECT dedup_key, hostname, ip_address, asset_id, cve, plugin_id, plugin_name, severity, vpr_score,"
        " cvss_score, state, description, solution, first_seen, last_seen, %s, %s, 'open', NULL, %s, %s, %s, %s"
        " FROM (SELECT DISTINCT ON (dedup_key) dedup_key, hostname, ip_address, asset_id, cve, plugin_id,"
        "   plugin_name, severity, vpr_score, cvss_score, state, description, solution,"
        "   min(CASE WHEN first_seen = '' THEN %s ELSE first_seen END) OVER (PARTITION BY dedup_key) AS first_seen,"
        "   CASE WHEN last_seen = '' THEN %s ELSE last_seen END AS last_seen"
        f"   FROM {t} ORDER BY dedup_key, seq DESC) s" + VULN_ON_CONFLICT,
        (vendor, scan_date, import_id, import_id, now, now, scan_date, scan_date),
    )
    return after_vuln_upsert(conn, t, import_id=import_id, vendor=vendor, plugins=plugins, now=now,
                             id_before=id_before, check=check)


def merge_tickets(conn: PgConnection, staging: PgStaging, *, import_id: int, check: Any = None) -> LoadCounts:
    """Upsert staged tickets by XT number, the last row of a number winning (no resolve for tickets)."""
    check = check or (lambda stage, done=None, total=None: None)
    now = utc_now()
    t = f"pg_temp.{staging.table}"
    lock_imports(conn, check)
    records = conn.execute(f"SELECT count(DISTINCT xt_number) FROM {t}").fetchone()[0]
    existing = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT xt_number FROM {t}) s WHERE EXISTS"
        " (SELECT 1 FROM tickets k WHERE k.xt_number = s.xt_number)"
    ).fetchone()[0]
    check("upsert")
    cols = ", ".join(TICKET_FIELDS)
    updates = ", ".join(f"{f} = excluded.{f}" for f in TICKET_FIELDS[1:])
    conn.execute(
        f"INSERT INTO tickets ({cols}, import_id, created_at, updated_at)"
        f" SELECT {cols}, ?, ?, ? FROM (SELECT DISTINCT ON (xt_number) {cols} FROM {t}"
        " ORDER BY xt_number, seq DESC) s"
        f" ON CONFLICT (xt_number) DO UPDATE SET {updates}, import_id = excluded.import_id,"
        " updated_at = excluded.updated_at",
        (import_id, now, now),
    )
    return LoadCounts(records=records, inserted=records - existing, updated=existing)


class PgDatabase(Database):
    """A PostgreSQL database shared by every worker; connections are short-lived, one per job or request.

    The SQL that both dialects speak (``healthy``, ``finish_import``, the lookups) is the SQLite class's, run
    through ``PgConnection`` (which maps ``?`` placeholders).
    """

    def __init__(self, url: str, upload_dir: Any = None) -> None:
        self.dsn = "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url
        from hextrackr_cli.settings import default_data_dir

        self.path = default_data_dir() / "postgresql"  # no file: what EmbeddedServer.db_path names
        self.upload_dir = upload_dir or default_data_dir() / "uploads"
        # which server runs an import: host:pid, plus an instance tag (several servers may share one process)
        self.runner = f"{RUNNER}:{secrets.token_hex(3)}"

    @property
    def url(self) -> str:
        """The URL without its password (printed at start-up)."""
        return masked_url(self.dsn)

    def _raw(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name="hextrackr")
        except Exception as exc:
            raise _translate(exc) from exc

    def connect(self) -> PgConnection:
        return PgConnection(self._raw(), self._raw)

    # the bulk-load operations the pipeline calls through its database
    def staging(self, conn: PgConnection, kind: str) -> PgStaging:
        return PgStaging(conn, kind)

    merge_vulnerabilities = staticmethod(merge_vulnerabilities)
    merge_tickets = staticmethod(merge_tickets)

    def checkpoint(self) -> None:
        return None

    def initialize(self) -> None:
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        finally:
            conn.close()

    # fail_stale_imports() and fail_import() are the SQLite class's: a worker of this host that is gone is judged
    # here (other hosts' workers by their heartbeat in Redis: ``state.sweep``)

    # ------------------------------------------------------------------ import records
    def create_import(self, *, session_id: str, owner: str, type_: str, filename: str, vendor: str | None,
                      scan_date: str | None, sha256: str, size: int) -> int:
        conn = self.connect()
        try:
            return int(conn.execute(
                "INSERT INTO imports (session_id, owner, type, filename, vendor, scan_date, sha256, size, status,"
                " runner, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING id",
                (session_id, owner, type_, filename, vendor, scan_date, sha256, size, self.runner, utc_now()),
            ).fetchone()[0])
        finally:
            conn.close()

    def running_imports(self) -> list[dict]:
        return self._all("SELECT id, session_id, runner FROM imports WHERE status = 'running'", ())

    def list_imports(self, limit: int, offset: int, owner: str | None) -> tuple[list[dict], int]:
        where, args = ("", ()) if owner is None else (" WHERE owner = ?", (owner,))
        total = self._all("SELECT count(*) AS n FROM imports" + where, args)[0]["n"]
        rows = self._all("SELECT * FROM imports" + where + " ORDER BY id DESC LIMIT ? OFFSET ?", args + (limit, offset))
        return rows, int(total)

    def _all(self, sql: str, args: Sequence[Any]) -> list[dict]:
        from psycopg.rows import dict_row

        conn = self.connect()
        try:
            try:
                with conn.raw.cursor(row_factory=dict_row) as cur:
                    return list(cur.execute(sql.replace("?", "%s"), args or None).fetchall())
            except Exception as exc:
                raise _translate(exc) from exc
        finally:
            conn.close()

    def _one(self, sql: str, args: Sequence[Any]) -> dict | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None
