"""Network faults during a real import (issue 6), injected by a loopback TCP proxy between the CLI and the real
server: connections cut mid-import, server unreachable for a while, websocket refused, socket connected but
silent, 5xx / HTML / 429 answers for a while. Each test ends by checking the final database against the
expected rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from support import faults as S
from support.figures import record
from support.proxy import TcpProxy

pytest_plugins = ["support.figures_plugin"]

BIG = 60_000  # under a second of server work now: tests hold the write lock to inject a fault mid-import
MID = 5_000


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return S.gen_csv(tmp_path_factory.mktemp("net-big") / "netscan_2025-11-20.csv", BIG)


@pytest.fixture(scope="module")
def mid_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return S.gen_csv(tmp_path_factory.mktemp("net-mid") / "netscan_2025-11-21.csv", MID, offset=BIG)


@pytest.fixture
def server(server_factory):
    return server_factory(tokens=[S.TOKEN])


@pytest.fixture
def proxy(server):
    port = int(server.url.rsplit(":", 1)[1])
    with TcpProxy(port) as p:
        yield p


def finish(proc, timeout: float = 120) -> tuple[list[dict], str]:
    out, err = proc.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return lines, err.decode("utf-8", "replace")


def expect_rows(db_path: Path, expected: int) -> None:
    got = S.count(db_path)
    record(rows_expected=expected, rows_lost=max(0, expected - got))
    assert got == expected, f"{expected - got} rows lost"


def test_connections_cut_mid_import_cli_reconnects_and_reports_completed(server, proxy, big_csv, tmp_path):
    """Every TCP connection is reset mid-import: the CLI reconnects, re-joins, and exits 0 with every row in."""
    proc = S.spawn_cli(["--output", "json", "import", str(big_csv)], S.cli_env(tmp_path, proxy.url))
    try:
        S.read_json_until(proc, lambda o: o.get("event") == "uploaded")
        with S.hold_write_lock(server.db_path):  # the import is certainly still running at the cut
            S.read_json_until(proc, lambda o: o.get("type") == "loading")
            assert proxy.cut_all() >= 1
            record(faults_injected=1)
        lines, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert any(o.get("event") in ("reconnecting", "reconnected", "transport") for o in lines), lines[-5:]
    assert lines[-1]["event"] == "summary" and lines[-1]["outcome"] == "completed" and lines[-1]["rows"] == BIG
    expect_rows(server.db_path, BIG)
    record(faults_survived=1)


def test_server_unreachable_for_seconds_mid_import_cli_recovers(server, proxy, big_csv, tmp_path):
    """Connections cut and new ones refused for ~3 s mid-import: reconnect with backoff, true outcome, exit 0."""
    proc = S.spawn_cli(["--output", "json", "import", str(big_csv)], S.cli_env(tmp_path, proxy.url))
    try:
        S.read_json_until(proc, lambda o: o.get("event") == "uploaded")
        with S.hold_write_lock(server.db_path):  # the import is certainly still running while unreachable
            S.read_json_until(proc, lambda o: o.get("type") == "loading")
            proxy.mode = "refuse"
            proxy.cut_all()
            record(faults_injected=1)
            time.sleep(3)
        proxy.mode = "pass"
        lines, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert lines[-1]["outcome"] == "completed" and lines[-1]["rows"] == BIG
    expect_rows(server.db_path, BIG)
    record(faults_survived=1)


def test_websocket_refused_falls_back_to_polling_and_completes(server, proxy, mid_csv, tmp_path):
    """Every websocket upgrade is reset (a proxy that forbids websockets): the import is followed over polling."""
    proxy.ws = "reject"
    record(faults_injected=1)
    r = S.run_cli(["--output", "json", "import", str(mid_csv)], S.cli_env(tmp_path, proxy.url))
    err = r.stderr.decode()
    lines = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    assert r.returncode == 0, err
    assert proxy.ws_rejected >= 1, "the fault was never exercised"
    assert proxy.ws_connections == 0
    assert lines[-1]["outcome"] == "completed" and lines[-1]["rows"] == MID
    expect_rows(server.db_path, MID)
    record(faults_survived=1)


def test_silent_socket_switches_to_http_polling(server, proxy, big_csv, tmp_path):
    """The websocket stays connected but nothing crosses it any more: after the liveness period the CLI asks the
    status endpoint, switches to HTTP polling, and reports the true outcome."""
    env = S.cli_env(tmp_path, proxy.url, HEXTRACKR_LIVENESS="1")
    proc = S.spawn_cli(["--output", "json", "import", "--poll-interval", "0.2", str(big_csv)], env)
    try:
        S.read_json_until(proc, lambda o: o.get("type") in ("parsing", "loading"))
        assert proxy.ws_connections >= 1, "the CLI did not use a websocket"
        proxy.silence_ws()
        record(faults_injected=1)
        lines, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    switches = [o for o in lines if o.get("event") == "transport" and o.get("transport") == "polling"]
    assert switches and "silent" in switches[0]["reason"], [o for o in lines if "event" in o]
    assert lines[-1]["outcome"] == "completed" and lines[-1]["rows"] == BIG
    expect_rows(server.db_path, BIG)
    record(faults_survived=1)


HTML_502 = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def test_upload_answered_503_html_502_and_429_is_retried_then_succeeds(server, proxy, mid_csv, tmp_path):
    """The upload meets 503 (JSON), 502 (an HTML proxy page) and 429 with Retry-After: retried with backoff,
    then imported exactly once."""
    path = "/api/vulnerabilities/import"
    proxy.inject(503, count=1, body='{"error": "maintenance", "code": "unavailable"}', path_prefix=path)
    proxy.inject(502, count=1, body=HTML_502, content_type="text/html", path_prefix=path)
    proxy.inject(429, count=1, body='{"error": "slow down", "code": "rate_limited"}', headers=(("Retry-After", "1"),),
                 path_prefix=path)
    r = S.run_cli(["--output", "json", "import", str(mid_csv)], S.cli_env(tmp_path, proxy.url))
    record(faults_injected=proxy.injected)
    assert proxy.injected == 3 and proxy.injections_left() == 0
    assert r.returncode == 0, r.stderr.decode()
    assert S.imports_total(server.url) == 1, "a retried upload was imported twice"
    expect_rows(server.db_path, MID)
    record(faults_survived=3)


def test_polling_answered_5xx_and_html_for_a_while_keeps_following(server, proxy, mid_csv, tmp_path):
    """Over HTTP polling, the progress endpoint answers 503, an HTML 502 page and 504 for a while: the poller
    retries and still reports the real outcome."""
    prefix = "/api/import/progress/"
    proxy.inject(503, count=2, body='{"error": "busy", "code": "unavailable"}', path_prefix=prefix)
    proxy.inject(502, count=1, body=HTML_502, content_type="text/html", path_prefix=prefix)
    proxy.inject(504, count=1, body="", content_type="text/plain", path_prefix=prefix)
    r = S.run_cli(["--output", "json", "import", "--transport", "polling", "--poll-interval", "0.2", str(mid_csv)],
                  S.cli_env(tmp_path, proxy.url))
    record(faults_injected=proxy.injected)
    assert proxy.injected == 4, "the polling path never met the faults"
    assert r.returncode == 0, r.stderr.decode()
    lines = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    assert lines[-1]["outcome"] == "completed" and lines[-1]["rows"] == MID
    expect_rows(server.db_path, MID)
    record(faults_survived=4)


def test_server_slower_than_timeout_exits_5_and_the_import_completes(server, proxy, big_csv, tmp_path):
    """A slow server (answers held 50 ms per chunk) and --timeout 1: exit 5 with the re-attach command; the
    import still completes on the server with every row."""
    proxy.delay = 0.05
    record(faults_injected=1)
    proc = S.spawn_cli(["-q", "import", "--timeout", "1", str(big_csv)], S.cli_env(tmp_path, proxy.url))
    try:
        S.wait_import_recorded(server.db_path, proc)
        with S.hold_write_lock(server.db_path):  # however fast the import is, it outlasts --timeout 1
            _, err_bytes = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err_bytes.decode()
    assert proc.returncode == 5, err
    assert "hextrackr watch" in err and "Traceback" not in err
    sid = next(w for w in err.replace("(", " ").replace(")", " ").split() if S.is_uuid(w))
    assert S.wait_outcome(server.url, sid)["outcome"] == "completed"
    expect_rows(server.db_path, BIG)
    record(faults_survived=1)


def test_connection_cut_mid_upload_is_retried_and_imported_exactly_once(server, proxy, tmp_path):
    """The TCP connection is reset while the file is still being uploaded (slow uplink): the half-sent upload
    is discarded by the server, the CLI sends it again, and the file is imported exactly once."""
    rows = 12_000
    path = S.gen_csv(tmp_path / "uplink_2025-11-20.csv", rows)  # ~1.3 MB: ~20 chunks of 64 KiB
    proxy.upload_delay = 0.1
    proc = S.spawn_cli(["--output", "json", "import", str(path)], S.cli_env(tmp_path, proxy.url))
    try:
        deadline = time.monotonic() + 30
        while not any(r.startswith("POST /api/vulnerabilities/import") for r in proxy.requests):
            assert time.monotonic() < deadline and proc.poll() is None, "the upload never started"
            time.sleep(0.05)
        time.sleep(0.5)
        assert proxy.cut_all() >= 1
        record(faults_injected=1)
        proxy.upload_delay = 0.0
        lines, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    posts = [r for r in proxy.requests if r.startswith("POST /api/vulnerabilities/import")]
    assert len(posts) >= 2, "the upload was not sent again"
    assert lines[-1]["outcome"] == "completed" and lines[-1]["rows"] == rows
    assert S.imports_total(server.url) == 1, "the cut upload became an import"
    assert not list((server.db_path.parent / "uploads").glob("*")), "the half upload was left on disk"
    expect_rows(server.db_path, rows)
    record(faults_survived=1)


def test_upload_answered_500_once_is_retried_and_imported_once(server, proxy, mid_csv, tmp_path):
    """A 500 on the upload (which carries a reserved sessionId, so repeating it is safe) is retried; the file is
    imported exactly once."""
    proxy.inject(500, count=1, body='{"error": "internal error: RuntimeError", "code": "internal"}',
                 path_prefix="/api/vulnerabilities/import")
    r = S.run_cli(["-q", "import", str(mid_csv)], S.cli_env(tmp_path, proxy.url))
    record(faults_injected=proxy.injected)
    assert proxy.injected == 1
    assert r.returncode == 0, r.stderr.decode()
    assert S.imports_total(server.url) == 1
    expect_rows(server.db_path, MID)
    record(faults_survived=1)


def test_hung_server_is_given_up_within_the_timeout(server, tmp_path):
    """A server that accepts connections but never answers (a hung process or proxy): `import --timeout 2`
    gives up within seconds (exit 3 or 5) instead of waiting out every read timeout and retry; nothing is
    imported."""
    big = S.gen_csv(tmp_path / "hung_2025-11-20.csv", 100)
    port = int(server.url.rsplit(":", 1)[1])
    with TcpProxy(port) as proxy:
        proxy.mode = "blackhole"
        record(faults_injected=1)
        started = time.monotonic()
        r = S.run_cli(["-q", "import", "--timeout", "2", str(big)], S.cli_env(tmp_path, proxy.url), timeout=300)
        took = time.monotonic() - started
    err = r.stderr.decode()
    assert r.returncode in (3, 5), err
    assert len([line for line in err.splitlines() if line.strip()]) == 1 and "Traceback" not in err, err
    assert took < 20, f"took {took:.0f}s with --timeout 2"
    assert S.count(server.db_path, "imports") == 0
    record(faults_survived=1)
