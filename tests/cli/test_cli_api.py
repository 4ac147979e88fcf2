"""The client's HTTP layer against real HTTP servers: retries, odd answers, aborted uploads."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from support.cli import run_cli
from support.cli_suite import cli_env, imports_total
from support.fixtures import TOKEN, big_csv, server, small_csv  # noqa: F401  (fixtures)
from hextrackr_cli.client.seed.api import SeedApi, UploadAborted
from hextrackr_cli.errors import AuthError, ServerError, ServerUnreachable

SID = str(uuid.uuid4())


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, headers, body)."""

    script: list = []
    seen: list = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(self.path)
        status, headers, body = type(self).script.pop(0) if type(self).script else (500, {}, b"{}")
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[str, type]]:
    handler = type("H", (Scripted,), {"script": [], "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


JSON = {"Content-Type": "application/json"}


def test_503_with_retry_after_is_retried_then_succeeds(scripted):
    """A transient 503 (Retry-After: 0) and a 429 are retried; the third answer is used."""
    url, h = scripted
    body = json.dumps({"sessionId": SID, "outcome": "running"}).encode()
    h.script = [(503, {**JSON, "Retry-After": "0"}, b'{"error":"busy"}'),
                (429, {**JSON, "Retry-After": "0"}, b'{"error":"slow down"}'),
                (200, JSON, body)]
    assert SeedApi(url, TOKEN).progress(SID)["outcome"] == "running"
    assert len(h.seen) == 3


def test_html_answer_says_what_came_back(scripted):
    """A proxy/login page instead of JSON: the error names an HTML page and its title, not a JSON traceback."""
    url, h = scripted
    h.script = [(200, {"Content-Type": "text/html"}, b"<!doctype html><html><title>Sign in - Corp SSO</title></html>")]
    with pytest.raises(ServerError) as info:
        SeedApi(url, TOKEN).progress(SID)
    assert "HTML page" in str(info.value) and "Sign in - Corp SSO" in str(info.value)


def test_401_is_an_auth_error_with_the_token_hint(scripted):
    url, h = scripted
    h.script = [(401, JSON, b'{"error":"invalid token","code":"unauthorized"}')]
    with pytest.raises(AuthError) as info:
        SeedApi(url, TOKEN, token_hint="check HEXTRACKR_TOKEN").progress(SID)
    assert "check HEXTRACKR_TOKEN" in str(info.value) and TOKEN not in str(info.value)


def test_unresolvable_host_is_unreachable():
    with pytest.raises(ServerUnreachable) as info:
        SeedApi("http://no-such-host.invalid", TOKEN, retries=0).health()
    assert "no-such-host.invalid" in str(info.value)


def test_html_server_makes_the_cli_exit_1_with_a_clear_line(scripted, tmp_path, big_csv):
    """The CLI pointed at a web page: exit 1 and one line saying an HTML page came back."""
    url, h = scripted
    h.script = [(200, {"Content-Type": "text/html"}, b"<html><title>Welcome to nginx!</title></html>")]
    r = run_cli(["import", str(big_csv)], cli_env(tmp_path, url))
    err = r.stderr.decode()
    assert r.returncode == 1 and "HTML page" in err and "nginx" in err and "Traceback" not in err


def test_upload_aborted_mid_stream_leaves_nothing_on_the_server(server, big_csv):
    """Ctrl-C during the upload: the stream stops, UploadAborted is raised, the server has no import."""
    api = SeedApi(server.url, TOKEN)
    abort = threading.Event()
    sent = []

    def on_progress(done: int, total: int) -> None:
        sent.append(done)
        abort.set()  # stop after the first chunks

    with pytest.raises(UploadAborted):
        api.upload(big_csv, session_id=str(uuid.uuid4()), on_progress=on_progress, abort=abort)
    assert sent and sent[-1] < big_csv.stat().st_size
    assert imports_total(server.url) == 0


def test_https_url_to_a_plain_http_server_is_unreachable_with_a_hint(scripted):
    """https:// to a plain-HTTP port: exit-3 error saying the TLS handshake failed and suggesting http://."""
    url, _ = scripted
    with pytest.raises(ServerUnreachable) as info:
        SeedApi(url.replace("http://", "https://"), TOKEN, retries=0).health()
    assert "TLS handshake" in str(info.value) and "http://" in str(info.value)


def test_500_is_retried_for_an_idempotent_get_but_not_forever(scripted):
    """GET answered 500 once: retried and the next answer used; 500 every time: an error after 3 attempts."""
    url, h = scripted
    body = json.dumps({"sessionId": SID, "outcome": "completed"}).encode()
    h.script = [(500, JSON, b'{"error":"internal error: RuntimeError","code":"internal"}'), (200, JSON, body)]
    assert SeedApi(url, TOKEN).progress(SID)["outcome"] == "completed"
    h.script = [(500, JSON, b'{"error":"internal error: X","code":"internal"}')] * 5
    h.seen.clear()
    with pytest.raises(ServerError) as info:
        SeedApi(url, TOKEN).progress(SID)
    assert len(h.seen) == 3 and "internal error" in str(info.value)


def test_hung_server_is_given_up_within_the_timeout(tmp_path, small_csv):
    """A server that accepts connections and never answers: `import --timeout 2` ends within seconds, exit 3."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        t0 = time.monotonic()
        r = run_cli(["import", "--timeout", "2", str(small_csv)], cli_env(tmp_path, url), timeout=60)
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        listener.close()
    assert r.returncode == 3, r.stderr.decode()
    assert "did not answer" in r.stderr.decode()
    assert took < 15
