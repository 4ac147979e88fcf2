"""Nessus CSV exports (Nessus Professional / Essentials, Tenable WAS)."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.records import NESSUS

NESSUS_CSV = CsvReader(
    name=NESSUS,
    title="Nessus / Tenable.sc export",
    vendor="nessus",
    expected="Nessus (Plugin ID, CVE, Risk, Host, Name, ...)",
    columns={
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
    },
    required=(("plugin_id",), ("host",), ("severity",)),
)
