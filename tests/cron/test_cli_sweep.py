"""hextrackr sweep DIR against the real embedded server, real files and a file still being written."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from support.cli import read_json_until, run_cli, spawn_cli
from support.cli_suite import cli_env
from support.data import gen_csv
from support.fixtures import TOKEN, server  # noqa: F401


def imports_of(db_path: Path) -> dict[str, int]:
    """filename -> how many import records it has (any status)."""
    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("SELECT filename, count(*) FROM imports GROUP BY filename").fetchall()
    finally:
        conn.close()
    return dict(rows)


def ndjson(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines()]


class Grower(threading.Thread):
    """Appends a row to a CSV every 0.2 s until stopped: an export still being written."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.halt = threading.Event()
        gen_csv(path, 5)

    def run(self) -> None:
        i = 0
        while not self.halt.wait(0.2):
            with open(self.path, "a") as f:
                f.write(f"grow{i}.example.com,10.9.0.{i % 200 + 1},CVE-2025-{20000 + i},Low,{90000 + i},P,D,S,ACTIVE,"
                        "2025-10-01,2025-11-20\n")
            i += 1

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


def test_once_imports_each_good_file_once_moves_them_and_leaves_the_growing_file(server, tmp_path):
    drop, done, failed = tmp_path / "drop", tmp_path / "done", tmp_path / "failed"
    drop.mkdir()
    env = cli_env(tmp_path, server.url)
    already = gen_csv(drop / "already.csv", 30, offset=500)
    assert run_cli(["import", str(already)], env).returncode == 0
    gen_csv(drop / "good1.csv", 40)
    gen_csv(drop / "good2.csv", 40, offset=100)
    (drop / "bad.csv").write_text("name,colour\nx,blue\n")
    (drop / "notes.txt").write_text("not an export\n")
    grower = Grower(drop / "growing.csv")
    grower.start()
    try:
        time.sleep(1.5)  # everything but the growing file is older than --settle now
        args = ["--output", "json", "sweep", str(drop), "--settle", "1", "--done", str(done), "--failed", str(failed)]
        r = run_cli(args, env)
        assert r.returncode == 2, r.stderr.decode()  # worst outcome: a refused file
        events = ndjson(r.stdout)
        summaries = {e.get("file"): e["outcome"] for e in events if e.get("event") == "summary"}
        assert summaries == {"already.csv": "skipped", "good1.csv": "completed", "good2.csv": "completed",
                             "bad.csv": "error"}
        sweep = events[-1]
        assert sweep["event"] == "sweep" and (sweep["completed"], sweep["skipped"], sweep["refused"],
                                              sweep["waiting"], sweep["exitCode"]) == (2, 1, 1, 1, 2)
        assert sorted(p.name for p in done.iterdir()) == ["already.csv", "good1.csv", "good2.csv"]
        assert sorted(p.name for p in failed.iterdir()) == ["bad.csv"]
        assert sorted(p.name for p in drop.iterdir()) == ["growing.csv", "notes.txt"]
        assert imports_of(server.db_path) == {"already.csv": 1, "good1.csv": 1, "good2.csv": 1}
    finally:
        grower.stop()
    time.sleep(1.3)  # the writer has finished: the file settles
    r = run_cli(["sweep", str(drop), "--settle", "1", "--done", str(done), "--failed", str(failed)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert "completed growing.csv" in r.stderr.decode() and "1 completed" in r.stderr.decode().splitlines()[-1]
    assert imports_of(server.db_path) == {"already.csv": 1, "good1.csv": 1, "good2.csv": 1, "growing.csv": 1}
    assert sorted(p.name for p in drop.iterdir()) == ["notes.txt"]


def test_killed_mid_sweep_and_restarted_imports_nothing_twice(server, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    env = cli_env(tmp_path, server.url)
    big = gen_csv(drop / "a_big.csv", 60_000)
    time.sleep(0.05)
    gen_csv(drop / "b_small.csv", 40)
    gen_csv(drop / "c_small.csv", 40, offset=100)
    for p in (big, drop / "b_small.csv", drop / "c_small.csv"):  # oldest first: the big one is taken first
        p.touch()
        time.sleep(0.05)
    time.sleep(0.6)
    proc = spawn_cli(["--output", "json", "sweep", str(drop), "--settle", "0.5"], env)
    try:
        read_json_until(proc, lambda o: o.get("event") == "uploaded", timeout=60)
        proc.send_signal(signal.SIGKILL)  # mid-import of the big file; nothing moved, nothing recorded locally
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = run_cli(["--output", "json", "sweep", str(drop), "--settle", "0.5"], env, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    outcomes = {e.get("file"): e["outcome"] for e in ndjson(r.stdout) if e.get("event") == "summary"}
    assert set(outcomes) == {"a_big.csv", "b_small.csv", "c_small.csv"}
    assert outcomes["a_big.csv"] in ("completed", "skipped")  # followed to its end, or already done
    assert imports_of(server.db_path) == {"a_big.csv": 1, "b_small.csv": 1, "c_small.csv": 1}
    r = run_cli(["--output", "json", "sweep", str(drop), "--settle", "0.5"], env)  # and once more: all known
    assert r.returncode == 0
    assert {e["outcome"] for e in ndjson(r.stdout) if e.get("event") == "summary"} == {"skipped"}
    assert imports_of(server.db_path) == {"a_big.csv": 1, "b_small.csv": 1, "c_small.csv": 1}


def test_watch_takes_a_file_dropped_later_and_stops_cleanly_on_sigterm(server, tmp_path):
    drop, done = tmp_path / "drop", tmp_path / "done"
    drop.mkdir()
    env = cli_env(tmp_path, server.url)
    proc = spawn_cli(["--output", "plain", "sweep", "--watch", str(drop), "--settle", "0.5", "--done", str(done)], env)
    try:
        assert proc.stderr is not None
        assert "watching" in proc.stderr.readline().decode()
        other = run_cli(["sweep", str(drop)], env)  # the lock is implied: one sweep per server and profile
        assert other.returncode == 75 and f"(PID {proc.pid})" in other.stderr.decode()
        staging = tmp_path / "scan.tmp"
        gen_csv(staging, 40)
        staging.rename(drop / "scan.csv")  # dropped whole, as an SFTP client that renames at the end
        deadline = time.monotonic() + 30
        while not (done / "scan.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (done / "scan.csv").exists()
        assert proc.poll() is None  # still watching
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()
        assert "completed scan.csv: 40 rows" in err.decode() and "Traceback" not in err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert imports_of(server.db_path) == {"scan.csv": 1}
    r = run_cli(["sweep", str(drop)], env)  # the lock went with the process
    assert r.returncode == 0


def test_silent_sweep_prints_nothing_when_all_went_well(server, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    gen_csv(drop / "scan.csv", 40)
    time.sleep(0.4)
    env = cli_env(tmp_path, server.url)
    r = run_cli(["-qq", "sweep", str(drop), "--settle", "0.3"], env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    r = run_cli(["-qq", "sweep", str(drop), "--settle", "0.3"], env)  # skipped: still silent
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert imports_of(server.db_path) == {"scan.csv": 1}


def test_bad_sweep_arguments_are_usage_errors(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    r = run_cli(["sweep", str(tmp_path / "missing")], env)
    assert r.returncode == 2 and "is not a directory" in r.stderr.decode()
    (tmp_path / "drop").mkdir()
    r = run_cli(["sweep", str(tmp_path / "drop"), "--done", str(tmp_path / "drop")], env)
    assert r.returncode == 2 and "the swept folder itself" in r.stderr.decode()
    r = run_cli(["sweep"], env)
    assert r.returncode == 2 and "Missing argument 'DIR'" in r.stderr.decode()


def test_an_unreachable_server_moves_nothing(tmp_path):
    from support.server import free_port

    drop, done, failed = tmp_path / "drop", tmp_path / "done", tmp_path / "failed"
    drop.mkdir()
    gen_csv(drop / "scan.csv", 40)
    r = run_cli(["sweep", str(drop), "--settle", "0", "--done", str(done), "--failed", str(failed)],
                cli_env(tmp_path, f"http://127.0.0.1:{free_port()}"))
    assert r.returncode == 3 and "cannot reach" in r.stderr.decode()
    assert [p.name for p in drop.iterdir()] == ["scan.csv"] and not done.exists() and not failed.exists()


def test_the_gate_and_junit_work_per_file_in_a_sweep(server, tmp_path):
    drop, done, failed = tmp_path / "drop", tmp_path / "done", tmp_path / "failed"
    drop.mkdir()
    gen_csv(drop / "high.csv", 20)  # every finding is High
    (drop / "bad.csv").write_text("name,colour\nx,blue\n")
    time.sleep(0.4)
    junit = tmp_path / "sweep.xml"
    r = run_cli(["sweep", str(drop), "--settle", "0.3", "--done", str(done), "--failed", str(failed),
                 "--fail-on", "high", "--junit", str(junit)], cli_env(tmp_path, server.url))
    err = r.stderr.decode()
    assert r.returncode == 2, err  # a refused file outranks a tripped gate, as across the files of an import
    assert "completed high.csv" in err and "refused" in err
    assert [p.name for p in done.iterdir()] == ["high.csv"]  # imported, then judged: it is done
    assert [p.name for p in failed.iterdir()] == ["bad.csv"]
    xml = junit.read_text()
    assert xml.count("<testcase") == 2 and "high.csv" in xml and "bad.csv" in xml


def test_the_default_pattern_takes_compressed_exports_too(server, tmp_path):
    import gzip

    drop = tmp_path / "drop"
    drop.mkdir()
    plain = gen_csv(tmp_path / "scan.csv", 30)
    (drop / "scan.csv.gz").write_bytes(gzip.compress(plain.read_bytes()))
    (drop / "readme.md").write_text("# not an export\n")
    time.sleep(0.4)
    r = run_cli(["--output", "json", "sweep", str(drop), "--settle", "0.3"], cli_env(tmp_path, server.url))
    assert r.returncode == 0, r.stderr.decode()
    files = {e.get("file"): e["outcome"] for e in ndjson(r.stdout) if e.get("event") == "summary"}
    assert files == {"scan.csv.gz": "completed"}


def test_once_waits_for_a_file_dropped_just_before_the_run_to_settle(server, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    gen_csv(drop / "fresh.csv", 30)  # written now: not settled yet when the sweep starts
    started = time.monotonic()
    r = run_cli(["--output", "json", "sweep", str(drop), "--settle", "1.5"], cli_env(tmp_path, server.url))
    assert r.returncode == 0, r.stderr.decode()
    assert time.monotonic() - started >= 1.5  # it waited for the file to settle...
    events = ndjson(r.stdout)
    assert [e["outcome"] for e in events if e.get("event") == "summary"] == ["completed"]  # ...then took it
    assert events[-1]["waiting"] == 0 and imports_of(server.db_path) == {"fresh.csv": 1}


def test_watch_by_polling_as_on_a_network_share_takes_a_dropped_file(server, tmp_path):
    """WATCHFILES_FORCE_POLLING: no inotify (as on NFS/SMB mounts, whose remote writes inotify never sees)."""
    drop, done = tmp_path / "drop", tmp_path / "done"
    drop.mkdir()
    env = cli_env(tmp_path, server.url, WATCHFILES_FORCE_POLLING="true")
    proc = spawn_cli(["--output", "plain", "sweep", "--watch", str(drop), "--settle", "0.3", "--done", str(done)], env)
    try:
        assert proc.stderr is not None and "watching" in proc.stderr.readline().decode()
        gen_csv(drop / "late.csv", 20)
        deadline = time.monotonic() + 30
        while not (done / "late.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (done / "late.csv").exists()
        proc.send_signal(signal.SIGINT)  # Ctrl-C while idle: a clean stop too
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert imports_of(server.db_path) == {"late.csv": 1}
