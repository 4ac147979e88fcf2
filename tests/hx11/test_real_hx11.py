"""The `hextrackr` CLI against the REAL HexTrackr 1.1.12 server (marker ``real_hx11``).

Runs when HEXTRACKR_REAL_URL names a freshly booted server (``bash ../shared/hextrackr-1.1.12/boot.sh`` writes
it to /tmp/hextrackr-1.1.12/real.env); skips otherwise — CI cannot fetch the server's source, so this suite
skips there even with CI_STRICT=1. User and password: HEXTRACKR_REAL_USER / HEXTRACKR_REAL_PASSWORD (default
the boot script's admin / admin123!).

In production mode the server allows 60 ``/api/`` requests per 15 minutes per client IP, keyed on
X-Forwarded-For when present. The CLI sends none, so every CLI run here spends the loopback budget (the
suite needs ~50 of it: boot a fresh server first); the suite's own protocol checks send X-Forwarded-For
addresses of their own so they spend nothing of it. The tests run in file order; the last one spends
what is left, to see the CLI meet a 429. HEXTRACKR_REAL_REPORT=PATH appends one JSON line per measured
import (requests spent, CLI wall time, the server's own duration).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from support.cli import interrupt_when, run_cli, spawn_cli
from support.cli_suite import cli_env
from support.hx11_double import csv_text

URL = (os.environ.get("HEXTRACKR_REAL_URL") or "").rstrip("/")
USER = os.environ.get("HEXTRACKR_REAL_USER", "admin")
PASSWORD = os.environ.get("HEXTRACKR_REAL_PASSWORD", "admin123!")
SESSIONS_DB = Path(os.environ.get("HEXTRACKR_REAL_SESSIONS_DB", "/tmp/hextrackr-1.1.12/hx11-data/sessions.db"))
REPORT = os.environ.get("HEXTRACKR_REAL_REPORT")
NEEDED = 52  # loopback requests this suite spends (measured: 45-50)

pytestmark = [
    pytest.mark.real_hx11,
    pytest.mark.skipif(not URL, reason="HEXTRACKR_REAL_URL is not set: these tests need the real HexTrackr 1.1.12 "
                                       "(boot it with ../shared/hextrackr-1.1.12/boot.sh); CI cannot fetch its source"),
]


# --------------------------------------------------------------------------- helpers
def remaining() -> int:
    """RateLimit-Remaining of the loopback budget (this look costs one request of it)."""
    r = requests.get(URL + "/api/auth/status", timeout=10)
    return int(r.headers["RateLimit-Remaining"])


class Direct:
    """Requests of the suite itself, under an X-Forwarded-For address of their own (the loopback budget is
    the CLI's)."""

    def __init__(self) -> None:
        self.s = requests.Session()
        self.s.headers.update({"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 200 + 20}",
                               "X-Forwarded-Proto": "https"})
        self.cookie: str | None = None

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(URL + path, timeout=20, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.s.post(URL + path, timeout=20, **kw)

    def login(self) -> str:
        r = self.post("/api/auth/login", json={"username": USER, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.cookie = r.cookies.get("hextrackr.sid") or re.search(r"hextrackr\.sid=([^;]+)",
                                                                   r.headers["Set-Cookie"]).group(1)
        self.s.cookies.clear()
        self.s.headers["Cookie"] = f"hextrackr.sid={self.cookie}"
        return self.cookie

    def logout(self) -> None:
        token = self.get("/api/auth/csrf").json()["csrfToken"]
        assert self.post("/api/auth/logout", headers={"x-csrf-token": token}).status_code == 200


def sessions() -> int | None:
    """Rows in the server's sessions store (None when it is not readable here)."""
    if not SESSIONS_DB.exists():
        return None
    with sqlite3.connect(f"file:{SESSIONS_DB}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])


def env(tmp: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp, URL, token=None, HEXTRACKR_USERNAME=USER, HEXTRACKR_PASSWORD=PASSWORD, **extra)


def report(**fields: Any) -> None:
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields) + "\n")


def ndjson(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("real")
    out = {}
    for n, name in ((1000, "real_1k.csv"), (10_000, "real_10k.csv"), (100_000, "real_100k.csv")):
        out[name] = d / name
        out[name].write_text(csv_text(n, start=len(out) * 1_000_000))
    return out


@pytest.fixture(scope="module", autouse=True)
def fresh_budget() -> None:
    r = requests.get(URL + "/api/auth/status", headers={"X-Forwarded-For": "198.51.100.250"}, timeout=10)
    left, limit = remaining(), int(r.headers["RateLimit-Limit"])
    if limit < 1000 and left < NEEDED:
        pytest.fail(f"the real server's loopback budget has {left} of {limit} requests left; this suite needs "
                    f"{NEEDED}: boot a fresh server (boot.sh) or wait {r.headers.get('RateLimit-Reset')} s")


# --------------------------------------------------------------------------- the server's own answers
def test_what_1_1_12_answers_is_what_the_double_and_the_protocol_page_say():
    d = Direct()
    health = requests.get(URL + "/health", timeout=10)
    assert "RateLimit-Remaining" not in health.headers  # outside /api/: free
    body = health.json()
    assert body["status"] == "ok" and body["db"] is True and isinstance(body["uptime"], float)
    assert "dialect" not in body and "version" not in body
    r = d.get("/api/auth/status")
    assert r.json() == {"success": True, "data": {"authenticated": False}}
    assert r.headers["RateLimit-Policy"].endswith(";w=900") and int(r.headers["RateLimit-Reset"]) <= 900
    first = int(r.headers["RateLimit-Remaining"])
    assert int(d.get("/api/auth/status").headers["RateLimit-Remaining"]) == first - 1  # keyed on X-Forwarded-For
    plain = requests.post(URL + "/api/auth/login", json={"username": USER, "password": PASSWORD},
                          headers={"X-Forwarded-For": d.s.headers["X-Forwarded-For"]}, timeout=20)
    assert plain.status_code == 200 and plain.json()["success"] is True and "Set-Cookie" not in plain.headers
    bad = d.post("/api/auth/login", json={"username": USER, "password": "not-it"})
    assert bad.status_code == 401 and bad.json() == {"success": False, "error": "Invalid username or password"}
    assert d.get("/api/vulnerabilities/last-import").json() == {"error": "Authentication required",
                                                                 "authenticated": False}
    d.login()
    status = d.get("/api/auth/status").json()
    assert status["data"]["authenticated"] is True and status["data"]["user"]["username"] == USER
    imports = d.get("/api/imports")
    assert imports.status_code == 500 and imports.json() == {
        "success": False, "error": "Failed to fetch import history",
        "details": "importService.getImportHistory is not a function"}
    last = d.get("/api/vulnerabilities/last-import").json()
    assert set(last) <= {"lastImport", "rowCount", "vendor", "filename"} and "rowCount" in last
    gone = d.get(f"/api/import/progress/{uuid.uuid4()}")
    assert gone.status_code == 404 and gone.json() == {"success": False, "error": "Session not found"}
    no_csrf = d.post("/api/vulnerabilities/import-staging", files={"csvFile": ("a.csv", b"x\n1\n", "text/csv")})
    assert no_csrf.status_code == 500 and no_csrf.json() == {"success": False, "error": "Internal server error"}
    assert "RateLimit-Remaining" not in no_csrf.headers  # the CSRF check runs before the limiter
    handshake = requests.get(URL + "/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=10)
    assert handshake.status_code == 400 and handshake.json() == {"code": 3, "message": "Bad request"}
    d.logout()
    assert d.get("/api/auth/status").json()["data"]["authenticated"] is False


# --------------------------------------------------------------------------- imports
def test_an_import_over_the_websocket_spends_at_most_5_requests_and_logs_out(files, tmp_path):
    before, stored = remaining(), sessions()
    started = time.monotonic()
    r = run_cli(["-v", "--output", "plain", "import", "--log-interval", "0", str(files["real_1k.csv"])], env(tmp_path),
                timeout=300)
    wall = time.monotonic() - started
    err = r.stderr.decode()
    assert r.returncode == 0, err
    spent = before - remaining() - 1
    assert spent <= 5, err
    assert "dialect hextrackr-1.1 (detected: its /health answers like HexTrackr 1.1.x" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("completed real_1k.csv: 1,000 rows"), last
    assert len(re.findall(r"uploading ([\d,]+)/\1 bytes", err)) == 1
    if stored is not None:
        assert sessions() == stored  # the CLI's session was logged out
    report(test="websocket 1k -v", rows=1000, requests=spent, wall_s=round(wall, 2))


def _timed_json_import(path: Path, tmp_path: Path, *extra: str) -> tuple[float, dict[str, Any], list[dict[str, Any]], str]:
    started = time.monotonic()
    r = run_cli(["--output", "json", "import", "--timeout", "900", *extra, str(path)], env(tmp_path), timeout=960)
    wall = time.monotonic() - started
    objs = ndjson(r.stdout)
    assert r.returncode == 0, r.stderr.decode()
    assert objs[-1]["event"] == "summary" and objs[-1]["outcome"] == "completed"
    return wall, objs[-1], objs, r.stderr.decode()


def test_forced_polling_of_10k_rows_sees_its_real_outcome(files, tmp_path):
    """Case 1: the polls come close enough near the end to see the completion within 1.1.12's 5 s retention,
    within the request budget; a vanished session would be decided from last-import, never /api/imports."""
    before = remaining()
    wall, summary, objs, err = _timed_json_import(files["real_10k.csv"], tmp_path, "--transport", "polling")
    spent = before - remaining() - 1
    assert [o["transport"] for o in objs if o.get("event") == "transport"] == ["polling"]
    assert summary["rows"] == 10_000 and summary["exitCode"] == 0
    assert "lost contact" not in err and spent <= 20, spent
    report(test="polling 10k", rows=10_000, requests=spent, wall_s=round(wall, 2), server_ms=summary.get("durationMs"))


def test_100k_rows_over_the_websocket_with_an_eta_within_25_percent_from_30_percent_on(files, tmp_path):
    wall, summary, objs, _ = _timed_json_import(files["real_100k.csv"], tmp_path)
    if REPORT:
        Path(REPORT + ".100k.ndjson").write_text("".join(json.dumps(o) + "\n" for o in objs))
    assert summary["rows"] == 100_000
    events = [o for o in objs if "progress" in o and "timestamp" in o and o.get("type") != "complete"]
    end = next(o["timestamp"] for o in objs if o.get("type") == "complete")
    checked = 0
    for e in events:
        if e["progress"] >= 30 and e.get("eta") is not None:
            left = (end - e["timestamp"]) / 1000
            # within 25 % up to the last batches; there (the last ~15 s, batches slowing down on a busy
            # machine) within 25 % or 4 s
            slack = 2.0 if e["progress"] < 90 else 4.0
            assert abs(e["eta"] - left) <= max(0.25 * left, slack), (e["progress"], e["message"], e["eta"], left)
            checked += 1
    assert checked >= 10
    report(test="websocket 100k", rows=100_000, requests=None, wall_s=round(wall, 2),
           server_ms=summary.get("durationMs"), eta_points=checked)


# --------------------------------------------------------------------------- cookie, history, dialect
def test_a_saved_cookie_is_used_while_valid_then_the_password_takes_over(files, tmp_path):
    """Case 2 and case 4: `login --save-cookie`, then an import and `imports` on the cookie alone (no login);
    the server forgets the session; the password takes over."""
    e = env(tmp_path)
    r = run_cli(["--dialect", "hextrackr-1.1", "--username", USER, "login", "--save-cookie"], e, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    cookie_only = {k: v for k, v in e.items() if k not in ("HEXTRACKR_USERNAME", "HEXTRACKR_PASSWORD")}
    before = remaining()
    r = run_cli(["-v", "import", str(files["real_1k.csv"])], cookie_only, timeout=300)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "session cookie from profile 'default'" in err
    assert before - remaining() - 1 <= 3  # status, CSRF, upload: no login, no logout
    hist = run_cli(["imports"], cookie_only, timeout=60)
    assert hist.returncode == 0, hist.stderr.decode()
    assert "showing its last import only" in hist.stderr.decode()
    row = hist.stdout.decode().splitlines()[1]
    assert row.split()[:2] == ["last", "import"] and "real_1k.csv" in row and "1,000" in row
    config = (tmp_path / "cfg" / "hextrackr" / "config.toml").read_text()
    cookie = re.search(r'cookie = "([^"]+)"', config).group(1)
    d = Direct()
    d.s.headers["Cookie"] = f"hextrackr.sid={cookie}"
    d.logout()  # the server forgets the saved session
    r = run_cli(["-v", "import", str(files["real_1k.csv"])], e, timeout=300)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "has expired" in err and f"logged in as {USER}" in err


def test_forced_seed_dialect_is_refused_before_any_request(files, tmp_path):
    """Case 5: /health alone says it is a 1.1.x server: exit 2 naming hextrackr-1.1, nothing sent."""
    before = remaining()
    r = run_cli(["--dialect", "seed", "import", str(files["real_1k.csv"])], env(tmp_path), timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "hextrackr-1.1" in err and "nothing was sent" in err
    assert before - remaining() - 1 == 0


def test_watch_of_a_session_the_server_does_not_know_is_exit_7_not_failed(tmp_path):
    r = run_cli(["watch", str(uuid.uuid4())], env(tmp_path), timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 7, err
    assert "not known to the server" in err and "import failed" not in err


# --------------------------------------------------------------------------- one at a time, Ctrl-C
def test_a_second_import_waits_for_the_first_so_1_1_12_loses_nothing(files, tmp_path):
    """Case 7: the second import from this machine waits (saying why) and both complete."""
    e = env(tmp_path)
    log = tmp_path / "first.ndjson"
    with open(log, "wb") as out:  # a file, not a pipe: nobody reads the first one's output while the second runs
        first = subprocess.Popen([sys.executable, "-m", "hextrackr_cli", "--output", "json", "import",
                                  str(files["real_10k.csv"])], env=e, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not any(json.loads(line).get("event") == "uploaded" for line in log.read_text().splitlines()
                      if line.startswith("{")) and time.monotonic() < deadline:
            assert first.poll() is None, log.read_text()
            time.sleep(0.1)
        r = run_cli(["import", "--timeout", "300", str(files["real_1k.csv"])], e, timeout=400)
        first.wait(timeout=400)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, log.read_text()
    assert r.returncode == 0, r.stderr.decode()
    assert "waiting for another hextrackr import into" in r.stderr.decode()


def test_ctrl_c_says_there_is_no_cancel_and_exits_130(files, tmp_path):
    proc = spawn_cli(["--output", "json", "import", str(files["real_10k.csv"])], env(tmp_path))
    _, out, err = interrupt_when(proc, lambda o: o.get("type") in ("loading", "processing"), timeout=120)
    assert proc.returncode == 130, err
    assert "no cancel" in err


# --------------------------------------------------------------------------- the rate limit, last
def test_a_429_at_the_start_is_exit_5_within_timeout_said_on_stderr_never_1(files, tmp_path):
    """Case 3: the loopback budget spent to 0: the CLI meets 429 at its first /api/ request, says so on
    stderr, and exits 5 at --timeout (Retry-After is minutes away), not 1; nothing was uploaded."""
    r = requests.get(URL + "/api/auth/status", timeout=10)
    while r.status_code != 429:
        r = requests.get(URL + "/api/auth/status", timeout=10)
    retry = int(r.headers["Retry-After"])
    last_before = Direct()
    last_before.login()
    last = last_before.get("/api/vulnerabilities/last-import").json()
    started = time.monotonic()
    res = run_cli(["import", "--timeout", "3", str(files["real_1k.csv"])], env(tmp_path), timeout=60)
    err = res.stderr.decode()
    assert res.returncode == 5, err
    assert "rate limit" in err and "import failed" not in err and time.monotonic() - started < 30
    assert last_before.get("/api/vulnerabilities/last-import").json() == last  # nothing was imported
    last_before.logout()
    if retry <= 40:  # the window ends soon: the CLI waits it out and imports
        res = run_cli(["import", "--timeout", "120", str(files["real_1k.csv"])], env(tmp_path), timeout=200)
        assert res.returncode == 0 and "Retry-After" in res.stderr.decode(), res.stderr.decode()
