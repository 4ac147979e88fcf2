"""What an import does to the database: dedup, re-import, resolve, snapshots, and bad files that change nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from support.data import GENERIC_CSV
from support.db import db_count, db_rows, db_snapshot
from support.http import post_import, wait_for_outcome

HEADER = "hostname,ip_address,cve,severity,vpr_score,plugin_id,plugin_name,state,first_seen,last_seen\n"


def run_import(srv, text: str | bytes, *, filename: str = "acme_scan.csv", **fields: str) -> dict:
    r = post_import(srv.url, srv.token, text, filename=filename, **fields)
    assert r.status_code == 202, r.text
    return wait_for_outcome(srv.url, srv.token, r.json()["sessionId"])


def vulns(srv) -> dict[str, dict]:
    return {v["cve"]: v for v in db_rows(srv.db_path, "vulnerabilities")}


def test_reimport_updates_last_seen_and_resolves_what_the_new_scan_no_longer_has(live_server) -> None:
    first = run_import(live_server, GENERIC_CSV, scanDate="2025-11-20")
    assert first["summary"]["inserted"] == 3
    second_csv = HEADER + "web01,10.0.0.1,\"CVE-2024-0001,CVE-2024-0002\",High,7.5,1001,OpenSSL bug,ACTIVE,2025-01-01,2025-11-27\n"
    second = run_import(live_server, second_csv, scanDate="2025-11-27")
    assert second["summary"] == {**second["summary"], "inserted": 0, "updated": 2, "resolved": 1}
    v = vulns(live_server)
    assert v["CVE-2024-0001"]["last_seen"] == "2025-11-27" and v["CVE-2024-0001"]["status"] == "open"
    assert v["CVE-2024-0001"]["first_seen"] == "2025-01-01"
    assert v["CVE-2024-0003"]["status"] == "resolved" and v["CVE-2024-0003"]["resolved_at"]
    # it comes back: reopened
    run_import(live_server, GENERIC_CSV, scanDate="2025-12-01")
    assert vulns(live_server)["CVE-2024-0003"]["status"] == "open"


def test_resolving_only_touches_the_same_vendor(live_server) -> None:
    run_import(live_server, GENERIC_CSV, vendor="acme")
    other = HEADER + "db01,10.0.1.1,CVE-2023-9999,Medium,,2001,DB thing,ACTIVE,,\n"
    result = run_import(live_server, other, vendor="globex")
    assert result["summary"]["resolved"] == 0
    assert {v["status"] for v in db_rows(live_server.db_path, "vulnerabilities")} == {"open"}


def test_rows_without_last_seen_take_the_scan_date_and_duplicate_rows_make_one_record(live_server) -> None:
    text = HEADER + "h1,,CVE-2020-0001,Low,,,,,,\n" + "H1,,CVE-2020-0001,High,,,,,,\n"
    result = run_import(live_server, text, scanDate="2025-03-04")
    assert result["summary"]["rows"] == 2 and result["summary"]["records"] == 1
    (v,) = db_rows(live_server.db_path, "vulnerabilities")
    assert v["last_seen"] == "2025-03-04" and v["severity"] == "High"  # the later row wins


def test_each_scan_keeps_its_own_snapshot(live_server) -> None:
    a = run_import(live_server, GENERIC_CSV, scanDate="2025-11-20")
    b = run_import(live_server, HEADER + "web02,10.0.0.2,CVE-2024-0003,Critical,,1002,x,ACTIVE,,\n",
                   scanDate="2025-11-27")
    snaps = db_rows(live_server.db_path, "vulnerability_snapshots")
    by_import: dict[int, list] = {}
    for s in snaps:
        by_import.setdefault(s["import_id"], []).append(s)
    assert len(by_import[a["importId"]]) == 3 and len(by_import[b["importId"]]) == 1
    assert by_import[b["importId"]][0]["severity"] == "Critical"
    assert {s["severity"] for s in by_import[a["importId"]]} == {"High", "Low"}
    # a snapshot row names its current record
    keys = {v["dedup_key"] for v in db_rows(live_server.db_path, "vulnerabilities")}
    assert {s["dedup_key"] for s in snaps} <= keys


def test_tenable_plugin_text_is_stored_once_per_plugin(live_server) -> None:
    from support.data import TENABLE_HEADER, tenable_rows

    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(TENABLE_HEADER)
    w.writerows(tenable_rows(50, hosts=10))
    result = run_import(live_server, buf.getvalue(), filename="tenable_vulns_2025-11-20.csv")
    assert result["summary"]["format"] == "tenable"
    plugins = db_rows(live_server.db_path, "plugins")
    assert len(plugins) == 5 and all(p["description"].startswith("Description of plugin") for p in plugins)


BAD_FILES = [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    ((HEADER + "h1,,CVE-2020-1,Low\n").encode(), "record 1 (line 2) has 4 fields"),
    ((HEADER + "h1,,CVE-2020-1,Low,,,,,,\nh2,,CVE-2020-2,Low,,,,,,,extra\n").encode(), "record 2 (line 3) has 11 fields"),
    ((HEADER + "h\xe9,,CVE-2020-1,Low,,,,,,\n").encode("latin-1"), "line 2"),
    (b"\x00\x01\x02binary\x00junk", "binary"),
    (b"\x1f\x8b\x08\x00gzipdata", "gzip"),
    (b"name;address;issue\nh;1;CVE-1\n", "semicolons"),
    (b"foo,bar\n1,2\n", "unknown columns"),
    ((HEADER + 'h1,,"CVE-2020-1,Low,,,,,,\n').encode(), "quote"),
    (b'{"hostname": "h1"}', "JSON"),
]


@pytest.mark.parametrize("content,words", BAD_FILES, ids=[w for _, w in BAD_FILES])
def test_bad_files_are_refused_clearly_and_change_nothing(live_server, content: bytes, words: str) -> None:
    run_import(live_server, GENERIC_CSV, scanDate="2025-11-20")
    before = db_snapshot(live_server.db_path)
    r = post_import(live_server.url, live_server.token, content, filename="acme_bad.csv")
    if r.status_code == 422:
        message = r.json()["error"]
    else:
        assert r.status_code == 202, r.text
        state = wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
        assert state["outcome"] == "failed" and state["lastEvent"]["type"] == "error"
        message = state["error"]
        assert state["lastEvent"]["message"] == message
    assert words.lower() in message.lower() and "acme_bad.csv" in message
    assert "\n" not in message
    assert db_snapshot(live_server.db_path) == before
    assert {v["status"] for v in db_rows(live_server.db_path, "vulnerabilities")} == {"open"}


def test_a_failed_import_is_recorded_with_its_error(live_server) -> None:
    sid = str(uuid.uuid4())
    r = post_import(live_server.url, live_server.token, HEADER + "h1,,CVE-1,Low\n", session_id=sid)
    assert r.status_code == 202
    wait_for_outcome(live_server.url, live_server.token, sid)
    (rec,) = db_rows(live_server.db_path, "imports")
    assert rec["status"] == "failed" and "line 2" in rec["error"] and rec["finished_at"]
    assert db_count(live_server.db_path, "vulnerabilities") == 0


# --------------------------------------------------------------------------- the shared bad-input corpus
CORPUS = Path(__file__).parent.parent / "data" / "bad"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text()) if (CORPUS / "manifest.json").exists() else {}


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory):
    from hextrackr_cli.server.app import start_background

    srv = start_background(database=f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'h.db'}",
                           tokens=["corpus-token-0123456789"])
    yield srv
    srv.stop()


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_file_is_accepted_or_refused_as_the_manifest_says(corpus_server, name: str) -> None:
    expect = MANIFEST[name]
    r = post_import(corpus_server.url, corpus_server.token, (CORPUS / name).read_bytes(), filename=name)
    if r.status_code == 202:
        state = wait_for_outcome(corpus_server.url, corpus_server.token, r.json()["sessionId"])
        outcome, message = state["outcome"], state["error"] or ""
    else:
        assert r.status_code == 422, r.text
        outcome, message = "refused", r.json()["error"]
    if expect["expect"] == "accept":
        assert outcome == "completed", message
    else:
        assert outcome in ("failed", "refused")
        for word in expect["words"]:
            assert word.lower() in message.lower(), message
        assert len(message) < 400 and "\n" not in message


# --------------------------------------------------------------------------- format / minSeverity fields (issue 14)
REAL = Path(__file__).resolve().parent.parent / "data" / "real"


@pytest.mark.parametrize("fields,status,words", [
    ({"format": "excel"}, 400, "invalid format"),
    ({"minSeverity": "severe"}, 400, "invalid minSeverity"),
    ({"format": "qualys"}, 422, "--format tenable-sc"),
])
def test_bad_format_or_min_severity_fields_are_refused_and_nothing_is_stored(live_server, fields, status, words):
    before = db_snapshot(live_server.db_path)
    r = post_import(live_server.url, live_server.token, REAL / "tenable_issue_11102.csv", **fields)
    assert r.status_code == status and words in r.json()["error"], r.text
    assert db_snapshot(live_server.db_path) == before and db_count(live_server.db_path, "imports") == 0


def test_a_clean_scan_posted_completes_with_zero_records_and_says_so(live_server):
    r = post_import(live_server.url, live_server.token, REAL / "openvas_no_vuln.csv", filename="openvas_no_vuln.csv")
    assert r.status_code == 202, r.text
    state = wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
    assert state["outcome"] == "completed", state
    event = state["lastEvent"]
    assert event["cleanScan"] is True and event["records"] == 0 and event["format"] == "openvas"
    assert "Clean scan" in event["message"] and db_count(live_server.db_path, "vulnerabilities") == 0
