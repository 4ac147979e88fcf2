"""The HexTrackr 1.1.x dialect: its HTTP API (cookie + CSRF), login, upload conversion, event translation, ETA,
history/status mapping, the one-import-at-a-time guard and its Watcher strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from hextrackr_cli.client.strategy import Strategy
    from hextrackr_cli.settings import Settings


def new_strategy(api: Any, token: str | None, verify: bool | str) -> Strategy:
    from hextrackr_cli.client.hx11.strategy import Hx11Strategy

    return Hx11Strategy(api)


def open_api(settings: Settings, server: str, timeout: float | None,
             notice: Callable[[str], None]) -> tuple[Any, str] | None:
    """Log in (a saved session cookie while the server accepts it, else user + password)."""
    from hextrackr_cli.client.hx11.login import hx11_session

    opened: tuple[Any, str] = hx11_session(settings, server, timeout, notice)
    return opened
