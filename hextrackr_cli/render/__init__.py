"""Renderers: the same typed events shown three ways (rich live view, plain lines, NDJSON).

Renderers never talk to the server. Human output goes to stderr, machine output (NDJSON, ids) to stdout.
"""

from __future__ import annotations

import sys
from typing import IO, Any, Protocol

from hextrackr_cli import events as ev


class Renderer(Protocol):
    def handle(self, event: ev.Event) -> None: ...

    def close(self) -> None: ...


def duration_text(ms: Any) -> str:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return ""
    s = ms / 1000.0
    if s < 1:
        return f"{int(ms)}ms"
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m {sec}s"
    h, m = divmod(m, 60)
    return f"{h}h {m}m {sec}s"


def _n(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def summary_line(outcome: ev.Outcome, filename: str | None = None, elapsed: float | None = None) -> str:
    """The one-line summary printed at the end of each import or watch."""
    what = f"{filename}: " if filename else ""
    ids = f"session {outcome.session_id}" if outcome.session_id else ""
    if outcome.import_id is not None:
        ids += f", import {outcome.import_id}"
    s = outcome.summary
    if outcome.outcome == "completed":
        parts = []
        if "rows" in s:
            parts.append(f"{_n(s['rows'])} rows")
        if s.get("cleanScan"):
            parts.append("clean scan: no findings, nothing changed")
        if isinstance(s.get("findings"), int) and not s.get("cleanScan"):
            from hextrackr_cli.formats.records import findings_line

            text = findings_line(s["findings"], s.get("severities"))
            if s.get("skipped"):
                text += f", {_n(s['skipped'])} below --min-severity skipped"
            parts.append(text)
        if s.get("emptyRows"):
            parts.append(f"{_n(s['emptyRows'])} empty rows skipped")
        counts = [f"{k} {_n(s[k])}" for k in ("inserted", "updated", "resolved") if k in s]
        if counts:
            parts.append(", ".join(counts))
        if s.get("format"):
            parts.append(f"format {s['format']}")
        dur = duration_text(s.get("durationMs")) or (f"{elapsed:.1f}s" if elapsed is not None else "")
        if dur:
            parts.append(f"in {dur}")
        body = "; ".join(parts) if parts else "done"
        return f"completed {what}{body} ({ids})"
    if outcome.outcome == "failed":
        return f"failed {what}{outcome.message or 'the import failed on the server'} ({ids})"
    if outcome.outcome == "cancelled":
        return f"cancelled {what}{outcome.message} ({ids})"
    if outcome.outcome == "timeout":
        return f"timeout {what}{outcome.message}"
    if outcome.outcome == "detached":
        return f"detached {what}{outcome.message}"
    if outcome.outcome == "skipped":
        return f"skipped {what}{outcome.message}"
    if outcome.outcome in ("refused", "error"):  # sweep: a bad file, a broken import; the message names the file
        named = bool(outcome.filename) and str(outcome.filename) in outcome.message
        return f"{outcome.outcome} {'' if named else what}{outcome.message}"
    if outcome.outcome == "interrupted":
        return f"interrupted {what}{outcome.message}"
    return f"{outcome.outcome} {what}{outcome.message} ({ids})"


def outcome_counts(outcome: ev.Outcome) -> Any:
    """The per-severity counts (gate.Counts) of an outcome: the command's, else the server's deltas of a
    completed import, else None."""
    if outcome.counts is not None or outcome.outcome != "completed":
        return outcome.counts
    from hextrackr_cli.gate import Counts

    return Counts.from_deltas(outcome.summary.get("deltas"))


def closing_lines(outcome: ev.Outcome, quiet: bool = False) -> list[tuple[str, str]]:
    """What follows the summary line: the one-line severity table (every severity, whatever the gate) and the
    gate's verdict when a gate was set, each with its style (a tripped gate in red, with the rule it broke).
    ``quiet`` (-q): only a verdict that failed or warned."""
    from hextrackr_cli import gate

    lines = []
    table = gate.severity_line(outcome_counts(outcome))
    if table and not quiet:
        lines.append((table, ""))
    verdict = outcome.gate
    if quiet and (verdict is None or verdict.verdict not in (gate.FAILED, gate.WARNED)):
        return lines
    if verdict is not None and verdict.verdict != gate.OFF:
        style = {gate.FAILED: "bold red", gate.WARNED: "yellow"}.get(verdict.verdict, "green")
        lines.append((verdict.text() + (f" (exit {int(outcome.exit_code)})" if verdict.failed else ""), style))
    return lines


def make_renderer(
    output: str,
    *,
    color: bool,
    quiet: bool,
    log_interval: float = 10.0,
    verbose: int = 0,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> Renderer:
    """The renderer for the resolved output mode (rich | plain | json)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if output == "json":
        from hextrackr_cli.render.jsonl import JsonRenderer

        return JsonRenderer(out, err, quiet=quiet)
    if output == "rich" and not quiet:
        from hextrackr_cli.render.live import RichRenderer

        return RichRenderer(err, color=color, verbose=verbose)
    from hextrackr_cli.render.plain import PlainRenderer

    return PlainRenderer(err, quiet=quiet, log_interval=log_interval, verbose=verbose)
