""".nessus (Nessus v2 XML) exports: the real corpus reads with the right counts and severities; what XML can carry
against us (DTDs, entities, deep nesting, huge tokens, truncation) is refused with one line and nothing stored."""

from __future__ import annotations

import io
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from support.cli import run_cli
from support.cli_suite import cli_env
from support.fixtures import server  # noqa: F401
from hextrackr_cli import formats
from hextrackr_cli.formats import NESSUS_XML, FormatError, RowError, detect

REAL = Path(__file__).parent.parent / "data" / "real"
# the Nessus v2 XML exports of the corpus: Tenable's XML files (other vendors' XML is not this format)
NESSUS_FILES = sorted(REAL / line.split("\t")[0] for line in (REAL / "SOURCES").read_text().splitlines()
                      if "\tunittests/scans/tenable/" in line and line.split("\t")[0].endswith((".nessus", ".xml")))
# the scale Nessus documents for the ReportItem severity attribute
LEVEL = {"0": "Info", "1": "Low", "2": "Medium", "3": "High", "4": "Critical"}


def expected(path: Path) -> dict:
    """What the file holds, read with xml.etree (whole tree, trusted test data): not our reader."""
    root = ET.parse(path).getroot()
    pairs: set[tuple[str, str]] = set()
    severities: set[tuple[str, str, str]] = set()
    records = 0
    for host in root.iter("ReportHost"):
        for item in host.iter("ReportItem"):
            pairs.add((host.get("name", ""), item.get("pluginID", "")))
            severities.add((item.get("pluginID", ""), LEVEL[item.get("severity", "")], item.get("severity", "")))
            records += max(1, len({c.text for c in item.findall("cve")}))
    return {"root": root.tag, "pairs": pairs, "severities": severities, "records": records}


def read_all(data: bytes) -> list:
    fmt = detect(data[: formats.HEAD_BYTES], "vulnerabilities", complete=len(data) < formats.HEAD_BYTES)
    assert fmt.name == NESSUS_XML
    return list(fmt.read(io.BytesIO(data)))


def test_the_corpus_has_the_real_nessus_files_with_their_sources():
    sources = (REAL / "SOURCES").read_text()
    assert len(NESSUS_FILES) >= 8
    for p in NESSUS_FILES:
        line = next(ln for ln in sources.splitlines() if ln.startswith(p.name + "\t"))
        _, repo, path, commit, licence = line.split("\t")
        assert repo == "DefectDojo/django-DefectDojo" and path.endswith(p.name)
        assert len(commit) == 40 and licence == "BSD-3-Clause"


@pytest.mark.parametrize("path", NESSUS_FILES, ids=lambda p: p.name)
def test_every_real_nessus_file_reads_every_finding_with_its_severity(path):
    want = expected(path)
    assert want["root"] == "NessusClientData_v2"
    found = read_all(path.read_bytes())
    # one record per ReportItem and CVE; each (host, plugin) of the file is there with the severity it gave
    assert len(found) == want["records"]
    hosts = {f.record: f for f in found}
    assert len(hosts) == sum(1 for _ in ET.parse(path).getroot().iter("ReportItem"))
    assert {(f.plugin_id, f.severity, f.severity_raw) for f in found} == want["severities"]
    assert len({(f.host or f.ip, f.plugin_id) for f in found}) == len(want["pairs"])
    for f in found:
        assert f.host or f.ip
        assert f.plugin_name and f.plugin_id.isdigit()


def test_host_properties_give_address_name_and_scan_date():
    found = read_all((REAL / "nessus_with_cvssv3.nessus").read_bytes())
    f = found[0]
    assert (f.host, f.ip, f.last_seen) == ("testphp.vulnweb.com", "44.228.249.3", "2022-03-23")
    with_cve = [f for f in found if f.cve]
    assert with_cve and all(f.cve.startswith("CVE-") for f in with_cve)
    assert any(f.cvss_score is not None for f in found)


def test_a_was_target_url_becomes_its_host_name():
    found = read_all((REAL / "nessus_was_one_vuln.xml").read_bytes())
    assert [(f.host, f.ip, f.severity, f.plugin_id) for f in found] == [("google.com", "", "High", "98104")]


def test_a_scan_without_findings_reads_as_no_records():
    assert read_all((REAL / "nessus_was_no_vuln.xml").read_bytes()) == []


def test_the_line_of_each_record_is_where_its_report_item_starts():
    data = (REAL / "nessus_many_vuln.xml").read_bytes()
    lines = data.decode().splitlines()
    for f in read_all(data):
        assert lines[f.line - 1].lstrip().startswith("<ReportItem")


ONE = (b'<?xml version="1.0" ?>\n<NessusClientData_v2><Report name="r"><ReportHost name="10.0.0.1"><HostProperties>'
       b'<tag name="host-ip">10.0.0.1</tag></HostProperties>\n'
       b'<ReportItem port="22" protocol="tcp" severity="SEV" pluginID="1" pluginName="n"><cve>CVE-2024-1</cve>'
       b'</ReportItem></ReportHost></Report></NessusClientData_v2>\n')


def test_a_severity_off_the_nessus_scale_names_record_line_and_attribute():
    with pytest.raises(RowError) as err:
        read_all(ONE.replace(b"SEV", b"7"))
    assert str(err.value) == 'record 1 (line 3): attribute "severity" is not a Nessus severity (0 to 4): "7"'


XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE NessusClientData_v2 [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       b'<NessusClientData_v2><Report><ReportHost name="h">&xxe;</ReportHost></Report></NessusClientData_v2>')
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10))
          + b']>\n<NessusClientData_v2>&lol9;</NessusClientData_v2>')


@pytest.mark.parametrize("data", [XXE, LAUGHS, b'<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd"><x/>'],
                         ids=["xxe", "billion-laughs", "external-dtd"])
def test_dtds_and_entities_are_refused_at_detection(data):
    with pytest.raises(FormatError) as err:
        detect(data, "vulnerabilities", complete=True)
    assert "document type declaration" in str(err.value) and "\n" not in str(err.value)


def test_an_undeclared_entity_in_the_body_is_refused_not_expanded():
    with pytest.raises(RowError, match="undeclared entity"):
        read_all(ONE.replace(b'pluginName="n"', b'pluginName="&x;"'))


def test_nesting_deeper_than_any_export_is_refused():
    deep = ONE.replace(b"</Report>", b"<a>" * 100 + b"</a>" * 100 + b"</Report>")
    with pytest.raises(RowError, match="nests deeper than 32"):
        read_all(deep)


def test_one_huge_comment_or_text_is_refused_before_it_is_kept_whole():
    huge_comment = ONE.replace(b"<Report ", b"<!--" + b"x" * (3 << 20) + b"--><Report ")
    with pytest.raises(RowError, match="longer than 1 MiB"):
        read_all(huge_comment)
    huge_text = ONE.replace(b"<cve>CVE-2024-1</cve>", b"<description>" + b"y" * (2 << 20) + b"</description>")
    with pytest.raises(RowError, match="element <description> is longer than 1 MiB"):
        read_all(huge_text)


def test_a_truncated_file_is_one_line_naming_where_it_ends():
    good = (REAL / "nessus_many_vuln.xml").read_bytes()
    with pytest.raises(RowError) as err:
        read_all(good[: len(good) // 2])
    assert "truncated file" in str(err.value) or "not well-formed" in str(err.value)


def test_another_xml_root_is_not_taken_for_nessus():
    with pytest.raises(FormatError, match="root element <NessusClientData>"):
        detect(b'<?xml version="1.0"?><NessusClientData><Report/></NessusClientData>', "vulnerabilities",
               complete=True)


# ------------------------------------------------------------------ end to end (real CLI, real embedded server)
def test_a_real_nessus_file_imports_through_the_cli_with_its_severities(tmp_path, server):  # noqa: F811
    path = REAL / "nessus_with_cvssv3.nessus"
    want = expected(path)
    env = cli_env(tmp_path, server.url)
    done = run_cli(["import", str(path)], env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    conn = sqlite3.connect(tmp_path / "server.db")
    try:
        stored = conn.execute("SELECT plugin_id, severity, hostname, ip_address FROM vulnerabilities").fetchall()
        fmt = conn.execute("SELECT format FROM imports").fetchone()[0]
    finally:
        conn.close()
    assert fmt == NESSUS_XML
    assert {(pid, sev) for pid, sev, _, _ in stored} == {(pid, sev) for pid, sev, _ in want["severities"]}
    assert len(stored) >= len(want["pairs"])
    assert {(h, ip) for _, _, h, ip in stored} == {("testphp.vulnweb.com", "44.228.249.3")}


@pytest.mark.parametrize("data", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_an_xxe_file_is_refused_locally_with_exit_2_and_nothing_sent(tmp_path, server, data):  # noqa: F811
    bad = tmp_path / "scan.nessus"
    bad.write_bytes(data)
    done = run_cli(["import", str(bad)], cli_env(tmp_path, server.url), timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "document type declaration" in err and "Traceback" not in err
    conn = sqlite3.connect(tmp_path / "server.db")
    try:
        assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.parametrize("data", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_the_server_answers_422_to_an_xxe_upload_and_stores_nothing(tmp_path, server, data):  # noqa: F811
    from support.http import post_import

    from support.fixtures import TOKEN

    resp = post_import(server.url, TOKEN, data, filename="scan.nessus")
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["code"] == "unprocessable"
    assert body["error"].startswith("scan.nessus: the XML has a document type declaration")
    conn = sqlite3.connect(tmp_path / "server.db")
    try:
        assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM vulnerabilities").fetchone()[0] == 0
    finally:
        conn.close()


def test_progress_counts_report_items_not_lines(tmp_path, server):  # noqa: F811
    import json

    path = REAL / "nessus_v_unknown.xml"
    items = sum(1 for _ in ET.parse(path).getroot().iter("ReportItem"))
    done = run_cli(["--output", "json", "import", str(path)], cli_env(tmp_path, server.url), timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    events = [json.loads(line) for line in done.stdout.decode().splitlines()]
    totals = {e["totalRows"] for e in events if e.get("totalRows")}
    assert totals == {items}, totals  # about 296 records, not the file's 10,000-odd lines


def test_the_benchmark_export_holds_the_same_findings_as_the_nessus_csv_beside_it(tmp_path):
    """benchmarks/generate_nessus.py --findings N and generate.py --rows N --format nessus: the same records, so the
    benchmark compares the formats, not the data (and the two readers agree on them)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent.parent / "benchmarks"
    xml, csv_path = tmp_path / "scan.nessus", tmp_path / "scan.csv"
    subprocess.run([sys.executable, str(bench / "generate_nessus.py"), "--findings", "3000", "-o", str(xml)], check=True)
    subprocess.run([sys.executable, str(bench / "generate.py"), "--rows", "3000", "--format", "nessus", "-o",
                    str(csv_path)], check=True)
    again = tmp_path / "again.nessus"
    subprocess.run([sys.executable, str(bench / "generate_nessus.py"), "--findings", "3000", "-o", str(again)], check=True)
    assert again.read_bytes() == xml.read_bytes()

    def keyed(path: Path) -> list[tuple]:
        data = path.read_bytes()
        fmt = detect(data[: formats.HEAD_BYTES], "vulnerabilities")
        return sorted((f.ip, f.plugin_id, f.cve, f.severity, f.plugin_name, f.port) for f in fmt.read(io.BytesIO(data)))

    from_xml = keyed(xml)
    assert len(from_xml) == 3000 and from_xml == keyed(csv_path)
