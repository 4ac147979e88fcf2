"""Real CSV exports (tests/data/real/*.csv, DefectDojo's parser corpus, BSD-3-Clause; see SOURCES): each file is read
with the right format and yields at least the findings the file holds, or is a clean scan, or is refused with one
line and the data unchanged.

What each file holds is counted here with the stdlib csv module and the column names of FORMATS.md (the family's
host, address, plugin and CVE columns), never with the package's own readers.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from support import faults as S
from hextrackr_cli import formats

REAL = Path(__file__).resolve().parent.parent / "data" / "real"

# family -> (host name columns, address columns, plugin column, CVE column), as FORMATS.md names them
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str]] = {
    "tenable": (("asset.name", "asset.host_name"), ("asset.display_ipv4_address", "asset.ipv4_addresses"),
                "definition.id", "definition.cve"),
    "tenable-workbench": (("Host",), ("IP Address",), "Plugin ID", "CVE"),
    "nessus": (("Host",), (), "Plugin ID", "CVE"),
    "tenable-sc": (("DNS Name",), ("IP Address",), "Plugin", "CVE"),
    "qualys": (("FQDN", "DNS"), ("IP",), "QID", "CVE ID"),
    "qualys-vmdr": (("Asset Name",), ("Asset IPV4",), "QID", "CVE"),
    "qualys-pci": (("HOSTNAME",), ("IP",), "QID", "CVEID"),
    "openvas": (("Hostname",), ("IP",), "NVT OID", "CVEs"),
    "generic": (("hostname", "Host"), ("ip_address", "IP Address"), "plugin_id", "CVE"),
}

ASSET_ID = {"tenable": ("asset.id",), "qualys-vmdr": ("Asset Id",)}

# file -> the format it is, or "refuse" (the reason's words). The family of a file is known from where its
# repository keeps it and from its header; the refusals are exports of other tools and one damaged file.
EXPECT: dict[str, str] = {
    "openvas_many_vuln.csv": "openvas",
    "openvas_no_vuln.csv": "openvas",
    "openvas_one_vuln.csv": "openvas",
    "openvas_report_combine_v2.csv": "openvas",
    "openvas_report_detail_v2.csv": "openvas",
    "openvas_report_using_CVE.csv": "openvas",
    "openvas_report_using_openVAS.csv": "openvas",
    "qualys_Qualys_Sample_Report.csv": "qualys",
    "qualys_empty.csv": "qualys",
    "qualys_monthly_pci_issue6932.csv": "qualys-pci",
    "qualys_hacker_guardian_many_finding.csv": "qualys-pci",
    "qualys_hacker_guardian_one_finding.csv": "qualys-pci",
    "qualys_hacker_guardian_zero_finding.csv": "qualys-pci",
    "qualys_vmdr_many_vulns_cve.csv": "qualys-vmdr",
    "qualys_vmdr_many_vulns_qid.csv": "qualys-vmdr",
    "qualys_vmdr_no_vuln_cve.csv": "qualys-vmdr",
    "qualys_vmdr_no_vuln_no_metadata_cve.csv": "qualys-vmdr",
    "qualys_vmdr_no_vuln_qid.csv": "qualys-vmdr",
    "qualys_vmdr_one_vuln_cve.csv": "qualys-vmdr",
    "qualys_vmdr_one_vuln_no_metadata_cve.csv": "qualys-vmdr",
    "qualys_vmdr_one_vuln_qid.csv": "qualys-vmdr",
    "tenable_issue_11102.csv": "tenable-sc",
    "tenable_issue_9612.csv": "tenable-sc",
    "tenable_nessus_nessus_many_vuln.csv": "tenable-sc",  # kept under nessus/ but a Tenable.sc list export
    "tenable_nessus_nessus_many_vuln2-all.csv": "nessus",
    "tenable_nessus_nessus_many_vuln2-default.csv": "nessus",
    "tenable_nessus_nessus_new.csv": "tenable",  # ';'-delimited, one blank column name
    "tenable_nessus_was_nessus_was_many_vuln.csv": "nessus",
    "tenable_nessus_was_nessus_was_no_vuln.csv": "nessus",
    "tenable_nessus_was_nessus_was_one_vuln.csv": "nessus",
    "tenable_tenable_many_vuln.csv": "tenable-workbench",  # two blank column names, trailing empty rows
    # its scores lost their decimal point ("CVSS v3.0 Base Score" 75): refused naming the column, not guessed
    "tenable_nessus_nessus-template.csv": "refuse:out of range",
    # another tool, but with HexTrackr's generic IP Address + CVE columns: read as generic, whose dates are ISO
    "alertlogic_many_vulns.csv": "refuse:is not a date",
    "alertlogic_no_vuln.csv": "generic",
    "aws_prowler_many_vuln.csv": "refuse:unknown columns",
    "cloudflare_insights_many_findings.csv": "refuse:unknown columns",
    "contrast_ldap-multiple.csv": "refuse:unknown columns",
    "generic_generic_csv_defect_dojo.csv": "refuse:unknown columns",
    "generic_generic_report4.csv": "refuse:unknown columns",
    "h1_bug_bounty_many.csv": "refuse:unknown columns",
    "solar_appscreener_solar_appscreener_many_vul.csv": "refuse:unknown columns",
    "sysdig_reports_sysdig_reports_many_vul.csv": "refuse:unknown columns",
}
FILES = sorted(EXPECT)

# family -> (severity column, type column or "", FORMATS.md's scale: the file's value (lower-case) -> level)
_WORDS = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "info": "Info", "none": "Info"}
_QUALYS = {"5": "Critical", "4": "High", "3": "Medium", "2": "Low", "1": "Info", "urgent": "Critical",
           "serious": "High", "minimal": "Info", "c": "Critical", "h": "High", "m": "Medium", "l": "Low", **_WORDS}
SEVERITY: dict[str, tuple[str, str, dict[str, str]]] = {
    "tenable": ("severity", "", _WORDS),
    "tenable-workbench": ("Risk", "", _WORDS),
    "nessus": ("Risk", "", _WORDS),
    "tenable-sc": ("Severity", "", _WORDS),
    "qualys": ("Severity", "Type", _QUALYS),
    "qualys-vmdr": ("Severity", "Type Detected", _QUALYS),
    "qualys-pci": ("SEVERITY", "TYPE", _QUALYS),
    "openvas": ("Severity", "", {**_WORDS, "log": "Info"}),
}
INFO_TYPES = {"info", "ig", "information", "information gathered"}  # Qualys: information gathered
_SPLIT = re.compile(r"[,\s;]+")


def test_every_real_csv_is_in_the_table_and_named_in_sources() -> None:
    on_disk = {p.name for p in REAL.glob("*.csv")}
    assert on_disk == set(EXPECT), on_disk ^ set(EXPECT)
    sources = (REAL / "SOURCES").read_text()
    for name in on_disk:
        assert re.search(rf"^{re.escape(name)}\tDefectDojo/django-DefectDojo\tunittests/scans/\S+\t[0-9a-f]{{40}}\t"
                         r"BSD-3-Clause$", sources, re.M), name
    assert len(list(REAL.iterdir())) >= 40


def rows_of(path: Path, columns: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    """Header and data rows: the header is the first row naming two of the columns (a preamble comes before)."""
    text = path.read_text(encoding="utf-8-sig")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    wanted = {c.lower() for c in columns}
    at = next(i for i, r in enumerate(rows) if len(wanted & {c.strip().lower() for c in r}) >= 2)
    return [c.strip() for c in rows[at]], [r for r in rows[at + 1:] if any(c.strip() for c in r)]


def empty_rows(path: Path) -> int:
    """Rows after the header whose every field is empty but which have fields (",,,,,")."""
    text = path.read_text(encoding="utf-8-sig")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return sum(1 for r in rows[1:] if len(r) > 1 and not any(c.strip() for c in r))


def held(path: Path, family: str) -> tuple[set, set]:
    """(host, plugin) pairs, and the findings HexTrackr keeps apart (FORMATS.md's dedup tiers): (asset id, plugin,
    CVE) where the file has asset ids, else (host, CVE) for each CVE, else (host, plugin)."""
    names, addresses, plugin, cve = COLUMNS[family]
    header, rows = rows_of(path, (*names, *addresses, plugin, cve))
    where = {h.lower(): i for i, h in reversed(list(enumerate(header)))}

    def cell(row: list[str], *cols: str) -> str:
        for c in cols:
            i = where.get(c.lower())
            if i is not None and i < len(row) and row[i].strip():
                return row[i].strip().split(",")[0].strip().lower()
        return ""

    pairs, findings = set(), set()
    for row in rows:
        host = cell(row, *names) or cell(row, *addresses)
        pid = cell(row, plugin)
        pairs.add((host, pid))
        i = where.get(cve.lower())
        cves = [c for c in _SPLIT.split(row[i]) if c] if i is not None and i < len(row) else []
        asset = cell(row, *ASSET_ID.get(family, ()))
        if asset and pid:
            findings.update((asset, pid, c.upper()) for c in cves or [""])
        elif cves:
            findings.update((host, c.upper()) for c in cves)
        else:
            findings.add((host, pid))
    return pairs, findings


@pytest.mark.parametrize("name", FILES)
def test_real_csv_is_read_with_its_format_and_every_finding(name: str) -> None:
    data = (REAL / name).read_bytes()
    expect = EXPECT[name]
    if expect.startswith("refuse:"):
        with pytest.raises((formats.FormatError, formats.RowError)) as exc:
            fmt = formats.detect(data[:formats.HEAD_BYTES], complete=len(data) < formats.HEAD_BYTES)
            list(fmt.read(io.BytesIO(data)))
        assert expect.split(":", 1)[1] in str(exc.value) and "\n" not in str(exc.value)
        return
    fmt = formats.detect(data[:formats.HEAD_BYTES], complete=len(data) < formats.HEAD_BYTES)
    assert fmt.name == expect
    found = list(fmt.read(io.BytesIO(data)))
    pairs, _ = held(REAL / name, expect)
    assert len(found) >= len(pairs)
    ours = {(f.host or f.ip, f.plugin_id.lower()) for f in found} | {(f.ip, f.plugin_id.lower()) for f in found}
    assert pairs <= ours, pairs - ours
    assert all(f.severity in formats.SEVERITY_LEVELS for f in found)
    assert all(f.line > fmt.header_line for f in found)
    # every row's severity on the family's scale, and the file's own value kept
    if expect in SEVERITY:
        column, type_column, scale = SEVERITY[expect]
        header, rows = rows_of(REAL / name, (*COLUMNS[expect][0], *COLUMNS[expect][1], COLUMNS[expect][2]))
        at = {h.lower(): i for i, h in enumerate(header)}
        levels = Counter()
        for row in rows:
            raw = row[at[column.lower()]].strip()
            info = type_column and row[at[type_column.lower()]].strip().lower() in INFO_TYPES
            levels["Info" if info else scale[raw.lower()]] += 1
        by_line = {f.line: f for f in found}
        assert Counter(f.severity for f in by_line.values()) == levels
        assert Counter(f.severity_raw.lower() for f in by_line.values()) == Counter(
            row[at[column.lower()]].strip().lower() for row in rows)
    # rows of empty fields (a spreadsheet's save) are skipped and counted
    assert fmt.stats.empty_rows == empty_rows(REAL / name)


# --------------------------------------------------------------------------- end to end: CLI + embedded server
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from hextrackr_cli.server.app import start_background

    home = tmp_path_factory.mktemp("real-csv")
    srv = start_background(database=f"sqlite:///{home / 'hextrackr.db'}", tokens=[S.TOKEN])
    try:
        yield srv, home
    finally:
        srv.stop()


def snapshot(db: Path) -> tuple:
    return S.count(db), S.count(db, "vulnerabilities", "status = 'open'")


@pytest.mark.parametrize("name", FILES)
def test_real_csv_imports_or_is_a_clean_scan_or_is_refused_in_one_line(name: str, server) -> None:
    srv, home = server
    expect = EXPECT[name]
    before = snapshot(srv.db_path)
    r = S.run_cli(["--output", "json", "import", str(REAL / name)], S.cli_env(home, srv.url))
    out, err = r.stdout.decode(), r.stderr.decode()
    assert "Traceback" not in err
    if expect.startswith("refuse:"):
        lines = [line for line in err.splitlines() if line.strip()]
        assert r.returncode in (1, 2) and len(lines) == 1 and expect.split(":", 1)[1] in lines[0], err
        assert snapshot(srv.db_path) == before
        return
    summary = [json.loads(line) for line in out.splitlines() if line.startswith("{")][-1]
    pairs, findings = held(REAL / name, expect)
    assert r.returncode == 0, err
    assert summary["format"] == expect
    assert summary["emptyRows"] == empty_rows(REAL / name)
    if not pairs:  # a clean scan: completes, changes nothing
        assert summary["records"] == 0 and snapshot(srv.db_path) == before
    else:
        assert summary["records"] >= len(findings), (summary, len(findings))
