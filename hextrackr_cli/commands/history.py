"""``hextrackr status`` (one HTTP look at a session) and ``hextrackr imports`` (history)."""

from __future__ import annotations

import json
from typing import Any, Mapping

from hextrackr_cli import protocol
from hextrackr_cli.errors import ExitStatus, UsageError
from hextrackr_cli.settings import Settings


def _print_json(settings: Settings, obj: Any) -> None:
    settings.environment.print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _clean(value: Any) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in str(value))


def run_status(settings: Settings, session_id: str, as_json: bool = False) -> int:
    """One GET of the progress endpoint. Exit 0 whatever the import's state (use ``watch`` for that)."""
    from hextrackr_cli.core.client import Client

    if not protocol.is_session_id(session_id):
        raise UsageError(f"malformed session id {session_id!r}: expected a UUID")
    with Client.from_settings(settings, settings.environment.say) as client:
        body = client.status(session_id)
    if as_json or settings.output == "json":
        _print_json(settings, body)
        return ExitStatus.OK
    settings.environment.print(format_status(body))
    return ExitStatus.OK


def format_status(body: Mapping[str, Any]) -> str:
    outcome = protocol.state_outcome(body)
    lines = [f"session   {body.get('sessionId', '')}"]
    if body.get("importId") is not None:
        lines.append(f"import    {body.get('importId')}")
    lines.append(f"outcome   {outcome}")
    stage = body.get("type") or ""
    lines.append(f"progress  {protocol.clamp_progress(body.get('progress'))}% {stage}".rstrip())
    if body.get("message"):
        lines.append(f"message   {_clean(body['message'])}")
    total, done = body.get("totalRows"), body.get("processedRows")
    if isinstance(total, int) and total:
        lines.append(f"rows      {done or 0:,}/{total:,}")
    if outcome == protocol.OUTCOME_RUNNING and isinstance(body.get("eta"), int):
        lines.append(f"eta       {protocol.format_eta(body['eta'])}")
    summary = body.get("summary")
    if isinstance(summary, Mapping):
        counts = ", ".join(f"{k} {summary[k]:,}" for k in ("rows", "inserted", "updated", "resolved")
                           if isinstance(summary.get(k), int))
        if counts:
            lines.append(f"summary   {counts}")
        table = _severity(summary.get("deltas"))
        if table:
            lines.append(table)  # "severity (new/open)  Critical 0/1  High 2/5 …"
    if body.get("error"):
        err = body["error"]
        if isinstance(err, Mapping):
            err = err.get("message") or err.get("error")
        lines.append(f"error     {_clean(err)}")
    return "\n".join(lines)


def run_imports(settings: Settings, as_json: bool = False, limit: int = 20) -> int:
    """The server's import history, newest first, as a table (or JSON)."""
    from hextrackr_cli.core.client import Client

    with Client.from_settings(settings, settings.environment.say) as client:
        body = client.imports(limit=limit)
    if as_json or settings.output == "json":
        _print_json(settings, body)
        return ExitStatus.OK
    records = body.get("imports") or []
    if body.get("lastImportOnly"):  # HexTrackr 1.1.12: /api/imports always fails; last-import is all it tells
        settings.environment.say(f"the server has no import history ({_clean(body.get('historyError') or 'unavailable')}); "
             "showing its last import only (1.1.x records no outcome there)")
    if not records:
        settings.environment.say("no imports yet")
        return ExitStatus.OK
    settings.environment.print(format_table(records))
    total = body.get("total")
    if isinstance(total, int) and total > len(records):
        settings.environment.say(f"showing {len(records)} of {total}; use --limit to see more")
    return ExitStatus.OK


def format_table(records: list[Mapping[str, Any]]) -> str:
    from hextrackr_cli.render import duration_text

    cols = ("ID", "STATUS", "STARTED", "TYPE", "FILE", "VENDOR", "ROWS", "INS", "UPD", "RES", "NEW C/H/M/L/I", "TIME",
            "SESSION")
    rows = []
    for r in records:
        started = str(r.get("startedAt") or "")[:19].replace("T", " ")
        rows.append(
            (
                "" if r.get("id") is None else str(r.get("id")),
                "last import" if r.get("lastImportOnly") else str(r.get("status", "")),
                started,
                str(r.get("type", "")),
                _clean(r.get("filename") or "")[:40],
                _clean(r.get("vendor") or ""),
                _num(r.get("rows")),
                _num(r.get("inserted")),
                _num(r.get("updated")),
                _num(r.get("resolved")),
                _new_by_severity(r.get("deltas")),
                duration_text(r.get("durationMs")),
                str(r.get("sessionId") or ""),
            )
        )
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    numeric = {0, 6, 7, 8, 9, 10, 11}

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(widths[i]) if i in numeric else v.ljust(widths[i]) for i, v in enumerate(row)).rstrip()

    return "\n".join([fmt(cols)] + [fmt(r) for r in rows])


def _severity(deltas: Any) -> str:
    """``severity (new/open)  Critical 0/1  High 2/5 …`` of an import's deltas ("" without them)."""
    from hextrackr_cli.gate import Counts, severity_line

    return severity_line(Counts.from_deltas(deltas))


def _new_by_severity(deltas: Any) -> str:
    """New and reopened findings per severity, most severe first: ``0/2/0/1/0``."""
    from hextrackr_cli.gate import SCOPE_NEW, Counts

    counts = Counts.from_deltas(deltas)
    row = counts.scope(SCOPE_NEW) if counts is not None else None
    return "/".join(str(n) for n in row.values()) if row is not None else ""


def _num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else ""
