"""``hextrackr import``, ``watch`` and ``cancel``: start imports and follow them to their real outcome.

The transport (``hextrackr_cli.client``) yields typed events; a renderer (``hextrackr_cli.render``) shows
them; this module wires the two, owns Ctrl-C, ``--timeout`` and ``--detach``, and returns the exit status.
"""

from __future__ import annotations

import _thread
import os
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from hextrackr_cli import protocol
from hextrackr_cli.errors import AuthError, ExitStatus, HextrackrError, ServerError, UsageError
from hextrackr_cli.settings import LOCAL, Settings, default_data_dir

CANCEL_WAIT = 15.0  # seconds to wait for importCancelled after the first Ctrl-C
# A double Ctrl-C (two presses within this window) detaches without cancelling: the cancel is only sent
# once the window has passed, so "Ctrl-C again to detach" can be honoured even by a quick double press.
# Short, because every moment here is a moment the import goes on (near its end: past the point of no return).
CANCEL_GRACE = 0.2
_DATE_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


# --------------------------------------------------------------------------- Ctrl-C
class Sigint:
    """Counts Ctrl-C presses instead of raising KeyboardInterrupt at a random spot."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()
        self.wake: Any = None  # called (in a helper thread) on each press: wakes a loop blocked on a queue
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "Sigint":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.event.set()
        if self.wake is not None:
            # not from here: the interrupted code may hold the lock wake() needs. A bare thread, not
            # threading.Thread: its start() waits on locks the interrupted code may hold too.
            _thread.start_new_thread(self.wake, ())

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            self._installed = False


# --------------------------------------------------------------------------- server connection
@dataclass
class Connection:
    url: str
    token: str | None
    api: Any
    dialect: protocol.Dialect
    embedded: Any = None  # the in-process server, when --server local
    browser_view: bool = False  # the server serves the browser progress view (its /health says so)

    def page_url(self, sid: str) -> str | None:
        """The browser progress view of a session, on a server that has one and outlives this command (the
        embedded server's page would ask for a token nobody was shown, and stops with the command)."""
        if not self.browser_view or self.embedded is not None:
            return None
        return protocol.page_url(self.url, sid)

    def close(self) -> None:
        try:
            self.api.close()
        except Exception:
            pass
        if self.embedded is not None:
            try:
                self.embedded.stop()
            except Exception:
                pass
            self.embedded = None


def connect(settings: Settings, notice: Any = None, timeout: float | None = None) -> Connection:
    """Resolve the server (URL, embedded, or refuse), check it answers, pick the dialect."""
    from hextrackr_cli.client.api import SeedApi

    server = settings.server
    embedded = None
    token = settings.token
    token_hint = settings.token_hint()
    if server is None:
        if settings.stdin_isatty and settings.stderr_isatty:
            server = LOCAL
            if notice is not None:
                notice(
                    "no server configured: using the embedded server "
                    f"(database {default_data_dir() / 'hextrackr.db'}); set HEXTRACKR_SERVER or --server URL "
                    "to use another"
                )
        else:
            raise UsageError(
                "no server configured",
                hint="set HEXTRACKR_SERVER=URL or pass --server URL; --server local uses the embedded server",
            )
    if server == LOCAL:
        if settings.dialect == protocol.HEXTRACKR_11.name:
            raise UsageError("the embedded server (--server local) speaks the seed protocol, not hextrackr-1.1",
                             hint="drop --dialect / HEXTRACKR_DIALECT, or pass --server URL of the HexTrackr 1.1.x server")
        embedded = start_embedded()
        server = embedded.url
        token = embedded.token
        token_hint = "the embedded server's generated token was refused (a bug: please report it)"
    api = SeedApi(server, token, verify=settings.verify, token_hint=token_hint)
    conn = Connection(url=server, token=token, api=api, dialect=protocol.SEED, embedded=embedded)
    why = who = ""
    try:
        conn.dialect, why = pick_dialect(settings, api, timeout)
        if conn.dialect is protocol.HEXTRACKR_11:
            conn.api, who = hx11_session(settings, server, timeout)
            conn.token = None
            api.close()
        conn.browser_view = api.health_info.get(protocol.HEALTH_BROWSER_VIEW) is True
    except BaseException:
        conn.close()
        raise
    if settings.verbose and notice is not None:
        where = "embedded" if embedded is not None else settings.source_of("server")
        token_from = "embedded server" if embedded is not None else settings.source_of("token")
        creds = who if conn.dialect is protocol.HEXTRACKR_11 else f"token from {token_from}"
        notice(f"server {server} ({where}), {creds}, dialect {conn.dialect.name} ({why})")
    return conn


def start_embedded() -> Any:
    try:
        from hextrackr_cli.server.app import start_background
    except ImportError as exc:
        raise UsageError(
            f"the embedded server is not available ({exc})",
            hint="install the server extra: pip install 'hextrackr[server]', or pass --server URL",
        ) from None
    import sqlite3

    data_dir = default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # the server's own log lines go to a file: the user sees only this command's output
        return start_background(database=f"sqlite:///{data_dir / 'hextrackr.db'}", log_file=data_dir / "server.log")
    except ValueError as exc:  # e.g. a database written by a newer hextrackr
        raise UsageError(str(exc)) from None
    except (OSError, RuntimeError, sqlite3.Error) as exc:  # unreadable or corrupt database, no free port…
        raise UsageError(f"the embedded server could not start: {exc}") from None


def pick_dialect(settings: Settings, api: Any, timeout: float | None = None) -> tuple[protocol.Dialect, str]:
    """``--dialect``: forced, or decided from what the server answers; returns the dialect and why.

    A seed server (``hextrackr serve``) names its dialect in ``GET /health``; a HexTrackr 1.1.x server answers
    ``GET /api/auth/status`` (public there) with ``{"authenticated": …}``. A forced dialect the server does not
    speak is refused at once with the right ``--dialect``, before any credential is sent. /health also fails
    fast on a dead server.
    """
    from hextrackr_cli.client.hx11_api import Hx11Api

    hx11, seed = protocol.HEXTRACKR_11, protocol.SEED
    wanted = settings.dialect
    with Hx11Api(api.base_url, verify=settings.verify, connect_timeout=api.timeout[0],
                 read_timeout=min(api.timeout[1], timeout) if timeout else api.timeout[1]) as probe:
        if wanted == hx11.name:
            if probe.probe():
                return hx11, "--dialect hextrackr-1.1"
            if _health_or_none(api, timeout) is not None:
                raise UsageError(f"{api.base_url} speaks the seed protocol (hextrackr serve), not hextrackr-1.1",
                                 hint="use --dialect seed or --dialect auto")
            # Not recognised, but forced: the login says clearly what the server is not.
            return hx11, "--dialect hextrackr-1.1; the server did not confirm it"
        try:
            health = api.health(timeout)
            failure: HextrackrError | None = None
        except (ServerError, AuthError) as exc:  # not JSON, an HTML 404, a refusal: maybe not a seed server
            health, failure = None, exc
        found = health.get("dialect") if health is not None else None
        if found == seed.name or (health is not None and wanted == seed.name and found in (None, "")):
            _check_healthy(health)
            return seed, ("--dialect seed" if wanted == seed.name else "detected: its /health names the seed protocol")
        if found == hx11.name or probe.probe():
            if wanted == seed.name:
                raise UsageError(f"{api.base_url} is a HexTrackr 1.1.x server, not a seed-protocol server",
                                 hint="use --dialect hextrackr-1.1 or --dialect auto, with --username")
            how = "its /health names it" if found == hx11.name else probe.probe_reason
            return hx11, f"detected: {how}"
        if health is not None and found in (None, ""):
            _check_healthy(health)
            return seed, "detected: /health answers without naming a dialect"
        if found not in (None, ""):
            raise ServerError(f"the server at {api.base_url} speaks the {found!r} protocol, which hextrackr does not know")
        assert failure is not None
        raise ServerError(f"{api.base_url} answers like neither a hextrackr server nor HexTrackr 1.1.x "
                          f"({failure.message})", hint="check --server / HEXTRACKR_SERVER")


def _health_or_none(api: Any, timeout: float | None) -> dict[str, Any] | None:
    try:
        return api.health(timeout)
    except (ServerError, AuthError):
        return None


def _check_healthy(health: Any) -> None:
    if health.get("status") not in (None, "ok"):
        raise ServerError(f"the server reports it is not healthy: {health.get('database') or health.get('status')}")


def hx11_session(settings: Settings, server: str, timeout: float | None = None) -> tuple[Any, str]:
    """A logged-in ``Hx11Api`` and a line saying how (for ``-v``; never the password or the cookie).

    A session cookie (``hextrackr login --save-cookie`` or HEXTRACKR_COOKIE) is used while the server still
    accepts it; otherwise the user logs in with the password from ``--password-stdin``, HEXTRACKR_PASSWORD or
    a prompt on a terminal. The cookie stays in memory.
    """
    from hextrackr_cli.client.hx11_api import Hx11Api

    api = Hx11Api(server, verify=settings.verify, read_timeout=min(30.0, max(1.0, timeout)) if timeout else 30.0)
    try:
        expired = ""
        if settings.cookie:
            api.set_cookie(settings.cookie)
            if api.check_session():
                return api, f"session cookie from {_source_name(settings, 'cookie')}"
            api.forget_cookie()
            expired = f"the session cookie from {_source_name(settings, 'cookie')} has expired; "
        user = settings.username
        if not user:
            raise UsageError(f"{expired}HexTrackr 1.1.x needs a user to log in",
                             hint="pass --username USER or set HEXTRACKR_USERNAME (password: HEXTRACKR_PASSWORD, "
                                  "--password-stdin or the prompt)")
        password, where = _hx11_password(settings, user)
        api.login(user, password)
        return api, (f"{expired}logged in as {user} (user from {_source_name(settings, 'username')}, password "
                     f"from {where}; session cookie kept in memory only)")
    except BaseException:
        api.close()
        raise


def _source_name(settings: Settings, key: str) -> str:
    src = settings.source_of(key)
    if src == "env":
        return "HEXTRACKR_" + key.upper()
    if src == "profile":
        return f"profile '{settings.profile}'"
    return f"--{key}" if src == "flag" else src


def _hx11_password(settings: Settings, user: str) -> tuple[str, str]:
    if settings.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on stdin",
                             hint='e.g. printf %s "$PASSWORD" | hextrackr --password-stdin import FILE')
        return password, "stdin"
    if os.environ.get("HEXTRACKR_PASSWORD"):
        return os.environ["HEXTRACKR_PASSWORD"], "HEXTRACKR_PASSWORD"
    if settings.stdin_isatty:
        import click

        password = click.prompt(f"Password for {user}", hide_input=True, err=True, default="", show_default=False)
        if password:
            return password, "the prompt"
    raise UsageError(f"no password for HexTrackr 1.1.x user {user}",
                     hint="set HEXTRACKR_PASSWORD or pipe it with --password-stdin (there is no password flag)")


# --------------------------------------------------------------------------- following
def _renderer(settings: Settings) -> Any:
    from hextrackr_cli.render import make_renderer

    return make_renderer(
        settings.output,
        color=settings.color,
        quiet=settings.quiet,
        log_interval=settings.log_interval,
        verbose=settings.verbose,
    )


def _watch_hint(conn: Connection, sid: str) -> str:
    if conn.embedded is not None:
        return "the embedded server stops with this command, so the import is abandoned and rolled back"
    return f"the import keeps running on the server; re-attach with: hextrackr watch {sid}"


def _liveness() -> float:
    # Not a documented option: lets tests shorten the silent-socket bound.
    try:
        return max(0.2, float(os.environ.get("HEXTRACKR_LIVENESS", "10")))
    except ValueError:
        return 10.0


def follow(
    watcher: Any,
    renderer: Any,
    conn: Connection,
    sid: str,
    sigint: Sigint,
    *,
    timeout: float | None,
    started: float,
    uploading: threading.Event | None = None,
    abort: threading.Event | None = None,
    cancel_wait: float = CANCEL_WAIT,
) -> Any:
    """Run until the import ends, the deadline passes, or Ctrl-C; return the (final) Outcome shown."""
    from hextrackr_cli.client import events as ev
    from hextrackr_cli.client.api import UploadAborted

    cancel_sent: float | None = None
    cancel_at: float | None = None
    seen_presses = 0
    deadline = started + timeout if timeout else None
    held: Any = None  # an outcome seen before our upload was accepted (a re-used session id)
    timed_out_uploading = False
    upload_abort_grace = 3.0  # an upload blocked on a silent server cannot see the abort: stop waiting

    def finish(outcome: Any) -> Any:
        renderer.handle(outcome)
        return outcome

    sigint.wake = lambda: watcher.put(None)  # a press is handled at once, not at the next 0.1 s poll
    wait = 0.0  # first pass: check the deadline and Ctrl-C before blocking
    while True:
        try:
            event = watcher.get(wait)
            wait = 0.1
        except UploadAborted:
            if timed_out_uploading:
                return finish(
                    ev.Outcome(ev.OUTCOME_TIMEOUT, sid, ExitStatus.TIMEOUT,
                               message=f"--timeout {timeout:g}s reached during the upload; "
                               "the upload was stopped and nothing was imported")
                )
            return finish(
                ev.Outcome(ev.OUTCOME_INTERRUPTED, sid, ExitStatus.INTERRUPTED,
                           message="upload aborted on Ctrl-C; nothing was imported")
            )
        if isinstance(event, ev.Uploaded) and uploading is not None:
            uploading.clear()
            renderer.handle(event)
            if timed_out_uploading:  # the upload finished before it could be stopped: the import runs
                return finish(
                    ev.Outcome(ev.OUTCOME_TIMEOUT, sid, ExitStatus.TIMEOUT,
                               message=f"stopped watching after {timeout:g}s (--timeout); {_watch_hint(conn, sid)}")
                )
            if held is not None:
                return finish(_adjust(held, cancel_at is not None))
            event = None
        if isinstance(event, ev.Outcome):
            if uploading is not None and uploading.is_set():
                held = event  # decided only once the server has answered our POST (it may refuse it)
                continue
            return finish(_adjust(event, cancel_at is not None))
        if event is not None:
            renderer.handle(event)

        presses = sigint.count
        if presses > seen_presses:
            seen_presses = presses
            if uploading is not None and uploading.is_set():
                if abort is not None:
                    abort.set()  # the upload thread stops at its next chunk and reports UploadAborted
                continue
            if presses >= 2 or watcher.dialect.cancel_event is None:
                why = "" if presses >= 2 else "HexTrackr 1.1.x has no cancel, so nothing was cancelled; "
                return finish(
                    ev.Outcome(ev.OUTCOME_DETACHED, sid, ExitStatus.INTERRUPTED,
                               message=f"{why}detached from session {sid}; {_watch_hint(conn, sid)}")
                )
            if cancel_at is None:
                cancel_at = time.monotonic() + CANCEL_GRACE
                renderer.handle(ev.Cancelling(sid))
        now = time.monotonic()
        if cancel_at is not None and cancel_sent is None:
            if now >= cancel_at:
                cancel_sent = now
                watcher.request_cancel()
            else:
                wait = min(wait, cancel_at - now)  # send it when the window ends, not up to 0.1 s later
        if cancel_sent is not None and now - cancel_sent > cancel_wait:
            return finish(
                ev.Outcome(ev.OUTCOME_INTERRUPTED, sid, ExitStatus.INTERRUPTED,
                           message=f"the server did not confirm the cancel within {cancel_wait:g}s; "
                           f"{_watch_hint(conn, sid)}")
            )
        if timed_out_uploading and deadline is not None and now >= deadline + upload_abort_grace:
            return finish(
                ev.Outcome(ev.OUTCOME_TIMEOUT, sid, ExitStatus.TIMEOUT,
                           message=f"--timeout {timeout:g}s reached during the upload and the server did not "
                           f"answer; check it with: hextrackr status {sid}")
            )
        if deadline is not None and now >= deadline and cancel_at is None and not timed_out_uploading:
            if uploading is not None and uploading.is_set() and abort is not None:
                timed_out_uploading = True
                abort.set()
                continue
            return finish(
                ev.Outcome(ev.OUTCOME_TIMEOUT, sid, ExitStatus.TIMEOUT,
                           message=f"stopped watching after {timeout:g}s (--timeout); {_watch_hint(conn, sid)}")
            )


def _adjust(outcome: Any, cancel_requested: bool) -> Any:
    """Exit status and wording of a server outcome, given whether we asked for a cancel."""
    from dataclasses import replace

    if outcome.outcome == protocol.OUTCOME_CANCELLED:
        if cancel_requested:
            return replace(
                outcome,
                exit_code=ExitStatus.INTERRUPTED,
                message="cancelled on Ctrl-C; the server confirmed the cancel and rolled the import back",
            )
        return replace(outcome, exit_code=ExitStatus.IMPORT_FAILED, message="cancelled (by another client)")
    if outcome.outcome == protocol.OUTCOME_COMPLETED and cancel_requested:
        return replace(outcome, message="the import completed before the cancel took effect")
    return outcome


def _json_error(renderer: Any, exc: HextrackrError, sid: str | None, filename: str | None = None) -> None:
    emit = getattr(renderer, "emit", None)
    if emit is None:
        return
    obj = {"event": "summary", "outcome": "error", "sessionId": sid, "exitCode": int(exc.exit_status),
           "importId": None, "rows": None, "message": str(exc)}
    if filename:
        obj["file"] = filename
    emit(obj)


def _make_watcher(conn: Connection, settings: Settings, transport: str, timeout: float | None = None) -> Any:
    from hextrackr_cli.client.watcher import Watcher

    strategy = None
    if conn.dialect is protocol.HEXTRACKR_11:
        from hextrackr_cli.client.strategy import Hx11Strategy

        strategy = Hx11Strategy(conn.api)
    return Watcher(
        conn.api,
        server_url=conn.url,
        token=conn.token,
        transport=transport,
        poll_interval=settings.poll_interval,
        liveness=_liveness(),
        verify=settings.verify,
        # --timeout bounds the whole command: a hung server must not hold the socket connect for long
        connect_timeout=min(10.0, max(1.0, timeout)) if timeout else 10.0,
        strategy=strategy,
    )


# --------------------------------------------------------------------------- import
def run_import(
    settings: Settings,
    files: Sequence[str],
    import_type: str = "vulnerabilities",
    vendor: str | None = None,
    scan_date: str | None = None,
    session_id: str | None = None,
    detach: bool = False,
    timeout: float | None = None,
    transport: str = "auto",
    open_browser: bool = False,
) -> int:
    """Check every file, then upload and follow each in turn; the exit status is the worst outcome."""
    from hextrackr_cli.client.localfile import check_file

    if session_id is not None and not protocol.is_session_id(session_id):
        raise UsageError(f"malformed --session-id {session_id!r}: expected a UUID like {uuid.uuid4()}")
    if session_id is not None and len(files) > 1:
        raise UsageError("--session-id names one import; give one FILE with it")
    if list(files).count("-") > 1:
        raise UsageError("'-' (stdin) can be given only once")
    if "-" in files and settings.password_stdin:
        raise UsageError("--password-stdin and FILE '-' both want stdin", hint="set HEXTRACKR_PASSWORD instead")
    if scan_date is not None and not _DATE_RE.match(scan_date):
        raise UsageError(f"malformed --scan-date {scan_date!r}: expected YYYY-MM-DD")
    if scan_date is not None:
        import datetime

        try:
            datetime.date.fromisoformat(scan_date)
        except ValueError:
            raise UsageError(f"--scan-date {scan_date!r} is not a real date") from None
    if detach and settings.server == LOCAL:
        raise UsageError("--detach needs a running server: the embedded server (--server local) stops with hextrackr")

    checked: list[Any] = []
    try:
        for f in files:
            try:
                checked.append(check_file(f, import_type=import_type))
            except HextrackrError as exc:
                if settings.output == "json":  # the NDJSON stream still ends with its summary
                    _json_error(_renderer(settings), exc, None, f)
                raise
        renderer = _renderer(settings)
        notice = _notice_fn(renderer)
        conn = connect(settings, notice, timeout)
        try:
            if detach and conn.embedded is not None:
                raise UsageError("--detach needs a running server: the embedded server stops with hextrackr")
            worst = 0
            for lf in checked:
                code = _import_one(
                    conn, settings, renderer, lf,
                    import_type=import_type, vendor=vendor, scan_date=scan_date, session_id=session_id,
                    detach=detach, timeout=timeout, transport=transport, open_browser=open_browser,
                )
                worst = max(worst, int(code))
                if code in (ExitStatus.INTERRUPTED, ExitStatus.CONNECTION, ExitStatus.AUTH):
                    break
            return worst
        finally:
            renderer.close()
            conn.close()
    finally:
        for lf in checked:
            lf.cleanup()


def _notice_fn(renderer: Any) -> Any:
    from hextrackr_cli.client import events as ev

    def notice(message: str) -> None:
        renderer.handle(ev.Notice(message, "info"))

    return notice


def _import_one(
    conn: Connection,
    settings: Settings,
    renderer: Any,
    lf: Any,
    *,
    import_type: str,
    vendor: str | None,
    scan_date: str | None,
    session_id: str | None,
    detach: bool,
    timeout: float | None,
    transport: str,
    open_browser: bool = False,
) -> int:
    from hextrackr_cli.client import events as ev

    sid = session_id or str(uuid.uuid4())
    started = time.monotonic()
    watcher = _make_watcher(conn, settings, transport, timeout)
    abort = threading.Event()
    uploading = threading.Event()
    uploading.set()
    try:
        with Sigint() as sigint:
            _announce(settings, renderer, conn, f"Importing {import_type}", sid, lf.name, lf.size)
            if not detach:
                watcher.start(sid, reserve=True)
            if open_browser:
                _open_progress_page(conn, sid, watcher.put)

            def do_upload() -> None:
                try:
                    answer = conn.api.upload(
                        lf.path, import_type=import_type, session_id=sid, vendor=vendor, scan_date=scan_date,
                        filename=lf.name, on_progress=lambda s, t: watcher.put(ev.UploadProgress(s, t)), abort=abort,
                    )
                except BaseException as exc:  # reported in the main thread
                    watcher.fail(exc)
                    return
                watcher.mark_posted(answer)
                watcher.put(ev.Uploaded(answer))

            t = threading.Thread(target=do_upload, name="hextrackr-upload", daemon=True)
            t.start()
            if detach:
                return _detach_after_upload(watcher, renderer, sid, sigint, abort)
            outcome = follow(
                watcher, renderer, conn, sid, sigint,
                timeout=timeout, started=started, uploading=uploading, abort=abort,
            )
            if outcome.outcome == ev.OUTCOME_INTERRUPTED and abort.is_set():
                t.join(5.0)
            return int(outcome.exit_code)
    except HextrackrError as exc:
        renderer.close()
        _json_error(renderer, exc, sid, lf.name)
        raise
    finally:
        watcher.close()


_ASKS_TOKEN = "the page asks for the API token once"


def _announce(settings: Settings, renderer: Any, conn: Connection, title: str, sid: str, filename: str | None = None,
              size: int | None = None) -> None:
    """The Started event of an import or a watch, with the session's browser view (named with -v)."""
    from hextrackr_cli.client import events as ev

    page = conn.page_url(sid)
    renderer.handle(ev.Started(title, sid, filename, size, conn.url, page))
    if page and settings.verbose:
        renderer.handle(ev.Notice(f"browser view: {page} ({_ASKS_TOKEN})"))


def _open_progress_page(conn: Connection, sid: str, report: Any) -> None:
    """--open: the browser progress view, in a graphical browser only (a text browser would take the terminal)."""
    from hextrackr_cli.client import events as ev

    url = conn.page_url(sid)
    if url is None:
        if conn.embedded is not None:
            why = ("the embedded server (--server local) stops with this command and its token is never shown; "
                   "run `hextrackr serve` and import with --server URL to follow an import in a browser")
        else:
            why = f"the server at {conn.url} has no browser progress view (hextrackr serve has one)"
        report(ev.Notice(f"--open: {why}", "warning"))
        return
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if not graphical:
        report(ev.Notice(f"--open: no graphical browser here; open {url} yourself ({_ASKS_TOKEN})"))
        return

    said = threading.Event()  # the launcher's verdict is reported once, by whoever knows it first

    def launch() -> None:
        started, why = _launch_browser(url)
        if not started:
            report(ev.Notice(f"--open: could not start a browser ({why}); open {url} yourself ({_ASKS_TOKEN})",
                             "warning"))
        elif not said.is_set():
            report(ev.Notice(f"opened the progress page {url} in a browser ({_ASKS_TOKEN})"))
        said.set()

    t = threading.Thread(target=launch, name="hextrackr-browser", daemon=True)
    t.start()
    t.join(1.0)  # a launcher that fails says so at once (a short import may be over before a later notice)
    if not said.is_set():
        said.set()
        report(ev.Notice(f"opening the progress page {url} ({_ASKS_TOKEN})"))


def _launch_browser(url: str) -> tuple[bool, str]:
    """Start the desktop's browser on ``url`` with its output kept off our terminal: (started, why not).

    webbrowser's own launchers report success as soon as the launcher process exists and let it write to our
    stderr (e.g. ``gio: …: Operation not supported`` when no browser handles http); a launcher that exits
    non-zero within a few seconds is a failure here."""
    import subprocess
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False, "no browser found"
    name, args = getattr(browser, "name", ""), getattr(browser, "args", None)
    if not name or not isinstance(args, list):  # macOS / Windows launchers answer for themselves
        try:
            return bool(browser.open_new_tab(url)), "the system launcher refused"
        except Exception as exc:
            return False, type(exc).__name__
    try:
        proc = subprocess.Popen([name, *(a.replace("%s", url) for a in args)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return False, f"{name}: {exc.strerror or exc}"
    try:
        code = proc.wait(5.0)
    except subprocess.TimeoutExpired:
        return True, ""  # still running: a browser window
    return code == 0, f"{name} exited with status {code}"


def _detach_after_upload(watcher: Any, renderer: Any, sid: str, sigint: Sigint, abort: threading.Event) -> int:
    from hextrackr_cli.client import events as ev
    from hextrackr_cli.client.api import UploadAborted

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
                _print_stdout(sid)
            return ExitStatus.OK
        if event is not None:
            renderer.handle(event)


def _print_stdout(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- watch / cancel
def _check_session_id(session_id: str) -> None:
    if not protocol.is_session_id(session_id):
        raise UsageError(f"malformed session id {session_id!r}: expected a UUID")


def run_watch(settings: Settings, session_id: str, timeout: float | None = None, transport: str = "auto") -> int:
    """Re-attach to a session; the exit status is its outcome, even if it ended before we attached."""
    from hextrackr_cli.client import events as ev

    _check_session_id(session_id)
    started = time.monotonic()
    renderer = _renderer(settings)
    conn = connect(settings, _notice_fn(renderer), timeout)
    watcher = _make_watcher(conn, settings, transport, timeout)
    try:
        with Sigint() as sigint:
            _announce(settings, renderer, conn, "Watching import", session_id)
            watcher.start(session_id)
            outcome = follow(watcher, renderer, conn, session_id, sigint, timeout=timeout, started=started)
            return int(outcome.exit_code)
    except HextrackrError as exc:
        renderer.close()
        _json_error(renderer, exc, session_id)
        raise
    finally:
        watcher.close()
        renderer.close()
        conn.close()


def run_cancel(settings: Settings, session_id: str, timeout: float = 10.0) -> int:
    """Send the cancel and wait for the server's confirmation (exit 0 when confirmed)."""
    from hextrackr_cli.client import events as ev

    _check_session_id(session_id)
    renderer = _renderer(settings)
    conn = connect(settings, _notice_fn(renderer), timeout)
    if conn.dialect.cancel_event is None:
        conn.close()
        raise ServerError("this server has no cancel (HexTrackr 1.1.x); the import runs to its end")
    watcher = _make_watcher(conn, settings, "auto", timeout)
    try:
        renderer.handle(ev.Started("Cancelling import", session_id, None, None, conn.url))
        watcher.start(session_id)
        if watcher.done:
            pass  # already finished: the join reported its outcome
        else:
            watcher.request_cancel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = watcher.get(0.1)
            if isinstance(event, ev.Outcome):
                if event.outcome == protocol.OUTCOME_CANCELLED:
                    from dataclasses import replace

                    renderer.handle(replace(event, exit_code=ExitStatus.OK,
                                            message="the server confirmed the cancel and rolled the import back"))
                    return ExitStatus.OK
                from dataclasses import replace

                renderer.handle(ev.Notice(f"nothing to cancel: the import already {event.outcome}", "warning"))
                renderer.handle(replace(event, exit_code=ExitStatus.IMPORT_FAILED))
                return ExitStatus.IMPORT_FAILED
            if event is not None:
                renderer.handle(event)
        renderer.handle(
            ev.Outcome(ev.OUTCOME_TIMEOUT, session_id, ExitStatus.TIMEOUT,
                       message=f"the server did not confirm the cancel within {timeout:g}s; "
                       f"check with: hextrackr status {session_id}")
        )
        return ExitStatus.TIMEOUT
    except HextrackrError as exc:
        renderer.close()
        _json_error(renderer, exc, session_id)
        raise
    finally:
        watcher.close()
        renderer.close()
        conn.close()
