"""Checks of the fault suite that FAIL against the current code: each is a defect (see the issue 6 report).

Not collected by default (no ``test_`` prefix). Run them with
``.venv/bin/python -m pytest tests/pending_faults.py -q -p no:cacheprovider``; when one passes, move it into
the matching ``tests/test_*.py`` module (and drop the name from that module's PENDING sets).
"""

from __future__ import annotations

pytest_plugins = ["faults.plugin"]


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


# --------------------------------------------------------------------------- fuzz findings
def test_pending_socketio_handlers_ack_extra_arguments_with_a_refusal(server_factory):
    """Defect (fuzz): joinSession/cancelImport emitted with more than one argument (e.g. ``emit('joinSession',
    ('a', 'b'))``) raise TypeError inside python-socketio: no acknowledgement at all (the client waits until
    its timeout) and a 'Task exception was never retrieved' traceback on the server's stderr. Expected: a
    well-formed refusal ack. Fix: hextrackr_cli/server/sockets.py ImportNamespace.on_joinSession /
    on_cancelImport (accept ``*extra`` and refuse)."""
    from helpers import close_client, socket_client

    srv = server_factory(tokens=[S.TOKEN])
    sio = socket_client(srv.url, S.TOKEN)
    try:
        for event in ("joinSession", "cancelImport"):
            for args in (("a", "b"), (S.new_sid(), 1, 2)):
                ack = sio.call(event, args, timeout=5)
                assert isinstance(ack, dict) and ack.get("ok") is False and ack.get("error"), (event, args, ack)
    finally:
        close_client(sio)


def test_pending_format_error_messages_are_one_line():
    """Defect (fuzz, minor): formats.detect_format echoes header cells verbatim, so a quoted header cell with a
    newline gives a two-line FormatError ('unknown columns (0\\n0); ...'), which reaches users of the HTTP API
    and the one-line error contract. Fix: hextrackr_cli/formats.py detect_format (show cells with repr() or
    with control characters replaced, and cut each to ~40 chars)."""
    from hextrackr_cli import formats

    for header in (["0\n0"], ["a\r\nb", "c"], ["x" * 10, "\x1b[31mred"]):
        try:
            formats.detect_format(header)
        except formats.FormatError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc) and "\x1b" not in str(exc), str(exc)



def test_pending_hung_server_is_given_up_within_the_timeout(server, tmp_path):
    """Defect: a server that accepts connections but never answers (a hung process or proxy) keeps
    `hextrackr import --timeout 2` busy for ~165 s before exit 3: every request waits the 30 s read timeout and
    is retried 4 times (health check included), and --timeout only applies to the watch. A pipeline must get
    its answer within about --timeout (exit 5, or 3 'did not answer'). Fix: hextrackr_cli/commands/importing.py
    (an overall deadline from --timeout for the health check/upload) and hextrackr_cli/client/api.py
    SeedApi.health (no retries on a read timeout)."""
    import time

    from faults.proxy import TcpProxy

    big = S.gen_csv(tmp_path / "hung_2025-11-20.csv", 100)
    port = int(server.url.rsplit(":", 1)[1])
    with TcpProxy(port) as proxy:
        proxy.mode = "blackhole"
        started = time.monotonic()
        r = S.run_cli(["-q", "import", "--timeout", "2", str(big)], S.cli_env(tmp_path, proxy.url), timeout=300)
        took = time.monotonic() - started
    assert r.returncode in (3, 5), r.stderr.decode()
    assert took < 20, f"took {took:.0f}s with --timeout 2"
