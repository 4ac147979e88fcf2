"""`hextrackr import` as a user runs it: a real CLI subprocess against the real embedded server."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

from support.cli import ANSI_RE, run_cli, spawn_cli
from support.cli_suite import cli_env, imports_total, status, vuln_rows, wait_outcome
from support.data import gen_csv
from support.fixtures import TOKEN, big_csv, medium_csv, server, small_csv  # noqa: F401  (fixtures)
from support.server import free_port
from support.db import hold_write_lock, wait_import_recorded

BAD = Path(__file__).parent.parent / "data" / "bad"


def test_full_import_exits_0_and_prints_the_summary(server, big_csv, tmp_path):
    """A 60k-row import completes with exit 0 and a one-line summary with rows, counts, session and import id."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "plain", "import", str(big_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    last, table = err.strip().splitlines()[-2:]  # the summary, then the one-line severity table
    assert last.startswith("completed generic_scan_2025-11-20.csv: 60,000 rows"), last
    assert table.startswith("severity (new/open)  Critical "), table
    assert "inserted 60,000" in last and "updated 0" in last and "resolved 0" in last
    sid = re.search(r"session ([0-9a-f-]{36})", last).group(1)
    assert re.search(r"import \d+", last)
    assert status(server.url, sid)["outcome"] == "completed"
    assert vuln_rows(Path(server.db_path)) == 60_000


def _run_held(server, args: list[str], env: dict, hold: float = 1.5) -> subprocess.CompletedProcess:
    """Run the CLI while the server's write lock is held for ``hold`` s once the upload is recorded: the import
    stays mid-way (loading done, merge waiting) and reports it, however fast imports are."""
    proc = spawn_cli(args, env)
    try:
        wait_import_recorded(server.db_path, proc)
        with hold_write_lock(server.db_path):
            time.sleep(hold)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_plain_output_has_no_carriage_returns_or_escape_codes(server, medium_csv, tmp_path):
    """Plain mode (not a TTY) writes whole lines only: stage lines with percent and ETA, no \\r, no ANSI."""
    env = cli_env(tmp_path, server.url, TERM="xterm-256color", FORCE_COLOR="1")
    r = _run_held(server, ["import", "--log-interval", "0", str(medium_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "\r" not in err
    assert not re.search(ANSI_RE, err)
    stages = [line.split()[1] for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d (parsing|loading|processing|finalizing|complete) ", line)]
    assert len(stages) >= 3 and stages[-1] == "complete"
    assert re.search(r"\d\d:\d\d:\d\d (loading|processing|finalizing) +\d+% .*ETA \d+", err)
    assert "transport: websocket" in err
    assert r.stdout == b""  # human output goes to stderr only


def test_plain_output_is_one_line_per_stage_with_default_log_interval(server, medium_csv, tmp_path):
    """With the default --log-interval (10 s) a short import logs each stage once, not every event."""
    env = cli_env(tmp_path, server.url)
    r = _run_held(server, ["import", str(medium_csv)], env)  # ~3 loading events a second while held
    assert r.returncode == 0
    lines = [l for l in r.stderr.decode().splitlines() if re.match(r"\d\d:\d\d:\d\d loading ", l)]
    assert len(lines) == 1


def test_json_output_is_ndjson_with_events_and_a_final_summary(server, medium_csv, tmp_path):
    """--output json: every stdout line parses; progress events follow the seed schema; the last is the summary."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", str(medium_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(line) for line in r.stdout.decode().splitlines()]
    progress = [o for o in objs if "type" in o and "event" not in o]
    assert progress, objs
    for p in progress:
        assert {"sessionId", "type", "progress", "message", "timestamp", "eta"} <= set(p)
        assert isinstance(p["progress"], int) and 0 <= p["progress"] <= 100
    assert progress[-1]["type"] == "complete"
    assert [o for o in objs if o.get("event") == "transport"][0]["transport"] == "websocket"
    summary = objs[-1]
    assert summary["event"] == "summary"
    assert summary["outcome"] == "completed" and summary["exitCode"] == 0 and summary["rows"] == 30_000
    assert summary["importId"] is not None and summary["sessionId"] == progress[-1]["sessionId"]


def ragged_csv(tmp_path: Path) -> Path:
    """Valid header and first rows (passes the local checks), a short row deep inside: the server refuses it."""
    path = gen_csv(tmp_path / "ragged.csv", 20)
    with open(path, "a", encoding="utf-8") as f:
        f.write("host9.example.com,10.0.0.9,CVE-2024-99999\n")
    return path


def test_server_error_exits_1_with_the_servers_message(server, tmp_path):
    """A file the server refuses while importing (a ragged row 22) ends with exit 1 and the server's message."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "plain", "import", str(ragged_csv(tmp_path))], env)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("failed ragged.csv:") and "line 22" in last.lower(), last
    assert status(server.url, re.search(r"session ([0-9a-f-]{36})", last).group(1))["outcome"] == "failed"
    assert vuln_rows(Path(server.db_path)) == 0
    assert "Traceback" not in err


def test_bad_local_file_exits_2_and_sends_nothing(server, tmp_path):
    """Missing, empty, binary, non-UTF-8, unknown columns: exit 2, one line, server saw nothing."""
    env = cli_env(tmp_path, server.url)
    cases = {
        str(tmp_path / "missing.csv"): "no such file",
        str(BAD / "empty.csv"): "empty",
        str(BAD / "nul_bytes.csv"): "nul",
        str(BAD / "gzip_truncated.csv"): "gzip",
        str(BAD / "latin1.csv"): "utf-8",
        str(BAD / "random_bytes.csv"): "binary",
        str(BAD / "unknown_columns.csv"): "columns",
    }
    for path, word in cases.items():
        r = run_cli(["import", path], env)
        err = r.stderr.decode()
        assert r.returncode == 2, (path, err)
        assert word in err.lower(), (path, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert imports_total(server.url) == 0


def test_one_bad_file_among_several_means_nothing_is_sent(server, small_csv, tmp_path):
    """All files are checked before the first upload: a bad second file stops the good first one too."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["import", str(small_csv), str(BAD / "empty.csv")], env)
    assert r.returncode == 2
    assert imports_total(server.url) == 0


def test_server_down_exits_3_quickly(small_csv, tmp_path):
    """Nothing listening on the port: exit 3 within seconds, with a message naming the server."""
    url = f"http://127.0.0.1:{free_port()}"
    env = cli_env(tmp_path, url)
    t0 = time.monotonic()
    r = run_cli(["import", str(small_csv)], env, timeout=30)
    took = time.monotonic() - t0
    err = r.stderr.decode()
    assert r.returncode == 3, err
    assert url in err and "Traceback" not in err
    assert took < 10


def test_bad_token_exits_4_naming_the_token_source(server, small_csv, tmp_path):
    """A wrong HEXTRACKR_TOKEN: exit 4 and the message says to check HEXTRACKR_TOKEN; the token is not printed."""
    env = cli_env(tmp_path, server.url, token="wrong-token-value")
    r = run_cli(["import", str(small_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 4, err
    assert "HEXTRACKR_TOKEN" in err
    assert "wrong-token-value" not in err and TOKEN not in err
    assert imports_total(server.url) == 0


def test_timeout_exits_5_and_the_import_still_completes(server, big_csv, tmp_path):
    """--timeout stops watching (exit 5, says how to re-attach) while the server finishes the import."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", "--timeout", "0.5", str(big_csv)], env)
    assert r.returncode == 5, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["outcome"] == "timeout" and summary["exitCode"] == 5
    sid = summary["sessionId"]
    assert f"hextrackr watch {sid}" in r.stderr.decode()
    assert wait_outcome(server.url, sid)["outcome"] == "completed"


def test_detach_prints_the_session_id_and_the_import_completes(server, medium_csv, tmp_path):
    """--detach: exit 0 at once with the session id on stdout; the import finishes on the server."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["import", "--detach", str(medium_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    sid = r.stdout.decode().strip()
    uuid.UUID(sid)
    assert f"hextrackr watch {sid}" in r.stderr.decode()
    assert wait_outcome(server.url, sid)["outcome"] == "completed"


def test_several_files_run_in_sequence_and_the_exit_status_is_the_worst(server, small_csv, tmp_path):
    """A good file then a file the server rejects: both are imported in order, exit 1."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", str(small_csv), str(ragged_csv(tmp_path))], env)
    assert r.returncode == 1
    summaries = [json.loads(l) for l in r.stdout.decode().splitlines() if '"summary"' in l]
    assert [(s["file"], s["outcome"]) for s in summaries] == [("small.csv", "completed"), ("ragged.csv", "failed")]


def test_stdin_dash_is_imported(server, small_csv, tmp_path):
    """`import -` reads the CSV from stdin."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", "-"], env, input=small_csv.read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["outcome"] == "completed" and summary["rows"] == 50 and summary["file"] == "stdin.csv"


def test_given_session_id_is_used(server, small_csv, tmp_path):
    """--session-id UUID: the import runs under that id; a malformed one is a usage error (exit 2)."""
    env = cli_env(tmp_path, server.url)
    sid = str(uuid.uuid4())
    r = run_cli(["import", "--session-id", sid, str(small_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert status(server.url, sid)["outcome"] == "completed"
    r = run_cli(["import", "--session-id", "not-a-uuid", str(small_csv)], env)
    assert r.returncode == 2 and "session" in r.stderr.decode().lower()


def test_no_server_configured_in_a_pipeline_is_exit_2(small_csv, tmp_path):
    """Without a TTY and without HEXTRACKR_SERVER the CLI refuses (exit 2) instead of using a throwaway database."""
    env = cli_env(tmp_path, None)
    r = run_cli(["import", str(small_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "HEXTRACKR_SERVER" in err and "--server local" in err


def test_server_local_runs_the_whole_import_in_process(small_csv, tmp_path):
    """--server local starts the embedded server in-process and imports into the user data dir database."""
    env = cli_env(tmp_path, None, token=None)
    r = run_cli(["--server", "local", "--output", "json", "import", str(small_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout.decode().splitlines()[-1])["rows"] == 50
    assert (tmp_path / "data" / "hextrackr" / "hextrackr.db").exists()


def test_quiet_prints_only_the_summary(server, small_csv, tmp_path):
    """-q: one summary line on stderr, nothing else."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["-q", "import", str(small_csv)], env)
    assert r.returncode == 0
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("completed small.csv: 50 rows")


def test_reusing_a_session_id_is_idempotent_and_a_different_file_is_refused(server, small_csv, tmp_path):
    """Same --session-id and same file again: the existing import's outcome (exit 0, nothing twice);
    same id with another file: the server's 409 refusal, exit 1."""
    env = cli_env(tmp_path, server.url)
    sid = str(uuid.uuid4())
    assert run_cli(["import", "--session-id", sid, str(small_csv)], env).returncode == 0
    r = run_cli(["--output", "json", "import", "--session-id", sid, str(small_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout.decode().splitlines()[-1])["outcome"] == "completed"
    assert imports_total(server.url) == 1
    other = gen_csv(tmp_path / "other.csv", 10, offset=500)
    r = run_cli(["--output", "json", "import", "--session-id", sid, str(other)], env)
    assert r.returncode == 1, r.stderr.decode()
    assert "409" in r.stderr.decode()
    assert json.loads(r.stdout.decode().splitlines()[-1])["outcome"] == "error"
    assert imports_total(server.url) == 1


def test_timeout_during_the_upload_stops_it_and_imports_nothing(server, tmp_path):
    """--timeout shorter than the upload itself: exit 5, the upload is stopped, the server has no import."""
    big = gen_csv(tmp_path / "upload_heavy.csv", 200_000)
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", "--timeout", "0.05", str(big)], env)
    assert r.returncode == 5, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["outcome"] == "timeout" and "during the upload" in summary["message"]
    assert imports_total(server.url) == 0
    assert vuln_rows(Path(server.db_path)) == 0


def test_open_without_a_graphical_browser_names_the_progress_page(server, small_csv, tmp_path):
    """--open on a machine without a display: one line with the page URL, and the import still completes."""
    env = cli_env(tmp_path, server.url)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    r = run_cli(["--output", "plain", "import", "--open", str(small_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    sid = re.search(r"session ([0-9a-f-]{36})", err).group(1)
    assert f"{server.url}/imports/{sid}" in err


def test_json_output_ends_with_a_summary_even_for_a_bad_file(server, tmp_path):
    """--output json and a refused local file: stdout still ends with a summary object (exitCode 2)."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", str(BAD / "empty.csv")], env)
    assert r.returncode == 2
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["event"] == "summary" and summary["exitCode"] == 2 and "empty" in summary["message"]


def test_json_summary_and_verbose_output_give_the_browser_view_of_the_session(server, small_csv, tmp_path):
    """Against `hextrackr serve`, the NDJSON summary carries the session's browser page (which the server
    serves) and -v names it in one line; without -v the human output does not."""
    import requests

    env = cli_env(tmp_path, server.url)
    r = run_cli(["-v", "--output", "json", "import", str(small_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["browserUrl"] == f"{server.url}/imports/{summary['sessionId']}"
    page = requests.get(summary["browserUrl"], timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")

    r = run_cli(["-v", "--output", "plain", "import", str(small_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    sid = re.search(r"session ([0-9a-f-]{36})", err).group(1)
    (line,) = [line for line in err.splitlines() if "browser view:" in line]
    assert f"{server.url}/imports/{sid}" in line and TOKEN not in err

    r = run_cli(["--output", "plain", "import", str(small_csv)], env)
    assert r.returncode == 0 and "browser view" not in r.stderr.decode()


def test_open_when_the_browser_cannot_start_says_so_and_names_the_page(server, small_csv, tmp_path):
    """--open with a display whose browser command fails: a warning naming the page instead of 'opening …',
    no stray launcher output, and the import completes."""
    env = cli_env(tmp_path, server.url, DISPLAY=":0", BROWSER="false")
    r = run_cli(["--output", "plain", "import", "--open", str(small_csv)], env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    sid = re.search(r"session ([0-9a-f-]{36})", err).group(1)
    assert f"could not start a browser (false exited with status 1); open {server.url}/imports/{sid}" in err
    assert "opened the progress page" not in err

    ok = run_cli(["--output", "plain", "import", "--open", str(small_csv)], cli_env(tmp_path, server.url,
                                                                                  DISPLAY=":0", BROWSER="true"))
    assert ok.returncode == 0 and "opened the progress page" in ok.stderr.decode()
