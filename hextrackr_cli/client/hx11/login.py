"""The HexTrackr 1.1.x login: a saved session cookie while the server accepts it, else user + password."""

from __future__ import annotations

import time
from typing import Any

from hextrackr_cli.errors import UsageError
from hextrackr_cli.settings import Settings


def hx11_session(settings: Settings, server: str, timeout: float | None = None,
                 on_wait: Any = None) -> tuple[Any, str]:
    """A logged-in ``Hx11Api`` and a line saying how (for ``-v``; never the password or the cookie).

    A session cookie (``hextrackr login --save-cookie`` or HEXTRACKR_COOKIE) is used while the server still
    accepts it; otherwise the user logs in with the password from ``--password-stdin``, HEXTRACKR_PASSWORD or
    a prompt on a terminal. The cookie stays in memory.
    """
    from hextrackr_cli.client.hx11.api import Hx11Api

    api = Hx11Api(server, verify=settings.verify, read_timeout=min(30.0, max(1.0, timeout)) if timeout else 30.0)
    api.deadline = time.monotonic() + timeout if timeout else None  # a 429 is waited out within --timeout
    api.on_wait = on_wait
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
        password = settings.environment.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on stdin",
                             hint='e.g. printf %s "$PASSWORD" | hextrackr --password-stdin import FILE')
        return password, "stdin"
    environ = settings.environment.environ
    if environ.get("HEXTRACKR_PASSWORD"):
        return environ["HEXTRACKR_PASSWORD"], "HEXTRACKR_PASSWORD"
    if settings.stdin_isatty:
        import click

        password = click.prompt(f"Password for {user}", hide_input=True, err=True, default="", show_default=False)
        if password:
            return password, "the prompt"
    raise UsageError(f"no password for HexTrackr 1.1.x user {user}",
                     hint="set HEXTRACKR_PASSWORD or pipe it with --password-stdin (there is no password flag)")
