"""Security (issue 6): every API route and every Socket.io connect needs the token; a token cannot join,
cancel or read another token's session; upload size (413) and content type (415) limits; filenames and session
ids sanitised; no secret in any log or output; loopback bind by default; config file 0600; failed-auth rate
limiting. All against the real server (in-process or as a `hextrackr serve` process) and the real CLI."""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

import pytest
import requests

from support import faults as S
from support.figures import record

pytest_plugins = ["support.figures_plugin"]

ADMIN, ALICE, BOB = S.TOKEN, S.OTHER_TOKEN, S.THIRD_TOKEN


def refused(status: int) -> bool:
    """401 (wrong/missing token) or 429 (the rate limiter already stepped in): both refuse."""
    return status in (401, 429)


def note_unauthorized(ok: bool) -> None:
    record(unauthorized_attempts=1, unauthorized_refused=int(ok))


@pytest.fixture
def three_tokens(server_factory):
    """A server with an admin token and two ordinary tokens (Alice, Bob)."""
    return server_factory(tokens=[ADMIN, ALICE, BOB])


def alice_import(srv, tmp_path: Path, rows: int = 20) -> tuple[str, int]:
    sid = S.new_sid()
    csv_path = S.gen_csv(tmp_path / "alice_secret_scan_2025-11-20.csv", rows)
    r = S.post_file(srv.url, csv_path, token=ALICE, session_id=sid, filename=csv_path.name)
    assert r.status_code == 202, r.text
    final = S.wait_outcome(srv.url, sid, token=ALICE)
    assert final["outcome"] == "completed"
    return sid, int(r.json()["importId"])


# --------------------------------------------------------------------------- HTTP authentication
BAD_AUTH = [
    None,  # no header
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {ADMIN}x"},
    {"Authorization": f"Basic {ADMIN}"},
    {"Authorization": ADMIN},
    {"X-Api-Token": ADMIN},
]


def test_every_api_route_refuses_requests_without_the_right_token(server_factory, tmp_path):
    """Uploads, progress, history and single imports answer 401 JSON (never data, never 500) to a missing,
    empty, wrong, mis-schemed or misplaced token; nothing is stored; only /health answers without a token."""
    srv = server_factory(tokens=[ADMIN])
    sid = S.new_sid()
    good = S.gen_csv(tmp_path / "scan_2025-11-20.csv", 5)
    assert S.post_file(srv.url, good, session_id=sid).status_code == 202
    S.wait_outcome(srv.url, sid)
    before_db = S.fingerprint(srv.db_path)
    routes = [
        ("GET", f"/api/import/progress/{sid}"), ("GET", "/api/imports"), ("GET", "/api/imports/1"),
        ("POST", "/api/vulnerabilities/import"), ("POST", "/api/tickets/import"), ("GET", "/api/nope"),
        ("DELETE", "/api/imports/1"),
    ]
    seen_401 = 0
    for method, path in routes:
        for headers in BAD_AUTH:
            if method == "POST":
                r = S.post_file(srv.url, good, token=None, session_id=S.new_sid())
                if headers:  # same upload with the bad header
                    r = requests.post(srv.url + path, files={"csvFile": ("x.csv", good.read_bytes())},
                                      headers=headers, timeout=10)
            else:
                r = requests.request(method, srv.url + path, headers=headers or {}, timeout=10)
            ok = refused(r.status_code) and r.headers.get("content-type", "").startswith("application/json")
            note_unauthorized(ok)
            assert ok, (method, path, headers, r.status_code, r.text[:200])
            assert sid not in r.text and "scan_2025" not in r.text
            seen_401 += r.status_code == 401
    assert seen_401 >= 10, "the first failures must be 401, not 429"
    assert S.fingerprint(srv.db_path) == before_db
    assert S.count(srv.db_path, "imports") == 1, "an unauthenticated upload was stored"
    assert not list((srv.db_path.parent / "uploads").glob("*"))
    health = requests.get(srv.url + "/health", timeout=10)
    assert health.status_code == 200 and ADMIN not in health.text


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("auth", [None, {}, {"token": ""}, {"token": "wrong"}, {"token": 12345},
                                  {"token": [ADMIN]}, {"Authorization": f"Bearer {ADMIN}"}])
def test_socketio_connect_without_the_right_token_is_refused(server_factory, transport, auth):
    """Socket.io connect with no auth, an empty, wrong or wrongly typed token is refused (connect_error), over
    websocket and over engine.io polling."""
    import socketio

    srv = server_factory(tokens=[ADMIN])
    sio = socketio.Client(reconnection=False)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            sio.connect(srv.url, auth=auth, transports=[transport], wait_timeout=10)
        note_unauthorized(True)
    finally:
        from support.server import close_client

        close_client(sio)


# --------------------------------------------------------------------------- ownership
def test_another_token_cannot_read_join_or_cancel_a_session_it_does_not_own(three_tokens, tmp_path):
    """Bob cannot see Alice's import by HTTP (progress, history, by id), cannot join or cancel it, cannot reserve
    its id nor reuse it for an upload; he is told 'not found' (no hint it exists). The admin token sees it."""
    from support.server import close_client, socket_client

    srv = three_tokens
    sid, import_id = alice_import(srv, tmp_path)
    checks: list[bool] = []
    r = S.status(srv.url, sid, BOB)
    checks.append(r.status_code == 404 and "alice" not in r.text)
    r = requests.get(f"{srv.url}/api/imports/{import_id}", headers=S.auth(BOB), timeout=10)
    checks.append(r.status_code == 404 and "alice" not in r.text)
    r = requests.get(f"{srv.url}/api/imports", headers=S.auth(BOB), timeout=10)
    checks.append(r.status_code == 200 and r.json()["total"] == 0 and sid not in r.text)
    other = S.gen_csv(tmp_path / "bob_2025-11-20.csv", 3, offset=1000)
    r = S.post_file(srv.url, other, token=BOB, session_id=sid)
    checks.append(r.status_code == 409 and "alice" not in r.text)
    sio = socket_client(srv.url, BOB)
    try:
        ack = sio.call("joinSession", sid, timeout=10)
        checks.append(ack.get("ok") is False and "not found" in ack.get("error", "").lower())
        ack = sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)
        checks.append(ack.get("ok") is False)
        ack = sio.call("cancelImport", sid, timeout=10)
        checks.append(ack.get("ok") is False and "not found" in ack.get("error", "").lower())
    finally:
        close_client(sio)
    for ok in checks:
        note_unauthorized(ok)
    assert all(checks), checks
    assert S.status(srv.url, sid, ADMIN).status_code == 200
    assert S.status(srv.url, sid, ALICE).json()["outcome"] == "completed"


def test_another_token_cannot_cancel_a_running_import(three_tokens, tmp_path):
    """While Alice's import runs, Bob's cancelImport is refused as not found and the import completes with
    every row; Alice's own cancel would have been accepted (same call, right token)."""
    from support.server import close_client, socket_client

    srv = three_tokens
    sid = S.new_sid()
    big = S.gen_csv(tmp_path / "alice_2025-11-20.csv", 40_000)
    r = S.post_file(srv.url, big, token=ALICE, session_id=sid)
    assert r.status_code == 202
    sio = socket_client(srv.url, BOB)
    try:
        ack = sio.call("cancelImport", sid, timeout=10)
    finally:
        close_client(sio)
    ok = ack.get("ok") is False and "not found" in ack.get("error", "").lower()
    note_unauthorized(ok)
    assert ok, ack
    final = S.wait_outcome(srv.url, sid, token=ALICE)
    assert final["outcome"] == "completed" and not final["cancelled"]
    assert S.count(srv.db_path) == 40_000


def test_a_session_reserved_by_one_token_cannot_be_taken_by_another(three_tokens, tmp_path):
    """Alice reserves a session id (join before post); Bob's upload with that id is refused (409) and nothing
    of his is imported; Alice's upload then uses it."""
    from support.server import close_client, socket_client

    srv = three_tokens
    sid = S.new_sid()
    sio = socket_client(srv.url, ALICE)
    try:
        assert sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)["ok"] is True
        bob = S.gen_csv(tmp_path / "bob_2025-11-20.csv", 3, offset=5000)
        r = S.post_file(srv.url, bob, token=BOB, session_id=sid)
        note_unauthorized(r.status_code == 409)
        assert r.status_code == 409, r.text
        alice = S.gen_csv(tmp_path / "alice_2025-11-20.csv", 7)
        r = S.post_file(srv.url, alice, token=ALICE, session_id=sid)
        assert r.status_code == 202, r.text
        assert S.wait_outcome(srv.url, sid, token=ALICE)["outcome"] == "completed"
    finally:
        close_client(sio)
    assert S.count(srv.db_path) == 7


# --------------------------------------------------------------------------- request limits
def test_upload_over_the_size_limit_is_413_and_nothing_is_stored(server_factory, tmp_path):
    """With --max-upload 4096 bytes, a 50 KB upload answers 413 (JSON) and leaves no import, no row and no
    stored file; the CLI exits 1 with one line naming the limit."""
    srv = server_factory(tokens=[ADMIN], max_upload=4096)
    big = S.gen_csv(tmp_path / "toolarge_2025-11-20.csv", 500)
    r = S.post_file(srv.url, big, session_id=S.new_sid())
    assert r.status_code == 413 and r.json()["code"] == "too_large", r.text
    cli = S.run_cli(["-q", "import", str(big)], S.cli_env(tmp_path, srv.url))
    err = cli.stderr.decode()
    assert cli.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "limit" in lines[0] and "Traceback" not in err, err
    assert S.imports_total(srv.url) == 0 and S.count(srv.db_path) == 0
    assert not list((srv.db_path.parent / "uploads").glob("*"))
    small = S.gen_csv(tmp_path / "small_2025-11-20.csv", 5)
    assert S.run_cli(["-q", "import", str(small)], S.cli_env(tmp_path, srv.url)).returncode == 0


def test_upload_limit_holds_for_chunked_bodies_without_content_length(server_factory, tmp_path):
    """A chunked upload (no Content-Length to check up front) is cut off at the limit while streaming: 413,
    no import, no stored file."""
    from requests_toolbelt.multipart.encoder import MultipartEncoder

    srv = server_factory(tokens=[ADMIN], max_upload=4096)
    data = S.gen_csv(tmp_path / "chunked_2025-11-20.csv", 800).read_bytes()
    enc = MultipartEncoder(fields=[("sessionId", S.new_sid()), ("csvFile", ("c.csv", data, "text/csv"))])
    body = enc.to_string()

    def chunks():
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    r = requests.post(f"{srv.url}/api/vulnerabilities/import", data=chunks(),
                      headers={**S.auth(), "Content-Type": enc.content_type}, timeout=30)
    assert r.status_code == 413 and r.json()["code"] == "too_large", r.text
    assert S.count(srv.db_path, "imports") == 0 and S.count(srv.db_path) == 0
    assert not list((srv.db_path.parent / "uploads").glob("*"))


def test_token_in_the_url_is_not_accepted(server_factory):
    """A token in the query string (where it would end up in proxy and access logs) is refused over HTTP and on
    the Socket.io connect."""
    import socketio

    srv = server_factory(tokens=[ADMIN])
    for q in (f"token={ADMIN}", f"access_token={ADMIN}", f"auth={ADMIN}"):
        r = requests.get(f"{srv.url}/api/imports?{q}", timeout=10)
        note_unauthorized(r.status_code == 401)
        assert r.status_code == 401, (q, r.status_code)
    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(f"{srv.url}?token={ADMIN}", transports=["websocket"], wait_timeout=10)
    note_unauthorized(True)


@pytest.mark.parametrize("ctype", ["application/json", "text/csv", "application/x-www-form-urlencoded",
                                   "multipart/form-data", "multipart/mixed; boundary=xyz", ""])
def test_upload_with_the_wrong_content_type_is_415(server_factory, ctype):
    """Anything but multipart/form-data with a boundary answers 415 JSON and imports nothing."""
    srv = server_factory(tokens=[ADMIN])
    headers = {**S.auth(), "Content-Type": ctype} if ctype else S.auth()
    body = S.HEADER + "h1,10.0.0.1,CVE-2024-1,High,1,p,d,s,ACTIVE,2025-10-01,2025-11-20\n"
    r = requests.post(f"{srv.url}/api/vulnerabilities/import", data=body.encode(), headers=headers, timeout=10)
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type", (ctype, r.status_code, r.text)
    assert S.imports_total(srv.url) == 0


NASTY_NAMES = [
    "../../../../etc/passwd.csv",
    "..\\..\\windows\\system32\\scan.csv",
    "/absolute/path/scan.csv",
    "scan\x00.csv.exe",
    "tab\tand\x1bescape\x7f.csv",
    "A" * 1000 + ".csv",
    "é" * 300 + ".csv",
    "..",
]


@pytest.mark.parametrize("name", NASTY_NAMES, ids=lambda n: repr(n)[:30])
def test_path_like_control_and_overlong_filenames_are_neutralised(server_factory, tmp_path, name):
    """The stored/displayed filename is a base name without control characters, at most 255 bytes, and the
    upload lands inside the server's upload area only (nothing written where the name points)."""
    srv = server_factory(tokens=[ADMIN])
    csv_path = S.gen_csv(tmp_path / "x.csv", 3)
    sid = S.new_sid()
    r = S.post_file(srv.url, csv_path, filename=name, session_id=sid)
    assert r.status_code == 202, r.text
    shown = r.json()["filename"]
    assert S.wait_outcome(srv.url, sid)["outcome"] == "completed"
    record_ = requests.get(f"{srv.url}/api/imports/{r.json()['importId']}", headers=S.auth(), timeout=10).json()
    for value in (shown, record_["filename"]):
        assert "/" not in value and "\\" not in value, value
        assert not any(ord(c) < 32 or ord(c) == 127 for c in value), repr(value)
        assert 0 < len(value.encode("utf-8")) <= 255 and value not in (".", "..")
    assert not Path("/etc/passwd.csv").exists()
    assert sorted(p.name for p in srv.db_path.parent.iterdir() if not p.name.startswith("hextrackr.db")) in (
        ["uploads"], [])


BAD_SESSION_IDS = [
    "not-a-uuid", "../../etc/passwd", "' OR 1=1 --", "%2e%2e%2f", "0" * 5000,
    "12345678-1234-1234-1234-1234567890123", "{12345678-1234-4234-8234-123456789012}",
    "12345678123442348234123456789012", "12345678-1234-4234-8234-12345678901g",
]


def test_malformed_session_ids_are_refused_everywhere(server_factory, tmp_path):
    """POST sessionId, the progress path, joinSession and cancelImport all refuse non-UUID session ids
    (400 / 'Invalid session id'), and nothing is imported."""
    from support.server import close_client, socket_client

    srv = server_factory(tokens=[ADMIN])
    csv_path = S.gen_csv(tmp_path / "x.csv", 3)
    sio = socket_client(srv.url, ADMIN)
    try:
        for bad in BAD_SESSION_IDS:
            r = S.post_file(srv.url, csv_path, session_id=bad)
            assert r.status_code == 400 and r.json()["code"] == "invalid_session_id", (bad, r.text[:200])
            r = requests.get(f"{srv.url}/api/import/progress/{bad}", headers=S.auth(), timeout=10)
            assert r.status_code in (400, 404) and r.headers["content-type"].startswith("application/json"), bad
            for event in ("joinSession", "cancelImport"):
                ack = sio.call(event, bad, timeout=10)
                assert ack == {"ok": False, "error": "Invalid session id"}, (event, bad, ack)
            ack = sio.call("joinSession", {"sessionId": bad, "reserve": True}, timeout=10)
            assert ack.get("ok") is False, ack
    finally:
        close_client(sio)
    assert S.imports_total(srv.url) == 0


def test_static_paths_cannot_escape_the_asset_directory(server_factory):
    """Browser asset routes need no token but serve only their own files: traversal attempts (sent raw, without
    the client library's dot-segment normalisation) are refused and no page carries import data."""
    import http.client

    srv = server_factory(tokens=[ADMIN])
    host, port = srv.url.rsplit("/", 1)[1].split(":")
    probes = ("/static/../../server/http.py", "/static/%2e%2e/%2e%2e/server/http.py",
              "/static/..%2f..%2fstorage.py", "/static/....//....//server/http.py", "/static//etc/passwd",
              "/static/%2fetc%2fpasswd", "/imports/../api/imports", "/static/..\\..\\server\\http.py")
    for path in probes:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        assert resp.status in (400, 401, 404), (path, resp.status)
        assert "import asyncio" not in text and "root:" not in text and '"imports"' not in text, path


# --------------------------------------------------------------------------- rate limiting
def test_failed_auth_attempts_are_rate_limited_over_http_and_socketio(server_factory):
    """After 10 failed attempts from one address the server answers 429 with Retry-After (HTTP) and refuses
    Socket.io connects, instead of checking more guesses."""
    import socketio

    srv = server_factory(tokens=[ADMIN])
    statuses = []
    for i in range(12):
        r = requests.get(f"{srv.url}/api/imports", headers=S.auth(f"guess-{i}"), timeout=10)
        statuses.append(r.status_code)
        note_unauthorized(refused(r.status_code))
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[10:] == [429, 429], statuses
    r = requests.get(f"{srv.url}/api/imports", headers=S.auth("guess-x"), timeout=10)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(srv.url, auth={"token": "guess-socket"}, transports=["websocket"], wait_timeout=10)
    note_unauthorized(True)


# --------------------------------------------------------------------------- secrets, bind, config
def test_no_token_in_server_logs_cli_output_or_error_messages(tmp_path):
    """A `hextrackr serve` process and CLI runs with -vv, good and bad tokens, a failed import and a
    refused connect: neither the real token nor the wrong one appears in any captured log or output."""
    from support.server import spawn_server

    token = "s3cr3t-token-should-never-be-printed-0042"
    wrong = "wr0ng-token-also-never-printed-0043"
    srv = spawn_server(tmp_path, token=token)
    outputs: list[str] = []
    try:
        good = S.gen_csv(tmp_path / "scan_2025-11-20.csv", 20)
        bad = tmp_path / "ragged_2025-11-20.csv"
        bad.write_text(S.HEADER + "h,1.2.3.4\n")
        for args, tok in ((["-vv", "import", str(good)], token), (["-vv", "import", str(bad)], token),
                          (["-vv", "--output", "json", "import", str(good)], token),
                          (["-vv", "import", str(good)], wrong), (["-vv", "imports"], token),
                          (["-vv", "config", "list"], token)):
            r = S.run_cli(args, S.cli_env(tmp_path, srv.url, token=tok))
            outputs += [r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")]
        r = requests.get(f"{srv.url}/api/imports", headers=S.auth(wrong), timeout=10)
        outputs.append(r.text)
        r = S.run_cli(["-vv", "--token", token, "status", S.new_sid()], S.cli_env(tmp_path, srv.url, token=None))
        outputs += [r.stdout.decode(), r.stderr.decode()]
    finally:
        srv.stop()
    time.sleep(0.2)
    outputs.append(srv.stderr)
    everything = "\n".join(outputs)
    assert "completed" in everything  # the runs really happened
    assert token not in everything, "the token was printed"
    assert wrong not in everything, "a rejected token was printed"


def test_server_binds_loopback_by_default(tmp_path):
    """`hextrackr serve` without --host listens on 127.0.0.1 only: the machine's other addresses refuse."""
    from support.server import spawn_server

    srv = spawn_server(tmp_path)
    try:
        assert srv.url.startswith("http://127.0.0.1:"), srv.url
        port = int(srv.url.rsplit(":", 1)[1])
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; picks the outward interface address
            outward = probe.getsockname()[0]
        except OSError:
            outward = None
        finally:
            probe.close()
        if outward and not outward.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((outward, port), timeout=2).close()
        assert requests.get(srv.url + "/health", timeout=10).status_code == 200
    finally:
        srv.stop()


def test_generated_token_is_shown_once_and_stored_in_a_0600_config_file(tmp_path):
    """Without a token, serve generates one, prints it once on stderr and stores it for the local CLI in a config
    file readable by its owner only (0600, directory 0700)."""
    from support.server import spawn_server

    srv = spawn_server(tmp_path, token=None)
    try:
        token = srv.token
        assert token and srv.stderr.count(token) == 1, "the generated token must be shown exactly once"
        files = [p for p in (tmp_path / "config").rglob("*") if p.is_file()]
        holding = [p for p in files if token in p.read_text(errors="replace")]
        assert holding, files
        for p in holding:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p, oct(p.stat().st_mode))
            assert stat.S_IMODE(p.parent.stat().st_mode) & 0o077 == 0, (p.parent, oct(p.parent.stat().st_mode))
        r = requests.get(f"{srv.url}/api/imports", headers=S.auth(token), timeout=10)
        assert r.status_code == 200
    finally:
        srv.stop()
