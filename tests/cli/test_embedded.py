"""`--server local` as a user meets it: the in-process server's log never reaches the terminal, and the database
in the user data directory survives upgrades (older schema upgraded in place, a newer one refused)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from support.cli import run_cli
from support.cli_suite import cli_env
from support.data import gen_csv
from support.fixtures import small_csv  # noqa: F401  (fixture)
from support.fixtures import tiny_disk  # noqa: F401  (fixture: a 3 MiB tmpfs)

pytest_plugins = ["support.figures_plugin"]

# The layout of the first release (before the schema had a version), written by hand: no
# vulnerabilities.created_import_id, no imports.runner, no plugins table, snapshots keyed by record id.
OLD_SCHEMA = """
CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL, filename TEXT NOT NULL, vendor TEXT, scan_date TEXT, format TEXT, sha256 TEXT, size INTEGER,
    status TEXT NOT NULL DEFAULT 'running', rows INTEGER NOT NULL DEFAULT 0, records INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0, resolved INTEGER NOT NULL DEFAULT 0,
    error TEXT, last_event TEXT, started_at TEXT NOT NULL, finished_at TEXT, duration_ms INTEGER
);
CREATE TABLE vulnerabilities (
    id INTEGER PRIMARY KEY AUTOINCREMENT, vendor TEXT NOT NULL, dedup_key TEXT NOT NULL,
    hostname TEXT, ip_address TEXT, asset_id TEXT, cve TEXT, plugin_id TEXT, plugin_name TEXT,
    severity TEXT, vpr_score REAL, cvss_score REAL, state TEXT, description TEXT, solution TEXT,
    first_seen TEXT, last_seen TEXT, scan_date TEXT, status TEXT NOT NULL DEFAULT 'open', resolved_at TEXT,
    import_id INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (vendor, dedup_key)
);
CREATE INDEX vulnerabilities_vendor_import ON vulnerabilities (vendor, import_id);
CREATE TABLE vulnerability_snapshots (
    import_id INTEGER NOT NULL, vulnerability_id INTEGER NOT NULL,
    scan_date TEXT, severity TEXT, state TEXT, vpr_score REAL, PRIMARY KEY (import_id, vulnerability_id)
) WITHOUT ROWID;
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, xt_number TEXT NOT NULL UNIQUE,
    date_submitted TEXT, date_due TEXT, hexagon_ticket TEXT, service_now_ticket TEXT, location TEXT,
    devices TEXT, supervisor TEXT, tech TEXT, status TEXT, notes TEXT,
    import_id INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
INSERT INTO imports (id, session_id, type, filename, vendor, scan_date, format, status, rows, records, inserted,
                     started_at, finished_at)
VALUES (1, '5f0c8d0e-6f0a-4a53-9a43-8f1d2b7c0001', 'vulnerabilities', 'old_2025-10-01.csv', 'generic',
        '2025-10-01', 'generic', 'completed', 1, 1, 1, '2025-10-01T00:00:00.000Z', '2025-10-01T00:00:01.000Z');
INSERT INTO vulnerabilities (id, vendor, dedup_key, hostname, cve, plugin_id, severity, state, status, import_id,
                             created_at, updated_at)
VALUES (7, 'generic', 'oldhost.example.com|CVE-2020-0001', 'oldhost.example.com', 'CVE-2020-0001', '1',
        'High', 'ACTIVE', 'open', 1, '2025-10-01T00:00:00.000Z', '2025-10-01T00:00:00.000Z');
INSERT INTO vulnerability_snapshots (import_id, vulnerability_id, scan_date, severity, state)
VALUES (1, 7, '2025-10-01', 'High', 'ACTIVE');
"""


def _local_db(tmp_path: Path) -> Path:
    """The database `--server local` uses with cli_env's XDG_DATA_HOME."""
    path = tmp_path / "data" / "hextrackr" / "hextrackr.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_a_failed_import_in_embedded_mode_shows_no_server_log_or_traceback(tiny_disk, tmp_path):  # noqa: F811
    """The database's disk fills up during a `--server local` import: the user sees the import's one-line
    failure (exit 1), not the in-process server's log lines or a traceback; those go to server.log."""
    env = cli_env(tmp_path, None, token=None, XDG_DATA_HOME=str(tiny_disk))
    base = gen_csv(tmp_path / "base_2025-11-01.csv", 200, offset=500_000)
    assert run_cli(["--server", "local", "-q", "import", str(base)], env).returncode == 0
    big = gen_csv(tmp_path / "big_2025-11-20.csv", 8000)
    r = run_cli(["--server", "local", "--output", "plain", "import", str(big)], env)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "Traceback" not in err and "Logging error" not in err, err
    assert not re.search(r"^(ERROR|WARNING|import \d+:)", err, re.MULTILINE), err  # no server log line
    assert err.splitlines()[-1].startswith("failed big_2025-11-20.csv:") and "full" in err.splitlines()[-1]
    log = tiny_disk / "hextrackr" / "server.log"
    assert "database or disk is full" in log.read_text(), "the server's log line went nowhere"
    assert log.stat().st_mode & 0o077 == 0


def test_an_old_unversioned_database_is_upgraded_in_place_and_keeps_its_rows(tmp_path, small_csv):
    """A database from before schema versioning (no created_import_id column, old snapshots): `--server local`
    upgrades it at start-up; the old record and its snapshot survive and a new import works."""
    db = _local_db(tmp_path)
    conn = sqlite3.connect(db)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    env = cli_env(tmp_path, None, token=None)
    r = run_cli(["--server", "local", "--output", "json", "import", str(small_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert "created_import_id" not in r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["outcome"] == "completed" and summary["rows"] == 50

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        old = conn.execute("SELECT created_import_id, import_id, status FROM vulnerabilities WHERE id = 7").fetchone()
        assert old == (1, 1, "resolved")  # column backfilled; absent from the new generic scan, so resolved
        assert conn.execute("SELECT count(*) FROM vulnerabilities").fetchone()[0] == 51
        snaps = conn.execute("SELECT dedup_key FROM vulnerability_snapshots WHERE import_id = 1").fetchall()
        assert snaps == [("oldhost.example.com|CVE-2020-0001",)]
    finally:
        conn.close()
    again = run_cli(["--server", "local", "-q", "import", str(small_csv)], env)  # the upgraded file opens as is
    assert again.returncode == 0, again.stderr.decode()


def test_a_database_from_a_newer_version_is_refused_in_one_line_and_left_alone(tmp_path, small_csv):
    """user_version above what this build knows: exit 2 with one line saying so, the file unchanged."""
    db = _local_db(tmp_path)
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE imports (id INTEGER PRIMARY KEY, future TEXT); PRAGMA user_version = 99;")
    conn.close()
    before = db.read_bytes()  # the file is not even opened for writing (not switched to WAL either)
    r = run_cli(["--server", "local", "import", str(small_csv)], cli_env(tmp_path, None, token=None))
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1 and "Traceback" not in err, err
    assert "newer hextrackr" in err and "schema version 99" in err and str(db) in err
    assert db.read_bytes() == before


def test_embedded_mode_names_no_browser_page_and_open_says_why(tmp_path, small_csv):
    """The in-process server stops with the command and its token is never shown: no browserUrl in the
    summary, and --open explains instead of opening a page nobody can use."""
    env = cli_env(tmp_path, None, token=None, DISPLAY=":0", BROWSER="true")
    r = run_cli(["--server", "local", "--output", "json", "import", "--open", str(small_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    lines = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert "browserUrl" not in lines[-1]
    (warning,) = [o for o in lines if o.get("event") == "warning"]
    assert "--open: the embedded server" in warning["message"] and "hextrackr serve" in warning["message"]
