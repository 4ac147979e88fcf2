"""`hextrackr serve` as a real process: start-up line, token handling, signals, refusals."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import requests

from support.data import GENERIC_CSV
from support.db import db_rows
from support.http import post_import, wait_for_outcome
from support.server import spawn_server


def test_serve_prints_the_listening_line_serves_and_stops_cleanly_on_sigterm(tmp_path) -> None:
    srv = spawn_server(tmp_path)
    assert requests.get(srv.url + "/health", timeout=10).json()["status"] == "ok"
    r = post_import(srv.url, srv.token, GENERIC_CSV)
    assert wait_for_outcome(srv.url, srv.token, r.json()["sessionId"])["outcome"] == "completed"
    assert srv.stop(signal.SIGTERM) == 0
    assert "Traceback" not in srv.stderr and srv.token not in srv.stderr
    assert len(db_rows(srv.db_path, "vulnerabilities")) == 3


def test_serve_names_its_browser_view_once_without_the_token(tmp_path) -> None:
    """One start-up line "Browser view: URL/" naming a page that is really served, and no token in it."""
    srv = spawn_server(tmp_path)
    try:
        deadline = time.monotonic() + 10  # printed just after the listening line spawn_server waits for
        while "Browser view:" not in srv.stderr and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in srv.stderr.splitlines() if "Browser view:" in line]
        assert lines == [f"hextrackr serve: Browser view: {srv.url}/"], srv.stderr
        page = requests.get(srv.url + "/", timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    finally:
        assert srv.stop(signal.SIGTERM) == 0
    assert srv.token not in srv.stderr


def test_sigint_stops_the_server_with_status_0(tmp_path) -> None:
    srv = spawn_server(tmp_path)
    assert srv.stop(signal.SIGINT) == 0
    assert "hextrackr serve: stopped" in srv.stderr and "Traceback" not in srv.stderr


def test_without_a_token_one_is_generated_printed_once_and_stored_in_the_local_profile(tmp_path) -> None:
    srv = spawn_server(tmp_path, token=None)
    try:
        assert srv.token and srv.stderr.count(srv.token) == 1
        config = tmp_path / "config" / "hextrackr" / "config.toml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        import tomllib

        profile = tomllib.loads(config.read_text())["profiles"]["local"]
        assert profile == {"server": srv.url, "token": srv.token}
        ok = requests.get(srv.url + "/api/imports", headers={"Authorization": f"Bearer {srv.token}"}, timeout=10)
        assert ok.status_code == 200
    finally:
        assert srv.stop() == 0


def test_hextrackr_token_environment_variable_is_accepted(tmp_path) -> None:
    srv = spawn_server(tmp_path, token=None, env={"HEXTRACKR_TOKEN": "env-token-0123456789"})
    try:
        assert "generated token" not in srv.stderr
        r = requests.get(srv.url + "/api/imports", headers={"Authorization": "Bearer env-token-0123456789"},
                         timeout=10)
        assert r.status_code == 200
    finally:
        srv.stop()


def serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "c"), XDG_DATA_HOME=str(tmp_path / "d"))
    return subprocess.run([sys.executable, "-m", "hextrackr_cli", "serve", "--token", "t", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_bad_serve_options_exit_2_with_one_line_and_no_traceback(tmp_path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        cases = [
            (["--max-upload", "lots"], "--max-upload"),
            (["--database", "mysql://x/y"], "not supported"),
            (["--port", str(busy.getsockname()[1])], "cannot listen"),
            (["--message-queue", "http://localhost"], "--message-queue must be a redis://"),
            (["--workers", "2"], "--workers above 1 needs --database postgresql://"),
        ]
        for args, words in cases:
            res = serve(tmp_path, *args)
            assert res.returncode == 2, (args, res.stderr)
            assert words in res.stderr and "Traceback" not in res.stderr
            assert res.stderr.strip().count("\n") == 0, res.stderr
    finally:
        busy.close()


def test_serve_refuses_a_database_from_a_newer_version_in_one_line(tmp_path) -> None:
    """A SQLite file whose user_version is above this build's schema: exit 2, one line naming it, file unchanged."""
    import sqlite3

    db = tmp_path / "newer.db"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE imports (id INTEGER PRIMARY KEY); PRAGMA user_version = 42;")
    conn.close()
    before = db.read_bytes()
    res = serve(tmp_path, "--port", "0", "--database", f"sqlite:///{db}")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr, res.stderr
    assert "newer hextrackr" in res.stderr and "schema version 42" in res.stderr
    assert db.read_bytes() == before


def test_stopping_during_an_import_rolls_it_back_and_records_it(tmp_path) -> None:
    from support.data import write_tenable_csv

    big = write_tenable_csv(tmp_path / "big.csv", 60_000)
    srv = spawn_server(tmp_path)
    r = post_import(srv.url, srv.token, big)
    assert r.status_code == 202
    assert srv.stop(signal.SIGTERM) == 0
    (rec,) = db_rows(srv.db_path, "imports")
    assert rec["status"] in ("failed", "completed")
    if rec["status"] == "failed":  # stopped mid-way: rolled back, and the record says why
        assert "server stopped" in rec["error"]
        assert db_rows(srv.db_path, "vulnerabilities") == []
