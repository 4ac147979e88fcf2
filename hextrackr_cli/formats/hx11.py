"""Any export, as the CSV columns HexTrackr 1.1.x's importer reads (1.1.12 ``mapVulnerabilityRow``; FORMATS.md).

1.1.12 reads severity only from ``severity``, plugin ids from ``plugin_id`` (not Tenable.sc's ``Plugin``) and
plugin names from ``plugin_name`` (not Nessus's ``Name``); a Nessus, Tenable.sc, Qualys or ``.nessus`` file sent as
it is arrives without them, or not at all. So the client converts, streaming: each normalised finding becomes one
row of these columns (one CVE per row, as 1.1.12 splits them anyway).

Two columns are chosen for 1.1.12's order of reading: its description is the first of ``definition.description``,
``definition.name``, ``plugin_name``, ``description``, so the finding's description goes in
``definition.description`` (in ``description`` it would be shadowed by the plugin name); and ``hostname`` falls
back to the address, as a raw Nessus CSV's ``Host`` would.
"""

from __future__ import annotations

import csv
from typing import IO, Iterable

from hextrackr_cli.formats.records import TENABLE, Finding, Record
from hextrackr_cli.formats.registry import Format

HX11_COLUMNS: tuple[str, ...] = (
    "hostname", "ip_address", "asset_id", "cve", "severity", "plugin_id", "plugin_name", "definition.description",
    "solution", "vpr_score", "cvss_score", "state", "first_seen", "last_seen",
)


def needs_conversion(fmt: Format) -> bool:
    """False for a comma-separated Tenable VM export without a preamble: 1.1.12 was written for it and reads more
    of it as it is (``definition.family`` gives its vendor); every other format is converted."""
    return not (fmt.name == TENABLE and fmt.delimiter == "," and fmt.header_record == 0)


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def hx11_row(f: Finding) -> list[str]:
    """One finding as a row of HX11_COLUMNS."""
    return [f.host or f.ip, f.ip, f.asset_id, f.cve, f.severity, f.plugin_id, f.plugin_name, f.description,
            f.solution, _score(f.vpr_score), _score(f.cvss_score), f.state, f.first_seen, f.last_seen]


def write_hx11_csv(records: Iterable[Record], out: IO[str]) -> dict[str, int]:
    """Write ``records`` (findings) to ``out`` as 1.1.x CSV, one row at a time; returns counts per severity level
    (key "" for findings without one) and "rows"."""
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(HX11_COLUMNS)
    counts: dict[str, int] = {"rows": 0}
    row = hx11_row
    for r in records:
        if not isinstance(r, Finding):
            raise TypeError("HexTrackr 1.1.x imports vulnerability findings only")
        w.writerow(row(r))
        counts["rows"] += 1
        counts[r.severity] = counts.get(r.severity, 0) + 1
    return counts
