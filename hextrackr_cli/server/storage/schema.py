"""The database layout, once: every table's columns in one table below, rendered into SQLite's and PostgreSQL's DDL.

To add a column: one line in its table (nullable, or NOT NULL with a DEFAULT). ``initialize()`` of both backends
creates it in new databases and adds it to existing ones (``missing_columns``), so no SCHEMA_VERSION bump is
needed: an older hextrackr ignores a column it does not know. A change an older version could not live with
(rename, new meaning, dropped column) bumps SCHEMA_VERSION and adds a step to the backends' MIGRATIONS.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1  # SQLite: PRAGMA user_version; PostgreSQL: the schema_version table

ID, TEXT, INT, REAL = "id", "text", "int", "real"
TYPES = {
    "sqlite": {ID: "INTEGER PRIMARY KEY AUTOINCREMENT", TEXT: "TEXT", INT: "INTEGER", REAL: "REAL"},
    "postgresql": {ID: "BIGSERIAL PRIMARY KEY", TEXT: "TEXT", INT: "BIGINT", REAL: "DOUBLE PRECISION"},
}
Column = tuple[str, str, str]  # name, type (ID, TEXT, INT, REAL), constraint ("NOT NULL DEFAULT 0", "")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    constraints: tuple[str, ...] = ()  # table constraints: UNIQUE (…), PRIMARY KEY (…)
    sqlite_suffix: str = ""  # e.g. WITHOUT ROWID

    def type_of(self, column: str, dialect: str) -> str:
        return next(TYPES[dialect][t] for n, t, _ in self.columns if n == column)


@dataclass(frozen=True)
class Index:
    name: str
    on: str  # "table (columns) [WHERE …]"
    dialects: tuple[str, ...] = ("sqlite", "postgresql")


IMPORTS = Table("imports", (  # one line a column (see the module's docstring); the wire shape: base.import_record
    ("id", ID, ""),
    ("session_id", TEXT, "NOT NULL UNIQUE"),
    ("owner", TEXT, "NOT NULL DEFAULT ''"),
    ("type", TEXT, "NOT NULL"),
    ("filename", TEXT, "NOT NULL"),
    ("vendor", TEXT, ""),
    ("scan_date", TEXT, ""),
    ("format", TEXT, ""),
    ("sha256", TEXT, ""),
    ("size", INT, ""),
    ("status", TEXT, "NOT NULL DEFAULT 'running'"),
    ("runner", TEXT, ""),
    ("rows", INT, "NOT NULL DEFAULT 0"),
    ("records", INT, "NOT NULL DEFAULT 0"),
    ("inserted", INT, "NOT NULL DEFAULT 0"),
    ("updated", INT, "NOT NULL DEFAULT 0"),
    ("resolved", INT, "NOT NULL DEFAULT 0"),
    ("findings", INT, "NOT NULL DEFAULT 0"),  # findings read (vulnerabilities), skipped ones included
    ("severities", TEXT, ""),  # JSON {"Critical": n, "High": n, "Medium": n, "Low": n, "Info": n} of those read
    ("skipped", INT, "NOT NULL DEFAULT 0"),  # findings below --min-severity
    ("error", TEXT, ""),
    ("deltas", TEXT, ""),  # JSON: per-severity new/reopened/unchanged/resolved of a completed vulnerabilities import
    ("last_event", TEXT, ""),
    ("started_at", TEXT, "NOT NULL"),
    ("finished_at", TEXT, ""),
    ("duration_ms", INT, ""),
))

VULNERABILITIES = Table("vulnerabilities", (
    ("id", ID, ""),
    ("vendor", TEXT, "NOT NULL"),
    ("dedup_key", TEXT, "NOT NULL"),
    *((name, TEXT, "") for name in ("hostname", "ip_address", "asset_id", "cve", "plugin_id", "plugin_name",
                                    "severity")),
    ("vpr_score", REAL, ""),
    ("cvss_score", REAL, ""),
    *((name, TEXT, "") for name in ("state", "description", "solution", "first_seen", "last_seen", "scan_date")),
    ("status", TEXT, "NOT NULL DEFAULT 'open'"),
    ("resolved_at", TEXT, ""),
    ("import_id", INT, "NOT NULL"),
    ("created_import_id", INT, "NOT NULL"),
    ("created_at", TEXT, "NOT NULL"),
    ("reopened_import_id", INT, ""),  # the import that brought it back from resolved (storage.deltas)
    ("updated_at", TEXT, "NOT NULL"),
), constraints=("UNIQUE (vendor, dedup_key)",))

PLUGINS = Table("plugins", (
    ("vendor", TEXT, "NOT NULL"),
    ("plugin_id", TEXT, "NOT NULL"),
    ("name", TEXT, ""),
    ("description", TEXT, ""),
    ("solution", TEXT, ""),
    ("updated_at", TEXT, "NOT NULL"),
), constraints=("PRIMARY KEY (vendor, plugin_id)",), sqlite_suffix=" WITHOUT ROWID")

# what each scan contained, row for row (the record is vulnerabilities(vendor of the import, dedup_key))
SNAPSHOTS = Table("vulnerability_snapshots", (
    ("import_id", INT, "NOT NULL"),
    ("dedup_key", TEXT, "NOT NULL"),
    ("severity", TEXT, ""),
    ("state", TEXT, ""),
    ("vpr_score", REAL, ""),
))

TICKETS = Table("tickets", (
    ("id", ID, ""),
    ("xt_number", TEXT, "NOT NULL UNIQUE"),
    *((name, TEXT, "") for name in ("date_submitted", "date_due", "hexagon_ticket", "service_now_ticket", "location",
                                    "devices", "supervisor", "tech", "status", "notes")),
    ("import_id", INT, "NOT NULL"),
    ("created_at", TEXT, "NOT NULL"),
    ("updated_at", TEXT, "NOT NULL"),
))

TABLES = (IMPORTS, VULNERABILITIES, PLUGINS, SNAPSHOTS, TICKETS)
INDEXES = (
    # open records by vendor and last import: counts, deltas and resolve without scanning the whole table (severity
    # and reopened_import_id ride along, so the deltas' GROUP BY reads the index alone: storage.deltas)
    Index("vulnerabilities_open_by", "vulnerabilities (vendor, import_id, severity, reopened_import_id)"
          " WHERE status = 'open'"),
    # the dead-worker sweep asks for the running imports of every worker
    Index("imports_running", "imports (status) WHERE status = 'running'", dialects=("postgresql",)),
    # --if-changed: "did these bytes complete an import (or is one running)?" is one lookup each
    # (GET /api/imports/completed)
    Index("imports_sha256", "imports (sha256, type, status)"),
)


# indexes an INDEXES entry replaced: dropped from existing databases before the new ones are built
REPLACED_INDEXES = ("vulnerabilities_open",)


def _column(column: Column, dialect: str) -> str:
    name, type_, constraint = column
    return f"{name} {TYPES[dialect][type_]}" + (f" {constraint}" if constraint else "")


def create_table(table: Table, dialect: str) -> str:
    parts = [_column(c, dialect) for c in table.columns] + list(table.constraints)
    suffix = table.sqlite_suffix if dialect == "sqlite" else ""
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n    " + ",\n    ".join(parts) + f"\n){suffix}"


def statements(dialect: str) -> list[str]:
    """Every table, then every index of ``dialect`` (``sqlite`` or ``postgresql``), each IF NOT EXISTS (after
    dropping those they replaced)."""
    return [create_table(t, dialect) for t in TABLES] + [f"DROP INDEX IF EXISTS {name}" for name in REPLACED_INDEXES] + [
        f"CREATE INDEX IF NOT EXISTS {i.name} ON {i.on}" for i in INDEXES if dialect in i.dialects]


def missing_columns(table: Table, existing: set[str], dialect: str) -> list[str]:
    """The ALTER TABLE statements that add to an existing ``table`` the columns it lacks."""
    return [f"ALTER TABLE {table.name} ADD COLUMN {_column(c, dialect)}" for c in table.columns
            if c[0] not in existing]


def script(dialect: str) -> str:
    """The whole layout as one SQL script (benchmarks/floor.py builds its database with it)."""
    return ";\n".join(statements(dialect)) + ";\n"
