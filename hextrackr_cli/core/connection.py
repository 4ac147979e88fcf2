"""The server a command talks to: resolved (URL, embedded, or refused), checked, its dialect picked, logged in.

Transport objects (the dialect's API and Strategy from ``client.dialects``, ``client.watcher``) are built here;
nothing here prints: what a user should know goes to the ``notice`` callable the caller gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hextrackr_cli import protocol
from hextrackr_cli.client import dialects
from hextrackr_cli.client.strategy import Strategy
from hextrackr_cli.errors import UsageError
from hextrackr_cli.settings import LOCAL, Settings, default_data_dir

Notice = Callable[[str], Any]


@dataclass
class Connection:
    """A checked server: its URL, the API client in its dialect, and the embedded server when it is ours."""

    url: str
    token: str | None
    api: Any
    dialect: protocol.Dialect
    embedded: Any = None  # the in-process server, when --server local
    browser_view: bool = False  # the server serves the browser progress view (its /health says so)
    verify: bool | str = True
    _strategy: Strategy | None = None

    @property
    def strategy(self) -> Strategy:
        """What the commands may ask of the server's dialect (``client.strategy.Strategy``)."""
        if self._strategy is None:
            self._strategy = dialects.strategy(self.dialect, self.api, self.token, self.verify)
        return self._strategy

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

    def watch_hint(self, sid: str) -> str:
        """What happens to an import this command stops following."""
        if self.embedded is not None:
            return "the embedded server stops with this command, so the import is abandoned and rolled back"
        return f"the import keeps running on the server; re-attach with: hextrackr watch {sid}"

    def watcher(self, settings: Settings, transport: str, timeout: float | None = None) -> Any:
        """A Watcher of this server's sessions, in its dialect."""
        from hextrackr_cli.client.watcher import Watcher

        return Watcher(
            self.api,
            server_url=self.url,
            token=self.token,
            transport=transport,
            poll_interval=settings.poll_interval,
            liveness=_liveness(settings.environment.environ),
            give_up_after=_liveness(settings.environment.environ, "HEXTRACKR_GIVE_UP", 30.0),
            verify=settings.verify,
            # --timeout bounds the whole command: a hung server must not hold the socket connect for long
            connect_timeout=min(10.0, max(1.0, timeout)) if timeout else 10.0,
            strategy=dialects.strategy(self.dialect, self.api, self.token, settings.verify),
        )


def _liveness(environ: Mapping[str, str], name: str = "HEXTRACKR_LIVENESS", default: float = 10.0) -> float:
    # Not documented options: let tests shorten the silent-socket bound and the failing-polls bound.
    try:
        return max(0.2, float(environ.get(name, str(default))))
    except ValueError:
        return default


def connect(settings: Settings, notice: Notice | None = None, timeout: float | None = None) -> Connection:
    """Resolve the server (URL, embedded, or refuse), check it answers, pick the dialect."""
    from hextrackr_cli.client.seed.api import SeedApi

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
                    f"(database {settings.environment.data_dir / 'hextrackr.db'}); set HEXTRACKR_SERVER or --server URL "
                    "to use another"
                )
        else:
            raise UsageError(
                "no server configured",
                hint="set HEXTRACKR_SERVER=URL or pass --server URL; --server local uses the embedded server",
            )
    if server == LOCAL:
        if settings.dialect not in ("auto", protocol.SEED.name):
            raise UsageError(f"the embedded server (--server local) speaks the seed protocol, not {settings.dialect}",
                             hint="drop --dialect / HEXTRACKR_DIALECT, or pass --server URL of the HexTrackr 1.1.x server")
        embedded = start_embedded(settings.environment.data_dir)
        server = embedded.url
        token = embedded.token
        token_hint = "the embedded server's generated token was refused (a bug: please report it)"
    api = SeedApi(server, token, verify=settings.verify, token_hint=token_hint)
    conn = Connection(url=server, token=token, api=api, dialect=protocol.SEED, embedded=embedded, verify=settings.verify)
    why = who = ""
    try:
        conn.dialect, why = dialects.detect(settings, api, timeout, _waiting(notice, settings))
        opened = dialects.open_api(conn.dialect, settings, server, timeout, _waiting(notice, settings))
        if opened is not None:  # the dialect logs in its own way: the seed API and its token are not used
            conn.api, who = opened
            conn.token = None
            api.close()
        conn.browser_view = api.health_info.get(protocol.HEALTH_BROWSER_VIEW) is True
    except BaseException:
        conn.close()
        raise
    if settings.verbose and notice is not None:
        where = "embedded" if embedded is not None else settings.source_of("server")
        token_from = "embedded server" if embedded is not None else settings.source_of("token")
        creds = who or f"token from {token_from}"
        notice(f"server {server} ({where}), {creds}, dialect {conn.dialect.name} ({why})")
    return conn


def _waiting(notice: Notice | None, settings: Settings) -> Callable[[str], None]:
    """How a rate-limit wait is said: a warning through ``notice`` when it takes a level, else on stderr."""

    def say(message: str) -> None:
        if notice is not None and getattr(notice, "levels", False):
            notice(message, "warning")  # type: ignore[call-arg]
            return
        settings.environment.say(f"hextrackr: {message}")

    return say


def start_embedded(data_dir: Path | None = None) -> Any:
    """The in-process server on the user's database (``--server local``), its log lines kept in a file."""
    try:
        from hextrackr_cli.server.app import start_background
    except ImportError as exc:
        raise UsageError(
            f"the embedded server is not available ({exc})",
            hint="install the server extra: pip install 'hextrackr[server]', or pass --server URL",
        ) from None
    from hextrackr_cli.server.storage import StorageError

    data_dir = data_dir or default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # the server's own log lines go to a file: the user sees only this command's output
        return start_background(database=f"sqlite:///{data_dir / 'hextrackr.db'}", log_file=data_dir / "server.log")
    except ValueError as exc:  # e.g. a database written by a newer hextrackr
        raise UsageError(str(exc)) from None
    except (OSError, RuntimeError, StorageError) as exc:  # unreadable or corrupt database, no free port…
        raise UsageError(f"the embedded server could not start: {exc}") from None
