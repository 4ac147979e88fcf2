"""The rich live view in a real pseudo-terminal, and the plain/NDJSON renderers fed with typed events."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import sys
import time

from support.cli import ANSI_RE
from support.cli_suite import cli_env
from support.fixtures import big_csv, server, small_csv  # noqa: F401  (fixtures)
from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.render.jsonl import JsonRenderer
from hextrackr_cli.render.plain import PlainRenderer


def _run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(sys.executable, [sys.executable, *argv], env)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(st), b"".join(chunks).decode("utf-8", "replace")


def test_rich_view_on_a_terminal_shows_bar_percent_stage_rows_eta_and_transport(server, big_csv, tmp_path):
    """On a TTY the default output is the live view: bar, percent, stage, rows, elapsed, ETA, transport."""
    env = cli_env(tmp_path, server.url, TERM="xterm-256color", COLUMNS="100", LINES="30")
    code, screen = _run_in_pty(["-m", "hextrackr_cli", "import", str(big_csv)], env)
    assert code == 0, screen
    plain = re.sub(ANSI_RE, "", screen)
    assert "━" in plain  # the bar
    assert re.search(r"\d+% (parsing|loading|processing|finalizing)", plain)
    assert re.search(r"rows [\d,]+/60,000", plain)
    assert re.search(r"ETA \d+s", plain)
    assert "via websocket" in plain
    assert "elapsed 0:0" in plain
    assert "\x1b[" in screen  # it really is the rich (ANSI) view
    assert "completed generic_scan_2025-11-20.csv: 60,000 rows" in plain


def test_no_color_keeps_the_live_view_but_drops_colours(server, small_csv, tmp_path):
    """NO_COLOR on a TTY: still a live view, but no colour escape sequences (SGR 30-37/90-97)."""
    env = cli_env(tmp_path, server.url, TERM="xterm-256color", NO_COLOR="1")
    code, screen = _run_in_pty(["-m", "hextrackr_cli", "import", str(small_csv)], env)
    assert code == 0, screen
    assert "━" in screen and not re.search(r"\x1b\[(3[0-7]|9[0-7]|38;)", screen)
    assert "50 rows" in screen


def _progress(type_: str, pct: int, message: str = "m", **kw) -> ev.Progress:
    return ev.Progress(protocol.progress_event("s1", type_, pct, message, eta=kw.pop("eta", 5), **kw))


def test_plain_renderer_logs_stage_changes_and_rate_limits_the_rest():
    """Plain lines: one per stage change; within a stage at most one per log interval (here: none extra)."""
    buf = io.StringIO()
    r = PlainRenderer(buf, log_interval=3600)
    r.handle(ev.Started("Importing vulnerabilities", "s1", "scan.csv", 10, "http://x"))
    for pct in (1, 20, 40, 60):
        r.handle(_progress("loading", pct, "Loading batch", processedRows=pct, totalRows=100))
    r.handle(_progress("processing", 85, "Merging"))
    r.handle(_progress("complete", 100, "done", eta=0))
    text = buf.getvalue()
    lines = text.splitlines()
    assert [l.split()[1] for l in lines[1:]] == ["loading", "processing", "complete"]
    assert "rows 1/100" in lines[1] and "ETA 5s" in lines[1]


def test_plain_renderer_strips_control_characters_from_server_text():
    """A message with \\r or ESC from the server cannot break a log line or inject escape codes."""
    buf = io.StringIO()
    r = PlainRenderer(buf, log_interval=0)
    r.handle(_progress("loading", 10, "evil\r\x1b[31mred\x1b[0m"))
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()


def test_json_renderer_emits_events_as_received_and_a_summary():
    """NDJSON: the ProgressEvent unchanged, transport events, and the summary with the exit code."""
    out, err = io.StringIO(), io.StringIO()
    r = JsonRenderer(out, err)
    p = _progress("loading", 42, "Loading batch 3", batchNumber=3)
    r.handle(ev.TransportChanged("polling", "socket.io could not connect"))
    r.handle(p)
    r.handle(ev.Outcome("failed", "s1", 1, import_id=7, message="row 3: bad"))
    objs = [json.loads(l) for l in out.getvalue().splitlines()]
    assert objs[0] == {"event": "transport", "transport": "polling", "reason": "socket.io could not connect"}
    assert objs[1] == dict(p.event)
    assert objs[2]["event"] == "summary" and objs[2]["exitCode"] == 1 and objs[2]["message"] == "row 3: bad"
    assert "failed" in err.getvalue()


def test_on_a_terminal_without_a_server_the_embedded_one_is_used_and_said_so(small_csv, tmp_path):
    """Interactive use with nothing configured: one line says the embedded server is used; the import completes."""
    env = cli_env(tmp_path, None, token=None, TERM="xterm-256color")
    code, screen = _run_in_pty(["-m", "hextrackr_cli", "import", str(small_csv)], env)
    plain = re.sub(ANSI_RE, "", screen)
    assert code == 0, plain
    assert "no server configured: using the embedded server" in plain
    assert "completed small.csv: 50 rows" in plain


def test_term_dumb_on_a_terminal_gets_plain_lines(server, small_csv, tmp_path):
    """TERM=dumb: even on a TTY the output is plain lines, without any escape sequence."""
    env = cli_env(tmp_path, server.url, TERM="dumb")
    code, screen = _run_in_pty(["-m", "hextrackr_cli", "import", str(small_csv)], env)
    assert code == 0, screen
    assert "\x1b" not in screen
    assert re.search(r"\d\d:\d\d:\d\d transport: websocket", screen)
    assert "completed small.csv: 50 rows" in screen
