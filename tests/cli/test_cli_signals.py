"""Ctrl-C as a user presses it: real SIGINTs to a real CLI process following a real import."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.cli import interrupt_when, run_cli, spawn_cli
from support.cli_suite import cli_env, status, vuln_rows, wait_outcome
from support.fixtures import big_csv, server, small_csv  # noqa: F401  (fixtures)


def _accepted(obj: dict) -> bool:
    # the server has the upload and runs the import (a 60k-row import can pass its loading stage between two
    # throttled events, so waiting for a 'loading' event is a race on a fast machine)
    return obj.get("event") == "uploaded"


def test_first_ctrl_c_cancels_exit_130_and_leaves_the_database_unchanged(server, big_csv, small_csv, tmp_path):
    """SIGINT once mid-import: cancelImport is sent, the server confirms, exit 130, no row of the import is kept."""
    env = cli_env(tmp_path, server.url)
    assert run_cli(["import", str(small_csv)], env).returncode == 0
    before = vuln_rows(Path(server.db_path))
    assert before == 50

    proc = spawn_cli(["--output", "json", "import", str(big_csv)], env)
    sid, out, text = interrupt_when(proc, _accepted)
    assert proc.returncode == 130, text
    assert "server confirmed" in text and "Traceback" not in text
    lines = [json.loads(l) for l in out.splitlines()]
    assert {"event": "cancelling", "sessionId": sid} in lines
    assert lines[-1]["event"] == "summary" and lines[-1]["outcome"] == "cancelled" and lines[-1]["confirmed"] is True
    assert status(server.url, sid)["outcome"] == "cancelled"
    assert vuln_rows(Path(server.db_path)) == before


def test_double_ctrl_c_detaches_and_the_import_completes(server, big_csv, tmp_path):
    """Two quick SIGINTs: detach at once (exit 130, prints the session id and the watch command); no cancel."""
    env = cli_env(tmp_path, server.url)
    proc = spawn_cli(["--output", "json", "import", str(big_csv)], env)
    sid, out, text = interrupt_when(proc, _accepted, presses=2)
    assert proc.returncode == 130, text
    assert f"hextrackr watch {sid}" in text and "Traceback" not in text
    summary = json.loads(out.splitlines()[-1])
    assert summary["outcome"] == "detached" and summary["exitCode"] == 130
    assert wait_outcome(server.url, sid)["outcome"] == "completed"
    assert vuln_rows(Path(server.db_path)) == 60_000


def test_ctrl_c_while_reading_stdin_exits_130_without_traceback(server, tmp_path):
    """`import -` waiting on stdin: Ctrl-C ends it with exit 130 and one line, nothing sent."""
    env = cli_env(tmp_path, server.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hextrackr_cli", "import", "-"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"hostname,ip_address,cve,severity\n")
        proc.stdin.flush()
        time.sleep(1.0)  # let it start reading (not a timing assertion)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err.decode()
    assert len(err.decode().strip().splitlines()) == 1
