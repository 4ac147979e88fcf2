"""``hextrackr_cli.Client``: the Python API over what the commands use (connection, upload, Follower).

    from hextrackr_cli import Client

    with Client.local() as client:
        result = client.import_file("scan.csv", on_event=print)
        print(result.outcome, result.rows)

Settings not given are resolved as the command line resolves them (``HEXTRACKR_*`` variables, then the
config profile). Nothing here prints or installs signal handlers: events go to ``on_event``, Ctrl-C is the
caller's KeyboardInterrupt. Errors are ``HextrackrError`` subclasses carrying ``exit_status``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from hextrackr_cli.core.connection import Connection
from hextrackr_cli.errors import UsageError
from hextrackr_cli.settings import LOCAL, Settings

EventCallback = Callable[[Any], Any]


@dataclass(frozen=True)
class ImportResult:
    """How one import ended, as ``hextrackr import`` reports it (``exit_status`` is its exit status)."""

    outcome: str  # completed | failed | cancelled | timeout | interrupted | broken | detached
    exit_status: int
    session_id: str
    import_id: Any = None
    rows: int | None = None
    records: int | None = None
    counts: Mapping[str, Any] = field(default_factory=dict)  # inserted, updated, resolved, durationMs, …
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @classmethod
    def from_outcome(cls, outcome: Any) -> "ImportResult":
        summary = dict(outcome.summary or {})
        return cls(outcome=outcome.outcome, exit_status=int(outcome.exit_code), session_id=outcome.session_id,
                   import_id=outcome.import_id, rows=summary.pop("rows", None), records=summary.pop("records", None),
                   counts=summary, message=outcome.message)


class _Sink:
    """A renderer that hands each event to a callback (or drops it)."""

    def __init__(self, callback: EventCallback | None = None) -> None:
        self.callback = callback

    def handle(self, event: Any) -> None:
        if self.callback is not None:
            self.callback(event)

    def close(self) -> None:
        pass


def _quiet_environment() -> Any:
    """The process's variables, but no terminal: a library never prompts."""
    from hextrackr_cli.environment import Environment

    return Environment(stdin_isatty=False, stdout_isatty=False, stderr_isatty=False)


class Client:
    """A connection to one HexTrackr server (or the embedded one), opened on first use, closed by ``close()``
    or the ``with`` block (sockets, and the embedded server when it was started for this client)."""

    def __init__(self, server: str | None = None, token: str | None = None, *, profile: str | None = None,
                 config: str | Path | None = None, dialect: str | None = None, username: str | None = None,
                 ca_bundle: str | None = None, insecure: bool | None = None, settings: Settings | None = None,
                 on_notice: Callable[[str], Any] | None = None) -> None:
        if settings is None:
            from hextrackr_cli.settings import resolve

            flags = {"server": server, "token": token, "profile": profile, "config": str(config) if config else None,
                     "dialect": dialect, "username": username, "ca_bundle": ca_bundle, "insecure": insecure,
                     "output": "plain"}
            settings = resolve(flags, environment=_quiet_environment())
        self.settings = settings
        self.on_notice = on_notice
        self._conn: Connection | None = None

    @classmethod
    def from_profile(cls, name: str, *, config: str | Path | None = None) -> "Client":
        """The server and credentials of config profile ``name`` (``hextrackr --profile NAME``)."""
        return cls(profile=name, config=config)

    @classmethod
    def local(cls) -> "Client":
        """The embedded server, started in this process on the user's database (``--server local``)."""
        return cls(server=LOCAL)

    @classmethod
    def from_settings(cls, settings: Settings, on_notice: Callable[[str], Any] | None = None) -> "Client":
        """What the commands use: the Settings the command line resolved."""
        return cls(settings=settings, on_notice=on_notice)

    # ------------------------------------------------------------------ connection
    def connection(self, timeout: float | None = None) -> Connection:
        """The checked connection (server resolved, dialect picked, logged in), opened on first use."""
        if self._conn is None:
            from hextrackr_cli.core.connection import connect

            self._conn = connect(self.settings, self.on_notice, timeout)
        return self._conn

    @property
    def url(self) -> str:
        return self.connection().url

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ operations
    def import_file(self, path: str | Path, *, type: str = "vulnerabilities", vendor: str | None = None,
                    scan_date: str | None = None, session_id: str | None = None,
                    on_event: EventCallback | None = None, timeout: float | None = None,
                    transport: str = "auto") -> ImportResult:
        """Upload one file and follow its import to the end. Every outcome the server decides (completed,
        failed, cancelled) and ``timeout`` are returned; a file refused locally, an unreachable server or
        refused credentials raise (UsageError/BadInputError 2, ServerUnreachable 3, AuthError 4)."""
        from hextrackr_cli.client.localfile import check_file
        from hextrackr_cli.core.follower import Follower
        from hextrackr_cli.core.operations import Upload
        from hextrackr_cli.core.sigint import Sigint

        sid = session_id or str(uuid.uuid4())
        lf = check_file(str(path), import_type=type)
        try:
            started = time.monotonic()
            conn = self.connection(timeout)
            watcher = conn.watcher(self.settings, transport, timeout)
            upload: Upload | None = None
            try:
                watcher.start(sid, reserve=True)
                upload = Upload(conn, self.settings, watcher, lf, sid, import_type=type, vendor=vendor,
                                scan_date=scan_date).start()
                outcome = Follower(watcher, _Sink(on_event), sid, Sigint(), watch_hint=conn.watch_hint(sid),
                                   timeout=timeout, started=started, uploading=upload.uploading,
                                   abort=upload.abort).run()
            except BaseException:
                if upload is not None:
                    upload.abort.set()  # e.g. KeyboardInterrupt: the upload stops at its next chunk
                raise
            finally:
                watcher.close()
        finally:
            lf.cleanup()
        return ImportResult.from_outcome(outcome)

    def watch(self, session_id: str, *, timeout: float | None = None, transport: str = "auto") -> Iterator[Any]:
        """The events of a running or finished session, ending with its ``Outcome`` (``--timeout``: an Outcome
        'timeout'). Leaving the loop early closes the watch; the import goes on."""
        from hextrackr_cli.core.follower import Follower
        from hextrackr_cli.core.sigint import Sigint

        _check_session_id(session_id)
        started = time.monotonic()
        conn = self.connection(timeout)
        shown: list[Any] = []
        watcher = conn.watcher(self.settings, transport, timeout)
        try:
            watcher.start(session_id)
            follower = Follower(watcher, _Sink(shown.append), session_id, Sigint(),
                                watch_hint=conn.watch_hint(session_id), timeout=timeout, started=started)
            while True:
                done = follower.step()
                yield from shown
                shown.clear()
                if done is not None:
                    return
        finally:
            watcher.close()

    def cancel(self, session_id: str, *, timeout: float = 10.0, on_event: EventCallback | None = None) -> ImportResult:
        """Cancel an import and wait for the server's confirmation: exit_status 0 when it confirmed, 1 when the
        import had already ended, 5 when no answer came within ``timeout``."""
        from hextrackr_cli.core.operations import cancel_session

        _check_session_id(session_id)
        outcome = cancel_session(self.connection(timeout), self.settings, session_id, timeout, _Sink(on_event).handle)
        return ImportResult.from_outcome(outcome)

    def status(self, session_id: str) -> dict[str, Any]:
        """One HTTP look at a session (its state, progress, summary or error); no socket."""
        from hextrackr_cli.core.operations import session_status

        _check_session_id(session_id)
        return session_status(self.connection(), session_id)

    def imports(self, limit: int = 20) -> dict[str, Any]:
        """The server's import history, newest first: ``{"imports": [...], "total": N}``."""
        return dict(self.connection().api.imports(limit=limit))


def _check_session_id(session_id: str) -> None:
    from hextrackr_cli import protocol

    if not protocol.is_session_id(session_id):
        raise UsageError(f"malformed session id {session_id!r}: expected a UUID")
