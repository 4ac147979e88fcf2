"""`hextrackr import` of real scanner exports (issue 14): the format read, per-severity counts, --format,
--min-severity and clean scans, through a real CLI subprocess and the real embedded server (SQLite file).

Expected counts come from the files themselves, read here with the csv module (the Nessus ``Risk`` column).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from pathlib import Path

from support.cli import run_cli
from support.cli_suite import cli_env, imports_total
from support.fixtures import server  # noqa: F401  (fixtures)

REAL = Path(__file__).resolve().parent.parent / "data" / "real"
NESSUS = REAL / "tenable_nessus_nessus_many_vuln2-all.csv"  # Nessus "all columns": 29 of 30 rows Risk=None
TENABLE_SC = REAL / "tenable_issue_11102.csv"
LEVELS = ("Critical", "High", "Medium", "Low", "Info")


def risks(path: Path) -> Counter:
    """Findings per level as the file states them: Nessus ``Risk`` (None is informational), one row a finding."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if any(v.strip() for v in r.values() if v)]
    return Counter("Info" if r["Risk"].strip().lower() == "none" else r["Risk"].strip().title() for r in rows)


def summary(out: bytes) -> dict:
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return next(o for o in reversed(lines) if o.get("event") == "summary")


def db_rows(db: Path, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_the_summary_line_ndjson_and_import_record_name_the_format_and_count_every_severity(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    expected = risks(NESSUS)
    assert expected["Info"] == 29  # the file is what we think it is
    r = run_cli(["--output", "json", "import", str(NESSUS)], env)
    assert r.returncode == 0, r.stderr
    s = summary(r.stdout)
    assert s["format"] == "nessus" and s["findings"] == sum(expected.values())
    assert s["severities"] == {lvl: expected[lvl] for lvl in LEVELS}

    r = run_cli(["--output", "plain", "import", str(NESSUS)], env)
    last = next(line for line in r.stderr.decode().splitlines() if line.startswith("completed "))
    counts = ", ".join(f"{short} {expected[lvl]:,}" for short, lvl in zip(("crit", "high", "med", "low", "info"), LEVELS))
    assert f"{sum(expected.values())} findings ({counts})" in last and "format nessus" in last, last

    (rec,) = db_rows(server.db_path, "SELECT * FROM imports WHERE id = 1")
    assert rec["format"] == "nessus" and rec["findings"] == sum(expected.values()) and rec["skipped"] == 0
    assert json.loads(rec["severities"]) == {lvl: expected[lvl] for lvl in LEVELS}


def test_verbose_says_which_format_the_local_check_detected(server, tmp_path):
    r = run_cli(["-v", "--output", "plain", "import", str(TENABLE_SC)], cli_env(tmp_path, server.url))
    assert r.returncode == 0, r.stderr
    assert "format tenable-sc (Tenable.sc vulnerability list)" in r.stdout.decode() + r.stderr.decode()


def test_a_forced_format_that_does_not_fit_exits_2_naming_the_detected_one_and_sends_nothing(server, tmp_path):
    r = run_cli(["import", "--format", "nessus", str(TENABLE_SC)], cli_env(tmp_path, server.url))
    err = [line for line in r.stderr.decode().splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "--format tenable-sc" in err[0], err
    assert imports_total(server.url) == 0


def test_an_unknown_format_name_is_a_usage_error_listing_the_formats(server, tmp_path):
    r = run_cli(["import", "--format", "excel", str(TENABLE_SC)], cli_env(tmp_path, server.url))
    assert r.returncode == 2 and "tenable-sc" in r.stderr.decode() and "openvas" in r.stderr.decode()
    assert imports_total(server.url) == 0


def test_a_forced_format_that_fits_is_the_one_read(server, tmp_path):
    # a Nessus CSV also carries the generic Host / CVE / Plugin ID columns: forced, generic reads it
    r = run_cli(["--output", "json", "import", "--format", "generic", str(NESSUS)], cli_env(tmp_path, server.url))
    assert r.returncode == 0, r.stderr
    assert summary(r.stdout)["format"] == "generic"


def test_min_severity_skips_and_counts_lower_findings_and_never_resolves_them(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    expected = risks(NESSUS)
    assert run_cli(["-q", "import", "--vendor", "nessus", str(NESSUS)], env).returncode == 0
    open_before = db_rows(server.db_path, "SELECT severity, count(*) n FROM vulnerabilities WHERE status = 'open'"
                                          " GROUP BY severity")
    r = run_cli(["--output", "json", "import", "--vendor", "nessus", "--min-severity", "medium", str(NESSUS)], env)
    assert r.returncode == 0, r.stderr
    s = summary(r.stdout)
    below = expected["Low"] + expected["Info"]
    assert s["skipped"] == below and s["findings"] == sum(expected.values()) and s["resolved"] == 0
    assert db_rows(server.db_path, "SELECT severity, count(*) n FROM vulnerabilities WHERE status = 'open'"
                                   " GROUP BY severity") == open_before


def test_a_clean_scan_completes_says_so_and_resolves_nothing(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    one, none = REAL / "tenable_nessus_was_nessus_was_one_vuln.csv", REAL / "tenable_nessus_was_nessus_was_no_vuln.csv"
    assert run_cli(["-q", "import", "--vendor", "was", str(one)], env).returncode == 0
    before = db_rows(server.db_path, "SELECT id, status FROM vulnerabilities ORDER BY id")
    r = run_cli(["--output", "plain", "import", "--vendor", "was", str(none)], env)
    assert r.returncode == 0, r.stderr
    assert "clean scan" in next(line for line in r.stderr.decode().splitlines() if line.startswith("completed "))
    assert db_rows(server.db_path, "SELECT id, status FROM vulnerabilities ORDER BY id") == before
    (rec,) = db_rows(server.db_path, "SELECT status, records, resolved FROM imports WHERE id = 2")
    assert tuple(rec) == ("completed", 0, 0)


def test_min_severity_against_hextrackr_11_is_refused_before_anything_is_sent(tmp_path):
    """1.1.12 resolves every open vulnerability an import does not contain: the skipped findings would be resolved."""
    from support.hx11_double import HX11Double

    hx = HX11Double(users={"analyst": "pw"}, rate_limit=None, step_delay=0.02).start()
    try:
        env = cli_env(tmp_path, hx.url, token=None, HEXTRACKR_USERNAME="analyst", HEXTRACKR_PASSWORD="pw")
        r = run_cli(["import", "--min-severity", "high", str(NESSUS)], env)
        err = [line for line in r.stderr.decode().splitlines() if line.strip()]
        assert r.returncode == 2 and len(err) == 1 and "--min-severity" in err[0] and "resolved" in err[0], err
        assert not hx.history
        r = run_cli(["--output", "json", "import", "--format", "generic", str(NESSUS)], env)  # --format is honoured
        assert r.returncode == 0, r.stderr
    finally:
        hx.stop()


def test_a_bad_value_names_the_file_record_line_and_the_files_own_column(server, tmp_path):
    """Records 1-11 span 38 lines (plugin output with line breaks), so record 12 starts on line 40."""
    rows = ['Plugin,Plugin Name,Family,Severity,IP Address,DNS Name,Plugin Output']
    for n in range(1, 12):
        output = "\n".join(f"output line {k}" for k in range(4 if n <= 5 else 3))
        rows.append(f'{19500 + n},Plugin {n},General,Low,10.1.2.{n},h{n}.corp,"{output}"')
    rows.append('19600,Plugin 12,General,High,10.1.2,h12.corp,x')
    path = tmp_path / "scan.csv"
    path.write_text("\n".join(rows) + "\n")
    assert path.read_text().splitlines()[39].startswith("19600,")  # line 40
    r = run_cli(["--output", "plain", "import", str(path)], cli_env(tmp_path, server.url))
    assert r.returncode == 1
    assert 'scan.csv: record 12 (line 40): column "IP Address" is not an IPv4 address: "10.1.2"' in r.stderr.decode()
    assert db_rows(server.db_path, "SELECT count(*) FROM vulnerabilities")[0][0] == 0
