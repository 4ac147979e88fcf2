"""SQLite storage: the schema on a file, import records, and the set-based, single-transaction bulk load.

Every import's data changes happen in one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); rows are first
staged in a TEMP table (outside the main database, so staging takes no write lock), then moved with
``INSERT … SELECT … ON CONFLICT DO UPDATE`` and a set-based resolve ``UPDATE``. sqlite3's errors leave this module
as the storage-neutral ones of ``base`` (the sqlite3 error chained).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from hextrackr_cli.formats import TICKET_FIELDS, VULN_FIELDS
from hextrackr_cli.server.storage.base import RUNNER, Busy, Check, Connection, Cursor, Duplicate, Interrupted, LoadCounts, Row, \
    SchemaTooNew, Staging, StorageError, Unavailable, utc_now
from hextrackr_cli.server.storage import common
from hextrackr_cli.server.storage.common import ImportRecords, create_schema, no_check
from hextrackr_cli.server.storage.schema import SCHEMA_VERSION, TABLES, script

SCHEMA = script("sqlite")  # the layout as one script (benchmarks/floor.py)
CACHE_KIB = 16 * 1024  # page cache per connection


def _translate(exc: sqlite3.Error) -> StorageError:
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in text:
        return Duplicate(text)
    if isinstance(exc, sqlite3.OperationalError):
        if text == "interrupted":
            return Interrupted(text)
        if "locked" in text or "busy" in text:
            return Busy(text)
        return Unavailable(text)  # disk full, read-only, cannot open…
    return StorageError(text)  # corrupt ("file is not a database"), a constraint…


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc) from exc


class SqliteConnection:
    """A sqlite3 connection (autocommit; transactions are explicit) whose errors are the storage-neutral ones."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        with _errors():
            return self.raw.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with _errors():
            self.raw.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def set_progress_handler(self, handler: Callable[[], int] | None, n: int) -> None:
        self.raw.set_progress_handler(handler, n)

    def close(self) -> None:
        with _errors():
            self.raw.close()


def _columns(conn: SqliteConnection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}


def _upgrade_unversioned(conn: SqliteConnection) -> None:
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
MIGRATIONS: list[Callable[[SqliteConnection], None]] = []


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


# --------------------------------------------------------------------------- bulk load
class SqliteStaging:
    """A TEMP table of mapped records for one import on one connection."""

    def __init__(self, conn: SqliteConnection, kind: str) -> None:
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

    def add(self, records: Iterable[tuple[Any, ...]]) -> None:
        self.conn.executemany(self._insert, records)

    def end(self) -> None:
        self.conn.execute("COMMIT")


def merge_vulnerabilities(conn: Connection, staging: Staging, *, import_id: int, vendor: str,
                          scan_date: str, plugins: dict[str, tuple[str, str, str]] | None = None,
                          check: Check | None = None, levels: Sequence[str] | None = None) -> LoadCounts:
    """common.merge_vulnerabilities from the TEMP table (a later row of a key updates the record again)."""
    now = utc_now()
    t = f"temp.{staging.table}"
    # key order: the unique index is walked sequentially, which keeps big tables out of random I/O
    select = (f"SELECT dedup_key, hostname, ip_address, asset_id, cve, plugin_id, plugin_name, severity, vpr_score,"
              " cvss_score, state, description, solution,"
              " CASE WHEN first_seen = '' THEN ? ELSE first_seen END,"
              " CASE WHEN last_seen = '' THEN ? ELSE last_seen END,"
              f" ?, ?, 'open', NULL, ?, ?, ?, ? FROM {t} WHERE true ORDER BY dedup_key, seq")
    return common.merge_vulnerabilities(
        conn, t, select, (scan_date, scan_date, vendor, scan_date, import_id, import_id, now, now),
        import_id=import_id, vendor=vendor, plugins=plugins, now=now, check=check or no_check, levels=levels)


def merge_tickets(conn: Connection, staging: Staging, *, import_id: int,
                  check: Check | None = None) -> LoadCounts:
    """common.merge_tickets from the TEMP table, indexed by XT number first."""
    t = f"temp.{staging.table}"
    conn.execute(f"CREATE INDEX temp.{staging.table}_key ON {staging.table} (xt_number)")
    return common.merge_tickets(conn, t, f"{t} WHERE true ORDER BY seq", import_id=import_id,
                                check=check or no_check)


class SqliteDatabase(ImportRecords):
    """One SQLite file. Connections are short-lived and per thread."""

    shared_by_workers = False  # one server per file
    counts_steps = True  # the progress handler is called every n VM steps

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.upload_dir = self.path.parent / "uploads"  # uploads wait here for their import
        self.runner = RUNNER  # which server runs an import (recorded with it)
        self.url = f"sqlite:///{self.path}"

    def connect(self, *, cache_kib: int | None = None) -> SqliteConnection:
        with _errors():
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute(f"PRAGMA cache_size=-{cache_kib or CACHE_KIB}")
            conn.execute("PRAGMA temp_store=FILE")  # the staging table: OS page cache, not our RSS
            # checkpoints run where we choose (after an import has reported completion), never inside a commit
            # that someone is waiting for
            conn.execute("PRAGMA wal_autocheckpoint=0")
        return SqliteConnection(conn)

    def _rows(self, sql: str, args: Sequence[Any]) -> list[Row]:
        conn = self.connect()
        conn.raw.row_factory = sqlite3.Row
        try:
            with _errors():
                return [dict(r) for r in conn.raw.execute(sql, args).fetchall()]
        finally:
            conn.close()

    def _insert(self, conn: Any, sql: str, args: Sequence[Any]) -> int:
        cur = conn.execute(sql, args)
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    @contextmanager
    def _unsynced(self, conn: Connection) -> Iterator[None]:
        # After a rollback, SQLite's next commit may start the WAL afresh and fsync it: that flushes every page
        # the undone transaction wrote (0.3 s at 1M rows) while the room waits for the outcome. This one row
        # needs no fsync of its own.
        conn.execute("PRAGMA synchronous=OFF")
        try:
            yield
        finally:
            conn.execute("PRAGMA synchronous=NORMAL")

    # the bulk-load operations the pipeline calls through its database
    def staging(self, conn: Connection, kind: str) -> SqliteStaging:
        if not isinstance(conn, SqliteConnection):
            raise TypeError("a SQLite staging table needs a connection of this database")
        return SqliteStaging(conn, kind)

    merge_vulnerabilities = staticmethod(merge_vulnerabilities)
    merge_tickets = staticmethod(merge_tickets)

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
            with _errors():
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
                existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                            .fetchall()}
                if "imports" in existing:  # not a new file: bring it up to date, step by step
                    if version == 0:
                        _upgrade_unversioned(conn)
                        version = 1
                    for step in MIGRATIONS[version - 1:]:
                        step(conn)
                # statement by statement, not executescript(): it would COMMIT the transaction first
                create_schema(conn, "sqlite", {t.name: _columns(conn, t.name) for t in TABLES if t.name in existing})
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
