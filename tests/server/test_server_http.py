"""The embedded server's HTTP API against a real server on an ephemeral port (docs/wire.md)."""

from __future__ import annotations

import uuid

import requests

from support.data import GENERIC_CSV
from support.db import db_count, db_rows
from support.http import get_json, post_import, wait_for_outcome


def test_health_needs_no_token_and_names_the_seed_dialect(live_server) -> None:
    r = requests.get(live_server.url + "/health", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": "0.1.0", "database": "ok", "dialect": "seed", "browserView": True}


def test_every_api_endpoint_refuses_a_missing_or_wrong_token_with_json_401(live_server) -> None:
    for token in (None, "wrong-token"):
        for path in ("/api/imports", f"/api/import/progress/{uuid.uuid4()}", "/api/imports/1"):
            r = get_json(live_server.url, token, path)
            assert r.status_code == 401, path
            assert r.json()["code"] == "unauthorized"
        r = post_import(live_server.url, token, GENERIC_CSV)
        assert r.status_code == 401
    assert db_count(live_server.db_path, "imports") == 0


def test_repeated_failed_logins_are_rate_limited_with_retry_after(live_server) -> None:
    codes = [get_json(live_server.url, "bad", "/api/imports").status_code for _ in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    r = get_json(live_server.url, live_server.token, "/api/imports")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_upload_answers_202_and_the_import_completes_with_one_record_per_cve(live_server) -> None:
    sid = str(uuid.uuid4())
    r = post_import(live_server.url, live_server.token, GENERIC_CSV, filename="tenable_vulns_2025-11-20.csv",
                    session_id=sid)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["sessionId"] == sid and body["vendor"] == "tenable" and body["scanDate"] == "2025-11-20"
    assert body["statusUrl"] == f"/api/import/progress/{sid}" and body["type"] == "vulnerabilities"
    state = wait_for_outcome(live_server.url, live_server.token, sid)
    assert state["outcome"] == "completed" and state["progress"] == 100
    assert state["summary"]["rows"] == 2 and state["summary"]["records"] == 3 and state["summary"]["inserted"] == 3
    cves = sorted(r["cve"] for r in db_rows(live_server.db_path, "vulnerabilities"))
    assert cves == ["CVE-2024-0001", "CVE-2024-0002", "CVE-2024-0003"]


def test_session_id_is_generated_when_absent(live_server) -> None:
    r = post_import(live_server.url, live_server.token, GENERIC_CSV)
    assert r.status_code == 202
    assert wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])["outcome"] == "completed"


def test_same_session_and_same_file_is_idempotent_and_a_different_file_is_409(live_server) -> None:
    sid = str(uuid.uuid4())
    first = post_import(live_server.url, live_server.token, GENERIC_CSV, session_id=sid)
    assert first.status_code == 202
    wait_for_outcome(live_server.url, live_server.token, sid)
    again = post_import(live_server.url, live_server.token, GENERIC_CSV, session_id=sid)
    assert again.status_code == 200 and again.json()["importId"] == first.json()["importId"]
    other = post_import(live_server.url, live_server.token, GENERIC_CSV + "web03,,CVE-2024-9,Low,,,,,,\n", session_id=sid)
    assert other.status_code == 409 and other.json()["code"] == "conflict"
    assert db_count(live_server.db_path, "imports") == 1
    assert db_count(live_server.db_path, "vulnerabilities") == 3


def test_malformed_requests_get_json_errors_with_the_right_status(live_server) -> None:
    url, token = live_server.url, live_server.token
    r = requests.post(url + "/api/vulnerabilities/import", data=GENERIC_CSV,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}, timeout=10)
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = post_import(url, token, GENERIC_CSV, session_id="not-a-uuid")
    assert r.status_code == 400 and "sessionId" in r.json()["error"]
    r = post_import(url, token, GENERIC_CSV, scanDate="2025-02-30")
    assert r.status_code == 400 and "scanDate" in r.json()["error"]
    r = requests.post(url + "/api/vulnerabilities/import", files={"other": ("a.csv", b"x")},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 400 and "csvFile" in r.json()["error"]
    assert get_json(url, token, "/api/import/progress/xyz").status_code == 400
    assert get_json(url, token, f"/api/import/progress/{uuid.uuid4()}").status_code == 404
    assert get_json(url, token, "/api/imports/abc").status_code == 400
    assert get_json(url, token, "/api/imports/999").status_code == 404
    assert get_json(url, token, "/api/imports?limit=0").status_code == 400
    assert get_json(url, token, "/api/nothing").status_code == 404
    r = requests.delete(url + "/api/imports", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    assert db_count(live_server.db_path, "imports") == 0


def test_oversized_upload_is_refused_with_413_and_nothing_is_stored(server_factory) -> None:
    srv = server_factory(max_upload=1000)
    big = GENERIC_CSV + "".join(f"h{i},,CVE-2024-{1000 + i},Low,,,,,,\n" for i in range(200))
    r = post_import(srv.url, srv.token, big)
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    assert db_count(srv.db_path, "imports") == 0
    uploads = srv.db_path.parent / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_unknown_columns_are_refused_with_422_naming_the_expected_columns(live_server) -> None:
    r = post_import(live_server.url, live_server.token, "foo,bar\n1,2\n")
    assert r.status_code == 422
    assert "unknown columns (foo, bar)" in r.json()["error"] and "hostname" in r.json()["error"]
    assert db_count(live_server.db_path, "imports") == 0


def test_semicolon_delimited_export_is_sniffed_and_imported(live_server) -> None:
    """A ';'-delimited export (a spreadsheet's save in many locales) is read like a comma-separated one."""
    r = post_import(live_server.url, live_server.token, "hostname;cve\nh;CVE-2024-1\n")
    assert r.status_code == 202, r.text
    assert wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])["outcome"] == "completed"
    assert db_count(live_server.db_path, "vulnerabilities") == 1


def test_path_like_filenames_are_reduced_to_their_base_name(live_server) -> None:
    r = post_import(live_server.url, live_server.token, GENERIC_CSV, filename="../../etc/\x07evil_2025-01-02.csv")
    assert r.status_code == 202
    assert r.json()["filename"] == "evil_2025-01-02.csv"
    wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
    assert db_rows(live_server.db_path, "imports")[0]["filename"] == "evil_2025-01-02.csv"


def test_ticket_import_upserts_by_xt_number(live_server) -> None:
    csv1 = ("xt_number,date_submitted,date_due,hexagon_ticket,service_now_ticket,location,devices,supervisor,tech,"
            "status,notes\nXT-1,2025-01-01,2025-02-01,H1,SN1,HQ,d1,Sup,Tech,,first\n"
            "XT-2,2025-01-02,2025-02-02,H2,SN2,HQ,d2,Sup,Tech,Closed,\n")
    r = post_import(live_server.url, live_server.token, csv1, kind="tickets")
    assert r.status_code == 202 and r.json()["type"] == "tickets"
    s = wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
    assert s["outcome"] == "completed" and s["summary"]["inserted"] == 2
    csv2 = csv1.splitlines()[0] + "\n0001,2025-01-01,2025-02-01,H1,SN1,HQ,d1,Sup,Tech,Open,second\n"
    r = post_import(live_server.url, live_server.token, csv2, kind="tickets")
    s = wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
    assert s["summary"]["updated"] == 1 and s["summary"]["inserted"] == 0
    tickets = {t["xt_number"]: t for t in db_rows(live_server.db_path, "tickets")}
    assert set(tickets) == {"0001", "0002"} and tickets["0001"]["notes"] == "second"
    # a vulnerability file is not a ticket file
    r = post_import(live_server.url, live_server.token, GENERIC_CSV, kind="tickets")
    assert r.status_code == 422


def test_history_is_newest_first_paginated_and_each_import_can_be_read(live_server) -> None:
    ids = []
    for _ in range(3):
        r = post_import(live_server.url, live_server.token, GENERIC_CSV)
        wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
        ids.append(r.json()["importId"])
    page = get_json(live_server.url, live_server.token, "/api/imports?limit=2&offset=0").json()
    assert page["total"] == 3 and [i["id"] for i in page["imports"]] == [ids[2], ids[1]]
    page2 = get_json(live_server.url, live_server.token, "/api/imports?limit=2&offset=2").json()
    assert [i["id"] for i in page2["imports"]] == [ids[0]]
    one = get_json(live_server.url, live_server.token, f"/api/imports/{ids[0]}").json()
    assert one["status"] == "completed" and one["rows"] == 2 and one["records"] == 3
    assert one["startedAt"].endswith("Z") and isinstance(one["durationMs"], int)


def test_a_second_token_sees_only_its_own_imports(server_factory) -> None:
    srv = server_factory(tokens=["admin-token-aaaaaaaaaaaa", "user-token-bbbbbbbbbbbb"])
    admin, user = "admin-token-aaaaaaaaaaaa", "user-token-bbbbbbbbbbbb"
    mine = post_import(srv.url, user, GENERIC_CSV).json()
    theirs = post_import(srv.url, admin, GENERIC_CSV).json()
    wait_for_outcome(srv.url, user, mine["sessionId"])
    wait_for_outcome(srv.url, admin, theirs["sessionId"])
    listed = get_json(srv.url, user, "/api/imports").json()
    assert [i["id"] for i in listed["imports"]] == [mine["importId"]]
    assert get_json(srv.url, user, f"/api/import/progress/{theirs['sessionId']}").status_code == 404
    assert get_json(srv.url, user, f"/api/imports/{theirs['importId']}").status_code == 404
    assert get_json(srv.url, admin, "/api/imports").json()["total"] == 2


def test_health_answers_503_when_the_database_is_gone(live_server) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = live_server.db_path.with_name(live_server.db_path.name + suffix)
        if path.exists():
            path.unlink()
    r = requests.get(live_server.url + "/health", timeout=10)
    assert r.status_code == 503
    assert r.json()["database"] == "unavailable" and r.json()["dialect"] == "seed"


def test_progress_endpoint_accepts_upper_case_session_ids(live_server) -> None:
    r = post_import(live_server.url, live_server.token, GENERIC_CSV)
    sid = r.json()["sessionId"]
    wait_for_outcome(live_server.url, live_server.token, sid)
    state = get_json(live_server.url, live_server.token, f"/api/import/progress/{sid.upper()}").json()
    assert state["outcome"] == "completed" and state["sessionId"] == sid
