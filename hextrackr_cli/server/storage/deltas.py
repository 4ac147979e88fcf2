"""Per-import deltas per severity: new, reopened, unchanged, resolved (docs/wire.md, "Deltas").

Counted inside the import's transaction by the statements the merge runs anyway, on SQLite and PostgreSQL
alike: the upsert marks a record it brings back from resolved (``reopened_import_id``), one GROUP BY over this
import's open records (the partial index the merge's count used) splits them into new / reopened / unchanged,
and the resolve ``UPDATE … RETURNING severity`` says what it closed. No second pass over the table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from hextrackr_cli.formats.records import SEVERITY_LEVELS
from hextrackr_cli.server.storage.base import Connection

KINDS = ("new", "reopened", "unchanged", "resolved")

# the upsert's extra assignment: a record that was resolved and is in this scan again is reopened by this import
REOPEN_ON_CONFLICT = (
    ", reopened_import_id = CASE WHEN vulnerabilities.status = 'resolved' THEN excluded.import_id"
    " ELSE vulnerabilities.reopened_import_id END"
)

OPEN_BY_SEVERITY = (
    "SELECT severity, count(*), sum(CASE WHEN id > ? THEN 1 ELSE 0 END),"
    " sum(CASE WHEN reopened_import_id = ? THEN 1 ELSE 0 END)"
    " FROM vulnerabilities WHERE vendor = ? AND status = 'open' AND import_id = ? GROUP BY severity"
)


def row(counts: Mapping[str, int]) -> dict[str, int]:
    """One kind's counts: every severity (0 when none) and ``total`` (which also counts records whose severity is
    none of the five, e.g. a file without a severity column)."""
    out = {s: int(counts.get(s, 0)) for s in SEVERITY_LEVELS}
    out["total"] = int(sum(counts.values()))
    return out


def open_split(conn: Connection, *, vendor: str, import_id: int, id_before: int
               ) -> tuple[int, int, dict[str, dict[str, int]]]:
    """(records, inserted, {new, reopened, unchanged}) of this import's open records, after the upsert."""
    new: Counter[str] = Counter()
    reopened: Counter[str] = Counter()
    unchanged: Counter[str] = Counter()
    for severity, total, fresh, back in conn.execute(OPEN_BY_SEVERITY, (id_before, import_id, vendor, import_id)):
        sev = severity or ""
        fresh, back = int(fresh or 0), int(back or 0)
        new[sev] += fresh
        reopened[sev] += back
        unchanged[sev] += int(total) - fresh - back
    records = sum(new.values()) + sum(reopened.values()) + sum(unchanged.values())
    return records, sum(new.values()), {"new": row(new), "reopened": row(reopened), "unchanged": row(unchanged)}


def resolved_row(severities: Iterable[tuple[Any, ...]]) -> dict[str, int]:
    """The ``resolved`` kind from the resolve's ``RETURNING severity`` rows."""
    return row(Counter((r[0] or "") for r in severities))
