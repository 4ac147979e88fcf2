"""The storage package on both backends: one layout, a column added in one line reaching existing databases, and
the storage-neutral errors (not sqlite3's) for a duplicate session id and a cancelled statement.

SQLite runs on a file in tmp_path; PostgreSQL on a fresh database on 127.0.0.1 (skipped without it, failed under
CI_STRICT, as tests/scaleout/test_scaleout.py)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from hextrackr_cli.server import storage
from hextrackr_cli.server.storage import schema
from support.pg import pg_admin, pg_url  # noqa: F401  (fixtures: a fresh PostgreSQL database)

@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hextrackr.db'}"
    return str(request.getfixturevalue("pg_url"))


def _columns(db: storage.Database) -> dict[str, list[str]]:
    """Each table's columns as the database itself reports them, in order."""
    conn = db.connect()
    try:
        if db.url.startswith("sqlite"):
            return {t.name: [r[1] for r in conn.execute(f"PRAGMA table_info({t.name})").fetchall()]
                    for t in schema.TABLES}
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns"
                            " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position").fetchall()
        found: dict[str, list[str]] = {}
        for table, column in rows:
            found.setdefault(table, []).append(column)
        return {t.name: found.get(t.name, []) for t in schema.TABLES}
    finally:
        conn.close()


def _create(db: storage.Database, session_id: str = "s-1") -> int:
    return db.create_import(session_id=session_id, owner="", type_="vulnerabilities", filename="a.csv",
                            vendor="tenable", scan_date="2025-11-20", sha256="0" * 64, size=1)


def test_sqlite_and_postgresql_get_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    lite = storage.open_database(f"sqlite:///{tmp_path / 'h.db'}")
    pg = storage.open_database(pg_url)
    lite.initialize()
    pg.initialize()
    assert _columns(lite) == _columns(pg)
    assert "sha256" in _columns(lite)["imports"] and "created_import_id" in _columns(pg)["vulnerabilities"]


def test_a_column_added_to_the_imports_table_reaches_an_existing_database(url: str) -> None:
    db = storage.open_database(url)
    db.initialize()
    import_id = _create(db)
    before = schema.IMPORTS.columns
    object.__setattr__(schema.IMPORTS, "columns", before + (("note", schema.TEXT, "NOT NULL DEFAULT 'none'"),))
    try:
        again = storage.open_database(url)
        again.initialize()  # the next start of the server
        again.initialize()  # and the one after (nothing left to add)
        assert _columns(again)["imports"][-1] == "note"
        row = again.import_by_id(import_id)
        assert row is not None and row["note"] == "none" and row["filename"] == "a.csv"  # the old row kept
    finally:
        object.__setattr__(schema.IMPORTS, "columns", before)


def test_a_second_import_with_the_same_session_id_is_a_storage_duplicate(url: str) -> None:
    db = storage.open_database(url)
    db.initialize()
    _create(db, "same")
    with pytest.raises(storage.Duplicate) as caught:
        _create(db, "same")
    assert not isinstance(caught.value, sqlite3.Error)  # the server never needs the driver's classes
    assert len(db.list_imports(10, 0, None)[0]) == 1


def test_a_statement_stopped_by_the_progress_handler_is_interrupted(url: str) -> None:
    db = storage.open_database(url)
    db.initialize()
    conn = db.connect()
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000)"
            " SELECT count(*) FROM n") if url.startswith("sqlite") else "SELECT pg_sleep(20)"
    try:
        conn.set_progress_handler(lambda: 1, 1000)
        started = time.monotonic()
        with pytest.raises(storage.Interrupted):
            conn.execute(slow)
        assert time.monotonic() - started < 5
    finally:
        conn.set_progress_handler(None, 0)
        conn.close()
