"""Per-import deltas per severity (new, reopened, unchanged, resolved), on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import os
import secrets
from typing import Any, Iterator

import pytest

from support.http import get_json, post_import, wait_for_outcome
from support.server import EventLog, close_client, socket_client

HEADER = "hostname,ip_address,cve,severity,vpr_score,plugin_id,plugin_name,state,first_seen,last_seen\n"
PG_ADMIN = os.environ.get("HEXTRACKR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LEVELS = ("Critical", "High", "Medium", "Low", "Info")


def scan(*findings: tuple[str, str, str]) -> str:
    """A generic CSV of (host, cve, severity) findings."""
    return HEADER + "".join(f"{h},,{cve},{sev},,,,ACTIVE,,\n" for h, cve, sev in findings)


def row(**counts: int) -> dict:
    out = {s: counts.get(s, 0) for s in LEVELS}
    out["total"] = sum(counts.values())
    return out


# the same three hosts scanned three times
FIRST = scan(("h1", "CVE-2024-0001", "Critical"), ("h1", "CVE-2024-0002", "High"), ("h2", "CVE-2024-0003", "Medium"),
             ("h2", "CVE-2024-0004", "Low"), ("h3", "CVE-2024-0005", "High"))
# 0002 (High) and 0004 (Low) gone; 0006 (Critical) and 0007 (High) new; the rest unchanged
SECOND = scan(("h1", "CVE-2024-0001", "Critical"), ("h2", "CVE-2024-0003", "Medium"), ("h3", "CVE-2024-0005", "High"),
              ("h3", "CVE-2024-0006", "Critical"), ("h1", "CVE-2024-0007", "High"))
# 0002 (High) and 0004 (Low) back; 0008 (Info) new; 0003, 0005, 0007 gone; 0001 and 0006 unchanged (0001 twice:
# one record); 0006 now rated High
THIRD = scan(("h1", "CVE-2024-0001", "Critical"), ("h1", "CVE-2024-0002", "High"), ("h2", "CVE-2024-0004", "Low"),
             ("h3", "CVE-2024-0006", "High"), ("h2", "CVE-2024-0008", "Info"), ("H1", "CVE-2024-0001", "Critical"))


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, server_factory: Any) -> Iterator[Any]:
    if request.param == "sqlite":
        yield server_factory()
        return
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install '.[postgres]')")
    name = f"hextrackr_deltas_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    try:
        yield server_factory(database=PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI_STRICT"):
        pytest.fail(f"{reason} (CI_STRICT is set: these tests must run)")
    pytest.skip(reason)


def run(srv: Any, text: str, date: str) -> dict:
    r = post_import(srv.url, srv.token, text, filename="acme_scan.csv", scanDate=date)
    assert r.status_code == 202, r.text
    state = wait_for_outcome(srv.url, srv.token, r.json()["sessionId"])
    assert state["outcome"] == "completed", state
    return state


def test_deltas_count_new_reopened_unchanged_and_resolved_per_severity(server: Any) -> None:
    first = run(server, FIRST, "2025-11-01")["summary"]
    assert first["deltas"] == {"new": row(Critical=1, High=2, Medium=1, Low=1), "reopened": row(),
                               "unchanged": row(), "resolved": row()}

    second = run(server, SECOND, "2025-11-08")["summary"]
    assert second["deltas"] == {"new": row(Critical=1, High=1), "reopened": row(),
                                "unchanged": row(Critical=1, High=1, Medium=1), "resolved": row(High=1, Low=1)}
    assert (second["inserted"], second["updated"], second["resolved"]) == (2, 3, 2)

    third = run(server, THIRD, "2025-11-15")
    d = third["summary"]["deltas"]
    assert d == {"new": row(Info=1), "reopened": row(High=1, Low=1), "unchanged": row(Critical=1, High=1),
                 "resolved": row(Medium=1, High=2)}
    # the totals agree with the counts every import already had
    s = third["summary"]
    assert (s["records"], s["inserted"], s["resolved"]) == (5, 1, 3)
    assert d["new"]["total"] + d["reopened"]["total"] + d["unchanged"]["total"] == s["records"]

    # the same deltas on the import record, alone and in the history
    record = get_json(server.url, server.token, f"/api/imports/{s['importId']}").json()
    assert record["deltas"] == d
    history = get_json(server.url, server.token, "/api/imports?limit=3").json()
    items = history["imports"] if isinstance(history, dict) else history
    assert [i["deltas"] for i in items] == [d, second["deltas"], first["deltas"]]


def test_the_complete_event_carries_the_deltas(server: Any) -> None:
    import uuid

    run(server, FIRST, "2025-11-01")
    sid = str(uuid.uuid4())
    log = EventLog()
    sio = socket_client(server.url, server.token, log=log)
    try:
        sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)
        r = post_import(server.url, server.token, SECOND, filename="acme_scan.csv", scanDate="2025-11-08",
                        session_id=sid)
        assert r.status_code == 202, r.text
        assert log.wait(lambda lg: lg.terminal(), timeout=30)
    finally:
        close_client(sio)
    (complete,) = [e for e in log.progress() if e["type"] == "complete"]
    assert complete["deltas"]["new"] == row(Critical=1, High=1)
    assert complete["deltas"]["resolved"] == row(High=1, Low=1)


def test_a_failed_import_records_no_deltas(server: Any) -> None:
    run(server, FIRST, "2025-11-01")
    bad = HEADER + "h1,,CVE-2024-0001,Catastrophic,,,,ACTIVE,,\n"
    r = post_import(server.url, server.token, bad, filename="acme_scan.csv")
    state = wait_for_outcome(server.url, server.token, r.json()["sessionId"])
    assert state["outcome"] == "failed"
    history = get_json(server.url, server.token, "/api/imports?limit=1").json()
    items = history["imports"] if isinstance(history, dict) else history
    assert items[0]["status"] == "failed" and items[0]["deltas"] is None
