"""GET /api/imports/completed: did an import of these bytes complete? (docs/wire.md), on a real server."""

from __future__ import annotations

import hashlib
import sqlite3

from support.data import GENERIC_CSV
from support.http import get_json, post_import, wait_for_outcome

SHA = hashlib.sha256(GENERIC_CSV.encode()).hexdigest()


def completed(srv, token: str, sha: str = SHA, **params: str) -> dict:
    query = "&".join(f"{k}={v}" for k, v in {"sha256": sha, **params}.items())
    r = get_json(srv.url, token, f"/api/imports/completed?{query}")
    assert r.status_code == 200, r.text
    return r.json()


def imported(srv, token: str, content: str = GENERIC_CSV, **kw: str) -> dict:
    r = post_import(srv.url, token, content, **kw)
    assert r.status_code == 202, r.text
    return wait_for_outcome(srv.url, token, r.json()["sessionId"])


def test_completed_import_is_found_with_its_id_session_and_time(live_server) -> None:
    assert completed(live_server, live_server.token) == {"found": False, "import": None, "running": None}
    state = imported(live_server, live_server.token, filename="tenable_vulns_2025-11-20.csv")
    assert state["outcome"] == "completed"
    answer = completed(live_server, live_server.token)
    assert answer["found"] is True
    rec = answer["import"]
    assert rec["id"] == state["importId"] and rec["sessionId"] == state["sessionId"]
    assert rec["status"] == "completed" and rec["finishedAt"].endswith("Z") and rec["filename"] == "tenable_vulns_2025-11-20.csv"
    # the answer is about these bytes only
    assert completed(live_server, live_server.token, sha=hashlib.sha256(b"other").hexdigest())["found"] is False
    assert completed(live_server, live_server.token, type="tickets")["found"] is False


def test_vendor_given_or_from_the_file_name_must_match(live_server) -> None:
    imported(live_server, live_server.token, filename="tenable_vulns_2025-11-20.csv")
    assert completed(live_server, live_server.token, vendor="tenable")["found"] is True
    assert completed(live_server, live_server.token, vendor="qualys")["found"] is False
    assert completed(live_server, live_server.token, filename="tenable_vulns_2025-12-01.csv")["found"] is True
    assert completed(live_server, live_server.token, filename="qualys_vulns_2025-12-01.csv")["found"] is False
    assert completed(live_server, live_server.token, filename="scan.csv")["found"] is True  # no vendor named: any


def test_failed_import_of_the_same_bytes_never_counts(live_server) -> None:
    bad = GENERIC_CSV.replace("10.0.0.2", "10.0.0.999")  # fails while parsing: an impossible IPv4
    state = imported(live_server, live_server.token, bad)
    assert state["outcome"] == "failed"
    assert completed(live_server, live_server.token, sha=hashlib.sha256(bad.encode()).hexdigest())["found"] is False


def test_latest_completed_import_wins(live_server) -> None:
    imported(live_server, live_server.token)
    second = imported(live_server, live_server.token)
    assert completed(live_server, live_server.token)["import"]["id"] == second["importId"]


def test_token_scoped_another_tokens_import_is_invisible_admin_sees_all(server_factory) -> None:
    admin, user = "admin-token-aaaaaaaaaaaa", "user-token-bbbbbbbbbbbb"
    srv = server_factory(tokens=[admin, user])
    imported(srv, admin)
    assert completed(srv, user)["found"] is False
    imported(srv, user)
    assert completed(srv, user)["found"] is True
    assert completed(srv, admin)["found"] is True


def test_bad_parameters_and_missing_token_are_refused(live_server) -> None:
    for query, code in (("sha256=xyz", "invalid_sha256"), ("", "invalid_sha256"),
                        (f"sha256={SHA}&type=assets", "invalid_type"),
                        (f"sha256={SHA}&vendor=%3Cscript%3E", "invalid_vendor")):
        r = get_json(live_server.url, live_server.token, f"/api/imports/completed?{query}")
        assert r.status_code == 400 and r.json()["code"] == code, query
    assert get_json(live_server.url, None, f"/api/imports/completed?sha256={SHA}").status_code == 401
    assert completed(live_server, live_server.token, sha=SHA.upper())["found"] is False  # accepted, normalised


def test_the_lookup_is_one_indexed_search(live_server) -> None:
    from hextrackr_cli.server.storage.common import completed_query as _completed_query

    imported(live_server, live_server.token)
    sql, args = _completed_query(SHA, "vulnerabilities", "tenable", "abc")
    conn = sqlite3.connect(live_server.db_path)
    try:
        plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
    finally:
        conn.close()
    assert "USING INDEX imports_sha256" in plan, plan


def test_the_same_answers_from_a_postgresql_database(server_factory) -> None:
    """Both backends share the query and the index (storage.schema): the same lookup on PostgreSQL."""
    import os
    import secrets

    import pytest

    psycopg = pytest.importorskip("psycopg")
    admin = os.environ.get("HEXTRACKR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"hextrackr_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI_STRICT"):
            pytest.fail(f"PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {admin}: {exc}")
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        srv = server_factory(database=url)
        token = "admin-token-0123456789abcdef"
        assert completed(srv, token)["found"] is False
        bad = GENERIC_CSV.replace("10.0.0.2", "10.0.0.999")
        assert imported(srv, token, bad)["outcome"] == "failed"
        assert completed(srv, token, sha=hashlib.sha256(bad.encode()).hexdigest())["found"] is False
        state = imported(srv, token, filename="tenable_vulns_2025-11-20.csv")
        answer = completed(srv, token, vendor="tenable")
        assert answer["found"] is True and answer["import"]["id"] == state["importId"]
        assert completed(srv, token, vendor="qualys")["found"] is False
        with psycopg.connect(url) as conn:
            plan = " ".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT * FROM imports WHERE sha256 = %s AND type = %s AND status = 'completed'",
                (SHA, "vulnerabilities")).fetchall())
            indexes = [r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'imports'")]
        assert "imports_sha256" in indexes, (indexes, plan)
        srv.stop()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_an_identical_import_still_running_is_named(live_server, tmp_path) -> None:
    from support.data import gen_csv

    big = gen_csv(tmp_path / "big.csv", 60_000)
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    r = post_import(live_server.url, live_server.token, big, filename="big.csv")
    assert r.status_code == 202
    answer = completed(live_server, live_server.token, sha=sha)
    assert answer["found"] is False and answer["running"]["sessionId"] == r.json()["sessionId"]
    assert answer["running"]["status"] == "running"
    wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"])
    answer = completed(live_server, live_server.token, sha=sha)
    assert answer["found"] is True and answer["running"] is None
