"""The normalised records every reader yields, the severity scale, and the two errors of the package.

A ``Finding`` is one vulnerability of one host as the file states it (a row naming several CVEs gives one finding per
CVE); a ``Ticket`` is one row of a HexTrackr ticket file. Both carry the file's own line number (where the row starts)
and the record number (the n-th data record, counting neither the header, a preamble nor skipped empty rows), so
every message can name both.
"""

from __future__ import annotations

from typing import NamedTuple, Union

TENABLE = "tenable"
NESSUS = "nessus"
GENERIC = "generic"
TICKETS = "tickets"

VULNERABILITIES = "vulnerabilities"
KINDS = (VULNERABILITIES, TICKETS)

# The normalised severity scale, most severe first, and the short names of the summary line.
SEVERITY_LEVELS: tuple[str, ...] = ("Critical", "High", "Medium", "Low", "Info")
SEVERITY_SHORT: dict[str, str] = {"Critical": "crit", "High": "high", "Medium": "med", "Low": "low", "Info": "info"}


class FormatError(ValueError):
    """The file is not one the package can read; the message (one line) names what was expected."""


class RowError(ValueError):
    """A value in a record that cannot be right. ``str()`` is one line; raised by ``read()`` it starts with
    ``record N (line L):`` and names the file's own column."""


class Finding(NamedTuple):
    """One finding, normalised. Text fields are "" when the file has no such column or value."""

    record: int  # the n-th data record of the file (1-based)
    line: int  # the file's line where that record starts (1-based, counting a preamble and the header)
    host: str  # host name / FQDN, lower-case
    ip: str  # IPv4 address
    asset_id: str
    plugin_id: str  # Tenable/Nessus plugin id, Qualys QID, OpenVAS NVT OID
    plugin_name: str
    cve: str  # one CVE (or vendor advisory id); "" when the finding names none
    severity: str  # one of SEVERITY_LEVELS, or "" when the file gives none
    severity_raw: str  # the file's own value ("None", "4", "Log", ...)
    vpr_score: float | None
    cvss_score: float | None
    state: str  # ACTIVE, NEW, RESURFACED, FIXED (upper-case) or ""
    port: str
    protocol: str
    first_seen: str  # as the file writes it, checked to be a date (ISO first; Tenable.sc's "Jun 20, 2016 ..." made ISO)
    last_seen: str
    solution: str
    description: str
    output: str  # the plugin's output / Qualys results / OpenVAS specific result


class Ticket(NamedTuple):
    """One ticket row; the first eleven fields are TICKET_FIELDS (the staging table's order)."""

    xt_number: str
    date_submitted: str
    date_due: str
    hexagon_ticket: str
    service_now_ticket: str
    location: str
    devices: str
    supervisor: str
    tech: str
    status: str
    notes: str
    record: int = 0
    line: int = 0


Record = Union[Finding, Ticket]

# Order of the fields of a staged vulnerability record (the staging table follows it; see staging.py).
VULN_FIELDS: tuple[str, ...] = (
    "dedup_key",
    "hostname",
    "ip_address",
    "asset_id",
    "cve",
    "plugin_id",
    "plugin_name",
    "severity",
    "vpr_score",
    "cvss_score",
    "state",
    "description",
    "solution",
    "first_seen",
    "last_seen",
)

TICKET_FIELDS: tuple[str, ...] = Ticket._fields[:11]


def severity_rank(level: str) -> int:
    """0 for Critical ... 4 for Info; 5 for a finding without a severity."""
    try:
        return SEVERITY_LEVELS.index(level)
    except ValueError:
        return len(SEVERITY_LEVELS)


def findings_line(findings: int, severities: "dict[str, int] | None") -> str:
    """``20,000 findings (crit 12, high 340, med 2,100, low 800, info 16,748)``."""
    noun = "finding" if findings == 1 else "findings"
    if not severities:
        return f"{findings:,} {noun}"
    parts = ", ".join(f"{SEVERITY_SHORT[lvl]} {int(severities.get(lvl, 0)):,}" for lvl in SEVERITY_LEVELS)
    return f"{findings:,} {noun} ({parts})"
