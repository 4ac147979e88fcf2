"""Shared fixtures: a real embedded server on an ephemeral port with SQLite in tmp_path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start embedded servers (``start_background`` kwargs); each gets its own SQLite file unless given one."""
    from hextrackr_cli.server.app import start_background

    servers: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("database", f"sqlite:///{tmp_path / f'server{len(servers)}' / 'hextrackr.db'}")
        kwargs.setdefault("tokens", ["admin-token-0123456789abcdef"])
        srv = start_background(**kwargs)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def live_server(server_factory: Callable[..., Any]) -> Any:
    """An EmbeddedServer (url, token, database, db_path) on a tmp SQLite file, stopped after the test."""
    return server_factory()
