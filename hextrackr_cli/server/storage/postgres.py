"""PostgreSQL storage (psycopg 3): the SQLite backend's schema semantics on a database several workers share.

The import pipeline talks to the database it is given through the small surface it uses with SQLite
(``connect()`` -> a connection with ``execute``/``in_transaction``/``set_progress_handler``/``close``,
``staging()``, ``merge_vulnerabilities()``, ``merge_tickets()``, ``finish_import()``), so one pipeline drives both.
psycopg's errors leave this module as the storage-neutral ones of ``base`` (``Unavailable`` for a lost connection,
``Interrupted`` for a cancelled statement, ``Duplicate`` for a duplicate session id), the psycopg error chained.
Neither backend subclasses the other: the SQL both speak is ``common``'s, the layout ``schema``'s.

- Migration: ``initialize()`` creates the schema (schema.SCHEMA_VERSION) and adds new columns under an advisory
  lock, so workers starting together do it once.
- Transactions: one per import, as with SQLite; rows are staged in a TEMP table with ``COPY`` and merged with
  ``INSERT … SELECT … ON CONFLICT DO UPDATE`` plus a set-based resolve ``UPDATE``.
- Imports are serialized across every worker by a transaction-scoped advisory lock taken when the merge begins
  (``lock_imports``; the import can be cancelled while it waits).
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from hextrackr_cli.formats import TICKET_FIELDS, VULN_FIELDS
from hextrackr_cli.server.storage.base import RUNNER, Busy, Check, Connection, Cursor, Duplicate, Interrupted, LoadCounts, Row, \
    Staging, StorageError, Unavailable, masked_url, utc_now
from hextrackr_cli.server.storage import common
from hextrackr_cli.server.storage.common import ImportRecords, create_schema, no_check
from hextrackr_cli.server.storage.schema import SCHEMA_VERSION, TABLES, VULNERABILITIES

if TYPE_CHECKING:
    import psycopg

MIGRATION_LOCK = 0x6878_7472_0001  # advisory lock keys ("hxtr" + n)
IMPORT_LOCK = 0x6878_7472_0002
LOCK_WAIT = 600.0  # seconds an import waits for another worker's import before it fails



def _translate(exc: Exception) -> StorageError:
    import psycopg

    if isinstance(exc, psycopg.errors.QueryCanceled):
        return Interrupted("interrupted")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Duplicate(text)
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return Unavailable(f"PostgreSQL unavailable: {text}")
    return StorageError(f"PostgreSQL: {text}")


class _NoRows:
    """What a statement answered here, not by the server (BEGIN, a PRAGMA), returns."""

    rowcount = 0

    def fetchone(self) -> Any:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class PgConnection:
    """A psycopg connection (autocommit; transactions are explicit) with the calls of storage.Connection."""

    def __init__(self, raw: psycopg.Connection[Any], reconnect: Callable[[], psycopg.Connection[Any]]) -> None:
        self.raw = raw
        self._reconnect = reconnect
        self._in_tx = False
        self._watch_stop: threading.Event | None = None

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        head = sql.lstrip()[:16].upper()
        if head.startswith("PRAGMA"):
            return _NoRows()  # SQLite tuning has no meaning here
        try:
            if self.raw.broken or self.raw.closed:
                # the connection was lost: its transaction is gone with it (PostgreSQL rolled it back). Only what
                # runs outside a transaction (the rollback itself, recording the outcome) may go on, on a new one.
                if self._in_tx and not head.startswith("ROLLBACK"):
                    raise Unavailable("PostgreSQL unavailable: the connection was lost mid-transaction")
                self._in_tx = False
                self.raw = self._reconnect()
                if head.startswith("ROLLBACK"):
                    return _NoRows()
            if head.startswith("BEGIN"):  # (IMMEDIATE: the merge takes the import lock itself, see lock_imports)
                self.raw.execute("BEGIN")
                self._in_tx = True
                return _NoRows()
            if head.startswith(("COMMIT", "ROLLBACK")):
                self._in_tx = False
            cursor: Cursor = self.raw.execute(sql.replace("?", "%s") if args else sql, args or None)
            return cursor
        except StorageError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
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
        cols = ", ".join(f"{f} {VULNERABILITIES.type_of(f, 'postgresql') if kind == 'vulnerabilities' else 'TEXT'}"
                         for f in fields)
        conn.execute(f"DROP TABLE IF EXISTS pg_temp.{self.table}")
        conn.execute(f"CREATE TEMP TABLE {self.table} (seq BIGSERIAL, {cols})")
        self._copy = f"COPY pg_temp.{self.table} ({', '.join(fields)}) FROM STDIN"

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def add(self, records: Iterable[tuple[Any, ...]]) -> None:
        try:
            with self.conn.raw.cursor() as cur, cur.copy(self._copy) as copy:
                for record in records:
                    copy.write_row(record)
        except StorageError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    def end(self) -> None:
        self.conn.execute("COMMIT")


def lock_imports(conn: Connection, check: Check) -> None:
    """One import's merge at a time across every worker: a transaction-scoped advisory lock, waited for with the
    import's cancel check (so a waiting import can be cancelled) and at most LOCK_WAIT seconds."""
    deadline = time.monotonic() + LOCK_WAIT
    while not conn.execute("SELECT pg_try_advisory_xact_lock(?)", (IMPORT_LOCK,)).fetchone()[0]:
        check("wait")  # says so (the heartbeat repeats it with the seconds waited); a cancel stops the wait
        if time.monotonic() > deadline:
            raise Busy("database is locked: another worker's import holds it")
        time.sleep(0.05)


def merge_vulnerabilities(conn: Connection, staging: Staging, *, import_id: int, vendor: str, scan_date: str,
                          plugins: dict[str, tuple[str, str, str]] | None = None,
                          check: Check | None = None, levels: Sequence[str] | None = None) -> LoadCounts:
    """common.merge_vulnerabilities under the import lock, one row a key (ON CONFLICT may not meet a key twice)."""
    check = check or no_check
    now = utc_now()
    t = f"pg_temp.{staging.table}"
    lock_imports(conn, check)
    select = ("SELECT dedup_key, hostname, ip_address, asset_id, cve, plugin_id, plugin_name, severity, vpr_score,"
              " cvss_score, state, description, solution, first_seen, last_seen, %s, %s, 'open', NULL, %s, %s, %s, %s"
              " FROM (SELECT DISTINCT ON (dedup_key) dedup_key, hostname, ip_address, asset_id, cve, plugin_id,"
              "   plugin_name, severity, vpr_score, cvss_score, state, description, solution,"
              "   min(CASE WHEN first_seen = '' THEN %s ELSE first_seen END) OVER (PARTITION BY dedup_key)"
              "   AS first_seen, CASE WHEN last_seen = '' THEN %s ELSE last_seen END AS last_seen"
              f"   FROM {t} ORDER BY dedup_key, seq DESC) s")
    return common.merge_vulnerabilities(
        conn, t, select, (vendor, scan_date, import_id, import_id, now, now, scan_date, scan_date),
        import_id=import_id, vendor=vendor, plugins=plugins, now=now, check=check, levels=levels)


def merge_tickets(conn: Connection, staging: Staging, *, import_id: int,
                  check: Check | None = None) -> LoadCounts:
    """common.merge_tickets under the import lock, the last row of a number winning."""
    check = check or no_check
    t = f"pg_temp.{staging.table}"
    lock_imports(conn, check)
    cols = ", ".join(TICKET_FIELDS)
    return common.merge_tickets(
        conn, t, f"(SELECT DISTINCT ON (xt_number) {cols} FROM {t} ORDER BY xt_number, seq DESC) s",
        import_id=import_id, check=check)


class PgDatabase(ImportRecords):
    """A PostgreSQL database shared by every worker; connections are short-lived, one per job or request."""

    shared_by_workers = True  # the Redis sweep fails the imports of a worker that is gone
    counts_steps = False  # the cancel watch is a timer: no measure of a statement's progress

    def __init__(self, url: str, upload_dir: Path | None = None) -> None:
        self.dsn = "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url
        from hextrackr_cli.settings import default_data_dir

        self.path = default_data_dir() / "postgresql"  # no file: what EmbeddedServer.db_path names
        self.upload_dir = upload_dir or default_data_dir() / "uploads"
        # which server runs an import: host:pid, plus an instance tag (several servers may share one process)
        self.runner = f"{RUNNER}:{secrets.token_hex(3)}"
        self.url = masked_url(self.dsn)  # printed at start-up: no password

    def _raw(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name="hextrackr")
        except Exception as exc:
            raise _translate(exc) from exc

    def connect(self, *, cache_kib: int | None = None) -> PgConnection:
        return PgConnection(self._raw(), self._raw)

    # the bulk-load operations the pipeline calls through its database
    def staging(self, conn: Connection, kind: str) -> PgStaging:
        if not isinstance(conn, PgConnection):
            raise TypeError("a PostgreSQL staging table needs a connection of this database")
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
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            columns: dict[str, set[str]] = {}
            for table, column in conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema()").fetchall():
                columns.setdefault(table, set()).add(column)
            create_schema(conn, "postgresql", {t.name: columns[t.name] for t in TABLES if t.name in columns})
            if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _insert(self, conn: Any, sql: str, args: Sequence[Any]) -> int:
        return int(conn.execute(sql + " RETURNING id", args).fetchone()[0])

    def _rows(self, sql: str, args: Sequence[Any]) -> list[Row]:
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
