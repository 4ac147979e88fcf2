"""The dialects the client speaks, one package each (``client/seed/``, ``client/hx11/``), and the one
``detect()`` that tells which one a server speaks.

A dialect package offers ``new_strategy(api, token, verify)`` (its :class:`~hextrackr_cli.client.strategy.Strategy`:
what the Watcher and the commands need of it) and ``open_api(settings, server, timeout, notice)`` (its own
logged-in API, or None when the seed's token-authenticated one serves). A third dialect is a third folder, a
``protocol.Dialect`` and a line in :data:`PACKAGES` (and a rule in ``detect()``).
"""

from __future__ import annotations

import importlib
import time
from typing import Any, Callable

from hextrackr_cli import protocol
from hextrackr_cli.client.strategy import Strategy
from hextrackr_cli.errors import AuthError, HextrackrError, ServerError, UsageError
from hextrackr_cli.settings import Settings

PACKAGES: dict[str, str] = {
    protocol.SEED.name: "hextrackr_cli.client.seed",
    protocol.HEXTRACKR_11.name: "hextrackr_cli.client.hx11",
}


def _package(dialect: protocol.Dialect) -> Any:
    return importlib.import_module(PACKAGES[dialect.name])


def strategy(dialect: protocol.Dialect, api: Any, token: str | None, verify: bool | str) -> Strategy:
    """The dialect's Strategy over ``api`` (a fresh one: it keeps per-session state)."""
    made: Strategy = _package(dialect).new_strategy(api, token, verify)
    return made


def open_api(dialect: protocol.Dialect, settings: Settings, server: str, timeout: float | None,
             notice: Callable[[str], None]) -> tuple[Any, str] | None:
    """The dialect's own logged-in API and a line saying how (for ``-v``), or None: the seed API serves."""
    opened: tuple[Any, str] | None = _package(dialect).open_api(settings, server, timeout, notice)
    return opened


def detect(settings: Settings, api: Any, timeout: float | None = None,
                 notice: Any = None) -> tuple[protocol.Dialect, str]:
    """``--dialect``: forced, or decided from what the server answers; returns the dialect and why.

    A seed server (``hextrackr serve``) names its dialect in ``GET /health``; a HexTrackr 1.1.x server's
    ``/health`` is ``{"status":"ok","db":true,"uptime":…}`` (outside its rate-limited ``/api/``: it costs
    nothing), else its public ``GET /api/auth/status`` tells. A forced dialect the server does not speak is
    refused at once with the right ``--dialect``, before any credential is sent. /health also fails fast on a
    dead server.
    """
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

