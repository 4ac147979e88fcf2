"""Cron-style runs against the real embedded server: --if-changed, --lock/--lock-wait (exit 75), -qq, --log-file."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from support.cli import read_json_until, run_cli, spawn_cli
from support.cli_suite import cli_env
from support.data import gen_csv
from support.fixtures import TOKEN, server  # noqa: F401
from support.db import hold_write_lock, wait_import_recorded


def import_count(db_path: Path) -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT count(*) FROM imports").fetchone()[0]
    finally:
        conn.close()


def last_json(stdout: bytes) -> dict[str, Any]:
    return json.loads(stdout.decode().strip().splitlines()[-1])


def bad_copy(src: Path, dst: Path) -> Path:
    """``src`` with one impossible IPv4 in its last row: the server fails the import while parsing."""
    text = src.read_text()
    head, last = text.rstrip("\n").rsplit("\n", 1)
    dst.write_text(head + "\n" + re.sub(r",10\.[0-9.]+,", ",10.0.0.999,", last, count=1) + "\n")
    return dst


def test_if_changed_twice_makes_one_import_and_the_second_run_says_skipped(server, tmp_path):
    scan = gen_csv(tmp_path / "scan.csv", 40)
    env = cli_env(tmp_path, server.url)
    first = run_cli(["--output", "json", "import", "--if-changed", str(scan)], env)
    assert first.returncode == 0, first.stderr.decode()
    record = last_json(first.stdout)
    assert record["outcome"] == "completed"
    second = run_cli(["--output", "plain", "import", "--if-changed", str(scan)], env)
    assert second.returncode == 0, second.stderr.decode()
    line = second.stderr.decode().strip().splitlines()[-1]
    assert re.fullmatch(rf"skipped scan\.csv: unchanged since import {record['importId']} \(\d{{4}}-\d\d-\d\d \d\d:\d\d\)", line), line
    assert second.stdout == b""
    third = run_cli(["--output", "json", "import", "--if-changed", str(scan)], env)
    summary = last_json(third.stdout)
    assert (summary["outcome"], summary["exitCode"], summary["importId"], summary["file"]) == \
        ("skipped", 0, record["importId"], "scan.csv")
    assert summary["sessionId"] == record["sessionId"]
    assert import_count(server.db_path) == 1


def test_a_changed_byte_is_imported_and_force_imports_anyway(server, tmp_path):
    scan = gen_csv(tmp_path / "scan.csv", 40)
    env = cli_env(tmp_path, server.url)
    assert run_cli(["import", "--if-changed", str(scan)], env).returncode == 0
    scan.write_text(scan.read_text().replace("Patch", "patch", 1))  # one byte differs
    r = run_cli(["import", "--if-changed", str(scan)], env)
    assert r.returncode == 0 and "completed scan.csv" in r.stderr.decode()
    assert import_count(server.db_path) == 2
    r = run_cli(["import", "--if-changed", "--force", str(scan)], env)
    assert r.returncode == 0 and "completed scan.csv" in r.stderr.decode()
    assert import_count(server.db_path) == 3


def test_an_earlier_failed_import_of_the_same_bytes_does_not_count(server, tmp_path):
    bad = bad_copy(gen_csv(tmp_path / "good.csv", 40), tmp_path / "scan.csv")
    env = cli_env(tmp_path, server.url)
    r = run_cli(["import", str(bad)], env)
    assert r.returncode == 1, r.stderr.decode()
    r = run_cli(["import", "--if-changed", str(bad)], env)
    assert r.returncode == 1 and "skipped" not in r.stderr.decode()  # tried again, failed again
    assert import_count(server.db_path) == 2


def test_if_changed_from_the_profile_and_force_overrides_it(server, tmp_path):
    scan = gen_csv(tmp_path / "scan.csv", 40)
    (tmp_path / "cfg" / "hextrackr").mkdir(parents=True)
    (tmp_path / "cfg" / "hextrackr" / "config.toml").write_text("[profiles.default]\nif_changed = true\n")
    env = cli_env(tmp_path, server.url)
    assert run_cli(["import", str(scan)], env).returncode == 0
    r = run_cli(["import", str(scan)], env)
    assert r.returncode == 0 and "skipped scan.csv: unchanged since import 1" in r.stderr.decode()
    r = run_cli(["import", "--force", str(scan)], env)
    assert r.returncode == 0 and "completed scan.csv" in r.stderr.decode()
    assert import_count(server.db_path) == 2


def test_silent_success_prints_nothing_at_all_and_failures_print_as_usual(server, tmp_path):
    scan = gen_csv(tmp_path / "scan.csv", 40)
    env = cli_env(tmp_path, server.url)
    for args in (["-qq", "import", str(scan)], ["--silent", "import", "--if-changed", str(scan)],
                 ["-qq", "--output", "json", "import", "--if-changed", str(scan)],
                 ["import", "--if-changed", str(scan), "-qq", "--insecure"]):  # after the command; no TLS warning
        r = run_cli(args, env)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), args
    bad = bad_copy(scan, tmp_path / "bad.csv")
    r = run_cli(["-qq", "import", str(bad)], env)
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.decode().startswith("failed bad.csv: ") and "10.0.0.999" in r.stderr.decode()
    r = run_cli(["-qq", "import", str(tmp_path / "missing.csv")], env)
    assert r.returncode == 2 and "missing.csv" in r.stderr.decode()


def test_log_file_appends_timestamped_plain_lines_in_json_mode_without_the_token(server, tmp_path):
    scan = gen_csv(tmp_path / "scan.csv", 40)
    log = tmp_path / "logs" / "hextrackr.log"
    log.parent.mkdir()
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "--log-file", str(log), "import", "--if-changed", str(scan)], env)
    assert r.returncode == 0
    r = run_cli(["-qq", "--log-file", str(log), "import", "--if-changed", str(scan)], env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = run_cli(["-qq", "--log-file", str(log), "import", str(tmp_path / "missing.csv")], env)
    assert r.returncode == 2
    lines = log.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} "
    assert all(re.match(stamp, line) for line in lines), lines
    assert any(re.match(stamp + "Importing vulnerabilities scan.csv", line) for line in lines)
    assert any(re.match(stamp + "completed scan.csv: 40 rows", line) for line in lines)
    assert re.match(stamp + "skipped scan.csv: unchanged since import 1", lines[-2]), lines[-2]
    assert re.match(stamp + "error: .*missing.csv", lines[-1]), lines[-1]
    text = log.read_text()
    assert TOKEN not in text and "\x1b" not in text and "{" not in text  # plain lines, never the NDJSON
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


HELD_ROWS = 20_000  # enough that the import is still staging when the test takes the server's write lock


def test_second_run_with_lock_exits_75_naming_the_first_runs_pid(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    scan = gen_csv(tmp_path / "scan.csv", HELD_ROWS)
    first = spawn_cli(["--output", "json", "import", "--lock", str(scan)], env)
    try:
        wait_import_recorded(server.db_path, first)
        with hold_write_lock(server.db_path):  # the first import stays mid-way, however fast imports are
            r = run_cli(["import", str(scan), "--lock"], env)
        err = r.stderr.decode()
        assert r.returncode == 75, err
        assert len(err.strip().splitlines()) == 1 and f"(PID {first.pid})" in err and "nothing was done" in err
        assert first.wait(120) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert import_count(server.db_path) == 1


def test_lock_wait_waits_for_the_first_run_then_imports(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    first_scan, small = gen_csv(tmp_path / "first.csv", HELD_ROWS), gen_csv(tmp_path / "small.csv", 40, offset=100)
    first = spawn_cli(["--output", "json", "import", "--lock", str(first_scan)], env)
    try:
        wait_import_recorded(server.db_path, first)
        with hold_write_lock(server.db_path) as holder:
            second = spawn_cli(["--output", "json", "import", "--lock-wait", "120", str(small)], env)
            time.sleep(1.5)
            assert second.poll() is None  # waiting for the lock, not refused
            holder.close()  # the first import goes on and ends; its lock is released
        out, err = second.communicate(timeout=150)
        assert second.returncode == 0, err.decode()
        assert first.wait(30) == 0
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
                p.wait()
    conn = sqlite3.connect(server.db_path)
    try:
        rows = conn.execute("SELECT filename, started_at, finished_at FROM imports ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == ["first.csv", "small.csv"] and rows[1][1] >= rows[0][2]


def test_a_sigkilled_lock_holder_leaves_no_stale_lock(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    lock = tmp_path / "nightly.lock"
    first = spawn_cli(["--output", "json", "import", f"--lock={lock}", str(gen_csv(tmp_path / "first.csv", HELD_ROWS))], env)
    wait_import_recorded(server.db_path, first)
    assert lock.read_text().strip() == str(first.pid)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    small = gen_csv(tmp_path / "small.csv", 40, offset=100)
    started = time.monotonic()
    r = run_cli(["import", f"--lock={lock}", str(small)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert time.monotonic() - started < 30


def test_lock_before_a_scan_takes_the_scan_as_a_file_and_a_foreign_lock_path_is_refused_untouched(server, tmp_path):
    a = gen_csv(tmp_path / "a.csv", 10)
    env = cli_env(tmp_path, server.url)
    r = run_cli(["import", "--lock", str(a)], env)  # not "lock file a.csv": the scan is imported, lock auto-named
    assert r.returncode == 0 and "completed a.csv" in r.stderr.decode(), r.stderr.decode()
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    r = run_cli(["import", "--lock", str(notes), str(a)], env)
    assert r.returncode == 2 and "is not a lock file" in r.stderr.decode()
    assert notes.read_text() == "my notes\n" and import_count(server.db_path) == 1


def test_if_changed_while_the_same_bytes_are_being_imported_follows_that_import(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    scan = gen_csv(tmp_path / "scan.csv", HELD_ROWS)
    first = spawn_cli(["--output", "json", "import", str(scan)], env)
    try:
        wait_import_recorded(server.db_path, first)
        with hold_write_lock(server.db_path) as holder:  # the first import is running, and stays so
            second = spawn_cli(["--output", "json", "import", "--if-changed", str(scan)], env)
            seen = read_json_until(second, lambda o: o.get("event") == "start", timeout=60)
            assert seen[-1]["sessionId"] is not None  # following the running import, nothing uploaded
            holder.close()
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err.decode()
        summary = last_json(out)
        assert summary["outcome"] == "completed" and summary["importId"] == 1
        assert first.wait(120) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert import_count(server.db_path) == 1
