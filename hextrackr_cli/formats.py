"""CSV formats: detect a scan export's format from its header and map rows to records.

Pure: no I/O, no server or third-party imports, so the client can pre-validate files locally with
``detect_format(header)`` and the server can use the same rules. Facts: ``/work/shared/FORMATS.md``.

A vulnerability record is a tuple in the order of ``VULN_FIELDS``; a ticket record follows ``TICKET_FIELDS``.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

TENABLE = "tenable"
NESSUS = "nessus"
GENERIC = "generic"
TICKETS = "tickets"

VULNERABILITIES = "vulnerabilities"

# Order of the fields of a mapped vulnerability record (the staging table follows it).
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

TICKET_FIELDS: tuple[str, ...] = (
    "xt_number",
    "date_submitted",
    "date_due",
    "hexagon_ticket",
    "service_now_ticket",
    "location",
    "devices",
    "supervisor",
    "tech",
    "status",
    "notes",
)

Record = tuple
Mapper = Callable[[Sequence[str]], list]


class FormatError(ValueError):
    """The header matches no known format; the message names what was expected."""


@dataclass(frozen=True)
class Format:
    """A detected format: its name, what it imports, and where each field sits in the header."""

    name: str  # tenable | nessus | generic | tickets
    kind: str  # vulnerabilities | tickets
    title: str
    header: tuple[str, ...]
    index: Mapping[str, int] = field(default_factory=dict)  # field -> column index

    @property
    def default_vendor(self) -> str:
        return {TENABLE: "tenable", NESSUS: "nessus"}.get(self.name, "generic")


# --------------------------------------------------------------------------- column aliases
# field -> header names, exact spelling first (matching is exact, then case-insensitive).
_TENABLE_COLS: dict[str, tuple[str, ...]] = {
    "asset_id": ("asset.id",),
    "hostname": ("asset.name",),
    "display_ip": ("asset.display_ipv4_address",),
    "ips": ("asset.ipv4_addresses",),
    "plugin_id": ("definition.id",),
    "plugin_name": ("definition.name",),
    "cve": ("definition.cve",),
    "vpr_score": ("definition.vpr.score", "definition.vpr_v2.score"),
    "description": ("definition.description",),
    "solution": ("definition.solution",),
    "severity": ("severity",),
    "state": ("state",),
    "first_seen": ("first_seen",),
    "last_seen": ("last_seen",),
}
_NESSUS_COLS: dict[str, tuple[str, ...]] = {
    "plugin_id": ("Plugin ID",),
    "cve": ("CVE",),
    "cvss_score": ("CVSS v3.0 Base Score", "CVSS v2.0 Base Score"),
    "severity": ("Risk", "Risk Factor"),
    "host": ("Host",),
    "dns": ("DNS Name",),
    "plugin_name": ("Name",),
    "description": ("Description", "Synopsis"),
    "solution": ("Solution",),
    "vpr_score": ("VPR Score",),
}
_GENERIC_COLS: dict[str, tuple[str, ...]] = {
    "hostname": ("hostname", "Host", "Hostname", "host"),
    "ip_address": ("ip_address", "IP Address", "ip"),
    "cve": ("cve", "CVE"),
    "severity": ("severity", "Severity"),
    "vpr_score": ("vpr_score", "VPR Score"),
    "cvss_score": ("cvss_score", "CVSS Score"),
    "plugin_id": ("plugin_id", "Plugin ID"),
    "plugin_name": ("plugin_name", "Plugin Name"),
    "description": ("description", "Description"),
    "solution": ("solution", "Solution"),
    "state": ("state", "State"),
    "first_seen": ("first_seen", "First Seen"),
    "last_seen": ("last_seen", "Last Seen"),
    "asset_id": ("asset_id", "Asset ID"),
}
_TICKET_COLS: dict[str, tuple[str, ...]] = {
    "xt_number": ("xt_number", "XT Number"),
    "date_submitted": ("date_submitted", "Date Submitted"),
    "date_due": ("date_due", "Date Due"),
    "hexagon_ticket": ("hexagon_ticket", "Hexagon Ticket"),
    "service_now_ticket": ("service_now_ticket", "ServiceNow Ticket"),
    "location": ("location", "Location"),
    "devices": ("devices", "Devices"),
    "supervisor": ("supervisor", "Supervisor"),
    "tech": ("tech", "Tech"),
    "status": ("status", "Status"),
    "notes": ("notes", "Notes"),
}

# (name, kind, title, columns, required: tuple of alternatives - each alternative a tuple of fields, any one)
_FORMATS: tuple[tuple[str, str, str, dict[str, tuple[str, ...]], tuple[tuple[str, ...], ...]], ...] = (
    (TICKETS, TICKETS, "HexTrackr tickets", _TICKET_COLS, (("xt_number",),)),
    (TENABLE, VULNERABILITIES, "Tenable VM export", _TENABLE_COLS,
     (("plugin_id",), ("hostname", "display_ip", "ips", "asset_id"))),
    (NESSUS, VULNERABILITIES, "Nessus / Tenable.sc export", _NESSUS_COLS, (("plugin_id",), ("host",), ("severity",))),
    (GENERIC, VULNERABILITIES, "generic HexTrackr columns", _GENERIC_COLS,
     (("hostname", "ip_address"), ("cve", "plugin_id"))),
)

EXPECTED_COLUMNS = (
    "Tenable VM (asset.name, definition.id, definition.cve, severity, ...), "
    "Nessus (Plugin ID, CVE, Risk, Host, Name, ...), "
    "generic (hostname or ip_address, cve or plugin_id, severity, ...), "
    "tickets (xt_number, date_submitted, status, ...)"
)


def _locate(header: Sequence[str], columns: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    exact = {}
    folded = {}
    for i, name in enumerate(header):
        exact.setdefault(name, i)
        folded.setdefault(name.strip().lower(), i)
    index: dict[str, int] = {}
    for fld, aliases in columns.items():
        for alias in aliases:
            if alias in exact:
                index[fld] = exact[alias]
                break
        else:
            for alias in aliases:
                if alias.lower() in folded:
                    index[fld] = folded[alias.lower()]
                    break
    return index


def detect_format(header: Sequence[str], kind: str | None = None) -> Format:
    """The format of a CSV whose first row is ``header``; ``kind`` limits it to vulnerabilities or tickets.

    Raises FormatError with a one-line message naming the expected columns.
    """
    cleaned = [h.lstrip("\ufeff").strip() if isinstance(h, str) else "" for h in header]
    if not any(cleaned):
        raise FormatError("the header row is empty")
    if len(cleaned) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in cleaned[0]:
                raise FormatError(
                    f"the header is separated by {name}, not commas; export the file as comma-separated CSV"
                )
    for name, fkind, title, columns, required in _FORMATS:
        if kind is not None and fkind != kind:
            continue
        index = _locate(cleaned, columns)
        if all(any(f in index for f in alternative) for alternative in required):
            return Format(name, fkind, title, tuple(cleaned), index)
    shown = ", ".join(cleaned[:8]) + (", ..." if len(cleaned) > 8 else "")
    expected = EXPECTED_COLUMNS if kind is None else (
        "tickets (xt_number, date_submitted, status, ...)" if kind == TICKETS
        else EXPECTED_COLUMNS.rsplit(", tickets", 1)[0]
    )
    raise FormatError(f"unknown columns ({shown}); expected {expected}")


# --------------------------------------------------------------------------- value helpers
_CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_SPLIT_RE = re.compile(r"[,\s;]+")
_IP_RE = re.compile(r"\A\d{1,3}(?:\.\d{1,3}){3}\Z")
_SEVERITIES = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "moderate": "Medium",
    "low": "Low",
    "info": "Info",
    "informational": "Info",
    "none": "Info",
    "4": "Critical",
    "3": "High",
    "2": "Medium",
    "1": "Low",
    "0": "Info",
}


def split_cves(text: str, fallback: str = "") -> list[str]:
    """The ids in a CVE cell (several separated by commas); else a CVE found in ``fallback``; else ``[""]``."""
    if text:
        ids = [p.upper() if p[:4].upper() == "CVE-" else p for p in _SPLIT_RE.split(text) if p]
        if ids:
            return list(dict.fromkeys(ids))
    if fallback:
        found = _CVE_RE.findall(fallback)
        if found:
            return list(dict.fromkeys(f.upper() for f in found))
    return [""]


def normalize_severity(text: str) -> str:
    s = text.strip()
    return _SEVERITIES.get(s.lower(), s.title() if s else "")


def normalize_host(text: str) -> str:
    return text.strip().lower()


def _score(text: str) -> float | None:
    t = text.strip()
    if not t:
        return None
    try:
        return float(t)
    except ValueError:
        return None


def dedup_key(asset_id: str, plugin_id: str, host: str, cve: str, vendor: str) -> str:
    """Stable identity of a finding: asset id + plugin id, else host + CVE, else host + plugin + vendor.

    The CVE is part of every key so a plugin with several CVEs keeps one record per CVE.
    """
    if asset_id and plugin_id:
        return f"a:{asset_id}|{plugin_id}|{cve}"
    if host and cve:
        return f"h:{host}|{cve}"
    return f"p:{host}|{plugin_id}|{vendor}"


# --------------------------------------------------------------------------- mappers
def _getter(index: Mapping[str, int], fld: str) -> Callable[[Sequence[str]], str]:
    i = index.get(fld)
    if i is None:
        return lambda row: ""
    return lambda row: row[i]


def make_mapper(fmt: Format, vendor: str) -> Mapper:
    """A function mapping one CSV row (already checked to have the header's width) to a list of records."""
    if fmt.name == TENABLE:
        return _tenable_mapper(fmt.index, vendor)
    if fmt.name == NESSUS:
        return _nessus_mapper(fmt.index, vendor)
    if fmt.name == GENERIC:
        return _generic_mapper(fmt.index, vendor)
    if fmt.name == TICKETS:
        return _ticket_mapper(fmt.index)
    raise FormatError(f"no mapper for format {fmt.name!r}")


def _tenable_mapper(index: Mapping[str, int], vendor: str) -> Mapper:
    g = {f: _getter(index, f) for f in _TENABLE_COLS}
    asset_id, hostname, display_ip, ips = g["asset_id"], g["hostname"], g["display_ip"], g["ips"]
    plugin_id, plugin_name, cve_of = g["plugin_id"], g["plugin_name"], g["cve"]
    vpr, desc, sol, sev, state = g["vpr_score"], g["description"], g["solution"], g["severity"], g["state"]
    first, last = g["first_seen"], g["last_seen"]

    def map_row(row: Sequence[str]) -> list:
        aid = asset_id(row).strip()
        host = normalize_host(hostname(row))
        ip = display_ip(row).strip()
        if not ip:
            addresses = ips(row)
            ip = addresses.split(",", 1)[0].strip() if addresses else ""
        pid = plugin_id(row).strip()
        name = plugin_name(row)
        common = (host, ip, aid)
        rest = (
            pid,
            name,
            normalize_severity(sev(row)),
            _score(vpr(row)),
            None,
            state(row).strip().upper(),
            desc(row),
            sol(row),
            first(row).strip(),
            last(row).strip(),
        )
        who = host or ip
        return [(dedup_key(aid, pid, who, c, vendor),) + common + (c,) + rest for c in split_cves(cve_of(row), name)]

    return map_row


def _nessus_mapper(index: Mapping[str, int], vendor: str) -> Mapper:
    g = {f: _getter(index, f) for f in _NESSUS_COLS}
    plugin_id, cve_of, cvss, sev, host_of, dns = g["plugin_id"], g["cve"], g["cvss_score"], g["severity"], g["host"], g["dns"]
    plugin_name, desc, sol, vpr = g["plugin_name"], g["description"], g["solution"], g["vpr_score"]

    def map_row(row: Sequence[str]) -> list:
        host_cell = host_of(row).strip()
        ip = host_cell if _IP_RE.match(host_cell) else ""
        host = normalize_host(dns(row) or ("" if ip else host_cell))
        pid = plugin_id(row).strip()
        name = plugin_name(row)
        rest = (
            pid,
            name,
            normalize_severity(sev(row)),
            _score(vpr(row)),
            _score(cvss(row)),
            "",
            desc(row),
            sol(row),
            "",
            "",
        )
        who = host or ip
        return [(dedup_key("", pid, who, c, vendor), host, ip, "", c) + rest for c in split_cves(cve_of(row), name)]

    return map_row


def _generic_mapper(index: Mapping[str, int], vendor: str) -> Mapper:
    g = {f: _getter(index, f) for f in _GENERIC_COLS}

    def map_row(row: Sequence[str]) -> list:
        host = normalize_host(g["hostname"](row))
        ip = g["ip_address"](row).strip()
        aid = g["asset_id"](row).strip()
        pid = g["plugin_id"](row).strip()
        name = g["plugin_name"](row)
        rest = (
            pid,
            name,
            normalize_severity(g["severity"](row)),
            _score(g["vpr_score"](row)),
            _score(g["cvss_score"](row)),
            g["state"](row).strip().upper(),
            g["description"](row),
            g["solution"](row),
            g["first_seen"](row).strip(),
            g["last_seen"](row).strip(),
        )
        who = host or ip
        return [(dedup_key(aid, pid, who, c, vendor), host, ip, aid, c) + rest for c in split_cves(g["cve"](row), name)]

    return map_row


_DIGITS_RE = re.compile(r"\d+")


def normalize_xt_number(text: str) -> str:
    """``"XT-12"`` -> ``"0012"``; text without digits is kept as it is (stripped)."""
    m = _DIGITS_RE.search(text)
    return m.group(0).zfill(4) if m else text.strip()


def _ticket_mapper(index: Mapping[str, int]) -> Mapper:
    getters = [_getter(index, f) for f in TICKET_FIELDS]
    status_at = TICKET_FIELDS.index("status")

    def map_row(row: Sequence[str]) -> list:
        values = [get(row).strip() for get in getters]
        values[0] = normalize_xt_number(values[0])
        if not values[status_at]:
            values[status_at] = "Open"
        return [tuple(values)]

    return map_row


# --------------------------------------------------------------------------- file name metadata
_DATE_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_VENDOR_RE = re.compile(r"\A([A-Za-z][A-Za-z0-9]*)[_\-]")


def parse_scan_date(text: str) -> str:
    """Validate ``YYYY-MM-DD``; raises ValueError otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or ""):
        raise ValueError(f"scan date must be YYYY-MM-DD, not {text!r}")
    _dt.date.fromisoformat(text)
    return text


def metadata_from_filename(filename: str) -> tuple[str | None, str | None]:
    """``tenable_vulns_2025-11-20.csv`` -> ``("tenable", "2025-11-20")``; unknown parts are None."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    vendor = None
    m = _VENDOR_RE.match(stem)
    if m:
        vendor = m.group(1).lower()
    date = None
    for y, mo, d in _DATE_RE.findall(stem):
        try:
            date = _dt.date(int(y), int(mo), int(d)).isoformat()
            break
        except ValueError:
            continue
    return vendor, date
