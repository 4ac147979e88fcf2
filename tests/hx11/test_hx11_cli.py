"""The real `hextrackr` CLI (a subprocess) against the HexTrackr 1.1.12 double (tests/support/hx11_double.py).

Each test starts its own double on an ephemeral loopback port with the knobs it needs (stall, rate limit,
failure, retention) and runs the CLI as a user or a pipeline would: credentials from the environment, plain or
NDJSON output, real SIGINT.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.cli import interrupt_when, read_json_until, run_cli, spawn_cli
from support.cli_suite import cli_env
from support.fixtures import server, small_csv  # noqa: F401  (fixtures)
from support.hx11_double import HX11Double, csv_text, self_signed_cert

USER, PASSWORD = "analyst", "s3cret pass"
SID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def double() -> Iterator[Any]:
    """Start doubles with the given knobs (no rate limit unless asked); all stopped after the test."""
    made: list[HX11Double] = []

    def make(**knobs: Any) -> HX11Double:
        knobs.setdefault("users", {USER: PASSWORD})
        knobs.setdefault("rate_limit", None)
        knobs.setdefault("step_delay", 0.02)
        hx = HX11Double(**knobs).start()
        made.append(hx)
        return hx

    yield make
    for hx in made:
        hx.stop()


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    """A 3,000-row scan named like a Tenable export (three staging and three processing batches)."""
    path = tmp_path / "tenable_scan_2025-11-20.csv"
    path.write_text(csv_text(3000))
    return path


def env_for(tmp_path: Path, hx: HX11Double, **extra: str) -> dict[str, str]:
    """A pipeline's environment: server, user and password from HEXTRACKR_*, no token, no config file."""
    return cli_env(tmp_path, hx.url, token=None, **{"HEXTRACKR_USERNAME": USER, "HEXTRACKR_PASSWORD": PASSWORD, **extra})


def summary_of(stdout: bytes) -> dict[str, Any]:
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert lines and lines[-1].get("event") == "summary", lines[-3:]
    return lines[-1]


# --------------------------------------------------------------------------- import
def test_import_succeeds_over_websocket_with_every_stage_and_the_server_summary(double, scan, tmp_path):
    """Auto-detected 1.1 server, login from the environment, websocket (not refused for its Origin), the first
    progress (emitted before the upload is answered) seen, and the server's inserted/updated/resolved at the end."""
    hx = double()
    r = run_cli(["-v", "--output", "plain", "import", "--log-interval", "0", str(scan)], env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "dialect hextrackr-1.1 (detected:" in err and f"logged in as {USER}" in err
    assert PASSWORD not in err and "hextrackr.sid" not in err
    assert "transport: websocket (connected)" in err
    assert "Parsing CSV file..." in err  # emitted before the POST answer: the room was joined first
    assert [line.split()[1] for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d (parsing|loading|processing|finalizing|complete) ", line)][-1] == "complete"
    last = err.strip().splitlines()[-1]
    assert last.startswith("completed tenable_scan_2025-11-20.csv: 3,000 rows; inserted 3,000, updated 0, resolved 0"), last
    sid = SID_RE.search(last).group(0)
    assert sid in hx.joins and hx.history[-1]["processing_time"] is not None


def test_second_import_shows_updated_and_resolved_counts_in_json(double, tmp_path):
    """A re-import with fewer hosts: the NDJSON summary carries the server's updated and resolved counts."""
    hx = double()
    first, second = tmp_path / "tenable_a.csv", tmp_path / "tenable_b.csv"
    first.write_text(csv_text(300))
    second.write_text(csv_text(200))
    env = env_for(tmp_path, hx)
    assert run_cli(["import", str(first)], env).returncode == 0
    r = run_cli(["--output", "json", "import", "--vendor", "tenable", str(second)], env)
    assert r.returncode == 0, r.stderr.decode()
    summary = summary_of(r.stdout)
    assert summary["outcome"] == "completed" and summary["exitCode"] == 0
    assert (summary["rows"], summary["inserted"], summary["updated"], summary["resolved"]) == (200, 0, 200, 100)
    assert summary["importId"] == 2


def test_import_error_exits_1_with_the_servers_message_on_one_line(double, scan, tmp_path):
    hx = double(fail_at=60, fail_message="Import failed: SQLITE_CONSTRAINT: NOT NULL constraint failed: x.hostname")
    r = run_cli(["import", str(scan)], env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("failed tenable_scan_2025-11-20.csv: Import failed: SQLITE_CONSTRAINT"), last
    assert "Traceback" not in err


def test_polling_only_import_completes_and_says_so(double, scan, tmp_path):
    """--transport polling: progress from /api/import/progress/<id>; the completed state ends it (exit 0)."""
    hx = double(step_delay=0.05, complete_retention=30)
    r = run_cli(["--output", "json", "import", "--transport", "polling", "--poll-interval", "0.2", str(scan)],
                env_for(tmp_path, hx))
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [o["transport"] for o in objs if o.get("event") == "transport"] == ["polling"]
    assert any(o.get("type") in ("parsing", "loading", "processing", "finalizing") for o in objs)
    summary = objs[-1]
    assert summary["outcome"] == "completed" and summary["inserted"] == 3000
    assert not any(path.startswith("/socket.io") for _, path, _ in hx.request_log)


def test_forced_polling_sees_the_completion_within_the_real_5s_retention(double, scan, tmp_path):
    """Case 1: the real retention (5 s after completion, 10 s after an error): the polls come close enough near
    the end to see the completed state itself; /api/imports (always 500 on 1.1.12) is never asked."""
    hx = double(step_delay=0.15)
    r = run_cli(["--output", "plain", "import", "--transport", "polling", str(scan)], env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    polls = [status for _, path, status in hx.request_log if path.startswith("/api/import/progress/")]
    assert polls and set(polls) == {200}, polls
    assert not any(path == "/api/imports" for _, path, _ in hx.request_log)
    assert err.strip().splitlines()[-1].startswith("completed tenable_scan_2025-11-20.csv: 3,000 rows")


def test_a_session_gone_within_10s_of_being_seen_running_completed(double, scan, tmp_path):
    """The session vanishes right after it completes (a short retention): the 404 came less than 10 s after a
    poll saw it running, and a failed session stays 10 s, so it completed; the CLI says how it knows."""
    hx = double(step_delay=0.03, complete_retention=0.05)
    r = run_cli(["--output", "plain", "import", "--transport", "polling", "--poll-interval", "2", str(scan)],
                env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    polls = [status for method, path, status in hx.request_log if path.startswith("/api/import/progress/")]
    assert 200 in polls and polls[-1] == 404
    assert not any(path == "/api/imports" for _, path, _ in hx.request_log)
    last = err.strip().splitlines()[-1]
    assert last.startswith("completed tenable_scan_2025-11-20.csv: 3,000 rows"), last
    assert "keeps a failed session 10s" in err and "import 1)" in last


def test_after_a_silent_socket_the_polls_run_beside_it_and_its_progress_complete_decides(double, scan, tmp_path):
    """Auto mode: the socket goes silent past the liveness bound while the server moves on, so polling takes
    over — but the socket stays open beside it, and its progress-complete (with the server's counts) ends the
    import even though the session is forgotten at once."""
    hx = double(step_delay=0.15, socket_silent_from=65, complete_retention=0.05)
    r = run_cli(["--output", "json", "import", str(scan)], env_for(tmp_path, hx, HEXTRACKR_LIVENESS="1"))
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert any(o.get("event") == "transport" and o["transport"] == "polling" for o in objs), objs[:5]
    summary = objs[-1]
    assert summary["outcome"] == "completed" and summary["inserted"] == 3000  # the counts of progress-complete


def test_a_reachable_servers_500_on_a_poll_is_not_a_network_failure(double, scan, tmp_path):
    """Case 1: two polls answered 500: said, retried, and the import completes; a server that answers every
    poll with 500 ends the watch (exit 3) saying the server answered errors — not "lost contact"."""
    hx = double(step_delay=0.1, complete_retention=30, progress_500=2)
    r = run_cli(["--output", "plain", "import", "--transport", "polling", "--poll-interval", "0.3", str(scan)],
                env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "Failed to check progress" in err and "lost contact" not in err
    hx2 = double(step_delay=0.5, progress_500=-1)
    env = env_for(tmp_path, hx2, HEXTRACKR_GIVE_UP="2")
    r = run_cli(["--output", "plain", "import", "--transport", "polling", "--poll-interval", "0.3", str(scan)], env)
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert "answered every status poll" in err and "with an error" in err and "lost contact" not in err


def test_a_vanished_session_nothing_can_decide_is_exit_7_not_a_guess(double, scan, tmp_path):
    """Polls 11 s apart (--poll-interval): the failed session is gone, more than 10 s after it was seen at
    5-15 %; last-import names the file but cannot tell an outcome: "not known", exit 7 — not 0, not 1."""
    hx = double(step_delay=0.03, fail_at=90, error_retention=0.05)
    r = run_cli(["import", "--transport", "polling", "--poll-interval", "11", str(scan)], env_for(tmp_path, hx),
                timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 7, err
    assert "how is not known" in err and "last-import shows tenable_scan_2025-11-20.csv" in err
    assert "Traceback" not in err and "failed" not in err.splitlines()[-1].split(":")[0]
    assert ("GET", "/api/vulnerabilities/last-import", 200) in hx.request_log


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_multi_second_stall_is_not_a_failure(double, scan, tmp_path, transport):
    """The server blocks for 4 s at 65% (no events; in-flight polls reset afterwards): the import still
    ends with exit 0 within --timeout."""
    hx = double(stall=4.0, stall_at=65, complete_retention=30)
    started = time.monotonic()
    r = run_cli(["--output", "json", "import", "--timeout", "60", "--transport", transport, "--poll-interval", "0.3",
                 str(scan)], env_for(tmp_path, hx))
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr.decode()
    assert hx._stall_ended is not None and took >= 4.0
    assert summary_of(r.stdout)["outcome"] == "completed"


def test_rate_limit_429_on_a_poll_is_honoured_and_the_import_still_succeeds(double, scan, tmp_path):
    """Four /api/ requests per 6 s: login, CSRF, upload and a first poll use them; the next poll gets 429,
    waits out its Retry-After (one 429 only: no hammering) and the import completes."""
    hx = double(rate_limit=4, rate_window=6.0, step_delay=0.1, complete_retention=30)
    r = run_cli(["--output", "plain", "import", "--transport", "polling", "--poll-interval", "0.1", str(scan)],
                env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    refused = [path for _, path, status in hx.request_log if status == 429]
    assert len(refused) == 1 and refused[0].startswith("/api/import/progress/"), hx.request_log
    assert "rate limit" in err
    assert err.strip().splitlines()[-1].startswith("completed ")


def _spend(hx: HX11Double, n: int) -> None:
    import requests

    for _ in range(n):
        requests.get(hx.url + "/api/auth/status", timeout=5)


def test_a_429_at_the_start_is_waited_out_within_timeout_and_said_on_stderr(double, scan, tmp_path):
    """Case 3: the window's budget is spent before the command starts: the login's 429 is waited out (said
    on stderr), the import completes; with a --timeout shorter than Retry-After it is exit 5 at once, never 1."""
    hx = double(rate_limit=3, rate_window=4.0)
    _spend(hx, 3)
    started = time.monotonic()
    r = run_cli(["--output", "json", "import", "--timeout", "60", str(scan)], env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "rate limit was reached (POST /api/auth/login)" in err and "Retry-After" in err
    assert time.monotonic() - started >= 2.0 and summary_of(r.stdout)["outcome"] == "completed"
    _spend(hx, 3)
    r = run_cli(["import", "--timeout", "1", str(scan)], env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 5, err
    assert "rate limit" in err and "import failed" not in err and len(hx.history) == 1


def test_bad_password_exits_4_without_echoing_it(double, scan, tmp_path):
    hx = double()
    r = run_cli(["import", str(scan)], env_for(tmp_path, hx, HEXTRACKR_PASSWORD="not-the-password"))
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "Invalid username or password" in err and "not-the-password" not in err
    assert len(err.strip().splitlines()) == 1 and not hx.history


def test_missing_password_in_a_pipeline_is_exit_2_naming_the_ways_to_give_it(double, scan, tmp_path):
    hx = double()
    env = env_for(tmp_path, hx)
    del env["HEXTRACKR_PASSWORD"]
    r = run_cli(["import", str(scan)], env)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "HEXTRACKR_PASSWORD" in err and "--password-stdin" in err


def test_password_prompt_on_a_terminal_is_hidden(double, scan, tmp_path):
    """On a terminal without HEXTRACKR_PASSWORD the CLI asks for the password; it is not echoed."""
    import sys

    from support.cli import pty_session

    hx = double()
    env = env_for(tmp_path, hx, TERM="dumb")
    del env["HEXTRACKR_PASSWORD"]
    status, screen = pty_session([sys.executable, "-m", "hextrackr_cli", "import", str(scan)], env,
                                  [(f"Password for {USER}".encode(), PASSWORD.encode() + b"\r")])
    text = screen.decode(errors="replace")
    assert status == 0, text
    assert PASSWORD not in text and "completed tenable_scan_2025-11-20.csv" in text


def test_password_from_stdin_and_a_saved_cookie_from_the_profile(double, scan, tmp_path):
    """--password-stdin logs in; `login --save-cookie` keeps the cookie in the profile (mode 0600) and a later
    import uses it without any password."""
    hx = double()
    env = env_for(tmp_path, hx)
    del env["HEXTRACKR_PASSWORD"]
    r = run_cli(["--password-stdin", "imports"], env, input=(PASSWORD + "\n").encode())
    assert r.returncode == 0, r.stderr.decode()
    r = run_cli(["--dialect", "hextrackr-1.1", "--username", USER, "--password-stdin", "login", "--save-cookie"],
                env, input=(PASSWORD + "\n").encode())
    assert r.returncode == 0, r.stderr.decode()
    config = tmp_path / "cfg" / "hextrackr" / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600 and "cookie" in config.read_text()
    env.pop("HEXTRACKR_USERNAME")
    logins = sum(1 for _, p, _ in hx.request_log if p == "/api/auth/login")
    r = run_cli(["-v", "import", str(scan)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "session cookie from profile 'default'" in err
    assert sum(1 for _, p, _ in hx.request_log if p == "/api/auth/login") == logins  # no login: the cookie did
    assert len(hx._auth) == 1  # the saved session is not logged out by the import


def test_an_expired_saved_cookie_gives_way_to_the_password(double, scan, tmp_path):
    """Case 2: the server no longer knows the saved session ({"data":{"authenticated":false}}): the password
    takes over, and that new session is logged out at the end."""
    hx = double()
    env = env_for(tmp_path, hx)
    r = run_cli(["--dialect", "hextrackr-1.1", "--username", USER, "login", "--save-cookie"], env)
    assert r.returncode == 0, r.stderr.decode()
    hx._auth.clear()  # the server forgot every session (restart, expiry)
    r = run_cli(["-v", "import", str(scan)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "has expired" in err and f"logged in as {USER}" in err
    assert not hx._auth  # logged out again


# --------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_says_there_is_no_cancel_leaves_the_room_and_exits_130(double, tmp_path):
    """A real SIGINT mid-import: no cancel exists on 1.1.x, so the CLI says so, emits leave-progress, prints the
    session id and exits 130; the import goes on to complete on the server."""
    hx = double(step_delay=0.05, complete_retention=30)
    big = tmp_path / "tenable_big.csv"
    big.write_text(csv_text(30_000))
    proc = spawn_cli(["--output", "json", "import", str(big)], env_for(tmp_path, hx))
    sid, out, text = interrupt_when(proc, lambda o: o.get("type") in ("loading", "processing"))
    assert proc.returncode == 130, text
    assert "has no cancel" in text and f"hextrackr watch {sid}" in text and "Traceback" not in text
    summary = json.loads(out.splitlines()[-1])
    assert summary["outcome"] == "detached" and summary["exitCode"] == 130 and summary["sessionId"] == sid
    assert hx.wait_for(lambda: sid in hx.leaves, 5)
    assert hx.wait_for(lambda: sid in hx.sessions and hx.sessions[sid].status == "completed", 30)


def test_socket_cut_mid_import_reconnects_with_the_session_cookie_and_completes(double, tmp_path):
    """Every connection reset mid-import (a proxy in between): Socket.io reconnects with the cookie and
    X-Forwarded-Proto again (the handshake would be refused without them), re-joins and completes."""
    from support.proxy import TcpProxy

    hx = double(step_delay=0.05, complete_retention=30)
    big = tmp_path / "tenable_big.csv"
    big.write_text(csv_text(30_000))
    with TcpProxy(hx.port) as proxy:
        env = env_for(tmp_path, hx, HEXTRACKR_SERVER=proxy.url)
        proc = spawn_cli(["--output", "json", "import", str(big)], env)
        try:
            seen = read_json_until(proc, lambda o: o.get("type") in ("loading", "processing"))
            sid = seen[-1]["sessionId"]
            assert proxy.cut_all() >= 1
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert {"event": "reconnected", "transport": "websocket"} in lines, lines[-6:]
    assert hx.joins.count(sid) >= 2  # joined again after the reconnect
    assert lines[-1]["outcome"] == "completed" and lines[-1]["inserted"] == 30_000


# --------------------------------------------------------------------------- dialect
def test_auto_picks_seed_for_the_embedded_server_and_hx11_for_the_double(double, server, small_csv, tmp_path):
    hx = double()
    r = run_cli(["-v", "imports"], env_for(tmp_path, hx))
    assert r.returncode == 0, r.stderr.decode()
    assert "dialect hextrackr-1.1 (detected: its /health answers like HexTrackr 1.1.x" in r.stderr.decode()
    r = run_cli(["-v", "import", str(small_csv)], cli_env(tmp_path, server.url))
    assert r.returncode == 0, r.stderr.decode()
    assert "dialect seed (detected: its /health names the seed protocol)" in r.stderr.decode()


def test_an_import_spends_at_most_5_api_requests_and_logs_out(double, scan, tmp_path):
    """Request budget (60 per 15 min on 1.1.12): detection by /health (outside /api/), one login (with
    X-Forwarded-Proto from the start), CSRF, upload, logout: 4 over the websocket, 5 at most; no session left.
    The summary's rows are the CSV rows, and "uploading N/N bytes" is said once."""
    hx = double(rate_limit=60)
    r = run_cli(["-v", "--output", "plain", "import", str(scan)], env_for(tmp_path, hx))
    err = r.stderr.decode()
    assert r.returncode == 0, err
    spent = sum(hx.rate_seen.values())
    assert spent <= 5, hx.request_log
    assert [p for _, p, _ in hx.request_log if p.startswith("/api/")] == [
        "/api/auth/login", "/api/auth/csrf", "/api/vulnerabilities/import-staging", "/api/auth/logout"]
    assert not hx._auth
    size = scan.stat().st_size
    assert len(re.findall(r"uploading ([\d,]+)/\1 bytes", err)) == 1, err
    assert size > 0 and "3,000 rows" in err.strip().splitlines()[-1]


def test_a_wrong_forced_dialect_fails_at_once_with_the_right_one_named(double, server, scan, tmp_path):
    hx = double()
    started = time.monotonic()
    r = run_cli(["--dialect", "seed", "import", str(scan)], env_for(tmp_path, hx), timeout=30)
    assert r.returncode == 2, r.stderr.decode()
    assert "HexTrackr 1.1.x server" in r.stderr.decode() and "--dialect hextrackr-1.1" in r.stderr.decode()
    assert not any(path.startswith("/api/") for _, path, _ in hx.request_log)  # no credential, no upload
    r = run_cli(["--dialect", "hextrackr-1.1", "import", str(scan)],
                cli_env(tmp_path, server.url, HEXTRACKR_USERNAME=USER, HEXTRACKR_PASSWORD=PASSWORD), timeout=30)
    assert r.returncode == 2, r.stderr.decode()
    assert "seed protocol" in r.stderr.decode() and "--dialect seed" in r.stderr.decode()
    assert time.monotonic() - started < 20
    assert not hx.history


# --------------------------------------------------------------------------- watch / status / imports
def test_detach_then_watch_status_and_imports(double, tmp_path):
    """`import --detach` prints the session id; `status` shows it running, `watch` follows it to its end
    (exit 0 with the summary) and `imports` lists it from the history."""
    hx = double(step_delay=0.05, complete_retention=30)
    big = tmp_path / "tenable_big.csv"
    big.write_text(csv_text(20_000))
    env = env_for(tmp_path, hx)
    r = run_cli(["import", "--detach", str(big)], env)
    assert r.returncode == 0, r.stderr.decode()
    sid = r.stdout.decode().strip()
    assert SID_RE.fullmatch(sid)
    assert f"import started (session {sid}); follow it with: hextrackr watch {sid}" in r.stderr.decode()

    st = run_cli(["status", sid], env)
    assert st.returncode == 0, st.stderr.decode()
    assert f"session   {sid}" in st.stdout.decode() and "outcome   running" in st.stdout.decode()

    w = run_cli(["--output", "plain", "watch", sid], env)
    err = w.stderr.decode()
    assert w.returncode == 0, err
    assert err.strip().splitlines()[-1].startswith("completed 20,000 rows; inserted 20,000, updated 0, resolved 0")

    st = run_cli(["status", "--json", sid], env)
    assert json.loads(st.stdout)["outcome"] == "completed"

    hist = run_cli(["imports"], env)
    assert hist.returncode == 0, hist.stderr.decode()
    row = hist.stdout.decode().splitlines()[1]
    assert row.split()[:2] == ["last", "import"] and "tenable_big.csv" in row and "20,000" in row
    assert "showing its last import only" in hist.stderr.decode()


def test_watch_of_a_session_the_server_forgot_says_why(double, tmp_path):
    hx = double()
    sid = str(uuid.uuid4())
    r = run_cli(["watch", sid], env_for(tmp_path, hx), timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 7, err  # not 1: the import may well have completed
    assert "not known to the server" in err and "5 s after it completes" in err and "hextrackr imports" in err
    assert "import failed" not in err
    assert sid in hx.joins  # joined (no answer comes for unknown ids), then one poll said 404
    st = run_cli(["status", sid], env_for(tmp_path, hx), timeout=30)
    assert st.returncode == 7 and "may have finished" in st.stderr.decode(), st.stderr.decode()


def test_cancel_command_says_there_is_no_cancel(double, tmp_path):
    hx = double()
    r = run_cli(["cancel", str(uuid.uuid4())], env_for(tmp_path, hx), timeout=30)
    assert r.returncode == 1 and "no cancel" in r.stderr.decode()


# --------------------------------------------------------------------------- TLS
def test_ca_bundle_is_honoured_even_when_requests_ca_bundle_is_set(double, scan, tmp_path):
    """https with a private CA: --ca-bundle wins over REQUESTS_CA_BUNDLE for the API, the websocket and the
    HTTP polling alike."""
    cert, key = self_signed_cert(str(tmp_path))
    hx = double(tls=(cert, key))
    env = env_for(tmp_path, hx, REQUESTS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt")
    refused = run_cli(["imports"], env)
    assert refused.returncode == 3 and "--ca-bundle" in refused.stderr.decode()
    for transport in ("websocket", "polling"):
        r = run_cli(["--ca-bundle", cert, "--output", "plain", "import", "--transport", transport, str(scan)], env)
        assert r.returncode == 0, r.stderr.decode()
        assert f"transport: {transport}" in r.stderr.decode()


# --------------------------------------------------------------------------- one import at a time
def test_a_second_import_into_the_same_server_waits_for_the_first_and_nothing_is_lost(double, tmp_path):
    """Case 7: 1.1.12 loses records when two imports run at once; from one machine the second waits (saying
    why) and both complete whole. --no-lock lets them overlap (and the double loses records, as 1.1.12 does)."""
    hx = double(step_delay=0.3)
    first, second = tmp_path / "tenable_a.csv", tmp_path / "tenable_b.csv"
    first.write_text(csv_text(3000))
    second.write_text(csv_text(500, start=5000))
    env = env_for(tmp_path, hx)
    a = spawn_cli(["--output", "plain", "import", str(first)], env)
    assert hx.wait_for(lambda: hx.running_imports == 1, 20)
    b = run_cli(["--output", "plain", "import", "--vendor", "qualys", str(second)], env, timeout=60)
    a_out, a_err = a.communicate(timeout=60)
    assert a.returncode == 0 and b.returncode == 0, (a_err.decode(), b.stderr.decode())
    assert "waiting for another hextrackr import into" in b.stderr.decode()
    assert "loses data when two imports run at once" in b.stderr.decode()
    assert hx.lost_records == 0 and hx.active_records() == 500  # the second resolved the first's, as on 1.1.12


def test_the_wait_for_the_other_import_is_bounded_by_timeout_exit_75(double, scan, tmp_path):
    hx = double(step_delay=0.2)
    env = env_for(tmp_path, hx)
    a = spawn_cli(["--output", "plain", "import", str(scan)], env)
    assert hx.wait_for(lambda: hx.running_imports == 1, 20)
    b = run_cli(["import", "--timeout", "1", str(scan)], env, timeout=30)
    err = b.stderr.decode()
    assert b.returncode == 75, err
    assert f"PID {a.pid}" in err and "nothing was sent" in err and len(hx.history) == 1
    a.communicate(timeout=60)
    assert a.returncode == 0


def test_no_lock_runs_both_at_once(double, tmp_path):
    hx = double(step_delay=0.3)
    first, second = tmp_path / "tenable_a.csv", tmp_path / "tenable_b.csv"
    first.write_text(csv_text(3000))
    second.write_text(csv_text(500, start=5000))
    env = env_for(tmp_path, hx)
    a = spawn_cli(["import", "--no-lock", str(first)], env)
    assert hx.wait_for(lambda: hx.running_imports == 1, 20)
    b = run_cli(["import", "--no-lock", "--vendor", "qualys", str(second)], env, timeout=60)
    a.communicate(timeout=60)
    assert a.returncode == 0 and b.returncode == 0
    assert "waiting for another" not in b.stderr.decode(), b.stderr.decode()
    assert hx.lost_records > 0


def test_login_without_save_cookie_leaves_no_session_on_the_server(double, tmp_path):
    """`hextrackr login` checks the password with one login and logs that session out again; with
    --save-cookie the session stays (it is the saved cookie)."""
    hx = double()
    r = run_cli(["--dialect", "hextrackr-1.1", "--username", USER, "login"], env_for(tmp_path, hx))
    assert r.returncode == 0, r.stderr.decode()
    assert ("POST", "/api/auth/logout", 200) in hx.request_log and not hx._auth
    r = run_cli(["--dialect", "hextrackr-1.1", "--username", USER, "login", "--save-cookie"], env_for(tmp_path, hx))
    assert r.returncode == 0, r.stderr.decode()
    assert len(hx._auth) == 1
