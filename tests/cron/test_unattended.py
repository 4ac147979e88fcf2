"""Renderers for unattended runs: the skipped line in every mode, -qq's silence, the log file's masking."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from hextrackr_cli import events as ev
from hextrackr_cli.render.jsonl import JsonRenderer
from hextrackr_cli.render.live import RichRenderer
from hextrackr_cli.render.plain import PlainRenderer
from hextrackr_cli.render.unattended import LogFileRenderer, SilentRenderer, TeeRenderer

SKIPPED = ev.Outcome(ev.OUTCOME_SKIPPED, "sid-17", 0, import_id=17, filename="scan.csv",
                     message="unchanged since import 17 (2026-11-30 02:00)")
LINE = "skipped scan.csv: unchanged since import 17 (2026-11-30 02:00)"


def test_the_skipped_line_is_the_same_in_rich_plain_and_json() -> None:
    rich, plain, out, err = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
    RichRenderer(rich, color=False).handle(SKIPPED)
    PlainRenderer(plain).handle(SKIPPED)
    JsonRenderer(out, err).handle(SKIPPED)
    assert rich.getvalue().strip() == LINE and plain.getvalue().strip() == LINE and err.getvalue().strip() == LINE
    summary = json.loads(out.getvalue())
    assert (summary["event"], summary["outcome"], summary["importId"], summary["file"], summary["exitCode"]) == \
        ("summary", "skipped", 17, "scan.csv", 0)


def test_silent_lets_through_only_a_failure_with_its_warnings() -> None:
    err = io.StringIO()
    silent = SilentRenderer(PlainRenderer(err, quiet=True))
    silent.handle(ev.Started("Importing vulnerabilities", "s1", "a.csv", 10, "http://x"))
    silent.handle(ev.Notice("slow server", "warning"))
    silent.handle(ev.Outcome("completed", "s1", 0, summary={"rows": 2}))
    silent.handle(SKIPPED)
    assert err.getvalue() == ""
    silent.handle(ev.Started("Importing vulnerabilities", "s2", "b.csv", 10, "http://x"))
    silent.handle(ev.Notice("socket lost", "warning"))
    silent.handle(ev.Outcome("failed", "s2", 1, message="row 3: bad IPv4"))
    lines = err.getvalue().splitlines()
    assert lines[0].endswith("warning: socket lost") and lines[1].startswith("failed b.csv: row 3: bad IPv4")
    assert len(lines) == 2


def test_log_file_masks_secrets_and_url_credentials_and_stamps_every_line(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = LogFileRenderer(str(path), secrets=("tok-0123456789", None, "abc"))
    tee = TeeRenderer([PlainRenderer(io.StringIO()), log])
    tee.handle(ev.Notice("server https://admin:hunter2@hx.example.org uses tok-0123456789"))
    tee.handle(ev.Outcome("failed", "s", 1, message="refused tok-0123456789"))
    tee.error(RuntimeError("gone"))
    text = path.read_text()
    assert "hunter2" not in text and "tok-0123456789" not in text and "https://****@hx.example.org" in text
    lines = text.splitlines()
    assert len(lines) == 3 and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} ", x) for x in lines)
    assert lines[2].endswith("error: gone")
