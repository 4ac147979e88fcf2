"""Qualys CSV: VM scan report, VMDR "Asset Vuln Datalist Report" (with or without its preamble), PCI/HackerGuardian.

Severity is 1-5 (5 most severe); some exports write words (Urgent, Critical, Serious, ...) or a letter (PCI).
A finding of type Info / Ig (information gathered) is informational whatever its severity (the 1-5 value is kept
as the original). QID is the plugin id.
"""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.values import DATE_LAYOUTS

QUALYS_SCALE = {
    "5": "Critical", "4": "High", "3": "Medium", "2": "Low", "1": "Info",
    "urgent": "Critical", "critical": "Critical", "serious": "High", "high": "High", "medium": "Medium",
    "low": "Low", "minimal": "Info", "info": "Info",
    "u": "Critical", "c": "Critical", "h": "High", "m": "Medium", "l": "Low", "i": "Info",
}
INFO_TYPES = frozenset({"info", "ig", "information", "information gathered"})
_NAMES = "1-5 or Urgent, Critical, Serious, High, Medium, Low, Minimal"

QUALYS_PCI = CsvReader(
    name="qualys-pci",
    title="Qualys PCI / HackerGuardian CSV",
    vendor="qualys",
    expected="",
    columns={
        "ip": ("IP",),
        "host": ("HOSTNAME",),
        "last_seen": ("LAST SCAN",),
        "plugin_id": ("QID",),
        "plugin_name": ("VULN TITLE",),
        "type": ("TYPE",),
        "severity": ("SEVERITY", "Q_SEVERITY"),
        "port": ("PORT",),
        "protocol": ("PROTOCOL",),
        "cvss_score": ("CVSS_BASE",),
        "description": ("THREAT", "IMPACT"),
        "solution": ("SOLUTION",),
        "output": ("RESULT",),
        "cve": ("CVEID",),
    },
    required=(("plugin_id",), ("ip", "host"), ("plugin_name",)),
    signature=(("QID", "VULN TITLE"),),
    severity_scale=QUALYS_SCALE,
    severity_names=_NAMES,
    date_layouts=("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y"),
    info_types=INFO_TYPES,
)

QUALYS_VMDR = CsvReader(
    name="qualys-vmdr",
    title="Qualys VMDR asset vulnerability list",
    vendor="qualys",
    expected="",
    columns={
        "cve": ("CVE",),
        "cvss_score": ("CVSSv3.1 Base (nvd)", "CVSSv2 Base (nvd)"),
        "plugin_id": ("QID",),
        "plugin_name": ("Title",),
        "severity": ("Severity",),
        "type": ("Type Detected",),
        "last_seen": ("Last Detected",),
        "first_seen": ("First Detected",),
        "protocol": ("Protocol",),
        "port": ("Port",),
        "state": ("Status",),
        "asset_id": ("Asset Id",),
        "host": ("Asset Name",),
        "ips": ("Asset IPV4",),
        "solution": ("Solution",),
        "description": ("Threat", "CVE-Description"),
        "output": ("Results",),
    },
    required=(("plugin_id",), ("asset_id", "host", "ips")),
    signature=(("QID", "Asset Id"), ("QID", "Type Detected")),
    preamble=True,
    severity_scale=QUALYS_SCALE,
    severity_names=_NAMES,
    date_layouts=("%b %d, %Y %I:%M %p", *DATE_LAYOUTS["tenable.sc"], *DATE_LAYOUTS["us"]),
    info_types=INFO_TYPES,
)

QUALYS_SCAN = CsvReader(
    name="qualys",
    title="Qualys VM scan report CSV",
    vendor="qualys",
    expected="Qualys (QID, Title, ...)",
    columns={
        "ip": ("IP",),
        "host": ("FQDN", "DNS"),
        "dns": ("DNS",),
        "plugin_id": ("QID",),
        "plugin_name": ("Title",),
        "state": ("Vuln Status",),
        "type": ("Type",),
        "severity": ("Severity",),
        "port": ("Port",),
        "protocol": ("Protocol",),
        "first_seen": ("First Detected",),
        "last_seen": ("Last Detected",),
        "cve": ("CVE ID",),
        "cvss_score": ("CVSS3 Base", "CVSS Base", "CVSS3", "CVSS"),
        "description": ("Threat", "Impact"),
        "solution": ("Solution",),
        "output": ("Results",),
    },
    required=(("plugin_id",), ("ip", "host"), ("plugin_name",)),
    signature=(("QID", "Title"), ("QID", "Vuln Status")),
    preamble=True,
    severity_scale=QUALYS_SCALE,
    severity_names=_NAMES,
    date_layouts=DATE_LAYOUTS["us"],
    info_types=INFO_TYPES,
)
