"""Format detection and row mappers (pure functions the client also uses for local checks)."""

from __future__ import annotations

import pytest

from hextrackr_cli.formats import (
    RowError,
    FormatError,
    VULN_FIELDS,
    detect_format,
    make_mapper,
    metadata_from_filename,
    normalize_xt_number,
    parse_scan_date,
)
from support.data import GENERIC_HEADER, TENABLE_HEADER

NESSUS_HEADER = ["Plugin ID", "CVE", "CVSS v2.0 Base Score", "Risk", "Host", "Protocol", "Port", "Name", "Synopsis",
                 "Description", "Solution", "See Also", "Plugin Output"]
TICKET_HEADER = ["xt_number", "date_submitted", "date_due", "hexagon_ticket", "service_now_ticket", "location",
                 "devices", "supervisor", "tech", "status", "notes"]


def rec(record: tuple) -> dict:
    return dict(zip(VULN_FIELDS, record))


@pytest.mark.parametrize(
    "header,name",
    [
        (TENABLE_HEADER, "tenable"),
        (NESSUS_HEADER, "nessus"),
        (GENERIC_HEADER, "generic"),
        (["Host", "IP Address", "CVE", "Severity", "VPR Score", "Plugin ID"], "generic"),
        (TICKET_HEADER, "tickets"),
        (["XT Number", "Date Submitted", "Status", "Notes"], "tickets"),
    ],
)
def test_detect_format_recognises_each_known_header(header: list[str], name: str) -> None:
    assert detect_format(header).name == name


def test_detection_is_case_insensitive_after_exact_match_and_ignores_a_bom() -> None:
    fmt = detect_format(["\ufeffHOSTNAME", "Ip_Address", "CVE", "severity"])
    assert fmt.name == "generic" and fmt.index["host"] == 0 and fmt.index["ip"] == 1


def test_unknown_columns_name_the_expected_columns() -> None:
    with pytest.raises(FormatError) as exc:
        detect_format(["foo", "bar", "baz"])
    text = str(exc.value)
    assert "unknown columns (foo, bar, baz)" in text
    assert "asset.name" in text and "Plugin ID" in text and "hostname" in text


def test_semicolon_header_is_reported_as_a_delimiter_problem() -> None:
    with pytest.raises(FormatError, match="semicolons"):
        detect_format(["hostname;ip_address;cve"])


def test_kind_limits_detection_to_tickets_or_vulnerabilities() -> None:
    with pytest.raises(FormatError):
        detect_format(TICKET_HEADER, "vulnerabilities")
    assert detect_format(TICKET_HEADER, "tickets").kind == "tickets"


def tenable_row(**values: str) -> list[str]:
    row = dict.fromkeys(TENABLE_HEADER, "")
    row.update({"asset.id": "A1", "asset.name": "Web01.Corp.Example", "definition.id": "19506",
                "definition.name": "Apache < 2.4 (CVE-2022-37347)", "severity": "High", "state": "ACTIVE",
                "last_seen": "2025-11-20"})
    row.update(values)
    return [row[h] for h in TENABLE_HEADER]


def test_tenable_row_with_several_cves_becomes_one_record_per_cve() -> None:
    mapper = make_mapper(detect_format(TENABLE_HEADER), "tenable")
    records = [rec(r) for r in mapper(tenable_row(**{"definition.cve": "CVE-2021-1111, CVE-2021-2222,cisco-sa-x"}))]
    assert [r["cve"] for r in records] == ["CVE-2021-1111", "CVE-2021-2222", "cisco-sa-x"]
    assert len({r["dedup_key"] for r in records}) == 3
    assert all(r["hostname"] == "web01.corp.example" and r["severity"] == "High" for r in records)


def test_tenable_cve_is_taken_from_the_plugin_name_when_the_cve_cell_is_empty() -> None:
    mapper = make_mapper(detect_format(TENABLE_HEADER), "tenable")
    (r,) = [rec(x) for x in mapper(tenable_row())]
    assert r["cve"] == "CVE-2022-37347"


def test_tenable_first_ipv4_address_is_used_when_there_is_no_display_address() -> None:
    mapper = make_mapper(detect_format(TENABLE_HEADER), "tenable")
    (r,) = [rec(x) for x in mapper(tenable_row(**{"asset.ipv4_addresses": "10.0.0.5, 10.0.0.6"}))]
    assert r["ip_address"] == "10.0.0.5"


def test_dedup_key_prefers_asset_and_plugin_then_host_and_cve_then_host_plugin_vendor() -> None:
    header = ["hostname", "ip_address", "cve", "plugin_id", "asset_id"]
    mapper = make_mapper(detect_format(header), "acme")
    assert rec(mapper(["h1", "", "CVE-2020-1", "55", "A9"])[0])["dedup_key"] == "a:A9|55|CVE-2020-1"
    assert rec(mapper(["H1", "", "CVE-2020-1", "55", ""])[0])["dedup_key"] == "h:h1|CVE-2020-1"
    assert rec(mapper(["", "10.1.1.1", "", "55", ""])[0])["dedup_key"] == "p:10.1.1.1|55|acme"


def test_nessus_rows_map_risk_host_and_plugin_text() -> None:
    mapper = make_mapper(detect_format(NESSUS_HEADER), "nessus")
    row = ["10001", "CVE-2019-0001", "5.0", "None", "192.168.1.5", "tcp", "443", "SSL thing", "syn",
           "multi\nline description", "fix it", "", "output"]
    (r,) = [rec(x) for x in mapper(row)]
    assert (r["ip_address"], r["hostname"], r["severity"], r["cvss_score"]) == ("192.168.1.5", "", "Info", 5.0)
    assert r["description"] == "" and mapper.plugins["10001"] == ("SSL thing", "multi\nline description", "fix it")
    row[4] = "DB01.example"
    assert rec(mapper(row)[0])["hostname"] == "db01.example"


def test_scores_that_are_not_numbers_become_empty_not_errors() -> None:
    mapper = make_mapper(detect_format(GENERIC_HEADER), "generic")
    row = ["h", "", "CVE-2020-2", "high", "n/a", "", "", "", "", ""]
    r = rec(mapper(row)[0])
    assert r["vpr_score"] is None and r["severity"] == "High"


def test_ticket_rows_normalise_xt_number_and_default_status() -> None:
    mapper = make_mapper(detect_format(TICKET_HEADER), "generic")
    (t,) = mapper(["XT-12", "2025-01-01", "2025-02-01", "H1", "SN1", "Site", "d1;d2", "Sup", "Tech", "", "n"])
    assert t[0] == "0012" and t[9] == "Open"
    assert normalize_xt_number("7") == "0007" and normalize_xt_number("XT-12345") == "12345"


@pytest.mark.parametrize(
    "name,expected",
    [
        ("tenable_vulns_2025-11-20.csv", ("tenable", "2025-11-20")),
        ("/tmp/x/qualys-scan-20250102.csv", ("qualys", "2025-01-02")),
        ("scan.csv", (None, None)),
        ("nessus_2025-13-40.csv", ("nessus", None)),
    ],
)
def test_vendor_and_scan_date_come_from_the_file_name(name: str, expected: tuple) -> None:
    assert metadata_from_filename(name) == expected


def test_scan_date_must_be_a_real_iso_date() -> None:
    assert parse_scan_date("2025-11-20") == "2025-11-20"
    for bad in ("2025-02-30", "20251120", "yesterday"):
        with pytest.raises(ValueError):
            parse_scan_date(bad)


@pytest.mark.parametrize(
    "values,words",
    [
        ({"ip_address": "999.1.1.1"}, 'column "ip_address" is not an IPv4 address: "999.1.1.1"'),
        ({"vpr_score": "11"}, 'column "vpr_score" is out of range .0 to 10.: "11"'),
        ({"vpr_score": "-1"}, "out of range"),
        ({"vpr_score": "nan"}, "out of range"),
        ({"vpr_score": "high"}, 'column "vpr_score" is not a number: "high"'),
        ({"first_seen": "2025-02-30"}, 'column "first_seen" is not a date .*"2025-02-30"'),
        ({"last_seen": "yesterday"}, 'column "last_seen" is not a date .*"yesterday"'),
        ({"severity": "Apocalyptic"}, 'column "severity" is not a severity .*"Apocalyptic"'),
        ({"hostname": "", "ip_address": ""}, "no host"),
    ],
)
def test_impossible_values_are_refused_naming_the_column(values: dict, words: str) -> None:
    from hextrackr_cli.formats import RowError

    mapper = make_mapper(detect_format(GENERIC_HEADER), "generic")
    row = dict(zip(GENERIC_HEADER, ["h1", "10.0.0.1", "CVE-2020-1", "High", "5.5", "1", "n", "ACTIVE",
                                     "2025-01-01", "2025-01-02T10:00:00Z"]))
    assert mapper(list(row.values()))  # the base row is fine (timestamps are dates too)
    row.update(values)
    with pytest.raises(RowError, match=words):
        mapper(list(row.values()))


# --------------------------------------------------------------------------- one reader per family (issue 14)
import io  # noqa: E402
import re  # noqa: E402

from hextrackr_cli.formats import detect  # noqa: E402


def read_all(text: str, kind: str | None = None) -> tuple:
    data = text.encode("utf-8")
    fmt = detect(data, kind, complete=True)
    return fmt, list(fmt.read(io.BytesIO(data)))


def test_tenable_sc_list_is_its_own_format_with_plugin_ids_and_dns_names_and_its_dates() -> None:
    fmt, found = read_all(
        'Plugin,Plugin Name,Family,Severity,IP Address,DNS Name,First Discovered,Last Observed\r\n'
        '19506,Nessus Scan Information,Settings,Info,10.0.0.1,web01.corp,"Jun 20, 2016 09:09:53 EDT",'
        '"Jun 21, 2016 10:00:00 EDT"\r\n'
        '11219,Nessus SYN scanner,Port scanners,info,10.0.0.1,web01.corp,,\r\n')
    assert fmt.name == "tenable-sc"
    assert [(f.plugin_id, f.host, f.ip, f.severity) for f in found] == [
        ("19506", "web01.corp", "10.0.0.1", "Info"), ("11219", "web01.corp", "10.0.0.1", "Info")]
    assert found[0].first_seen == "2016-06-20T09:09:53" and found[1].severity_raw == "info"


def test_tenable_sc_summary_export_is_refused_naming_the_list_export() -> None:
    with pytest.raises(FormatError, match="Vulnerability List"):
        detect(b"Plugin,Plugin Name,Family,Severity,Total,Host Total\r\n19506,x,y,Info,1,1\r\n", complete=True)


def test_a_vendor_signature_without_a_needed_column_is_refused_never_generic() -> None:
    with pytest.raises(FormatError, match='Tenable.sc.*no column "IP Address"'):
        detect(b"Plugin,Plugin Name,Severity,CVE,Host\r\n1,x,High,CVE-2020-1,h\r\n", complete=True)


def test_vendor_severity_scales_map_to_levels_and_keep_the_original() -> None:
    _, found = read_all('IP,Hostname,Port,Port Protocol,CVSS,Severity,NVT Name,NVT OID,CVEs\n'
                        '10.0.0.1,h,22,tcp,0.0,Log,OS Detection,1.3.6.1.4.1.25623.1.0.1,\n')
    assert (found[0].severity, found[0].severity_raw, found[0].plugin_id) == ("Info", "Log", "1.3.6.1.4.1.25623.1.0.1")
    _, found = read_all('"IP","DNS","QID","Title","Type","Severity","CVE ID"\n'
                        '"10.0.0.2","db","38170","SSL cert","Vuln","4","CVE-2020-1, CVE-2020-2"\n'
                        '"10.0.0.2","db","45038","Host scan time","Ig","3",""\n')
    assert [(f.severity, f.severity_raw, f.cve) for f in found] == [
        ("High", "4", "CVE-2020-1"), ("High", "4", "CVE-2020-2"), ("Info", "3", "")]


def test_semicolon_bom_crlf_blank_names_and_trailing_empty_rows_are_read_and_counted() -> None:
    fmt, found = read_all("\ufeffasset.id;asset.name;definition.id;;severity\r\nA1;web01;19506;;High\r\n;;;;\r\n;;;;\r\n")
    assert fmt.name == "tenable" and fmt.delimiter == ";"
    assert len(found) == 1 and fmt.stats.empty_rows == 2 and found[0].severity == "High"


def test_a_qualys_preamble_is_skipped_and_lines_count_from_the_top_of_the_file() -> None:
    text = ('"Asset Vuln Datalist Report","04 Feb 2026 10:00AM GMT-0500","1"\n"Company","Street"\n\n'
            '"QID","Title","Severity","Asset Id","Asset Name","Asset IPV4"\n'
            '"1","a","5","7","h1","10.0.0.1"\n"2","b","2","7","h1","10.0.0.x"\n')
    data = text.encode()
    fmt = detect(data, complete=True)
    assert fmt.name == "qualys-vmdr" and fmt.header_line == 4
    with pytest.raises(RowError, match=r'record 2 \(line 6\): column "Asset IPV4" is not an IPv4 address: "10.0.0.x"'):
        list(fmt.read(io.BytesIO(data)))


def test_the_tickets_exporter_header_round_trips() -> None:
    fmt, (t,) = read_all("XT Number,Date Submitted,Date Due,Hexagon Ticket #,Service Now #,Site,Location,Devices,"
                         "Supervisor,Tech,Status,Notes\nXT-7,2025-01-01,2025-02-01,H9,SN9,S,L,d1,Sup,T,Closed,n\n",
                         "tickets")
    assert fmt.name == "tickets" and (t.xt_number, t.hexagon_ticket, t.service_now_ticket, t.status) == (
        "0007", "H9", "SN9", "Closed")


def test_import_help_names_every_registered_format() -> None:
    """--format's help is static text (--help imports no reader): it must name each reader there is."""
    from hextrackr_cli import cli, formats

    option = next(p for p in cli.import_cmd.params if p.name == "format_name")
    assert set(formats.names()) <= set(re.findall(r"[a-z][a-z0-9.-]*[a-z0-9]", option.help or ""))
