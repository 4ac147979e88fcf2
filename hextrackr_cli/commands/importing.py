"""``hextrackr import``, ``watch`` and ``cancel``: start imports and follow them to their real outcome.

The connection (``core.connection``) gives the server in its dialect, ``core.importer`` runs one import or
follow (shared with ``sweep``), the ``Follower`` (``core.follower``) decides its outcome and a renderer shows
it; this module wires them per command and returns the exit status. A new per-import option is one field of
``core.importer.ImportOptions`` (named like its click parameter) and the lines that use it.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from hextrackr_cli import protocol
from hextrackr_cli.core.connection import connect
from hextrackr_cli.core.importer import (
    ImportOptions,
    follow_session,
    held,
    import_or_skip,
    json_error,
    notice_fn,
    renderer_for,
)
from hextrackr_cli.core.reporting import Reporter, ReportOptions
from hextrackr_cli.core.unchanged import ContentCheck
from hextrackr_cli.errors import ExitStatus, HextrackrError, UsageError, more_serious
from hextrackr_cli.ledger import Ledger
from hextrackr_cli.locking import LockRequest
from hextrackr_cli.render.unattended import logged_errors
from hextrackr_cli.settings import Settings

# After one of these, the next FILE would fail the same way (or the user asked to stop): no more files.
_STOP_AFTER = (ExitStatus.INTERRUPTED, ExitStatus.CONNECTION, ExitStatus.AUTH)


# --------------------------------------------------------------------------- import
def run_import(settings: Settings, files: Sequence[str], options: ImportOptions = ImportOptions(),
               lock: LockRequest | None = None) -> int:
    """Check every file, then upload and follow each in turn; the exit status is the worst outcome.

    With ``lock`` the whole run holds it (another run holding it: LockHeld, exit 75, nothing done)."""
    from hextrackr_cli.client.localfile import check_file

    reporter = Reporter("hextrackr import", settings, options.reports)
    renderer = reporter.renderer(renderer_for(settings))
    checked: list[Any] = []
    try:
        with logged_errors(renderer):
            options.check(settings, files)
            reporter.check(import_type=options.import_type, detach=options.detach)
            with held(settings, lock):
                for f in files:
                    try:
                        checked.append(check_file(f, import_type=options.import_type,
                                                  format_name=options.format_name))
                    except HextrackrError as exc:
                        json_error(renderer, exc, None, f)  # the NDJSON stream still ends with its summary
                        raise
                conn = connect(settings, notice_fn(renderer, settings), options.timeout)
                try:
                    if options.detach and conn.embedded is not None:
                        raise UsageError("--detach needs a running server: the embedded server stops with hextrackr")
                    reporter.check_server(conn)
                    options.check_server(conn)
                    check = ContentCheck(conn, Ledger(env=settings.environment.environ))
                    worst = 0
                    for lf in checked:
                        code = import_or_skip(conn, settings, renderer, lf, options, check, reporter)
                        worst = more_serious(worst, int(code))
                        if code in _STOP_AFTER:
                            break
                    return worst
                finally:
                    conn.close()
    finally:
        renderer.close()
        reporter.finish()
        for lf in checked:
            lf.cleanup()


# --------------------------------------------------------------------------- watch / cancel
def _check_session_id(session_id: str) -> None:
    if not protocol.is_session_id(session_id):
        raise UsageError(f"malformed session id {session_id!r}: expected a UUID")


def run_watch(settings: Settings, session_id: str, timeout: float | None = None, transport: str = "auto",
              reports: ReportOptions = ReportOptions()) -> int:
    """Re-attach to a session; the exit status is its outcome, even if it ended before we attached."""
    _check_session_id(session_id)
    started = time.monotonic()
    reporter = Reporter("hextrackr watch", settings, reports)
    renderer = reporter.renderer(renderer_for(settings))
    try:
        with logged_errors(renderer):
            reporter.check()
            conn = connect(settings, notice_fn(renderer, settings), timeout)
            try:
                reporter.check_server(conn, sends_file=False)  # 1.1.x: only a file sent can be counted
                outcome = follow_session(conn, settings, renderer, session_id, "Watching import", timeout=timeout,
                                         transport=transport, started=started, reporter=reporter)
                return int(outcome.exit_code)
            finally:
                conn.close()
    finally:
        renderer.close()
        reporter.finish()


def run_cancel(settings: Settings, session_id: str, timeout: float = 10.0) -> int:
    """Send the cancel and wait for the server's confirmation (exit 0 when confirmed)."""
    from hextrackr_cli.core.client import Client
    from hextrackr_cli.core.operations import check_can_cancel

    _check_session_id(session_id)
    renderer = renderer_for(settings)
    client = Client.from_settings(settings, notice_fn(renderer))
    try:
        check_can_cancel(client.connection(timeout))
    except BaseException:
        client.close()
        raise
    try:
        return client.cancel(session_id, timeout=timeout, on_event=renderer.handle).exit_status
    except HextrackrError as exc:
        renderer.close()
        json_error(renderer, exc, session_id)
        raise
    finally:
        renderer.close()
        client.close()
