"""Greenbone / OpenVAS CSV results export."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader

# Severity High/Medium/Low/Log (Log = informational); newer releases also write Critical.
OPENVAS_SCALE = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "log": "Info",
                 "none": "Info", "debug": "Info", "false positive": "Info"}

OPENVAS_CSV = CsvReader(
    name="openvas",
    title="Greenbone/OpenVAS CSV",
    vendor="openvas",
    expected="OpenVAS (IP, NVT OID, Severity, ...)",
    columns={
        "ip": ("IP",),
        "host": ("Hostname",),
        "port": ("Port",),
        "protocol": ("Port Protocol",),
        "cvss_score": ("CVSS",),
        "severity": ("Severity",),
        "plugin_name": ("NVT Name",),
        "description": ("Summary", "Vulnerability Insight"),
        "output": ("Specific Result",),
        "plugin_id": ("NVT OID",),
        "cve": ("CVEs",),
        "last_seen": ("Timestamp",),
        "solution": ("Solution",),
    },
    required=(("plugin_id", "plugin_name"), ("ip", "host"), ("severity",)),
    signature=(("NVT OID",), ("NVT Name",)),
    severity_scale=OPENVAS_SCALE,
    severity_names="Critical, High, Medium, Low, Log",
)
