"""The server's storage: ``open_database(url)``, the ``Database`` protocol and the storage-neutral errors.

Backends side by side, neither subclassing the other: ``sqlite`` (a file; the default) and ``postgres`` (several
workers sharing one database), both speaking ``common``'s SQL over ``schema``'s one column table. The server
(http, pipeline, state) knows only what this module exports; a backend is imported when a URL asks for it.
"""

from __future__ import annotations

from hextrackr_cli.server.storage.base import (IMPORT_STATUSES, RUNNER, Busy, Connection, Cursor, Database, Duplicate,
                                               Interrupted, LoadCounts, Row, SchemaTooNew, Staging, StorageError,
                                               Unavailable, import_record, masked_url, runner_alive, utc_now)

__all__ = [
    "IMPORT_STATUSES", "RUNNER", "Busy", "Connection", "Cursor", "Database", "Duplicate", "Interrupted", "LoadCounts",
    "Row", "SchemaTooNew", "Staging", "StorageError", "Unavailable", "import_record", "masked_url", "open_database",
    "runner_alive", "utc_now",
]


def open_database(url: str) -> Database:
    """The database of a URL: ``postgresql://…`` (or ``postgres://…``) is PostgreSQL, anything else a SQLite file
    (``sqlite:///PATH`` or a plain path). Raises ValueError for a URL it cannot serve."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ValueError("a PostgreSQL database needs psycopg; install it with pip install 'hextrackr[postgres]'") \
                from None
        from hextrackr_cli.server.storage.postgres import PgDatabase

        return PgDatabase(url)
    from hextrackr_cli.server.storage.sqlite import SqliteDatabase, parse_database_url

    return SqliteDatabase(parse_database_url(url))
