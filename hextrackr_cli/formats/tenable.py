"""Tenable Vulnerability Management (Tenable.io): the "vulnerabilities" export and the workbench CSV."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.records import TENABLE

# The "vulnerabilities" export: asset.* / definition.* columns (seen ';'-delimited, with a blank column name).
TENABLE_VM = CsvReader(
    name=TENABLE,
    title="Tenable VM export",
    vendor="tenable",
    expected="Tenable VM (asset.name, definition.id, ...)",
    columns={
        "asset_id": ("asset.id",),
        "host": ("asset.name", "asset.host_name", "asset.display_fqdn"),
        "dns": ("asset.display_fqdn",),
        "ip": ("asset.display_ipv4_address",),
        "ips": ("asset.ipv4_addresses",),
        "plugin_id": ("definition.id",),
        "plugin_name": ("definition.name",),
        "cve": ("definition.cve",),
        "vpr_score": ("definition.vpr.score", "definition.vpr_v2.score"),
        "cvss_score": ("definition.cvss3.base_score", "definition.cvss2.base_score"),
        "description": ("definition.description", "definition.synopsis"),
        "solution": ("definition.solution",),
        "severity": ("severity",),
        "state": ("state",),
        "port": ("port",),
        "protocol": ("protocol",),
        "first_seen": ("first_seen", "first_observed"),
        "last_seen": ("last_seen",),
        "output": ("output",),
    },
    required=(("plugin_id",), ("host", "ip", "ips", "asset_id")),
    signature=(("definition.id",), ("definition.name", "asset.id")),
)

# The workbench "Vulnerabilities" CSV: Nessus-like columns plus Vulnerability State, IP Address, FQDN, ...
TENABLE_WORKBENCH = CsvReader(
    name="tenable-workbench",
    title="Tenable VM workbench CSV",
    vendor="tenable",
    expected="",
    columns={
        "plugin_id": ("Plugin ID",),
        "cve": ("CVE",),
        "cvss_score": ("CVSS3 Base Score", "CVSS Base Score", "CVSS"),
        "vpr_score": ("Vulnerability Priority Rating (VPR)", "VPR Score"),
        "severity": ("Risk", "Risk Factor"),
        "host": ("Host",),
        "dns": ("FQDN",),
        "ip": ("IP Address",),
        "asset_id": ("Asset UUID",),
        "protocol": ("Protocol",),
        "port": ("Port",),
        "plugin_name": ("Name",),
        "description": ("Description", "Synopsis"),
        "solution": ("Solution",),
        "output": ("Plugin Output",),
        "state": ("Vulnerability State",),
        "first_seen": ("First Found",),
        "last_seen": ("Last Found",),
    },
    required=(("plugin_id",), ("host", "ip"), ("severity",), ("state",)),
    signature=(("Plugin ID", "Vulnerability State"),),
)
