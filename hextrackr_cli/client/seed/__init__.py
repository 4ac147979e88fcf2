"""The seed dialect (``hextrackr serve``): its HTTP API and its Watcher strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from hextrackr_cli.client.strategy import Strategy
    from hextrackr_cli.settings import Settings


def new_strategy(api: Any, token: str | None, verify: bool | str) -> Strategy:
    from hextrackr_cli.client.seed.strategy import SeedStrategy

    return SeedStrategy(api, token, verify)


def open_api(settings: Settings, server: str, timeout: float | None,
             notice: Callable[[str], None]) -> tuple[Any, str] | None:
    return None  # the connection's token-authenticated SeedApi is the one
