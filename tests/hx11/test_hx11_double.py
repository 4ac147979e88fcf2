"""The HexTrackr 1.1.12 double reproduces each observed protocol fact (one test per fact).

Every test talks to the double with raw ``requests`` / python-socketio / websocket-client, the way a client
would, so a regression in the double (and therefore in what the 1.1 dialect is tested against) shows here.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import requests
import socketio
import websocket

try:
    from support.hx11_double import HX11Double, csv_text
except ImportError:  # tests/ is a package
    from tests.support.hx11_double import HX11Double, csv_text

PASSWORD = "hextrackr-test"
EVENTS = ("progress-status", "progress-update", "progress-complete", "progress-error")


# --------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def hx():
    """One shared double without rate limit for the facts that need no special knob."""
    with HX11Double(step_delay=0.005, rate_limit=None, complete_retention=30) as double:
        yield double


def login(hx: HX11Double) -> dict[str, str]:
    """Log in the way the 1.1 dialect must: returns headers carrying cookie, proto and CSRF token."""
    r = requests.post(hx.url + "/api/auth/login", json={"username": "admin", "password": PASSWORD},
                      headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert r.status_code == 200
    cookie = r.cookies["hextrackr.sid"]
    headers = {"Cookie": f"hextrackr.sid={cookie}", "X-Forwarded-Proto": "https"}
    token = requests.get(hx.url + "/api/auth/csrf", headers=headers, timeout=5).json()["csrfToken"]
    return {**headers, "x-csrf-token": token}


def upload(hx: HX11Double, headers: dict[str, str], session_id: str, rows: int = 20, **kw: Any) -> requests.Response:
    files = kw.pop("files", None) or {"csvFile": ("tenable_scan.csv", csv_text(rows), "text/csv")}
    data = {"vendor": "tenable", "scanDate": "2025-11-20", "sessionId": session_id}
    return requests.post(hx.url + "/api/vulnerabilities/import-staging", headers=headers, files=files,
                         data=data, timeout=10, **kw)


class Watcher:
    """A python-socketio client recording the 1.1 progress events it receives."""

    def __init__(self, hx: HX11Double, headers: dict[str, str], *, suppress_origin: bool = True,
                 transports: list[str] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any], float]] = []
        options = {"suppress_origin": True} if suppress_origin else {}
        self.sio = socketio.Client(reconnection=False, websocket_extra_options=options)
        for name in EVENTS:
            self.sio.on(name, self._recorder(name))
        sock_headers = {k: v for k, v in headers.items() if k.lower() != "x-csrf-token"}
        self.sio.connect(hx.url, headers=sock_headers, transports=transports or ["polling", "websocket"],
                         wait_timeout=5)

    def _recorder(self, name: str):
        def record(data: dict[str, Any]) -> None:
            self.events.append((name, data, time.monotonic()))
        return record

    def names(self) -> list[str]:
        return [e[0] for e in self.events]

    def wait(self, name: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev, data, _ in self.events:
                if ev == name:
                    return data
            time.sleep(0.01)
        raise AssertionError(f"no {name} within {timeout}s; got {self.names()}")

    def close(self) -> None:
        # A polling client can take long to disconnect: do it in the background, bounded.
        if not self.sio.connected:
            return
        if self.sio.transport() == "websocket":
            t = threading.Thread(target=self.sio.disconnect, daemon=True)
        else:
            t = threading.Thread(target=self.sio.eio.disconnect, kwargs={"abort": True}, daemon=True)
        t.start()
        t.join(3)


@pytest.fixture
def watchers():
    made: list[Watcher] = []

    def make(hx: HX11Double, headers: dict[str, str], **kw: Any) -> Watcher:
        w = Watcher(hx, headers, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


# --------------------------------------------------------------------------- authentication
def test_login_with_forwarded_proto_https_sets_secure_httponly_samesite_cookie(hx):
    r = requests.post(hx.url + "/api/auth/login", json={"username": "admin", "password": PASSWORD},
                      headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert r.status_code == 200
    assert r.json()["success"] is True and r.json()["data"]["user"]["username"] == "admin"
    set_cookie = r.headers["Set-Cookie"]
    assert set_cookie.startswith("hextrackr.sid=")
    for attr in ("HttpOnly", "Secure", "SameSite=Lax"):
        assert attr in set_cookie


def test_login_over_plain_http_succeeds_but_sets_no_cookie(hx):
    r = requests.post(hx.url + "/api/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=5)
    assert r.status_code == 200 and r.json()["success"] is True
    assert "Set-Cookie" not in r.headers


def test_login_with_bad_password_is_401_invalid_username_or_password(hx):
    r = requests.post(hx.url + "/api/auth/login", json={"username": "admin", "password": "nope"},
                      headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert r.status_code == 401
    assert r.json() == {"success": False, "error": "Invalid username or password"}


def test_secure_cookie_is_not_sent_back_over_http_by_a_cookie_jar(hx):
    s = requests.Session()
    r = s.post(hx.url + "/api/auth/login", json={"username": "admin", "password": PASSWORD},
               headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert "hextrackr.sid" in s.cookies
    assert s.get(hx.url + "/api/vulnerabilities/last-import", timeout=5).status_code == 401
    explicit = {"Cookie": f"hextrackr.sid={r.cookies['hextrackr.sid']}"}
    assert requests.get(hx.url + "/api/vulnerabilities/last-import", headers=explicit, timeout=5).status_code == 200


def test_csrf_endpoint_returns_hex_token_to_a_logged_in_client(hx):
    headers = login(hx)
    body = requests.get(hx.url + "/api/auth/csrf", headers=headers, timeout=5).json()
    assert body["success"] is True
    int(body["csrfToken"], 16)


def test_csrf_token_fetched_without_the_cookie_is_useless(hx):
    token = requests.get(hx.url + "/api/auth/csrf", timeout=5).json()["csrfToken"]
    headers = {**login(hx), "x-csrf-token": token}
    r = upload(hx, headers, str(uuid.uuid4()))
    assert r.status_code == 500 and r.json()["error"] == "Internal server error"


def test_auth_status_is_public_and_nests_its_answer_under_data(hx):
    """As 1.1.12 answers: {"success":true,"data":{"authenticated":…}} (no top-level "authenticated")."""
    assert requests.get(hx.url + "/api/auth/status", timeout=5).json() == {"success": True,
                                                                            "data": {"authenticated": False}}
    body = requests.get(hx.url + "/api/auth/status", headers=login(hx), timeout=5).json()
    assert "authenticated" not in body
    assert body["data"]["authenticated"] is True and body["data"]["user"]["username"] == "admin"


def test_health_is_status_db_uptime_without_dialect_or_version_and_not_rate_limited():
    with HX11Double(rate_limit=1) as hx2:
        for _ in range(3):
            r = requests.get(hx2.url + "/health", timeout=5)
            assert r.status_code == 200 and "RateLimit-Remaining" not in r.headers
        body = r.json()
        assert set(body) == {"status", "db", "uptime"} and body["status"] == "ok" and body["db"] is True
        assert isinstance(body["uptime"], float)


def test_api_call_without_cookie_is_401_authentication_required(hx):
    for path in ("/api/imports", "/api/import/progress/" + str(uuid.uuid4())):
        r = requests.get(hx.url + path, timeout=5)
        assert r.status_code == 401
        assert r.json() == {"error": "Authentication required", "authenticated": False}


def test_post_without_csrf_token_is_500_internal_server_error(hx):
    headers = login(hx)
    del headers["x-csrf-token"]
    r = upload(hx, headers, str(uuid.uuid4()))
    assert r.status_code == 500
    assert r.json() == {"success": False, "error": "Internal server error"}


def test_post_with_invalid_csrf_token_is_500_internal_server_error(hx):
    headers = {**login(hx), "x-csrf-token": "00" * 16}
    r = upload(hx, headers, str(uuid.uuid4()))
    assert r.status_code == 500 and r.json()["error"] == "Internal server error"


def test_upload_with_wrong_mime_is_500_internal_server_error(hx):
    r = upload(hx, login(hx), str(uuid.uuid4()),
               files={"csvFile": ("scan.csv", csv_text(3), "application/octet-stream")})
    assert r.status_code == 500 and r.json() == {"success": False, "error": "Internal server error"}


def test_upload_with_wrong_field_name_is_500_internal_server_error(hx):
    r = upload(hx, login(hx), str(uuid.uuid4()), files={"file": ("scan.csv", csv_text(3), "text/csv")})
    assert r.status_code == 500 and r.json() == {"success": False, "error": "Internal server error"}


def test_json_body_instead_of_multipart_is_500_internal_server_error(hx):
    r = requests.post(hx.url + "/api/vulnerabilities/import-staging", headers=login(hx), json={"x": 1},
                      timeout=5)
    assert r.status_code == 500 and r.json()["error"] == "Internal server error"


# --------------------------------------------------------------------------- starting an import
def test_import_staging_answers_at_once_with_session_filename_vendor_scan_date(hx):
    sid = str(uuid.uuid4())
    r = upload(hx, login(hx), sid)
    assert r.status_code == 200
    assert r.json() == {"success": True, "sessionId": sid, "message": "CSV import started",
                        "filename": "tenable_scan.csv", "vendor": "tenable", "scanDate": "2025-11-20"}


def test_other_import_routes_answer_500(hx):
    headers = login(hx)
    for path in ("/api/vulnerabilities/import", "/api/import"):
        r = requests.post(hx.url + path, headers=headers,
                          files={"csvFile": ("scan.csv", csv_text(3), "text/csv")}, timeout=5)
        assert r.status_code == 500, path
        assert r.json()["error"] == "Internal server error"


def test_first_progress_is_emitted_before_the_post_response(hx, watchers):
    headers = login(hx)
    early, late = watchers(hx, headers), watchers(hx, headers)
    sid = str(uuid.uuid4())
    early.sio.emit("join-progress", sid)
    hx.wait_for(lambda: hx.joins.count(sid) == 1)
    assert upload(hx, headers, sid).status_code == 200
    mine = [what for what, s in list(hx.timeline) if s == sid]
    assert mine.index("emit progress-update") < mine.index("answer")
    assert early.wait("progress-update")["message"] == "Parsing CSV file..."
    late.sio.emit("join-progress", sid)
    early.wait("progress-complete")
    late.wait("progress-complete")
    late_messages = [d.get("message") for n, d, _ in late.events if n == "progress-update"]
    assert "Parsing CSV file..." not in late_messages


# --------------------------------------------------------------------------- socket.io handshake
def test_socketio_handshake_without_cookie_is_400_code_3(hx):
    r = requests.get(hx.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                     headers={"X-Forwarded-Proto": "https"}, timeout=5)
    assert r.status_code == 400
    assert r.json() == {"code": 3, "message": "Bad request"}


def test_socketio_handshake_without_forwarded_proto_over_http_is_400(hx):
    headers = login(hx)
    r = requests.get(hx.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                     headers={"Cookie": headers["Cookie"]}, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == 3
    ok = requests.get(hx.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                      headers={"Cookie": headers["Cookie"], "X-Forwarded-Proto": "https"}, timeout=5)
    assert ok.status_code == 200 and ok.text.startswith("0{")


def test_websocket_upgrade_refused_for_http_origin(hx):
    headers = login(hx)
    ws_url = hx.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(ws_url, header={"X-Forwarded-Proto": "https"},
                                    cookie=headers["Cookie"], origin=hx.url, timeout=5)
    assert info.value.status_code == 403
    ws = websocket.create_connection(ws_url, header={"X-Forwarded-Proto": "https"}, cookie=headers["Cookie"],
                                     suppress_origin=True, timeout=5)
    try:
        assert ws.recv().startswith("0{")
    finally:
        ws.close()


def test_client_with_default_http_origin_silently_stays_on_polling(hx, watchers):
    headers = login(hx)
    stuck = watchers(hx, headers, suppress_origin=False)
    assert stuck.sio.transport() == "polling"
    upgraded = watchers(hx, headers, suppress_origin=True)
    assert upgraded.sio.transport() == "websocket"


# --------------------------------------------------------------------------- rooms and events
def test_join_of_unknown_session_gets_no_answer_at_all(hx, watchers):
    w = watchers(hx, login(hx))
    with pytest.raises(socketio.exceptions.TimeoutError):
        w.sio.call("join-progress", str(uuid.uuid4()), timeout=0.5)
    assert w.events == []


def test_joiner_of_existing_session_gets_progress_status(hx, watchers):
    headers = login(hx)
    sid = str(uuid.uuid4())
    assert upload(hx, headers, sid).status_code == 200
    w = watchers(hx, headers)
    w.sio.emit("join-progress", sid)
    status = w.wait("progress-status")
    assert status["id"] == sid and status["status"] in ("initialized", "completed")
    assert status["metadata"]["operation"] == "csv-import"


def test_progress_update_shape_float_progress_status_initialized_metadata_steps(hx, watchers):
    headers = login(hx)
    with HX11Double(step_delay=0.11, rate_limit=None, batch_rows=10) as slow:
        headers = login(slow)
        w = watchers(slow, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        slow.wait_for(lambda: sid in slow.joins)
        upload(slow, headers, sid, rows=20)
        w.wait("progress-complete")
    updates = [d for n, d, _ in w.events if n == "progress-update"]
    assert any(isinstance(d["progress"], float) for d in updates)
    assert {d["status"] for d in updates} == {"initialized"}
    assert {d["metadata"]["currentStep"] for d in updates} == {1, 2, 3}
    for d in updates:
        assert d["sessionId"] == sid and isinstance(d["timestamp"], int)
        md = d["metadata"]
        assert md["operation"] == "csv-import" and md["totalSteps"] == 3 and md["filename"] == "tenable_scan.csv"
    staged = [d["metadata"] for d in updates if "staging" in d["message"]]
    assert staged and staged[-1]["insertedCount"] == 20 and staged[-1]["totalRows"] == 20
    assert any("rowCount" in d["metadata"] and "importId" in d["metadata"] for d in updates)


def test_progress_updates_throttled_to_one_per_100ms_and_dropped_ones_never_resent(hx, watchers):
    with HX11Double(step_delay=0.01, rate_limit=None, batch_rows=10) as fast:
        headers = login(fast)
        w = watchers(fast, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        fast.wait_for(lambda: sid in fast.joins)
        upload(fast, headers, sid, rows=300)
        w.wait("progress-complete")
        tracked_dropped = [e for e in fast.emitted if e[1] == f"progress-{sid}"]
    stamps = [d["timestamp"] for n, d, _ in w.events if n == "progress-update"]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps and min(gaps) >= 95  # ms, server-side timestamps
    # 30 staging + 30 processing batches ran; far fewer updates were sent, none twice
    messages = [d["message"] for n, d, _ in w.events if n == "progress-update"]
    assert len(messages) < 30 and len(messages) == len(set(messages))
    assert len([e for e in tracked_dropped if e[0] == "progress-update"]) == len(messages)


def test_progress_complete_carries_duration_and_import_summary_metadata(hx, watchers):
    headers = login(hx)
    w = watchers(hx, headers)
    sid = str(uuid.uuid4())
    w.sio.emit("join-progress", sid)
    hx.wait_for(lambda: sid in hx.joins)
    upload(hx, headers, sid, rows=40)
    done = w.wait("progress-complete")
    assert done["status"] == "completed" and done["progress"] == 100 and done["duration"] >= 0
    md = done["metadata"]
    for key in ("processedRows", "insertedToCurrent", "updatedInCurrent", "resolvedCount",
                "insertedToSnapshots", "totalProcessingTime", "rowsPerSecond", "importSummary"):
        assert key in md, key
    assert md["processedRows"] == 40 and md["insertedToSnapshots"] == 40


def test_reimport_counts_updates_and_resolved_in_complete_metadata():
    with HX11Double(step_delay=0.001, rate_limit=None) as fresh:
        headers = login(fresh)
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        upload(fresh, headers, first, files={"csvFile": ("a.csv", csv_text(10), "text/csv")})
        fresh.wait_for(lambda: fresh.sessions[first].status == "completed")
        upload(fresh, headers, second, files={"csvFile": ("b.csv", csv_text(10, start=4), "text/csv")})
        fresh.wait_for(lambda: fresh.sessions[second].status == "completed")
        md = fresh.sessions[second].metadata
    assert (md["insertedToCurrent"], md["updatedInCurrent"], md["resolvedCount"]) == (4, 6, 4)


def test_progress_error_carries_status_error_and_error_text(watchers):
    with HX11Double(step_delay=0.005, rate_limit=None, fail_at=70, fail_message="Import failed: boom") as bad:
        headers = login(bad)
        w = watchers(bad, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        bad.wait_for(lambda: sid in bad.joins)
        upload(bad, headers, sid)
        err = w.wait("progress-error")
    assert err["status"] == "error" and err["error"] == "Import failed: boom" and err["message"] == err["error"]
    assert err["sessionId"] == sid and 0 < err["progress"] < 70 and "metadata" in err
    assert "progress-complete" not in w.names()


def test_stage_messages_follow_the_observed_sequence(watchers):
    with HX11Double(step_delay=0.0, throttle=0.0, rate_limit=None, batch_rows=10) as hx2:
        headers = login(hx2)
        w = watchers(hx2, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        hx2.wait_for(lambda: sid in hx2.joins)
        upload(hx2, headers, sid, rows=30)
        w.wait("progress-complete")
    seq = [(round(d["progress"]), d["message"]) for n, d, _ in w.events if n == "progress-update"]
    assert seq[0] == (5, "Parsing CSV file...")
    assert seq[1] == (15, "Parsed 30 rows")
    assert [m for p, m in seq if 25 <= p <= 60 and "staging table" in m] == [
        f"Inserted {k}/30 records to staging table..." for k in (10, 20, 30)]
    assert [m for _, m in seq if m.startswith("Processing batch")] == [f"Processing batch {b}/3..." for b in (1, 2, 3)]
    assert seq[-1] == (95, "Finalizing import and cleaning up...")
    assert [p for p, _ in seq] == sorted(p for p, _ in seq)


def test_stall_blocks_the_server_and_resets_the_in_flight_poll():
    with HX11Double(step_delay=0.01, rate_limit=None, stall=1.5, stall_at=65) as hx2:
        headers = login(hx2)
        sid = str(uuid.uuid4())
        upload(hx2, headers, sid)
        assert hx2.wait_for(lambda: hx2.stalling)
        time.sleep(0.3)  # well inside the stall now
        t0 = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            requests.get(hx2.url + "/api/import/progress/" + sid, headers=headers, timeout=10)
        assert time.monotonic() - t0 > 0.5  # the answer waited for the blocked loop
        assert hx2.resets == 1
        assert hx2.wait_for(lambda: hx2.sessions[sid].status == "completed")


# --------------------------------------------------------------------------- polling
def test_progress_poll_is_404_session_not_found_before_upload(hx):
    r = requests.get(hx.url + "/api/import/progress/" + str(uuid.uuid4()), headers=login(hx), timeout=5)
    assert r.status_code == 404 and r.json() == {"success": False, "error": "Session not found"}


def test_progress_poll_body_while_known(hx):
    headers = login(hx)
    sid = str(uuid.uuid4())
    upload(hx, headers, sid)
    body = requests.get(hx.url + "/api/import/progress/" + sid, headers=headers, timeout=5).json()
    assert body["success"] is True and body["sessionId"] == sid
    assert set(body) == {"success", "sessionId", "progress", "status", "message", "metadata"}


def test_finished_session_is_deleted_after_complete_retention():
    with HX11Double(step_delay=0.001, rate_limit=None, complete_retention=0.5) as hx2:
        headers = login(hx2)
        sid = str(uuid.uuid4())
        upload(hx2, headers, sid)
        assert hx2.wait_for(lambda: hx2.sessions.get(sid) is not None and hx2.sessions[sid].status == "completed")
        r = requests.get(hx2.url + "/api/import/progress/" + sid, headers=headers, timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "completed"
        assert hx2.wait_for(lambda: sid not in hx2.sessions, timeout=5)
        assert requests.get(hx2.url + "/api/import/progress/" + sid, headers=headers, timeout=5).status_code == 404


def test_failed_session_is_deleted_after_error_retention_not_complete_retention():
    with HX11Double(step_delay=0.001, rate_limit=None, fail_at=60, complete_retention=0.1,
                    error_retention=0.8) as hx2:
        headers = login(hx2)
        sid = str(uuid.uuid4())
        upload(hx2, headers, sid)
        assert hx2.wait_for(lambda: hx2.sessions.get(sid) is not None and hx2.sessions[sid].status == "error")
        time.sleep(0.3)
        r = requests.get(hx2.url + "/api/import/progress/" + sid, headers=headers, timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "error"
        assert hx2.wait_for(lambda: sid not in hx2.sessions, timeout=5)


def test_imports_history_always_answers_500_as_on_1_1_12(hx):
    headers = login(hx)
    r = requests.get(hx.url + "/api/imports", headers=headers, timeout=5)
    assert r.status_code == 500
    assert r.json() == {"success": False, "error": "Failed to fetch import history",
                        "details": "importService.getImportHistory is not a function"}


def test_last_import_names_the_newest_import_record_in_csv_rows():
    with HX11Double(step_delay=0.002, rate_limit=None) as hx2:
        headers = login(hx2)
        empty = requests.get(hx2.url + "/api/vulnerabilities/last-import", headers=headers, timeout=5).json()
        assert empty == {"lastImport": None, "rowCount": 0}
        for name, rows in (("first.csv", 3), ("history_probe.csv", 7)):
            sid = str(uuid.uuid4())
            upload(hx2, headers, sid, files={"csvFile": (name, csv_text(rows), "text/csv")})
            hx2.wait_for(lambda: hx2.sessions[sid].status == "completed")
        body = requests.get(hx2.url + "/api/vulnerabilities/last-import", headers=headers, timeout=5).json()
        assert body == {"lastImport": "2025-11-20", "rowCount": 7, "vendor": "tenable",
                        "filename": "history_probe.csv"}


def test_a_working_history_route_can_be_modelled(hx):
    with HX11Double(step_delay=0.002, rate_limit=None, history_route=True) as hx2:
        headers = login(hx2)
        sid = str(uuid.uuid4())
        upload(hx2, headers, sid, files={"csvFile": ("history_probe.csv", csv_text(7), "text/csv")})
        hx2.wait_for(lambda: hx2.sessions[sid].status == "completed")
        body = requests.get(hx2.url + "/api/imports", headers=headers, timeout=5).json()
        row = body["data"][0]
        assert row["row_count"] == 7 and row["processing_time"] is not None


def test_rate_limit_on_api_answers_429_with_retry_after():
    with HX11Double(rate_limit=5, rate_window=120) as hx2:
        codes = [requests.get(hx2.url + "/api/imports", timeout=5).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        r = requests.get(hx2.url + "/api/imports", timeout=5)
        assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 120
        assert requests.get(hx2.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                            timeout=5).status_code == 400  # not under /api/


def test_every_api_answer_carries_the_ratelimit_headers_keyed_on_x_forwarded_for():
    with HX11Double(rate_limit=3, rate_window=900) as hx2:
        seen = [requests.get(hx2.url + "/api/auth/status", timeout=5).headers for _ in range(2)]
        assert [h["RateLimit-Remaining"] for h in seen] == ["2", "1"]
        assert seen[0]["RateLimit-Limit"] == "3" and seen[0]["RateLimit-Policy"] == "3;w=900"
        assert 0 < int(seen[0]["RateLimit-Reset"]) <= 900
        other = requests.get(hx2.url + "/api/auth/status", headers={"X-Forwarded-For": "203.0.113.5, 10.0.0.1"},
                             timeout=5)
        assert other.headers["RateLimit-Remaining"] == "2"  # its own budget
        assert requests.get(hx2.url + "/api/auth/status", timeout=5).headers["RateLimit-Remaining"] == "0"
        assert requests.get(hx2.url + "/api/auth/status", timeout=5).status_code == 429


def test_a_post_refused_by_the_csrf_check_is_not_counted():
    """1.1.12 runs its CSRF check before the rate limiter: such a refusal carries no RateLimit headers."""
    with HX11Double(rate_limit=10) as hx2:
        r = requests.post(hx2.url + "/api/auth/logout", timeout=5)
        assert r.status_code == 500 and "RateLimit-Remaining" not in r.headers
        assert requests.get(hx2.url + "/api/auth/status", timeout=5).headers["RateLimit-Remaining"] == "9"


def test_two_imports_at_once_lose_records_and_both_say_completed():
    with HX11Double(step_delay=0.1, rate_limit=None) as hx2:
        headers = login(hx2)
        sids = [str(uuid.uuid4()), str(uuid.uuid4())]
        upload(hx2, headers, sids[0], files={"csvFile": ("a.csv", csv_text(400), "text/csv")})
        upload(hx2, headers, sids[1], files={"csvFile": ("b.csv", csv_text(100, start=1000), "text/csv")})
        assert hx2.wait_for(lambda: all(hx2.sessions[s].status == "completed" for s in sids))
        assert hx2.lost_records > 0
        assert hx2.active_records() < 100  # the second import's records, minus what the overlap lost
    with HX11Double(step_delay=0.002, rate_limit=None) as alone:
        headers = login(alone)
        sid = str(uuid.uuid4())
        upload(alone, headers, sid, files={"csvFile": ("a.csv", csv_text(400), "text/csv")})
        assert alone.wait_for(lambda: alone.sessions[sid].status == "completed")
        assert alone.lost_records == 0 and alone.active_records() == 400


def test_rate_limit_production_default_is_60_per_15_minutes():
    double = HX11Double()
    assert (double.rate_limit, double.rate_window) == (60, 900)
    assert (double.complete_retention, double.error_retention, double.throttle) == (5.0, 10.0, 0.1)


def test_unknown_route_is_express_html_404(hx):
    r = requests.get(hx.url + "/api/does-not-exist", headers=login(hx), timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<pre>Cannot GET /api/does-not-exist</pre>" in r.text


def test_there_is_no_cancel_route_or_event(hx, watchers):
    headers = login(hx)
    with HX11Double(step_delay=0.02, rate_limit=None) as hx2:
        headers = login(hx2)
        w = watchers(hx2, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        hx2.wait_for(lambda: sid in hx2.joins)
        upload(hx2, headers, sid, rows=50)
        w.sio.emit("cancelImport", sid)
        for path in (f"/api/import/cancel/{sid}", f"/api/import/progress/{sid}/cancel"):
            assert requests.post(hx2.url + path, headers=headers, timeout=5).status_code == 404
        assert w.wait("progress-complete")["status"] == "completed"


def test_leave_progress_stops_the_events(hx, watchers):
    with HX11Double(step_delay=0.05, rate_limit=None, throttle=0.0) as hx2:
        headers = login(hx2)
        w = watchers(hx2, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        hx2.wait_for(lambda: sid in hx2.joins)
        upload(hx2, headers, sid)
        w.sio.emit("leave-progress", sid)
        assert hx2.wait_for(lambda: hx2.sessions[sid].status == "completed")
        time.sleep(0.2)
        w.close()
    assert "progress-complete" not in w.names()
    assert len(w.events) < 5


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"]])
def test_a_70_kb_progress_complete_reaches_the_client(transports, watchers):
    with HX11Double(step_delay=0.005, rate_limit=None, summary_bytes=70_000) as hx2:
        headers = login(hx2)
        w = watchers(hx2, headers, transports=transports)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        hx2.wait_for(lambda: sid in hx2.joins)
        upload(hx2, headers, sid)
        done = w.wait("progress-complete")
        w.close()
    import json

    assert len(json.dumps(done)) >= 70_000 and done["metadata"]["importSummary"]["hostDetails"]


def test_double_stops_cleanly_without_leaking_threads(watchers):
    before = {t.name for t in threading.enumerate()}
    with HX11Double(step_delay=0.001, rate_limit=None) as hx2:
        headers = login(hx2)
        w = watchers(hx2, headers)
        sid = str(uuid.uuid4())
        w.sio.emit("join-progress", sid)
        upload(hx2, headers, sid)
        w.wait("progress-complete")
        w.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and {t.name for t in threading.enumerate() if t.is_alive()} - before:
        time.sleep(0.05)
    assert not ({t.name for t in threading.enumerate() if t.is_alive()} - before)
