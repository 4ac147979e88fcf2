"""--if-changed against the HexTrackr 1.1.x double: the local ledger decides (1.1.x cannot say), concurrently safe."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.cli import run_cli, spawn_cli
from support.cli_suite import cli_env
from support.hx11_double import HX11Double, csv_text

USER, PASSWORD = "analyst", "s3cret pass"


@pytest.fixture
def hx() -> Iterator[HX11Double]:
    double = HX11Double(users={USER: PASSWORD}, rate_limit=None, step_delay=0.02).start()
    try:
        yield double
    finally:
        double.stop()


def env_for(tmp_path: Path, hx: HX11Double) -> dict[str, str]:
    return cli_env(tmp_path, hx.url, token=None, HEXTRACKR_USERNAME=USER, HEXTRACKR_PASSWORD=PASSWORD)


def ledger_rows(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "state" / "hextrackr" / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_ledger_skips_the_second_import_of_the_same_bytes_and_a_changed_file_is_imported(hx, tmp_path):
    scan = tmp_path / "tenable_scan_2025-11-20.csv"
    scan.write_text(csv_text(300))
    env = env_for(tmp_path, hx)
    r = run_cli(["import", "--if-changed", str(scan)], env)
    assert r.returncode == 0, r.stderr.decode()
    rows = ledger_rows(tmp_path)
    assert len(rows) == 1 and rows[0]["server"] == hx.url and rows[0]["vendor"] == "tenable"
    assert PASSWORD not in json.dumps(rows)
    r = run_cli(["import", "--if-changed", str(scan)], env)
    last = r.stderr.decode().strip().splitlines()[-1]
    assert r.returncode == 0 and re.fullmatch(r"skipped tenable_scan_2025-11-20\.csv: unchanged since (import \S+|session \S+) \(\d{4}-\d\d-\d\d \d\d:\d\d\)", last), last
    assert len(hx.history) == 1  # nothing was uploaded the second time
    scan.write_text(csv_text(301))
    assert run_cli(["import", "--if-changed", str(scan)], env).returncode == 0
    assert len(hx.history) == 2 and len(ledger_rows(tmp_path)) == 2


def test_a_failed_11_import_is_not_in_the_ledger_and_is_tried_again(tmp_path):
    scan = tmp_path / "tenable_scan_2025-11-20.csv"
    scan.write_text(csv_text(300))
    with HX11Double(users={USER: PASSWORD}, rate_limit=None, step_delay=0.02, fail_at=60).start() as hx:
        env = env_for(tmp_path, hx)
        assert run_cli(["import", "--if-changed", str(scan)], env).returncode == 1
        assert ledger_rows(tmp_path) == []
        r = run_cli(["import", "--if-changed", str(scan)], env)
        assert r.returncode == 1 and "skipped" not in r.stderr.decode()


def test_two_concurrent_runs_both_write_whole_ledger_lines(hx, tmp_path):
    env = env_for(tmp_path, hx)
    scans = []
    for i in range(4):
        p = tmp_path / f"tenable_scan_{i}.csv"
        p.write_text(csv_text(200 + i))
        scans.append(p)
    procs = [spawn_cli(["import", "--if-changed", str(scans[0 + k]), str(scans[2 + k])], env) for k in (0, 1)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    rows = ledger_rows(tmp_path)  # every line parsed: none torn or interleaved
    assert sorted(r["name"] for r in rows) == sorted(s.name for s in scans)
    assert len({r["sha256"] for r in rows}) == 4
    r = run_cli(["--output", "json", "import", "--if-changed", *map(str, scans)], env)
    outcomes = [json.loads(line)["outcome"] for line in r.stdout.decode().splitlines() if '"summary"' in line]
    assert r.returncode == 0 and outcomes == ["skipped"] * 4


def test_sweep_against_11_uses_the_ledger_a_file_dropped_again_is_skipped(hx, tmp_path):
    import shutil
    import time

    drop, done = tmp_path / "drop", tmp_path / "done"
    drop.mkdir()
    for i in range(2):
        (drop / f"tenable_scan_{i}.csv").write_text(csv_text(150 + i))
    time.sleep(0.4)
    env = env_for(tmp_path, hx)
    r = run_cli(["sweep", str(drop), "--settle", "0.3", "--done", str(done)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert len(hx.history) == 2 and len(ledger_rows(tmp_path)) == 2
    shutil.copy2(done / "tenable_scan_0.csv", drop / "tenable_scan_0.csv")  # the same export dropped again
    time.sleep(0.4)
    r = run_cli(["--output", "json", "sweep", str(drop), "--settle", "0.3", "--done", str(done)], env)
    assert r.returncode == 0, r.stderr.decode()
    outcomes = [json.loads(line)["outcome"] for line in r.stdout.decode().splitlines() if '"summary"' in line]
    assert outcomes == ["skipped"] and len(hx.history) == 2  # nothing sent: 1.1.x's request budget kept
    assert sorted(p.name for p in done.iterdir()) == ["tenable_scan_0.1.csv", "tenable_scan_0.csv", "tenable_scan_1.csv"]
