"""Checks of the fault suite that FAIL against the current code: each is a defect (see the issue 6 report).

Not collected by default (no ``test_`` prefix). Run them with
``.venv/bin/python -m pytest tests/pending_faults.py -q -p no:cacheprovider``; when one passes, move it into
the matching ``tests/test_*.py`` module (and drop the name from that module's PENDING sets).
"""

from __future__ import annotations

import pytest

from test_bad_input import (  # noqa: F401  (fixtures)
    PENDING_CLI, PENDING_HTTP, REFUSE, baseline_server, check_cli_refusal, check_http_refusal, corpus,
)

pytest_plugins = ["faults.plugin"]


@pytest.mark.parametrize("name", sorted(PENDING_CLI))
def test_pending_cli_refuses_bad_file(name, corpus, baseline_server, tmp_path):
    """Defect: these files are imported (exit 0) or refused without naming the problem."""
    check_cli_refusal(name, corpus, baseline_server, tmp_path)


@pytest.mark.parametrize("name", sorted(n for n in PENDING_HTTP if n in REFUSE))
def test_pending_server_refuses_bad_file(name, corpus, baseline_server):
    """Defect: posted without the CLI's local checks, the server imports these files or does not say why."""
    check_http_refusal(name, corpus, baseline_server)


# --------------------------------------------------------------------------- server faults
from test_faults_server import disk_full_import, tiny_disk  # noqa: E402,F401  (fixture)

from faults import support as S  # noqa: E402


def test_pending_disk_full_message_says_why(tiny_disk, server_factory, tmp_path):
    """Defect: a full disk is reported as 'internal error: OperationalError'; the user must be told the disk
    (or database) is full. Fix: hextrackr_cli/server/pipeline.py Importer.run (map sqlite3 'database or disk is
    full' / OSError ENOSPC to an ImportProblem-style message)."""
    srv, r, _before = disk_full_import(tiny_disk, server_factory, tmp_path)
    err = r.stderr.decode().lower().replace("big_2025-11-20.csv", "")
    assert r.returncode == 1
    assert "full" in err or "no space" in err, err


def test_pending_database_locked_too_long_is_a_clean_503_saying_locked(server_factory, tmp_path):
    """Defect: while another process holds the database lock longer than the busy timeout, POST import answers
    500 'internal error: OperationalError' (and logs a traceback). Expected (docs/wire.md): 503 with a message
    saying the database is locked/busy, and the CLI exits 1 saying so. Fix: hextrackr_cli/server/http.py
    HttpApp._start_import (catch sqlite3.OperationalError from Database.create_import)."""
    import sqlite3

    srv = server_factory(tokens=[S.TOKEN])
    csv_path = S.gen_csv(tmp_path / "locked_2025-11-20.csv", 50)
    holder = sqlite3.connect(str(srv.db_path), timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        r = S.post_file(srv.url, csv_path, timeout=120)
    finally:
        holder.rollback()
        holder.close()
    assert r.status_code == 503, r.text
    assert "lock" in r.json()["error"].lower() or "busy" in r.json()["error"].lower()


# --------------------------------------------------------------------------- network faults
from test_faults_network import mid_csv, proxy, server  # noqa: E402,F401  (fixtures)


def test_pending_upload_answered_500_for_a_while_is_retried(server, proxy, mid_csv, tmp_path):
    """Defect (issue 6: 'server answering 5xx for a while -> retries, then success'): a 500 on the upload is not
    retried (TRANSIENT_STATUS is 429/502/503/504), although the upload carries a reserved sessionId and the server
    answers a repeated upload idempotently. Fix: hextrackr_cli/client/api.py TRANSIENT_STATUS / SeedApi.request
    (retry 500 when the request is idempotent: GET, or POST with a sessionId)."""
    proxy.inject(500, count=1, body='{"error": "internal error: RuntimeError", "code": "internal"}',
                 path_prefix="/api/vulnerabilities/import")
    r = S.run_cli(["-q", "import", str(mid_csv)], S.cli_env(tmp_path, proxy.url))
    assert proxy.injected == 1
    assert r.returncode == 0, r.stderr.decode()
    assert S.count(server.db_path) == 5_000
