"""HexTrackr's generic columns (hand-made or converted files): tried last, after every vendor's signature."""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import CsvReader
from hextrackr_cli.formats.records import GENERIC

GENERIC_CSV = CsvReader(
    name=GENERIC,
    title="generic HexTrackr columns",
    vendor="generic",
    expected="generic (hostname or ip_address, cve or plugin_id, ...)",
    columns={
        "host": ("hostname", "Host", "Hostname", "host"),
        "ip": ("ip_address", "IP Address", "ip"),
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
    },
    required=(("host", "ip"), ("cve", "plugin_id")),
)
