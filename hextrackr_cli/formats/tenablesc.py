"""Tenable Security Center (Tenable.sc) CSV: the "Vulnerability List" / "Vulnerability Detail List" exports."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.values import DATE_LAYOUTS

TENABLE_SC = CsvReader(
    name="tenable-sc",
    title="Tenable.sc vulnerability list",
    vendor="tenable",
    expected="Tenable.sc (Plugin, Plugin Name, ...)",
    columns={
        "plugin_id": ("Plugin",),
        "plugin_name": ("Plugin Name",),
        "severity": ("Severity",),
        "ip": ("IP Address",),
        "host": ("DNS Name",),
        "protocol": ("Protocol",),
        "port": ("Port",),
        "output": ("Plugin Output", "Plugin Text"),
        "description": ("Description", "Synopsis"),
        "solution": ("Solution", "Steps to Remediate"),
        "vpr_score": ("Vulnerability Priority Rating", "VPR"),
        "cvss_score": ("CVSS V3 Base Score", "CVSS V2 Base Score"),
        "cve": ("CVE",),
        "first_seen": ("First Discovered",),
        "last_seen": ("Last Observed",),
    },
    required=(("plugin_id",), ("ip", "host", "dns")),
    signature=(("Plugin", "Plugin Name"),),
    refuse=((("Plugin", "Total", "Host Total"),
             "this is a Tenable.sc \"Vulnerability Summary\" export, which names no hosts; export the"
             " \"Vulnerability List\" (or \"Vulnerability Detail List\") instead"),),
    date_layouts=DATE_LAYOUTS["tenable.sc"],
)
