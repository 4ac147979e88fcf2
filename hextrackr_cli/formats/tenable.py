"""Tenable Vulnerability Management (Tenable.io) exports."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.records import TENABLE

# The "vulnerabilities" export: asset.* / definition.* columns.
TENABLE_VM = CsvReader(
    name=TENABLE,
    title="Tenable VM export",
    vendor="tenable",
    expected="Tenable VM (asset.name, definition.id, definition.cve, severity, ...)",
    columns={
        "asset_id": ("asset.id",),
        "host": ("asset.name",),
        "ip": ("asset.display_ipv4_address",),
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
    },
    required=(("plugin_id",), ("host", "ip", "ips", "asset_id")),
)
