"""`hextrackr watch`, `cancel`, `status` and `imports` against the real server."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

from support.cli import read_json_until, run_cli, spawn_cli
from support.cli_suite import cli_env, status, vuln_rows
from support.data import gen_csv
from support.fixtures import big_csv, server, small_csv  # noqa: F401  (fixtures)
from support.db import hold_write_lock


def _import(env: dict, path: Path) -> str:
    sid = str(uuid.uuid4())
    r = run_cli(["import", "--session-id", sid, str(path)], env)
    assert r.returncode in (0, 1), r.stderr.decode()
    return sid


def _ragged(tmp_path: Path) -> Path:
    path = gen_csv(tmp_path / "ragged.csv", 5)
    with open(path, "a", encoding="utf-8") as f:
        f.write("short,row\n")
    return path


def test_watch_a_finished_import_reports_its_outcome(server, small_csv, tmp_path):
    """watch after the import ended: exit 0 and the same summary as the import had."""
    env = cli_env(tmp_path, server.url)
    sid = _import(env, small_csv)
    r = run_cli(["--output", "json", "watch", sid], env)
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["outcome"] == "completed" and summary["sessionId"] == sid and summary["rows"] == 50


def test_watch_a_failed_import_exits_1_with_its_error(server, tmp_path):
    """watch on an import that failed: exit 1 and the server's error message."""
    env = cli_env(tmp_path, server.url)
    sid = _import(env, _ragged(tmp_path))
    r = run_cli(["--output", "plain", "watch", sid], env)
    assert r.returncode == 1
    assert "line 7" in r.stderr.decode().strip().splitlines()[-1].lower()


def test_watch_over_http_polling_reports_a_finished_outcome(server, small_csv, tmp_path):
    """watch --transport polling on a finished import: exit 0 from the status endpoint alone."""
    env = cli_env(tmp_path, server.url)
    sid = _import(env, small_csv)
    r = run_cli(["--output", "json", "watch", "--transport", "polling", sid], env)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout.decode().splitlines()[-1])["outcome"] == "completed"


def test_watch_a_running_import_follows_it_to_the_end(server, big_csv, tmp_path):
    """watch attaches to an import started with --detach and exits 0 when it completes."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["import", "--detach", str(big_csv)], env)
    sid = r.stdout.decode().strip()
    r = run_cli(["--output", "json", "watch", sid], env)
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert objs[-1]["outcome"] == "completed" and objs[-1]["rows"] == 60_000


def test_watch_unknown_or_malformed_session(server, tmp_path):
    """An unknown id is refused by the server (exit 1, 'not found'); a malformed one is a usage error (exit 2)."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["watch", str(uuid.uuid4())], env)
    assert r.returncode == 1 and "not found" in r.stderr.decode().lower()
    r = run_cli(["watch", "12345"], env)
    assert r.returncode == 2 and "session id" in r.stderr.decode()


def test_cancel_command_gets_the_servers_confirmation(server, big_csv, tmp_path):
    """`hextrackr cancel ID` on a running import: exit 0 once the server confirms; nothing of it is stored."""
    env = cli_env(tmp_path, server.url)
    proc = spawn_cli(["--output", "json", "import", str(big_csv)], env)
    try:
        read_json_until(proc, lambda o: o.get("event") == "uploaded")
        with hold_write_lock(server.db_path):  # the import stays mid-way (before its merge) until released
            sid = read_json_until(proc, lambda o: o.get("type") == "loading")[-1]["sessionId"]
            cancel = spawn_cli(["cancel", sid], env)
            deadline = time.monotonic() + 30
            while not status(server.url, sid)["cancelled"]:  # the server took the cancel request
                assert time.monotonic() < deadline and cancel.poll() is None, cancel.stderr.read().decode()
                time.sleep(0.05)
        # released: the import goes on to its next cancel point and rolls back
        _, cancel_err = cancel.communicate(timeout=30)
        assert cancel.returncode == 0, cancel_err.decode()
        assert "confirmed" in cancel_err.decode()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1  # the importing CLI learns its import was cancelled by someone else
    assert json.loads(out.decode().splitlines()[-1])["outcome"] == "cancelled"
    assert status(server.url, sid)["outcome"] == "cancelled"
    assert vuln_rows(Path(server.db_path)) == 0


def test_cancel_a_finished_import_says_there_is_nothing_to_cancel(server, small_csv, tmp_path):
    env = cli_env(tmp_path, server.url)
    sid = _import(env, small_csv)
    r = run_cli(["cancel", sid], env)
    assert r.returncode == 1
    assert "already completed" in r.stderr.decode()


def test_status_prints_the_state_and_json(server, small_csv, tmp_path):
    """status: a readable block on stdout, or the server's JSON with --json."""
    env = cli_env(tmp_path, server.url)
    sid = _import(env, small_csv)
    r = run_cli(["status", sid], env)
    assert r.returncode == 0
    text = r.stdout.decode()
    assert re.search(r"outcome +completed", text) and sid in text
    r = run_cli(["status", "--json", sid], env)
    body = json.loads(r.stdout.decode())
    assert body["sessionId"] == sid and body["outcome"] == "completed"


def test_imports_lists_history_newest_first(server, small_csv, tmp_path):
    """imports: a table with the newest import first; --json gives the server's records."""
    env = cli_env(tmp_path, server.url)
    first = _import(env, small_csv)
    second = _import(env, small_csv)
    r = run_cli(["imports"], env)
    assert r.returncode == 0
    rows = r.stdout.decode().splitlines()
    assert rows[0].split()[:2] == ["ID", "STATUS"]
    assert second in rows[1] and first in rows[2]
    r = run_cli(["imports", "--json", "--limit", "1"], env)
    body = json.loads(r.stdout.decode())
    assert [i["sessionId"] for i in body["imports"]] == [second] and body["total"] == 2
