#!/usr/bin/env python3
"""Deterministic generator of realistic scan exports for tests and benchmarks.

    python benchmarks/generate.py --rows 100000 --format tenable -o /tmp/tenable_vulns_2025-11-20.csv

~2,000 hosts, ~500 plugins, 1-3 CVEs per finding, a severity mix, ~200-character description and solution
text with some embedded newlines and quotes. The same arguments always give the same bytes. Every row is a
distinct (host, plugin) finding up to hosts x plugins rows; ``--scan K`` (K >= 2) writes a later scan of the
same estate in which about 5 % of the findings are gone (fixed) and the rest are seen again.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from typing import IO, Iterator

HOSTS = 2000
PLUGINS = 500
FAMILIES = ["Windows", "Ubuntu Local Security Checks", "Web Servers", "Cisco", "Databases", "General", "Misc."]
SEVERITIES = [("Critical", 0.06), ("High", 0.22), ("Medium", 0.42), ("Low", 0.18), ("Info", 0.12)]
NESSUS_RISK = {"Critical": "Critical", "High": "High", "Medium": "Medium", "Low": "Low", "Info": "None"}
WORDS = (
    "remote attacker could exploit this vulnerability to execute arbitrary code bypass authentication "
    "escalate privileges read sensitive memory crafted request buffer overflow improper validation of "
    "input in the component affected versions prior to the vendor released patch service configuration"
).split()
OS_NAMES = ["Microsoft Windows Server 2019", "Ubuntu 22.04", "Red Hat Enterprise Linux 8", "Cisco IOS XE 17.3"]

TENABLE_HEADER = [
    "asset.id", "asset.name", "asset.display_ipv4_address", "asset.ipv4_addresses", "asset.operating_systems",
    "definition.id", "definition.name", "definition.family", "definition.cve", "definition.vpr.score",
    "definition.vpr_v2.score", "definition.description", "definition.solution", "definition.plugin_published",
    "definition.plugin_updated", "definition.vulnerability_published", "severity", "state", "first_seen",
    "last_seen",
]
NESSUS_HEADER = [
    "Plugin ID", "CVE", "CVSS v2.0 Base Score", "Risk", "Host", "Protocol", "Port", "Name", "Synopsis",
    "Description", "Solution", "See Also", "Plugin Output",
]
GENERIC_HEADER = [
    "hostname", "ip_address", "cve", "severity", "vpr_score", "cvss_score", "plugin_id", "plugin_name",
    "description", "solution", "state", "vendor", "first_seen", "last_seen",
]
_PAIRS = HOSTS * PLUGINS
_STRIDE = 7919  # prime, coprime with HOSTS * PLUGINS: i -> i * STRIDE mod PAIRS is a permutation


def _text(rng: random.Random, length: int) -> str:
    out: list[str] = []
    n = 0
    while n < length:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    s = " ".join(out)
    r = rng.random()
    if r < 0.08:
        s = s.replace(" the ", ' the "affected" ', 1)
    elif r < 0.16:
        cut = len(s) // 2
        s = s[:cut] + "\n" + s[cut:]
    return s[0].upper() + s[1:] + "."


class Estate:
    """Hosts and plugins, fixed by the seed."""

    def __init__(self, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.hosts = []
        for h in range(HOSTS):
            ip = f"10.{h // 65536 % 256}.{h // 256 % 256}.{h % 256}"
            extra = f",192.168.{h // 256 % 256}.{h % 256}" if h % 7 == 0 else ""
            self.hosts.append(
                (f"a{h:07d}-5c1e-4e7a-9f00-{h:012d}", f"host{h:05d}.corp.example.com", ip, ip + extra,
                 OS_NAMES[h % len(OS_NAMES)])
            )
        weights = [w for _, w in SEVERITIES]
        names = [s for s, _ in SEVERITIES]
        self.plugins = []
        for p in range(PLUGINS):
            ncve = rng.choice((1, 1, 1, 2, 2, 3))
            cves = [f"CVE-{2018 + rng.randrange(8)}-{rng.randrange(1000, 50000)}" for _ in range(ncve)]
            if p % 97 == 0:
                cves = [f"cisco-sa-{rng.randrange(10**7):07x}"]
            sev = rng.choices(names, weights)[0]
            if sev == "Info":
                cves = []
            self.plugins.append(
                dict(
                    id=str(10000 + p * 13),
                    name=f"{rng.choice(['Apache', 'OpenSSL', 'Microsoft', 'Cisco', 'Oracle', 'Linux kernel'])} "
                    f"{rng.choice(['Multiple Vulnerabilities', 'Remote Code Execution', 'Information Disclosure', 'DoS'])}"
                    + (f" ({cves[0]})" if cves and p % 5 == 0 else ""),
                    family=FAMILIES[p % len(FAMILIES)],
                    cves=cves,
                    severity=sev,
                    vpr=f"{rng.uniform(0.1, 9.9):.1f}" if sev != "Info" else "",
                    cvss=f"{rng.uniform(2.0, 10.0):.1f}" if sev != "Info" else "",
                    description=_text(rng, 200),
                    solution=_text(rng, 200),
                    published=f"20{18 + p % 8}-0{1 + p % 9}-1{p % 10}T00:00:00Z",
                )
            )

    def findings(self, rows: int, scan: int = 1) -> Iterator[tuple[tuple, dict, int]]:
        """(host, plugin, i) for each finding of scan ``scan``; later scans drop ~5 % deterministically."""
        emitted = 0
        i = 0
        while emitted < rows:
            idx = (i * _STRIDE) % _PAIRS
            i += 1
            if scan > 1 and (idx * 2654435761 + scan) % 100 < 5:
                continue
            emitted += 1
            yield self.hosts[idx // PLUGINS], self.plugins[idx % PLUGINS], idx


def write(out: IO[str], rows: int, fmt: str = "tenable", seed: int = 1, scan: int = 1) -> int:
    """Write ``rows`` CSV rows (excluding the header); returns the number of rows written."""
    estate = Estate(seed)
    w = csv.writer(out, lineterminator="\r\n")
    day = 20 + (scan - 1)
    first_seen, last_seen = "2025-10-01T08:00:00Z", f"2025-11-{day:02d}T08:00:00Z"
    n = 0
    if fmt == "tenable":
        w.writerow(TENABLE_HEADER)
        for host, pl, idx in estate.findings(rows, scan):
            state = "ACTIVE" if idx % 11 else "NEW"
            w.writerow((
                host[0], host[1], host[2], host[3], host[4], pl["id"], pl["name"], pl["family"],
                ",".join(pl["cves"]), pl["vpr"], pl["vpr"], pl["description"], pl["solution"], pl["published"],
                pl["published"], pl["published"], pl["severity"], state, first_seen, last_seen,
            ))
            n += 1
    elif fmt == "nessus":
        w.writerow(NESSUS_HEADER)
        for host, pl, idx in estate.findings(rows, scan):
            for cve in pl["cves"] or [""]:
                if n >= rows:
                    break
                w.writerow((
                    pl["id"], cve, pl["cvss"], NESSUS_RISK[pl["severity"]], host[2], "tcp", str(443 if idx % 3 else 22),
                    pl["name"], pl["name"] + " is affected.", pl["description"], pl["solution"],
                    "https://www.tenable.com/plugins/nessus/" + pl["id"], "Installed version : 1.2.3\nFixed version : 1.2.4",
                ))
                n += 1
            if n >= rows:
                break
    elif fmt == "generic":
        w.writerow(GENERIC_HEADER)
        for host, pl, idx in estate.findings(rows, scan):
            w.writerow((
                host[1], host[2], ",".join(pl["cves"]), pl["severity"], pl["vpr"], pl["cvss"], pl["id"], pl["name"],
                pl["description"], pl["solution"], "ACTIVE", "tenable", first_seen, last_seen,
            ))
            n += 1
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--format", choices=("tenable", "nessus", "generic"), default="tenable")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scan", type=int, default=1, help="scan number (2, 3, … drop ~5%% of the findings)")
    ap.add_argument("-o", "--out", default="-")
    a = ap.parse_args(argv)
    if a.out == "-":
        write(sys.stdout, a.rows, a.format, a.seed, a.scan)
    else:
        with open(a.out, "w", newline="", encoding="utf-8") as fh:
            write(fh, a.rows, a.format, a.seed, a.scan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
