"""The server a command talks to: resolved (URL, embedded, or refused), checked, its dialect picked, logged in.

Transport objects (``client.api``, ``client.hx11_api``, ``client.watcher``) are built here from the Settings;
nothing here prints: what a user should know goes to the ``notice`` callable the caller gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hextrackr_cli import protocol
from hextrackr_cli.client.hx11.login import hx11_session
from hextrackr_cli.errors import AuthError, HextrackrError, ServerError, UsageError
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

        strategy = None
        if self.dialect is protocol.HEXTRACKR_11:
            from hextrackr_cli.client.hx11.strategy import Hx11Strategy

            strategy = Hx11Strategy(self.api)
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
            strategy=strategy,
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
        if settings.dialect == protocol.HEXTRACKR_11.name:
            raise UsageError("the embedded server (--server local) speaks the seed protocol, not hextrackr-1.1",
                             hint="drop --dialect / HEXTRACKR_DIALECT, or pass --server URL of the HexTrackr 1.1.x server")
        embedded = start_embedded(settings.environment.data_dir)
        server = embedded.url
        token = embedded.token
        token_hint = "the embedded server's generated token was refused (a bug: please report it)"
    api = SeedApi(server, token, verify=settings.verify, token_hint=token_hint)
    conn = Connection(url=server, token=token, api=api, dialect=protocol.SEED, embedded=embedded)
    why = who = ""
    try:
        conn.dialect, why = pick_dialect(settings, api, timeout, _waiting(notice, settings))
        if conn.dialect is protocol.HEXTRACKR_11:
            conn.api, who = hx11_session(settings, server, timeout, _waiting(notice, settings))
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


def pick_dialect(settings: Settings, api: Any, timeout: float | None = None,
                 notice: Any = None) -> tuple[protocol.Dialect, str]:
    """``--dialect``: forced, or decided from what the server answers; returns the dialect and why.

    A seed server (``hextrackr serve``) names its dialect in ``GET /health``; a HexTrackr 1.1.x server's
    ``/health`` is ``{"status":"ok","db":true,"uptime":…}`` (outside its rate-limited ``/api/``: it costs
    nothing), else its public ``GET /api/auth/status`` tells. A forced dialect the server does not speak is
    refused at once with the right ``--dialect``, before any credential is sent. /health also fails fast on a
    dead server.
    """
    import time

    from hextrackr_cli.client.hx11.api import Hx11Api
    from hextrackr_cli.client.hx11.events import health_looks_hx11

    hx11, seed = protocol.HEXTRACKR_11, protocol.SEED
    wanted = settings.dialect
    with Hx11Api(api.base_url, verify=settings.verify, connect_timeout=api.timeout[0],
                 read_timeout=min(api.timeout[1], timeout) if timeout else api.timeout[1]) as probe:
        probe.deadline = time.monotonic() + timeout if timeout else None
        probe.on_wait = notice
        try:
            health = api.health(timeout)
            failure: HextrackrError | None = None
        except (ServerError, AuthError) as exc:  # not JSON, an HTML 404, a refusal: maybe not a seed server
            health, failure = None, exc
        found = health.get("dialect") if health is not None else None
        looks_hx11 = health_looks_hx11(health)
        if wanted == hx11.name:
            if looks_hx11 or found == hx11.name:
                return hx11, "--dialect hextrackr-1.1"
            if found == seed.name:
                raise UsageError(f"{api.base_url} speaks the seed protocol (hextrackr serve), not hextrackr-1.1",
                                 hint="use --dialect seed or --dialect auto")
            if probe.probe():
                return hx11, "--dialect hextrackr-1.1"
            # Not recognised, but forced: the login says clearly what the server is not.
            return hx11, "--dialect hextrackr-1.1; the server did not confirm it"
        if found == seed.name or (health is not None and wanted == seed.name and found in (None, "") and not looks_hx11):
            _check_healthy(health)
            return seed, ("--dialect seed" if wanted == seed.name else "detected: its /health names the seed protocol")
        if found == hx11.name or looks_hx11 or probe.probe():
            if wanted == seed.name:
                raise UsageError(f"{api.base_url} is a HexTrackr 1.1.x server (dialect hextrackr-1.1), not a "
                                 "seed-protocol server; nothing was sent",
                                 hint="use --dialect hextrackr-1.1 or --dialect auto, with --username")
            how = ("its /health names it" if found == hx11.name else
                   "its /health answers like HexTrackr 1.1.x (status, db, uptime; no dialect)" if looks_hx11
                   else probe.probe_reason)
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

