"""HexTrackr 1.1.12's CSV row mapping, line for line, for the 1.1.x test double.

A port of ``app/utils/helpers.js`` at commit 1fc6cb47 (lbruton/HexTrackr): ``mapVulnerabilityRow``,
``normalizeHostname``, ``normalizeVendor`` (with ``app/config/importConfig.js``'s default patterns),
``generateEnhancedUniqueKey``, ``generateUniqueKey`` and ``createDescriptionHash``; and of what
``app/services/importService.js`` keeps of a mapped row in ``vulnerability_staging`` and then in
``vulnerabilities_current``. JavaScript's ``a || b`` is ``a or b`` here (an empty string is false in both); rows are
what PapaParse gives with ``header: true``: a dict of strings, missing columns absent.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

_IP_RE = re.compile(r"^(\d{1,3}\.){3}\d{1,3}$")
_CVE_IN_NAME = re.compile(r"(CVE-\d{4}-\d+)")
_CISCO_IN_NAME = re.compile(r"\(([^)]+)\)$")
_CVE_ALL = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_CISCO_ALL = re.compile(r"cisco-sa-[\w-]+", re.IGNORECASE)
_FAMILY_VENDOR = ((re.compile("cisco", re.I), "CISCO"), (re.compile(r"palo\s*alto", re.I), "Palo Alto"))
_HOSTNAME_VENDOR = ((re.compile("nfpan", re.I), "Palo Alto"), (re.compile("n[rs]wan", re.I), "CISCO"))


def _get(row: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = row.get(name)
        if value:
            return value
    return ""


def normalize_hostname(hostname: str) -> str:
    if not hostname:
        return ""
    clean = hostname.strip()
    if _IP_RE.match(clean) and all(0 <= int(o) <= 255 for o in clean.split(".")):
        return clean.lower()
    return clean.split(".")[0].lower()


def normalize_vendor(vendor: str, hostname: str = "") -> str:
    clean_vendor = (vendor or "").strip().lower()
    clean_host = (hostname or "").strip().lower()
    if clean_host:
        for regex, name in _HOSTNAME_VENDOR:
            if regex.search(clean_host):
                return name
    if clean_vendor:
        for regex, name in _FAMILY_VENDOR:
            if regex.search(clean_vendor):
                return name
    if "cisco" in clean_vendor:
        return "CISCO"
    if "palo alto" in clean_vendor:
        return "Palo Alto"
    return "Other"


def _valid_ip(ip: str) -> bool:
    return bool(ip) and bool(_IP_RE.match(ip)) and all(0 <= int(o) <= 255 for o in ip.split("."))


def normalize_ip(ip_address: str) -> str | None:
    if not ip_address:
        return None
    for ip in (p.strip() for p in ip_address.split(",")):
        if _valid_ip(ip):
            return ip.lower()
    return None


def description_hash(description: str) -> str:
    if not description:
        return "empty"
    normalized = re.sub(r"\s+", " ", description.strip().lower())[:50]
    return hashlib.md5(normalized.encode("utf-8")).hexdigest()[:8]


def _float(value: str) -> float | None:
    """JavaScript's parseFloat of a non-empty string, NaN as None."""
    m = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", value or "")
    return float(m.group(1)) if m else None


def map_vulnerability_row(row: Mapping[str, str]) -> list[dict[str, Any]]:
    """``mapVulnerabilityRow(row)``: one mapped record per CVE (or one with ``cve: ""``)."""
    cve = _get(row, "definition.cve", "cve", "CVE")
    if not cve and row.get("definition.name"):
        m = _CVE_IN_NAME.search(row["definition.name"])
        cve = m.group(1) if m else ""
        if not cve:
            m = _CISCO_IN_NAME.search(row["definition.name"])
            cve = m.group(1) if m else ""
    hostname = normalize_hostname(_get(row, "asset.name", "hostname", "Host"))
    ip_address = _get(row, "asset.display_ipv4_address", "asset.ipv4_addresses", "ip_address", "IP Address")
    if ip_address and "," in ip_address:
        ip_address = ip_address.split(",")[0].strip()
    description = _get(row, "definition.description", "definition.name", "plugin_name", "description", "Description")
    plugin_name = _get(row, "definition.name", "plugin_name", "description", "Description")
    vpr = _get(row, "definition.vpr.score", "definition.vpr_v2.score", "vpr_score", "VPR Score", "vpr", "VPR")
    cvss = _get(row, "cvss_score", "CVSS Score", "cvss")
    base = {
        "assetId": _get(row, "asset.id", "asset_id", "Asset ID"),
        "hostname": hostname,
        "ipAddress": ip_address,
        "severity": _get(row, "severity", "Severity"),
        "vprScore": _float(vpr) if vpr else None,
        "cvssScore": _float(cvss) if cvss else None,
        "vendor": normalize_vendor(_get(row, "definition.family", "vendor", "Vendor"), hostname),
        "pluginName": plugin_name,
        "description": description,
        "solution": _get(row, "solution", "Solution"),
        "state": _get(row, "state", "State") or "ACTIVE",
        "firstSeen": _get(row, "first_seen", "First Seen"),
        "lastSeen": _get(row, "last_seen", "Last Seen"),
        "pluginId": _get(row, "definition.id", "plugin_id", "Plugin ID"),
        "pluginPublished": _get(row, "definition.plugin_published", "definition.plugin_updated",
                                "definition.vulnerability_published", "vulnerability_date", "plugin_published"),
        "operatingSystem": row.get("asset.operating_systems") or None,
        "solutionText": _get(row, "definition.solution", "solution", "Solution") or None,
    }
    ids = _CVE_ALL.findall(cve or "") + _CISCO_ALL.findall(cve or "")
    if not ids:
        return [{**base, "cve": ""}]
    out = []
    for one in ids:
        text = description
        if description and one not in description:
            text = f"{description} ({one})"
        out.append({**base, "description": text, "cve": one})
    return out


def enhanced_unique_key(mapped: Mapping[str, Any]) -> str:
    """``generateEnhancedUniqueKey``; ``assetId`` is what the staging table gives back: never stored, so empty."""
    host = normalize_ip(mapped.get("ipAddress") or "") or normalize_hostname(mapped.get("hostname") or "")
    if mapped.get("assetId") and mapped.get("pluginId"):
        return f"asset:{mapped['assetId']}|plugin:{mapped['pluginId']}"
    if (mapped.get("cve") or "").strip():
        return f"cve:{mapped['cve'].strip()}|host:{host}"
    if (mapped.get("pluginId") or "").strip():
        return f"plugin:{mapped['pluginId'].strip()}|host:{host}|vendor:{mapped.get('vendor') or 'unknown'}"
    return f"desc:{description_hash(mapped.get('description') or '')}|host:{host}"


def legacy_unique_key(mapped: Mapping[str, Any]) -> str:
    """``generateUniqueKey``."""
    host = normalize_hostname(mapped.get("hostname") or "")
    if (mapped.get("cve") or "").strip():
        return f"{host}|{mapped['cve'].strip()}"
    if (mapped.get("pluginId") or "").strip():
        return f"{host}|{mapped['pluginId'].strip()}|{(mapped.get('description') or '').strip()[:100]}"
    return f"{host}|{description_hash(mapped.get('description') or '')}"


def staged(mapped: Mapping[str, Any]) -> dict[str, Any]:
    """What ``bulkLoadToStagingTable`` writes to ``vulnerability_staging`` (no asset id, no first/last seen) and
    ``processNextBatch`` reads back into a mapped record before the keys are made."""
    return {
        "assetId": None, "hostname": mapped["hostname"], "ipAddress": mapped["ipAddress"], "cve": mapped["cve"],
        "severity": mapped["severity"], "vprScore": mapped["vprScore"], "cvssScore": mapped["cvssScore"],
        "pluginId": mapped["pluginId"], "pluginName": mapped["pluginName"], "description": mapped["description"],
        "solution": mapped["solution"], "vendor": mapped["vendor"], "pluginPublished": mapped["pluginPublished"],
        "state": mapped["state"], "operatingSystem": mapped["operatingSystem"],
        "solutionText": mapped["solutionText"],
    }
