"""Against HexTrackr 1.1.x every export is converted to the columns 1.1.12 reads, so what the server stores (the
double maps rows exactly as 1.1.12's mapVulnerabilityRow does: tests/support/hx11_rows.py) has the file's severities,
plugin ids and names. Expected values come from reading the real files independently (xml.etree / csv)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import pytest

from support import hx11_rows
from support.cli import run_cli
from support.cli_suite import cli_env
from hextrackr_cli.formats import HEAD_BYTES, detect
from hextrackr_cli.formats.hx11 import HX11_COLUMNS, needs_conversion, write_hx11_csv
from support.hx11_double import HX11Double

REAL = Path(__file__).parent.parent / "data" / "real"
USER, PASSWORD = "analyst", "s3cret pass"
NESSUS_LEVEL = {"0": "Info", "1": "Low", "2": "Medium", "3": "High", "4": "Critical"}


@pytest.fixture
def hx() -> Iterator[HX11Double]:
    double = HX11Double(users={USER: PASSWORD}, rate_limit=None, step_delay=0.005).start()
    try:
        yield double
    finally:
        double.stop()


def env_for(tmp_path: Path, hx: HX11Double) -> dict[str, str]:
    return cli_env(tmp_path, hx.url, token=None, HEXTRACKR_USERNAME=USER, HEXTRACKR_PASSWORD=PASSWORD)


def nessus_xml_truth(path: Path) -> set[tuple[str, str, str]]:
    """(plugin id, name, severity) of every ReportItem, read with xml.etree."""
    root = ET.parse(path).getroot()
    return {(i.get("pluginID", ""), i.get("pluginName", ""), NESSUS_LEVEL[i.get("severity", "")])
            for i in root.iter("ReportItem")}


def converted(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    data = path.read_bytes()
    fmt = detect(data[:HEAD_BYTES], "vulnerabilities", complete=len(data) < HEAD_BYTES)
    out = io.StringIO()
    write_hx11_csv(fmt.read(io.BytesIO(data)), out)
    reader = csv.DictReader(io.StringIO(out.getvalue()))
    return list(reader.fieldnames or []), list(reader)


def test_the_columns_are_ones_1_1_12_reads_and_a_plain_tenable_export_is_sent_as_it_is():
    read_by_1_1_12 = {"hostname", "ip_address", "asset_id", "cve", "severity", "plugin_id", "plugin_name",
                      "definition.description", "solution", "vpr_score", "cvss_score", "state", "first_seen",
                      "last_seen"}
    assert set(HX11_COLUMNS) == read_by_1_1_12
    tenable = detect(b"asset.name,asset.display_ipv4_address,definition.id,definition.name,severity\nh,10.0.0.1,1,n,"
                     b"High\n", "vulnerabilities", complete=True)
    assert not needs_conversion(tenable)
    semicolons = detect(b"asset.name;asset.display_ipv4_address;definition.id;definition.name;severity\nh;10.0.0.1;1;"
                        b"n;High\n", "vulnerabilities", complete=True)
    assert needs_conversion(semicolons)


def test_converted_nessus_rows_map_in_1_1_12_to_the_files_severity_plugin_and_name():
    path = REAL / "nessus_with_cvssv3.nessus"
    _, rows = converted(path)
    mapped = [m for row in rows for m in hx11_rows.map_vulnerability_row(row)]
    assert {(m["pluginId"], m["pluginName"], m["severity"]) for m in mapped} == nessus_xml_truth(path)
    # the description 1.1.12 keeps is the plugin's, not its name
    root = ET.parse(path).getroot()
    first = next(root.iter("ReportItem"))
    assert mapped[0]["description"].strip() == (first.findtext("description") or "").strip()
    assert {m["ipAddress"] for m in mapped} == {"44.228.249.3"}


def stored(hx: HX11Double) -> set[tuple[str, str, str]]:
    return {(r["pluginId"], r["pluginName"], r["severity"]) for r in hx.current}


def test_a_nessus_file_arrives_in_1_1_x_with_severities_plugin_ids_and_names(hx, tmp_path):
    path = REAL / "nessus_v_unknown.xml"
    r = run_cli(["-v", "--output", "plain", "import", str(path)], env_for(tmp_path, hx), timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "converted nessus_v_unknown.xml (Nessus v2 XML (.nessus)) to the CSV columns HexTrackr 1.1.x reads" in err
    assert stored(hx) == nessus_xml_truth(path)
    assert hx.history[-1]["filename"] == "nessus_v_unknown.csv"


def test_a_conversion_that_finds_a_bad_record_sends_nothing(hx, tmp_path):
    bad = tmp_path / "scan.nessus"
    data = (REAL / "nessus_many_vuln.xml").read_bytes()
    last = data.rfind(b'severity="0"')
    bad.write_bytes(data[:last] + b'severity="9"' + data[last + len(b'severity="0"'):])
    r = run_cli(["import", str(bad)], env_for(tmp_path, hx), timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert 'attribute "severity" is not a Nessus severity (0 to 4): "9"' in err and "nothing was sent" in err
    assert hx.history == [] and hx.current == []


def test_a_gzip_compressed_export_is_expanded_and_converted_for_1_1_x(hx, tmp_path):
    import gzip

    path = REAL / "nessus_v_unknown.xml"
    packed = tmp_path / "nessus_v_unknown.xml.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    r = run_cli(["-v", "--output", "plain", "import", str(packed)], env_for(tmp_path, hx), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert stored(hx) == nessus_xml_truth(path)
    assert hx.history[-1]["filename"] == "nessus_v_unknown.csv"


def csv_truth(path: Path, pid: str, name: str, severity, *, skip: int = 0) -> set[tuple[str, str, str]]:
    """(plugin id, name, severity) of every data row, read with the csv module and the vendor's documented scale."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for _ in range(skip):
            fh.readline()
        return {(row[pid].strip(), row[name], severity(row)) for row in csv.DictReader(fh) if any(row.values())}


def raw_in_1_1_12(path: Path) -> list[dict]:
    """What 1.1.12 would store from the file sent as it is."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [m for row in csv.DictReader(fh) for m in hx11_rows.map_vulnerability_row(row)]


LEVELS = {"none": "Info", "info": "Info", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
QUALYS = {"1": "Info", "2": "Low", "3": "Medium", "4": "High", "5": "Critical"}  # 5 = Urgent ... 1 = Minimal


@pytest.mark.parametrize("name, pid, title, severity, lost", [
    ("tenable_nessus_nessus_many_vuln2-all.csv", "Plugin ID", "Name", lambda r: LEVELS[r["Risk"].lower()],
     "severity"),
    ("tenable_nessus_nessus_many_vuln.csv", "Plugin", "Plugin Name", lambda r: LEVELS[r["Severity"].lower()],
     "pluginId"),
    ("qualys_Qualys_Sample_Report.csv", "QID", "Title",
     lambda r: "Info" if r["Type"].lower() in ("ig", "info") else QUALYS[r["Severity"]], "pluginId"),
], ids=["nessus-csv", "tenable-sc", "qualys"])
def test_a_real_csv_export_arrives_in_1_1_x_with_severities_plugin_ids_and_names(hx, tmp_path, name, pid, title,
                                                                                  severity, lost):
    path = REAL / name
    assert not any(m[lost] for m in raw_in_1_1_12(path))  # sent as it is, 1.1.12 would lose it
    r = run_cli(["-v", "--output", "plain", "import", str(path)], env_for(tmp_path, hx), timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert f"converted {name} (" in err
    assert stored(hx) == csv_truth(path, pid, title, severity)


def test_a_clean_scan_is_a_good_result_and_is_not_sent_to_1_1_x(hx, tmp_path):
    """1.1.12 resolves every open vulnerability an import does not contain: an export without findings is not
    uploaded, and the command still exits 0 saying it was a clean scan."""
    first = run_cli(["import", str(REAL / "nessus_was_one_vuln.xml")], env_for(tmp_path, hx), timeout=60)
    assert first.returncode == 0, first.stderr.decode()
    before = [dict(r) for r in hx.current]
    r = run_cli(["--output", "plain", "import", str(REAL / "nessus_was_no_vuln.xml")], env_for(tmp_path, hx),
                timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "clean scan: no findings, nothing changed" in err
    assert len(hx.history) == 1 and [dict(x) for x in hx.current] == before
    assert all(x["lifecycle_state"] == "active" for x in hx.current)
