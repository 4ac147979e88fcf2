"""Nessus CSV exports (Nessus Professional / Essentials 8-10, every column set, and Tenable WAS)."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.records import NESSUS

# Default 13 columns, "all columns", Nessus 10's CVSS v2.0/v4.0/VPR/EPSS, WAS's CVSSv3 and lower-case risks.
# Risk "None" is informational (host discovery, service detection).
NESSUS_CSV = CsvReader(
    name=NESSUS,
    title="Nessus CSV",
    vendor="nessus",
    expected="Nessus (Plugin ID, Risk, Host, ...)",
    columns={
        "plugin_id": ("Plugin ID",),
        "cve": ("CVE",),
        "cvss_score": ("CVSS v3.0 Base Score", "CVSSv3", "CVSS v2.0 Base Score", "CVSS"),
        "vpr_score": ("VPR Score",),
        "severity": ("Risk", "Risk Factor"),
        "host": ("Host",),
        "dns": ("DNS Name",),
        "protocol": ("Protocol",),
        "port": ("Port",),
        "plugin_name": ("Name",),
        "description": ("Description", "Synopsis"),
        "solution": ("Solution",),
        "output": ("Plugin Output",),
    },
    required=(("plugin_id",), ("host",), ("severity",)),
    signature=(("Plugin ID", "Risk"), ("Plugin ID", "Plugin Output")),
)
