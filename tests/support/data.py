"""Deterministic CSV generators: the same arguments always give the same bytes."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any, Iterable

# the generic format's columns as gen_csv writes them
HEADER = "hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,first_seen,last_seen\n"
TENABLE_HEADER = [
    "asset.id", "asset.name", "asset.display_ipv4_address", "asset.ipv4_addresses", "asset.operating_systems",
    "definition.id", "definition.name", "definition.family", "definition.cve", "definition.vpr.score",
    "definition.vpr_v2.score", "definition.description", "definition.solution", "definition.plugin_published",
    "definition.plugin_updated", "definition.vulnerability_published", "severity", "state", "first_seen",
    "last_seen",
]
GENERIC_HEADER = ["hostname", "ip_address", "cve", "severity", "vpr_score", "plugin_id", "plugin_name", "state",
                  "first_seen", "last_seen"]
GENERIC_CSV = (
    "hostname,ip_address,cve,severity,vpr_score,plugin_id,plugin_name,state,first_seen,last_seen\n"
    "web01,10.0.0.1,\"CVE-2024-0001,CVE-2024-0002\",High,7.5,1001,OpenSSL bug,ACTIVE,2025-01-01,2025-11-20\n"
    "web02,10.0.0.2,CVE-2024-0003,Low,1.0,1002,Banner leak,ACTIVE,2025-01-01,2025-11-20\n"
)


def gen_csv(path: Path, rows: int, *, offset: int = 0, hosts: int = 5000, tag: str = "") -> Path:
    """A generic-format scan: ``rows`` findings, each a distinct record (host x CVE) numbered from ``offset``;
    ``tag`` is appended to every plugin name (a changed scan of the same records)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in range(offset, offset + rows):
            h = i % hosts
            f.write(
                f"host{h}.example.com,10.{h // 250 % 250}.{h % 250}.{i % 200 + 1},CVE-2024-{10000 + i},High,"
                f"{20000 + i},Plugin {i}{tag},Description {i},Patch,ACTIVE,2025-10-01,2025-11-20\n"
            )
    return path


def tenable_rows(n: int, *, seed: int = 1, hosts: int = 500, date: str = "2025-11-20") -> Iterable[list[str]]:
    """``n`` Tenable VM export rows: each row a distinct finding (asset x plugin), some with several CVEs."""
    rnd = random.Random(seed)
    sev = ["Critical", "High", "Medium", "Low", "Info"]
    for i in range(n):
        h = i % hosts
        plugin = 100000 + i // hosts
        ncve = 1 if i % 7 else 2
        cves = ",".join(f"CVE-20{20 + (plugin + k) % 5}-{(plugin * 3 + k) % 90000 + 10000}" for k in range(ncve))
        yield [
            f"a{h:05d}-0000-4000-8000-{h:012d}", f"host{h:05d}.corp.example", f"10.{h // 65536}.{h // 256 % 256}.{h % 256}",
            f"10.{h // 65536}.{h // 256 % 256}.{h % 256}", "Linux", str(plugin), f"Plugin {plugin} vulnerability",
            "General", cves, f"{rnd.random() * 10:.1f}", f"{rnd.random() * 10:.1f}",
            f"Description of plugin {plugin}, with a comma and \"quotes\".", "Upgrade the package.",
            "2024-01-01", "2025-01-01", "2023-06-01", sev[(i * 31) % 5], "ACTIVE", "2025-01-15", date,
        ]


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_tenable_csv(path: Path, n: int, **kw: Any) -> Path:
    return write_csv(path, TENABLE_HEADER, tenable_rows(n, **kw))
