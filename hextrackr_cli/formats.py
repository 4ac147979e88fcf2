"""CSV formats: detect a scan export's format from its header and map rows to records.

Pure: no I/O, no server or third-party imports, so the client can pre-validate files locally with
``detect_format(header)`` and the server can use the same rules. Facts: ``/work/shared/FORMATS.md``.

A vulnerability record is a tuple in the order of ``VULN_FIELDS``; a ticket record follows ``TICKET_FIELDS``.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence, cast

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


class Mapper(Protocol):
    """Maps one CSV row to records; ``plugins`` collects {plugin_id: (name, description, solution)}."""

    plugins: dict[str, tuple[str, str, str]]

    def __call__(self, row: list[str]) -> list[tuple]: ...


class FormatError(ValueError):
    """The header matches no known format; the message names what was expected."""


class RowError(ValueError):
    """A value in a row that cannot be right (the caller adds the row number)."""


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
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
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


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(cell: str, limit: int = 40) -> str:
    """A header cell as it may appear in a one-line message: control characters shown as '?', cut to ``limit``."""
    text = _CONTROL_RE.sub("?", cell)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detect_format(header: Sequence[str], kind: str | None = None) -> Format:
    """The format of a CSV whose first row is ``header``; ``kind`` limits it to vulnerabilities or tickets.

    Raises FormatError with a one-line message naming the expected columns.
    """
    cleaned = [h.lstrip("\ufeff").strip() if isinstance(h, str) else "" for h in header]
    if not any(cleaned):
        raise FormatError("the header row is empty")
    if len(cleaned) == 1:
        for sep, name, shown in ((";", "semicolons", "';'"), ("\t", "tabs", "tab"), ("|", "pipes", "'|'")):
            if sep in cleaned[0]:
                raise FormatError(
                    f"the header is separated by {name} ({shown} delimiter), not commas; export the file as"
                    " comma-separated CSV"
                )
    for name, fkind, title, columns, required in _FORMATS:
        if kind is not None and fkind != kind:
            continue
        index = _locate(cleaned, columns)
        if all(any(f in index for f in alternative) for alternative in required):
            return Format(name, fkind, title, tuple(cleaned), index)
    shown = ", ".join(printable(h) for h in cleaned[:8]) + (", ..." if len(cleaned) > 8 else "")
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


_SEVERITY_NAMES = frozenset(_SEVERITIES.values())


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


# --------------------------------------------------------------------------- mappers
# Mappers are on the hot path (one call per row): plain indexing with precomputed column positions, no
# per-field helper calls. A missing optional column reads index -1 of the row, which the mapper pads with "".
# Plugin text (name, description, solution) is the same on every row of a plugin: it goes once into the
# mapper's ``plugins`` dict ({plugin_id: (name, description, solution)}) instead of into every record; records
# carry description/solution themselves only when they have no plugin id.


def make_mapper(fmt: Format, vendor: str) -> Mapper:
    """A function mapping one CSV row (already checked to have the header's width) to a list of records.

    The returned function has a ``plugins`` attribute (dict) filled as rows are mapped (vulnerabilities).
    It may append one "" to the row it is given.
    """
    if fmt.name == TICKETS:
        return _ticket_mapper(fmt.index)
    if fmt.name == TENABLE:
        cols = {
            "asset_id": "asset_id", "hostname": "hostname", "ip": "display_ip", "ips": "ips",
            "plugin_id": "plugin_id", "plugin_name": "plugin_name", "cve": "cve", "vpr": "vpr_score",
            "cvss": None, "description": "description", "solution": "solution", "severity": "severity",
            "state": "state", "first": "first_seen", "last": "last_seen", "dns": None,
        }
    elif fmt.name == NESSUS:
        cols = {
            "asset_id": None, "hostname": "host", "ip": None, "ips": None, "plugin_id": "plugin_id",
            "plugin_name": "plugin_name", "cve": "cve", "vpr": "vpr_score", "cvss": "cvss_score",
            "description": "description", "solution": "solution", "severity": "severity", "state": None,
            "first": None, "last": None, "dns": "dns",
        }
    elif fmt.name == GENERIC:
        cols = {
            "asset_id": "asset_id", "hostname": "hostname", "ip": "ip_address", "ips": None,
            "plugin_id": "plugin_id", "plugin_name": "plugin_name", "cve": "cve", "vpr": "vpr_score",
            "cvss": "cvss_score", "description": "description", "solution": "solution", "severity": "severity",
            "state": "state", "first": "first_seen", "last": "last_seen", "dns": None,
        }
    else:
        raise FormatError(f"no mapper for format {fmt.name!r}")
    ix = {k: fmt.index.get(v, -1) if v else -1 for k, v in cols.items()}
    names = {k: (fmt.header[i] if i >= 0 else k) for k, i in ix.items()}
    return _vuln_mapper(fmt.name, ix, names, vendor)


_PLACEHOLDERS = frozenset({"n/a", "na", "-", "none", "null"})


def _score_checker(column: str) -> Callable[[str], float | None]:
    def check(text: str) -> float | None:
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            if text.strip().lower() in _PLACEHOLDERS:
                return None
            raise RowError(f"{column} {text[:40]!r} is not a number") from None
        if not 0.0 <= value <= 10.0:  # also refuses nan and inf
            raise RowError(f"{column} {text[:40]!r} is out of range (0 to 10)")
        return value

    return check


def _date_checker(column: str) -> Callable[[str], str]:
    good: set[str] = set()

    def check(text: str) -> str:
        if not text or text in good:
            return text
        head = text[:10]
        try:
            if len(head) != 10 or head[4] != "-" or head[7] != "-":
                raise ValueError
            _dt.date(int(head[:4]), int(head[5:7]), int(head[8:]))
        except ValueError:
            raise RowError(f"{column} {text[:40]!r} is not a date (YYYY-MM-DD)") from None
        if len(good) < 100_000:
            good.add(text)
        return text

    return check


def _ip_ok(ip: str) -> bool:
    return bool(_IP_RE.match(ip)) and all(int(part) <= 255 for part in ip.split("."))


def _vuln_mapper(name: str, ix: Mapping[str, int], names: Mapping[str, str], vendor: str) -> Mapper:
    i_aid, i_host, i_ip, i_ips = ix["asset_id"], ix["hostname"], ix["ip"], ix["ips"]
    i_pid, i_name, i_cve, i_vpr, i_cvss = ix["plugin_id"], ix["plugin_name"], ix["cve"], ix["vpr"], ix["cvss"]
    i_desc, i_sol, i_sev, i_state = ix["description"], ix["solution"], ix["severity"], ix["state"]
    i_first, i_last, i_dns = ix["first"], ix["last"], ix["dns"]
    pad = -1 in ix.values()
    nessus = name == NESSUS
    plugins: dict[str, tuple[str, str, str]] = {}
    severities = dict(_SEVERITIES)
    for v in set(_SEVERITIES.values()):
        severities[v] = v
    ip_match = _IP_RE.match
    split = split_cves
    vpr_of, cvss_of = _score_checker(names["vpr"]), _score_checker(names["cvss"])
    first_of, last_of = _date_checker(names["first"]), _date_checker(names["last"])
    ip_column = names["ip"] if i_ip >= 0 else names["ips"]
    sev_column = names["severity"]
    known_ips: set[str] = set()
    # values repeat a lot (scores, dates): each distinct text is checked once
    scores: dict[str, float | None] = {"": None}
    dates: dict[str, str] = {"": ""}  # raw cell -> checked, stripped value

    def map_row(row: list) -> list:
        if pad:
            row.append("")
        if nessus:
            host_cell = row[i_host].strip()
            if ip_match(host_cell):
                ip = host_cell
                host = row[i_dns].strip().lower()
            else:
                ip = ""
                host = (row[i_dns] or host_cell).strip().lower()
            aid = ""
        else:
            host = row[i_host].strip().lower()
            ip = row[i_ip].strip()
            if not ip and i_ips >= 0:
                ip = row[i_ips].split(",", 1)[0].strip()
            aid = row[i_aid].strip()
        pid = row[i_pid].strip()
        pname = row[i_name]
        if pid:
            if pid not in plugins:
                plugins[pid] = (pname, row[i_desc], row[i_sol])
            desc = sol = ""
        else:
            desc, sol = row[i_desc], row[i_sol]
        if ip and ip not in known_ips:
            if not _ip_ok(ip):
                raise RowError(f"{ip_column} {ip[:40]!r} is not an IPv4 address")
            if len(known_ips) < 100_000:
                known_ips.add(ip)
        if not (host or ip or aid):
            raise RowError(f"no host: {names['hostname']} and {ip_column} are both empty")
        sev_text = row[i_sev]
        sev = severities.get(sev_text)
        if sev is None:
            sev = normalize_severity(sev_text)
            if sev and sev not in _SEVERITY_NAMES:
                raise RowError(
                    f"{sev_column} {sev_text[:40]!r} is not a severity (Critical, High, Medium, Low, Info)"
                )
        text = row[i_vpr]
        vpr = scores[text] if text in scores else vpr_of(text)
        text = row[i_cvss]
        cvss = scores[text] if text in scores else cvss_of(text)
        if len(scores) < 10_000:
            if vpr is not None:
                scores[row[i_vpr]] = vpr
            if cvss is not None:
                scores[row[i_cvss]] = cvss
        state = row[i_state].strip().upper()
        raw = row[i_first]
        first = dates.get(raw)
        if first is None:
            first = first_of(raw.strip())
            if len(dates) < 10_000:
                dates[raw] = first
        raw = row[i_last]
        last = dates.get(raw)
        if last is None:
            last = last_of(raw.strip())
            if len(dates) < 10_000:
                dates[raw] = last
        cell = row[i_cve]
        if cell and cell[:4] == "CVE-" and "," not in cell and " " not in cell:
            cves: Sequence[str] = (cell,)
        else:
            cves = split(cell, pname)
        who = host or ip
        out = []
        # dedup key: asset id + plugin id, else host + CVE, else host + plugin + vendor; the CVE is part of
        # the first key so a plugin with several CVEs keeps one record per CVE
        for cve in cves:
            if aid and pid:
                key = f"a:{aid}|{pid}|{cve}"
            elif who and cve:
                key = f"h:{who}|{cve}"
            else:
                key = f"p:{who}|{pid}|{vendor}"
            out.append((key, host, ip, aid, cve, pid, pname, sev, vpr, cvss, state, desc, sol, first, last))
        return out

    map_row.plugins = plugins  # type: ignore[attr-defined]
    return cast(Mapper, map_row)


_DIGITS_RE = re.compile(r"\d+")


def normalize_xt_number(text: str) -> str:
    """``"XT-12"`` -> ``"0012"``; text without digits is kept as it is (stripped)."""
    m = _DIGITS_RE.search(text)
    return m.group(0).zfill(4) if m else text.strip()


def _ticket_mapper(index: Mapping[str, int]) -> Mapper:
    positions = [index.get(f, -1) for f in TICKET_FIELDS]
    pad = -1 in positions
    status_at = TICKET_FIELDS.index("status")

    def map_row(row: list) -> list:
        if pad:
            row.append("")
        values = [row[i].strip() for i in positions]
        values[0] = normalize_xt_number(values[0])
        if not values[status_at]:
            values[status_at] = "Open"
        return [tuple(values)]

    map_row.plugins = {}  # type: ignore[attr-defined]
    return cast(Mapper, map_row)


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
