#!/usr/bin/env python3
"""Deterministic Nessus v2 XML (``.nessus``) exports for tests and benchmarks.

    python benchmarks/generate_nessus.py --findings 100000 -o /tmp/scan_2025-11-20.nessus
    python benchmarks/generate_nessus.py --size 1GiB -o /tmp/big.nessus

``--findings N`` writes the same findings as ``generate.py --rows N --format nessus`` (the same estate, plugins,
severities and one record per CVE: N records in all), grouped by host as Nessus writes them, with the
HostProperties, the ReportItem attributes and children of a real export, and a Policy section before the
report. ``--size`` repeats the estate's hosts (renumbered, so every host is new) as long as the file stays within
that many bytes (a 1 GiB export fits the server's default upload limit). The same arguments always give the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO, Iterator
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import Estate  # noqa: E402

SEVERITY_NUMBER = {"Critical": "4", "High": "3", "Medium": "2", "Low": "1", "Info": "0"}
RISK = {"Critical": "Critical", "High": "High", "Medium": "Medium", "Low": "Low", "Info": "None"}

HEAD = """<?xml version="1.0" ?>
<NessusClientData_v2>
<Policy><policyName>Basic Network Scan</policyName>
<Preferences><ServerPreferences>
<preference><name>scan.enable_utf8_output</name><value>no</value></preference>
<preference><name>plugin_set</name><value>{plugins}</value></preference>
</ServerPreferences></Preferences>
</Policy>
<Report name="Benchmark scan" xmlns:cm="http://www.nessus.org/cm">
"""
TAIL = "</Report>\n</NessusClientData_v2>\n"


def _host_block(out: list[str], host: tuple, items: list[tuple[dict, int, list[str]]], number: int) -> None:
    _, fqdn, ip, _, os_name = host
    out.append(f'<ReportHost name="{ip}"><HostProperties>\n'
               f'<tag name="HOST_END_TIMESTAMP">1763625600</tag>\n'
               f'<tag name="HOST_END">Thu Nov 20 08:00:00 2025</tag>\n'
               f'<tag name="operating-system">{escape(os_name)}</tag>\n'
               f'<tag name="host-fqdn">{escape(fqdn)}</tag>\n'
               f'<tag name="netbios-name">HOST{number:05d}</tag>\n'
               f'<tag name="host-ip">{ip}</tag>\n'
               f'<tag name="HOST_START_TIMESTAMP">1763622000</tag>\n'
               f'<tag name="HOST_START">Thu Nov 20 07:00:00 2025</tag>\n'
               f'</HostProperties>\n')
    for pl, idx, cves in items:
        sev = pl["severity"]
        port = "443" if idx % 3 else "22"
        out.append(
            f'<ReportItem port="{port}" svc_name="{"www" if port == "443" else "ssh"}" protocol="tcp" '
            f'severity="{SEVERITY_NUMBER[sev]}" pluginID="{pl["id"]}" pluginName={quoteattr(pl["name"])} '
            f'pluginFamily={quoteattr(pl["family"])}>\n'
            f'<description>{escape(pl["description"])}</description>\n'
            f'<fname>plugin_{pl["id"]}.nasl</fname>\n'
            f'<plugin_name>{escape(pl["name"])}</plugin_name>\n'
            f'<plugin_publication_date>2024/01/10</plugin_publication_date>\n'
            f'<plugin_type>remote</plugin_type>\n'
            f'<risk_factor>{RISK[sev]}</risk_factor>\n'
            f'<solution>{escape(pl["solution"])}</solution>\n'
            f'<synopsis>{escape(pl["name"])} is affected.</synopsis>\n'
            + (f'<cvss_base_score>{pl["cvss"]}</cvss_base_score>\n' if pl["cvss"] else "")
            + (f'<vpr_score>{pl["vpr"]}</vpr_score>\n' if pl["vpr"] else "")
            + "".join(f"<cve>{c}</cve>\n" for c in cves)
            + f'<see_also>https://www.tenable.com/plugins/nessus/{pl["id"]}</see_also>\n'
            f'<plugin_output>Installed version : 1.2.3\nFixed version : 1.2.4</plugin_output>\n'
            f'</ReportItem>\n')
    out.append("</ReportHost>\n")


def _grouped(estate: Estate, findings: int) -> Iterator[tuple[int, list[tuple[dict, int, list[str]]]]]:
    """(host number, its items) with exactly ``findings`` records (one per CVE), as generate.py's Nessus CSV."""
    per_host: dict[int, list[tuple[dict, int, list[str]]]] = {}
    n = 0
    for _, pl, idx in estate.findings(findings):
        cves = list(pl["cves"])[: findings - n] if pl["cves"] else []
        n += max(1, len(cves))
        per_host.setdefault(idx // len(estate.plugins), []).append((pl, idx, cves))
        if n >= findings:
            break
    for h in sorted(per_host):
        yield h, per_host[h]


def write(out: IO[str], findings: int = 0, size: int = 0, seed: int = 1) -> int:
    """Write the export; returns the number of records (findings, one per CVE) it holds."""
    estate = Estate(seed)
    out.write(HEAD.format(plugins=";".join(p["id"] for p in estate.plugins)))
    records = 0
    written = len(HEAD)
    if findings:
        for h, items in _grouped(estate, findings):
            block: list[str] = []
            _host_block(block, estate.hosts[h], items, h)
            out.write("".join(block))
            records += sum(max(1, len(c)) for _, _, c in items)
    else:
        # every host with a fixed fifth of the plugins, hosts renumbered until the size is reached
        number = 0
        while True:
            base = estate.hosts[number % len(estate.hosts)]
            ip = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
            host = (base[0], f"host{number:07d}.corp.example.com", ip, ip, base[4])
            items = [(pl, number + p, list(pl["cves"])) for p, pl in enumerate(estate.plugins) if (p + number) % 5 == 0]
            block = []
            _host_block(block, host, items, number)
            text = "".join(block)
            if written + len(text.encode()) + len(TAIL) > size:
                break
            out.write(text)
            written += len(text.encode())
            records += sum(max(1, len(c)) for _, _, c in items)
            number += 1
    out.write(TAIL)
    return records


def _size(text: str) -> int:
    units = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "": 1}
    t = text.strip().upper()
    for unit in ("KIB", "MIB", "GIB"):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * units[unit])
    return int(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--findings", type=int, default=0, help="records (one per CVE), as generate.py --rows")
    g.add_argument("--size", type=_size, default=0, help="at most this many bytes (e.g. 1GiB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--out", default="-")
    a = ap.parse_args(argv)
    findings = a.findings or (0 if a.size else 1000)
    if a.out == "-":
        write(sys.stdout, findings, a.size, a.seed)
    else:
        with open(a.out, "w", encoding="utf-8", newline="") as fh:
            write(fh, findings, a.size, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
