"""One import and one follow, as ``hextrackr import``, ``watch`` and ``sweep`` run them: the per-import
options (``ImportOptions``), the lock, the --if-changed skip, the upload and its Follower, --detach, and the
output every one of these commands shares (the renderer, notices, the NDJSON error summary).

A new per-import option is one field of ``ImportOptions`` (named like its click parameter) and the lines
that use it.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from hextrackr_cli import protocol
from hextrackr_cli.core.browser import ASKS_TOKEN, open_progress_page
from hextrackr_cli.core.connection import Connection
from hextrackr_cli.core.follower import Follower
from hextrackr_cli.core.operations import Upload
from hextrackr_cli.core.reporting import Reporter, ReportOptions
from hextrackr_cli.core.sigint import Sigint
from hextrackr_cli.core.unchanged import Content, ContentCheck
from hextrackr_cli.errors import ExitStatus, HextrackrError, UsageError
from hextrackr_cli.locking import LockRequest
from hextrackr_cli.settings import LOCAL, Settings

_DATE_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True)
class ImportOptions:
    """The options of one ``hextrackr import`` that apply to each of its files (fields = click parameters)."""

    import_type: str = "vulnerabilities"
    vendor: str | None = None
    scan_date: str | None = None
    session_id: str | None = None
    detach: bool = False
    timeout: float | None = None
    transport: str = "auto"
    open_browser: bool = False
    if_changed: bool = False  # skip a file whose content already completed an import (core.unchanged)
    format_name: str | None = None  # --format: the reader to use, else detected
    min_severity: str = "info"  # --min-severity: findings below it are skipped, counted

    def check_server(self, conn: Connection) -> None:
        """Refuse what the server cannot honour, before anything is sent."""
        refusal = conn.strategy.min_severity_refusal
        if refusal and self.min_severity.lower() != "info":
            raise UsageError(refusal)

    def upload_fields(self) -> dict[str, str]:
        """The form fields --format and --min-severity add to the upload (none at their defaults)."""
        fields = {}
        if self.format_name:
            fields["format"] = self.format_name
        if self.min_severity and self.min_severity.lower() != "info":
            fields["minSeverity"] = self.min_severity.title()
        return fields
    no_lock: bool = False  # HexTrackr 1.1.x: do not wait for another import into the same server (client.hx11.guard)
    reports: ReportOptions = ReportOptions()  # --junit, --summary-md, --no-ci-annotations (the gate: Settings.gate)

    def check(self, settings: Settings, files: Sequence[str]) -> None:
        """Refuse a bad combination before anything is read or sent (UsageError, exit 2)."""
        if self.session_id is not None and not protocol.is_session_id(self.session_id):
            raise UsageError(f"malformed --session-id {self.session_id!r}: expected a UUID like {uuid.uuid4()}")
        if self.session_id is not None and len(files) > 1:
            raise UsageError("--session-id names one import; give one FILE with it")
        if list(files).count("-") > 1:
            raise UsageError("'-' (stdin) can be given only once")
        if "-" in files and settings.password_stdin:
            raise UsageError("--password-stdin and FILE '-' both want stdin", hint="set HEXTRACKR_PASSWORD instead")
        if self.scan_date is not None and not _DATE_RE.match(self.scan_date):
            raise UsageError(f"malformed --scan-date {self.scan_date!r}: expected YYYY-MM-DD")
        if self.scan_date is not None:
            try:
                datetime.date.fromisoformat(self.scan_date)
            except ValueError:
                raise UsageError(f"--scan-date {self.scan_date!r} is not a real date") from None
        if self.format_name is not None:
            from hextrackr_cli import formats

            try:
                formats.reader_named(self.format_name)
            except formats.FormatError as exc:
                raise UsageError(f"--format: {exc}") from None
        if self.detach and settings.server == LOCAL:
            raise UsageError("--detach needs a running server: the embedded server (--server local) stops with hextrackr")


@contextmanager
def held(settings: Settings, lock: LockRequest | None) -> Iterator[None]:
    """Hold ``lock`` (auto-named per server and profile) for the block; no lock asked: nothing."""
    if lock is None:
        yield
        return
    with lock.lock(settings.server or LOCAL, settings.profile, env=settings.environment.environ):
        yield


def import_or_skip(conn: Connection, settings: Settings, renderer: Any, lf: Any, options: ImportOptions,
                   check: ContentCheck, reporter: Reporter | None = None) -> int:
    """One checked file: skipped when --if-changed finds its content completed, else imported; its exit status.
    A completed import on a server that cannot answer --if-changed itself goes into the local ledger.
    ``reporter``: the command's gate and reports (none: no gate, e.g. ``sweep``)."""
    if reporter is None:
        reporter = Reporter("hextrackr import", settings)
    content = None
    if options.if_changed or not check.server_knows:
        content = Content.of(lf, options.import_type, options.vendor)
    if options.if_changed and content is not None:
        try:
            previous = check.previous(content)
        except HextrackrError as exc:
            json_error(renderer, exc, None, lf.name)
            raise
        if previous is not None:
            skipped = previous.outcome(lf.name)
            renderer.handle(skipped)
            reporter.record(lf.name, skipped, 0.0)
            return ExitStatus.OK
        if check.running is not None:  # the same bytes are being imported (a run before us): follow, not resend
            outcome = follow_session(conn, settings, renderer, check.running, "Following the identical import",
                                     filename=lf.name, timeout=options.timeout, transport=options.transport,
                                     reporter=reporter, lf=lf)
            return int(outcome.exit_code)
    outcomes: list[Any] = []
    code = import_one(conn, settings, renderer, lf, options, reporter, outcomes.append)
    if content is not None and outcomes:
        check.remember(content, outcomes[-1])
    return code


def import_one(conn: Connection, settings: Settings, renderer: Any, lf: Any, options: ImportOptions,
                reporter: Reporter, on_outcome: Callable[[Any], Any] | None = None) -> int:
    """Upload one checked file (in a thread) and follow its session; its exit status."""
    from hextrackr_cli import events as ev

    sid = options.session_id or str(uuid.uuid4())
    started = time.monotonic()
    watcher = conn.watcher(settings, options.transport, options.timeout)
    guard: Any = None
    try:
        with Sigint() as sigint:
            announce(settings, renderer, conn, f"Importing {options.import_type}", sid, lf.name, lf.size)
            if settings.verbose and lf.format_title:
                renderer.handle(ev.Notice(f"{lf.name}: format {lf.format_name} ({lf.format_title})"))
            if not options.no_lock:
                guard = conn.strategy.import_guard(conn.url, deadline=started + options.timeout if options.timeout
                                                   else None, interrupted=lambda: sigint.count > 0,
                                                   say=lambda m: renderer.handle(ev.Notice(m, "warning")))
            if not options.detach:
                watcher.start(sid, reserve=True)
            if options.open_browser:
                open_progress_page(conn, sid, watcher.put)

            upload = Upload(conn, settings, watcher, lf, sid, import_type=options.import_type, vendor=options.vendor,
                            scan_date=options.scan_date, fields=options.upload_fields()).start()
            abort = upload.abort
            if options.detach:
                return detach_after_upload(settings, watcher, renderer, sid, sigint, abort)
            decide = reporter.decider(lf, from_file=conn.strategy.counts_from_file)
            outcome = Follower(watcher, renderer, sid, sigint, watch_hint=conn.watch_hint(sid), timeout=options.timeout,
                               started=started, uploading=upload.uploading, abort=abort, decide=decide).run()
            reporter.record(lf.name, outcome, time.monotonic() - started, conn.page_url(sid))
            if outcome.outcome == ev.OUTCOME_INTERRUPTED and abort.is_set():
                upload.thread.join(5.0)
            if on_outcome is not None:
                on_outcome(outcome)
            return int(outcome.exit_code)
    except HextrackrError as exc:
        renderer.close()
        json_error(renderer, exc, sid, lf.name)
        raise
    finally:
        watcher.close()
        if guard is not None:
            guard.release()


def detach_after_upload(settings: Settings, watcher: Any, renderer: Any, sid: str, sigint: Sigint,
                         abort: threading.Event) -> int:
    """--detach: wait for the server to accept the upload, print the session id, exit 0."""
    from hextrackr_cli import events as ev
    from hextrackr_cli.client.http import UploadAborted

    while True:
        try:
            event = watcher.get(0.1)
        except UploadAborted:
            renderer.handle(ev.Outcome(ev.OUTCOME_INTERRUPTED, sid, ExitStatus.INTERRUPTED,
                                       message="upload aborted on Ctrl-C; nothing was imported"))
            return ExitStatus.INTERRUPTED
        if sigint.count:
            abort.set()
        if isinstance(event, ev.Uploaded):
            renderer.handle(event)
            import_id = event.import_id
            ids = f"session {sid}" + (f", import {import_id}" if import_id is not None else "")  # 1.1.x: no id yet
            renderer.handle(
                ev.Outcome(ev.OUTCOME_DETACHED, sid, ExitStatus.OK, import_id=import_id,
                           message=f"import started ({ids}); follow it with: hextrackr watch {sid}")
            )
            if getattr(renderer, "emit", None) is None:  # human output: the id alone on stdout, for scripts
                print_stdout(settings, sid)
            return ExitStatus.OK
        if event is not None:
            renderer.handle(event)


def follow_session(conn: Connection, settings: Settings, renderer: Any, session_id: str, title: str, *,
                   filename: str | None = None, timeout: float | None = None, transport: str = "auto",
                   started: float | None = None, reporter: Reporter | None = None, lf: Any = None) -> Any:
    """Follow an existing session to its end (``watch``, or an identical import already under way); its Outcome,
    with the gate decided by ``reporter`` (``lf``: the file whose severities count on HexTrackr 1.1.x)."""
    watcher = conn.watcher(settings, transport, timeout)
    begun = time.monotonic() if started is None else started
    try:
        with Sigint() as sigint:
            announce(settings, renderer, conn, title, session_id, filename)
            watcher.start(session_id)
            decide = (reporter.decider(lf, from_file=conn.strategy.counts_from_file)
                      if reporter is not None else None)
            outcome = Follower(watcher, renderer, session_id, sigint, watch_hint=conn.watch_hint(session_id),
                               timeout=timeout, started=begun, decide=decide).run()
            if reporter is not None:
                reporter.record(filename or session_id, outcome, time.monotonic() - begun, conn.page_url(session_id))
            return outcome
    except HextrackrError as exc:
        renderer.close()
        json_error(renderer, exc, session_id)
        raise
    finally:
        watcher.close()


def renderer_for(settings: Settings) -> Any:
    from hextrackr_cli.render import make_renderer
    from hextrackr_cli.render.unattended import unattended

    env = settings.environment
    screen = make_renderer(settings.output, color=settings.color, quiet=settings.quiet,
                           log_interval=settings.log_interval, verbose=settings.verbose,
                           stdout=env.stdout, stderr=env.stderr)
    return unattended(screen, settings)


def notice_fn(renderer: Any, settings: Settings | None = None) -> Any:
    from hextrackr_cli import events as ev

    def notice(message: str, level: str = "info") -> None:
        renderer.handle(ev.Notice(message, level))
        if level == "warning" and settings is not None and settings.output == "json":  # stderr says it too
            settings.environment.say(f"hextrackr: {message}")

    notice.levels = True  # type: ignore[attr-defined]
    return notice


def announce(settings: Settings, renderer: Any, conn: Connection, title: str, sid: str, filename: str | None = None,
              size: int | None = None) -> None:
    """The Started event of an import or a watch, with the session's browser view (named with -v)."""
    from hextrackr_cli import events as ev

    page = conn.page_url(sid)
    renderer.handle(ev.Started(title, sid, filename, size, conn.url, page))
    if page and settings.verbose:
        renderer.handle(ev.Notice(f"browser view: {page} ({ASKS_TOKEN})"))


def json_error(renderer: Any, exc: HextrackrError, sid: str | None, filename: str | None = None) -> None:
    """--output json: an error still ends the NDJSON stream with its summary line."""
    emit = getattr(renderer, "emit", None)
    if emit is None:
        return
    obj = {"event": "summary", "outcome": "error", "sessionId": sid, "exitCode": int(exc.exit_status),
           "importId": None, "rows": None, "message": str(exc)}
    if filename:
        obj["file"] = filename
    emit(obj)


def print_stdout(settings: Settings, text: str) -> None:
    try:
        settings.environment.print(text)
    except (OSError, ValueError):
        pass
