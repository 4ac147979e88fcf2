"""A server's SQLite file as the tests read it: read-only, except the write lock they hold on purpose."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

DATA_TABLES = ("vulnerabilities", "vulnerability_snapshots", "tickets", "plugins")


def _read(db_path: Path | str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)


def db_rows(db_path: Path | str, table: str, where: str = "", args: Iterable[Any] = ()) -> list[dict]:
    """Every row of ``table`` (optionally filtered) as dicts, in the table's order."""
    conn = _read(db_path)
    conn.row_factory = sqlite3.Row
    try:
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
        return [dict(r) for r in conn.execute(sql, tuple(args)).fetchall()]
    finally:
        conn.close()


def db_rows_all(db_path: Path | str, table: str = "vulnerabilities") -> list[dict]:
    """Every row of ``table`` as dicts, by id."""
    return db_rows(db_path, table, "1 ORDER BY id")


def db_count(db_path: Path | str, table: str = "vulnerabilities", where: str = "", args: Iterable[Any] = ()) -> int:
    conn = _read(db_path)
    try:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(conn.execute(sql, tuple(args)).fetchone()[0])
    finally:
        conn.close()


def db_snapshot(db_path: Path | str) -> dict[str, list[tuple]]:
    """The data tables' full content (not the import history), to compare before/after a failed import."""
    conn = _read(db_path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("vulnerabilities", "vulnerability_snapshots", "tickets")}
    finally:
        conn.close()


def fingerprint(db_path: Path | str) -> dict[str, str]:
    """sha256 of every data table's full ordered content (not the import history)."""
    conn = _read(db_path)
    try:
        out = {}
        for t in DATA_TABLES:
            h = hashlib.sha256()
            for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2"):
                h.update(repr(row).encode("utf-8"))
            out[t] = h.hexdigest()
        return out
    finally:
        conn.close()


@contextmanager
def hold_write_lock(db_path: Path | str) -> Iterator[sqlite3.Connection]:
    """Another connection's write lock on a server's SQLite file, for the ``with`` block (``.close()`` releases it
    early): an import that has started stays mid-way (staged, waiting to merge), however fast imports have
    become. Take it once the upload is accepted (the server records the import when the POST arrives)."""
    holder = sqlite3.connect(str(db_path), timeout=5, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield holder
    finally:
        holder.close()


def wait_import_recorded(db_path: Path | str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the server has recorded an import (its upload accepted); fails if the CLI process ends first."""
    deadline = time.monotonic() + timeout
    while db_count(db_path, "imports") == 0:
        assert time.monotonic() < deadline and proc.poll() is None, "the import never started"
        time.sleep(0.02)
