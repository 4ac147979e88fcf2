"""Records as HexTrackr stores them: the staging tuple (VULN_FIELDS / TICKET_FIELDS order) and the dedup key.

Plugin text (name, description, solution) is the same on every finding of a plugin: it goes once into
``Stager.plugins`` ({plugin_id: (name, description, solution)}) instead of into every staged record; a record
carries description/solution itself only when it has no plugin id.
"""

from __future__ import annotations

from typing import Iterable

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.records import TICKETS, Finding, FormatError, Record, Ticket
from hextrackr_cli.formats.registry import Format


def dedup_key(f: Finding, vendor: str) -> str:
    """Asset id + plugin id (+ CVE: one record per CVE), else host + CVE, else host + plugin + vendor."""
    who = f.host or f.ip
    if f.asset_id and f.plugin_id:
        return f"a:{f.asset_id}|{f.plugin_id}|{f.cve}"
    if who and f.cve:
        return f"h:{who}|{f.cve}"
    return f"p:{who}|{f.plugin_id}|{vendor}"


class Stager:
    """Turns records into staging tuples; collects plugin text in ``plugins``."""

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.plugins: dict[str, tuple[str, str, str]] = {}

    def __call__(self, r: Record) -> tuple:
        if isinstance(r, Ticket):
            return tuple(r[:11])
        pid = r.plugin_id
        if pid:
            if pid not in self.plugins:
                self.plugins[pid] = (r.plugin_name, r.description, r.solution)
            desc = sol = ""
        else:
            desc, sol = r.description, r.solution
        who = r.host or r.ip
        cve = r.cve
        if r.asset_id and pid:
            key = f"a:{r.asset_id}|{pid}|{cve}"
        elif who and cve:
            key = f"h:{who}|{cve}"
        else:
            key = f"p:{who}|{pid}|{self.vendor}"
        return (key, r.host, r.ip, r.asset_id, cve, pid, r.plugin_name, r.severity, r.vpr_score, r.cvss_score,
                r.state, desc, sol, r.first_seen, r.last_seen)

    def many(self, records: Iterable[Record]) -> list[tuple]:
        return [self(r) for r in records]


class Mapper(Stager):
    """One CSV row (already of the header's width) -> staged tuples; RowError names the column, not the row."""

    def __init__(self, fmt: Format, vendor: str) -> None:
        super().__init__(vendor)
        if not isinstance(fmt.reader, CsvReader):
            raise FormatError(f"no row mapper for format {fmt.name!r}")
        self._map = fmt.reader.mapper(fmt)
        self._tickets = fmt.kind == TICKETS

    def __call__(self, row: list) -> list:  # type: ignore[override]
        records = self._map(row, 0, 0)
        if self._tickets:
            return [tuple(t[:11]) for t in records]
        stage = super().__call__
        return [stage(r) for r in records]


def make_mapper(fmt: Format, vendor: str) -> Mapper:
    """A function-like object mapping one CSV row to staged records, with a ``plugins`` dict filled as it goes."""
    return Mapper(fmt, vendor)
