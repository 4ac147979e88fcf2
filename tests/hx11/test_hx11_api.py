"""The HexTrackr 1.1 HTTP client against the protocol-faithful double (real HTTP, real Socket.io)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio

from hextrackr_cli import protocol
from hextrackr_cli.client.hx11 import api as hx11_api
from hextrackr_cli.client.hx11.api import Hx11Api, PollResult, RateLimited, UploadAborted
from hextrackr_cli.client.hx11 import events as hx11
from hextrackr_cli.errors import AuthError, ExitStatus, ServerError, ServerUnreachable

try:
    from support.hx11_double import STALL_RESET_WINDOW, HX11Double, csv_text, self_signed_cert
except ImportError:  # tests/ is a package
    from tests.support.hx11_double import STALL_RESET_WINDOW, HX11Double, csv_text, self_signed_cert

PASSWORD = "hextrackr-test"


@pytest.fixture(scope="module")
def hx():
    with HX11Double(step_delay=0.005, rate_limit=None, complete_retention=30) as double:
        yield double


@pytest.fixture
def api(hx):
    with Hx11Api(hx.url) as client:
        client.login("admin", PASSWORD)
        yield client


@pytest.fixture
def scan(tmp_path) -> Path:
    path = tmp_path / "tenable_scan.csv"
    path.write_text(csv_text(40))
    return path


def wait_status(hx: HX11Double, sid: str, status: str) -> None:
    assert hx.wait_for(lambda: sid in hx.sessions and hx.sessions[sid].status == status)


# --------------------------------------------------------------------------- login
def test_login_over_plain_http_says_forwarded_proto_at_once_and_keeps_the_secure_cookie(hx):
    before = len([e for e in hx.request_log if e[1] == "/api/auth/login"])
    with Hx11Api(hx.url) as api:
        user = api.login("admin", PASSWORD)
        assert user["username"] == "admin"
        assert api.forwarded_proto is True and api.cookie
        logins = [e for e in hx.request_log if e[1] == "/api/auth/login"][before:]
        assert [s for _, _, s in logins] == [200]  # one login: X-Forwarded-Proto: https from the start
        # the Secure cookie goes back explicitly over http
        assert len(api.csrf()) == 32


def test_a_session_the_client_created_is_logged_out_on_close_unless_kept():
    with HX11Double(rate_limit=None) as hx2:
        with Hx11Api(hx2.url) as api:
            api.login("admin", PASSWORD)
        assert ("POST", "/api/auth/logout", 200) in hx2.request_log and not hx2._auth
        with Hx11Api(hx2.url) as kept:
            kept.keep_session = True
            kept.login("admin", PASSWORD)
            cookie = kept.cookie
        assert len(hx2._auth) == 1
        with Hx11Api(hx2.url, cookie=cookie) as reused:
            assert reused.check_session() is True
        assert len(hx2._auth) == 1  # a saved cookie is never logged out by the commands that use it


def test_login_bad_password_is_auth_error_exit_4_without_echoing_the_password(hx):
    with Hx11Api(hx.url) as api, pytest.raises(AuthError) as info:
        api.login("admin", "s3cret-wrong")
    assert info.value.exit_status == ExitStatus.AUTH
    assert "Invalid username or password" in str(info.value) and "s3cret-wrong" not in str(info.value)
    assert "HEXTRACKR_USERNAME" in str(info.value)


def test_login_that_never_sets_a_cookie_is_diagnosed():
    with HX11Double(rate_limit=None, trust_proxy=False) as hx2, Hx11Api(hx2.url) as api:
        with pytest.raises(AuthError) as info:
            api.login("admin", PASSWORD)
    text = str(info.value)
    assert "set no session cookie" in text and "X-Forwarded-Proto" in text and "https://" in text


def test_stored_cookie_is_reused_and_a_dead_one_is_detected(hx, api):
    with Hx11Api(hx.url, cookie=api.cookie) as again:
        assert again.check_session() is True
    api.logout()
    with Hx11Api(hx.url, cookie="s%3Anot-a-session.sig") as dead:
        assert dead.check_session() is False


def test_probe_recognises_a_hextrackr_11_server_and_not_an_html_site(hx):
    with Hx11Api(hx.url) as api:
        assert api.probe() is True
    with Hx11Api(hx.url + "/elsewhere") as other:
        assert other.probe() is False


def test_probe_spends_one_request_and_reads_the_nested_auth_status():
    with HX11Double(rate_limit=None, auth_status_route=False) as bare, Hx11Api(bare.url) as api:
        assert api.probe() is False and api.api_requests == 1
        assert bare.wait_for(lambda: bare.request_log)  # logged once the answer is out
        time.sleep(0.2)
        assert [p for _, p, _ in bare.request_log] == ["/api/auth/status"]  # no second probe of /api/imports
    with HX11Double() as hx2, Hx11Api(hx2.url) as api:
        assert api.auth_status() == {"authenticated": False}
        assert (api.rate_limit, api.rate_remaining) == (60, 59)


def test_401_authentication_required_maps_to_auth_error_saying_to_log_in_again(hx):
    with Hx11Api(hx.url, cookie="s%3Aexpired.sig") as api, pytest.raises(AuthError) as info:
        api.imports()
    assert "not authenticated" in str(info.value) and "log in again" in str(info.value)


# --------------------------------------------------------------------------- upload
def test_upload_streams_csvfile_with_csv_name_and_reports_progress(hx, api, tmp_path):
    path = tmp_path / "export.txt"  # not *.csv locally: sent as export.txt.csv, text/csv
    path.write_text(csv_text(3000))
    sent: list[tuple[int, int]] = []
    sid = str(uuid.uuid4())
    answer = api.upload(path, session_id=sid, vendor="tenable", scan_date="2025-11-20",
                        on_progress=lambda done, total: sent.append((done, total)))
    assert answer["success"] is True and answer["sessionId"] == sid and answer["filename"] == "export.txt.csv"
    assert len(sent) >= 2 and sent[-1][0] == sent[-1][1] > path.stat().st_size
    assert [d for d, _ in sent] == sorted(d for d, _ in sent)
    wait_status(hx, sid, "completed")
    assert hx.sessions[sid].metadata["processedRows"] == 3000


def test_stale_csrf_token_is_refreshed_and_the_upload_retried_once(hx, api, scan):
    api.csrf_token = "0" * 32
    sid = str(uuid.uuid4())
    before = len([e for e in hx.request_log if e[1] == "/api/vulnerabilities/import-staging"])
    assert api.upload(scan, session_id=sid)["sessionId"] == sid
    posts = [e[2] for e in hx.request_log if e[1] == "/api/vulnerabilities/import-staging"][before:]
    assert posts == [500, 200]


def test_internal_server_error_is_explained_as_csrf_mime_or_field(hx, api, scan):
    class WrongRoute(Hx11Api):
        dialect = protocol.Dialect(**{**protocol.HEXTRACKR_11.__dict__, "import_path": "/api/vulnerabilities/import"})

    with WrongRoute(hx.url, cookie=api.cookie) as other, pytest.raises(ServerError) as info:
        other.upload(scan, session_id=str(uuid.uuid4()))
    text = str(info.value)
    assert "500" in text and "Internal server error" in text
    assert "CSRF" in text and "text/csv" in text and "csvFile" in text
    assert info.value.exit_status == ExitStatus.IMPORT_FAILED


def test_upload_can_be_aborted_before_the_server_answers(hx, api, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(csv_text(20000))
    stop = threading.Event()
    stop.set()
    with pytest.raises(UploadAborted):
        api.upload(path, session_id=str(uuid.uuid4()), abort=stop)


def test_html_404_is_explained_as_a_missing_route(hx, api):
    with Hx11Api(hx.url + "/hextrackr", cookie=api.cookie) as wrong, pytest.raises(ServerError) as info:
        wrong.last_import()
    assert "HTML" in str(info.value) and "no such route" in str(info.value)
    assert "Cannot GET /hextrackr/api/vulnerabilities/last-import" in str(info.value)


def test_unreachable_server_is_exit_3():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with Hx11Api(f"http://127.0.0.1:{port}") as api, pytest.raises(ServerUnreachable) as info:
        api.login("admin", PASSWORD)
    assert info.value.exit_status == ExitStatus.CONNECTION and "connection refused" in str(info.value)


# --------------------------------------------------------------------------- polling and history
def test_poll_is_typed_not_found_before_upload_ok_while_known_and_not_found_after_deletion(scan):
    with HX11Double(step_delay=0.005, rate_limit=None, complete_retention=0.4) as hx2, Hx11Api(hx2.url) as api:
        api.login("admin", PASSWORD)
        sid = str(uuid.uuid4())
        t = hx11.Translator(sid)
        first = api.progress(sid)
        assert first.status == hx11_api.POLL_NOT_FOUND and t.not_found() == hx11.NOT_STARTED
        api.upload(scan, session_id=sid)
        polled = api.progress(sid)
        assert polled.status == hx11_api.POLL_OK
        assert t.poll(polled.body)["type"] in protocol.EVENT_TYPES
        wait_status(hx2, sid, "completed")
        assert hx2.wait_for(lambda: sid not in hx2.sessions)
        gone = api.progress(sid)
        assert gone.status == hx11_api.POLL_NOT_FOUND and t.not_found() == hx11.GONE
        assert api.last_import()["filename"] == "tenable_scan.csv" and api.last_import()["rowCount"] == 40


def test_poll_rate_limited_returns_retry_after_and_other_calls_raise_rate_limited_past_the_deadline():
    with HX11Double(rate_limit=3, rate_window=300) as hx2, Hx11Api(hx2.url) as api:
        api.login("admin", PASSWORD)  # 1 request
        sid = str(uuid.uuid4())
        assert api.progress(sid).status == hx11_api.POLL_NOT_FOUND
        assert api.progress(sid).status == hx11_api.POLL_NOT_FOUND
        assert api.rate_remaining == 0 and api.api_requests == 3
        limited = api.progress(sid)
        assert limited.status == hx11_api.POLL_RATE_LIMITED and 0 < limited.retry_after <= 300
        api.deadline = time.monotonic() + 5  # Retry-After is beyond it: refused at once, exit 5 (never 1)
        with pytest.raises(RateLimited) as info:
            api.last_import()
        api.keep_session = True  # no logout through the closed window
    assert 0 < info.value.retry_after <= 300 and "retry in" in str(info.value)
    assert info.value.exit_status == ExitStatus.TIMEOUT


def test_a_429_is_waited_out_within_the_deadline_and_said(scan):
    """Login, CSRF and even the upload: a 429 comes before the route runs, so it is waited out and repeated."""
    with HX11Double(rate_limit=2, rate_window=1.5, step_delay=0.002) as hx2, Hx11Api(hx2.url) as api:
        said: list[str] = []
        api.on_wait, api.deadline = said.append, time.monotonic() + 30
        api.login("admin", PASSWORD)
        api.csrf()
        started = time.monotonic()
        answer = api.upload(scan, session_id=str(uuid.uuid4()))  # the third request of the window: 429, waited
        assert answer["success"] is True and time.monotonic() - started >= 1.0
        assert said and "rate limit" in said[0] and "Retry-After" in said[0]
        assert [s for m, p, s in hx2.request_log if p.endswith("import-staging")] == [429, 200]
        api.keep_session = True


def test_poll_reset_during_a_server_stall_is_a_typed_reset_not_a_failure(scan):
    with HX11Double(step_delay=0.01, rate_limit=None, stall=1.2, stall_at=65) as hx2, Hx11Api(hx2.url) as api:
        api.login("admin", PASSWORD)
        sid = str(uuid.uuid4())
        api.upload(scan, session_id=sid)
        assert hx2.wait_for(lambda: hx2.stalling)
        result = api.progress(sid)
        assert result == PollResult(hx11_api.POLL_RESET, detail=result.detail)
        wait_status(hx2, sid, "completed")
        time.sleep(STALL_RESET_WINDOW)  # only polls in flight during the stall are reset
        assert api.progress(sid).status == hx11_api.POLL_OK


def test_imports_falls_back_to_the_last_import_marked_as_such(hx, api, scan):
    sid = str(uuid.uuid4())
    api.upload(scan, session_id=sid, vendor="tenable", scan_date="2025-11-21")
    wait_status(hx, sid, "completed")
    body = api.imports()
    assert body["lastImportOnly"] is True and "500" in body["historyError"] and body["total"] == 1
    rec = body["imports"][0]
    assert (rec["filename"], rec["scanDate"], rec["rows"], rec["status"]) == ("tenable_scan.csv", "2025-11-21", 40,
                                                                              "unknown")


def test_imports_history_in_seed_shape_where_the_route_works(scan):
    with HX11Double(rate_limit=None, history_route=True, step_delay=0.002) as hx2, Hx11Api(hx2.url) as api:
        api.login("admin", PASSWORD)
        sid = str(uuid.uuid4())
        api.upload(scan, session_id=sid, vendor="tenable", scan_date="2025-11-21")
        wait_status(hx2, sid, "completed")
        body = api.imports()
        assert "lastImportOnly" not in body and body["total"] == len(body["data"]) == 1
        assert (body["imports"][0]["rows"], body["imports"][0]["status"]) == (40, "completed")


# --------------------------------------------------------------------------- socket.io
def _collect(client: socketio.Client, translator: hx11.Translator, out: list[dict]) -> None:
    for name in hx11.EVENTS:
        def handler(data, _name=name):
            ev = translator.event(_name, data)
            if ev is not None:
                out.append(ev)
        client.on(name, handler)


def _close(client: socketio.Client) -> None:
    t = threading.Thread(target=client.eio.disconnect, kwargs={"abort": True}, daemon=True)
    t.start()
    t.join(1)


@pytest.mark.parametrize("transports,expected", [(None, "websocket"), (["polling"], "polling")])
def test_join_before_post_receives_every_stage_and_the_summary(hx, api, scan, transports, expected):
    opts = api.socket_options()
    client = socketio.Client(reconnection=False, **opts.client_kwargs)
    sid = str(uuid.uuid4())
    translator = hx11.Translator(sid)
    events: list[dict] = []
    _collect(client, translator, events)
    try:
        client.connect(**opts.connect_kwargs(transports), wait_timeout=5)
        assert client.transport() == expected  # not silently stuck on polling
        client.emit(hx11.DIALECT.join_event, sid)
        assert hx.wait_for(lambda: sid in hx.joins)
        api.upload(scan, session_id=sid, vendor="tenable", scan_date="2025-11-20")
        assert hx.wait_for(lambda: translator.finished)
    finally:
        _close(client)
    assert events[0]["type"] == protocol.PARSING and events[0]["message"] == "Parsing CSV file..."
    assert events[-1]["type"] == protocol.COMPLETE
    summary = {k: events[-1][k] for k in ("rows", "inserted", "updated", "resolved")}
    assert summary["rows"] == 40 and summary["inserted"] + summary["updated"] == 40
    stages = [e["type"] for e in events]
    assert stages == sorted(stages, key=[protocol.PARSING, protocol.LOADING, protocol.PROCESSING,
                                         protocol.FINALIZING, protocol.COMPLETE].index)


def test_socket_options_carry_cookie_and_proto_and_suppress_http_origin(api):
    opts = api.socket_options()
    first, second = opts.connect_kwargs(), opts.connect_kwargs()
    assert first["headers"] is not second["headers"]  # engine.io mutates the dict it is given
    assert first["headers"]["Cookie"].startswith("hextrackr.sid=") and first["headers"]["X-Forwarded-Proto"] == "https"
    assert opts.client_kwargs["websocket_extra_options"] == {"suppress_origin": True}
    session = opts.client_kwargs["http_session"]
    assert session.headers["Cookie"] == first["headers"]["Cookie"]


def test_error_event_reaches_the_joined_client_with_the_server_message(scan):
    with HX11Double(step_delay=0.005, rate_limit=None, fail_at=70, fail_message="Import failed: boom") as hx2, \
            Hx11Api(hx2.url) as api:
        api.login("admin", PASSWORD)
        opts = api.socket_options()
        client = socketio.Client(reconnection=False, **opts.client_kwargs)
        sid = str(uuid.uuid4())
        translator = hx11.Translator(sid)
        events: list[dict] = []
        _collect(client, translator, events)
        try:
            client.connect(**opts.connect_kwargs(), wait_timeout=5)
            client.emit("join-progress", sid)
            assert hx2.wait_for(lambda: sid in hx2.joins)
            api.upload(scan, session_id=sid)
            assert hx2.wait_for(lambda: translator.finished)
        finally:
            _close(client)
    assert events[-1]["type"] == protocol.ERROR and events[-1]["message"] == "Import failed: boom"


def test_over_https_no_forwarded_proto_is_needed_and_the_socket_upgrades_with_the_ca_bundle(tmp_path, scan,
                                                                                              monkeypatch):
    # requests would let this override Session.verify and ignore the CA bundle we pass
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    cert, key = self_signed_cert(str(tmp_path))
    with HX11Double(step_delay=0.005, rate_limit=None, tls=(cert, key)) as hx2, Hx11Api(hx2.url, verify=cert) as api:
        assert hx2.url.startswith("https://")
        api.login("admin", PASSWORD)
        assert api.forwarded_proto is False  # one login, cookie set at once
        assert [e[2] for e in hx2.request_log if e[1] == "/api/auth/login"] == [200]
        opts = api.socket_options()
        assert "X-Forwarded-Proto" not in opts.connect_kwargs()["headers"]
        client = socketio.Client(reconnection=False, **opts.client_kwargs)
        sid = str(uuid.uuid4())
        translator = hx11.Translator(sid)
        events: list[dict] = []
        _collect(client, translator, events)
        try:
            client.connect(**opts.connect_kwargs(), wait_timeout=5)
            assert client.transport() == "websocket"  # default https:// Origin is accepted
            client.emit("join-progress", sid)
            assert hx2.wait_for(lambda: sid in hx2.joins)
            api.upload(scan, session_id=sid)
            assert hx2.wait_for(lambda: translator.finished)
        finally:
            _close(client)
    assert events[-1]["type"] == protocol.COMPLETE and events[-1]["rows"] == 40


def test_https_with_an_unknown_ca_is_a_tls_error_with_the_ca_bundle_hint(tmp_path):
    cert, key = self_signed_cert(str(tmp_path))
    with HX11Double(rate_limit=None, tls=(cert, key)) as hx2, Hx11Api(hx2.url) as api:
        with pytest.raises(ServerUnreachable) as info:
            api.login("admin", PASSWORD)
    assert "TLS verification failed" in str(info.value) and "--ca-bundle" in str(info.value)
