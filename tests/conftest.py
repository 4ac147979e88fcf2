"""The suites (one folder and one marker each, table below), and the shared fixtures: a real embedded server
on an ephemeral port with SQLite in tmp_path."""

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


# --------------------------------------------------------------------------- the suites
# One folder per suite under tests/, each selected by the marker of its name: `pytest -m hx11`,
# `pytest -m "not browser and not scaleout"`, `make test PYTEST_ARGS="-m cli"`.
SUITES = {
    "unit": "pure modules, no server and no subprocess: protocol, settings, tracker, Follower, the layer rule",
    "server": "the embedded server: HTTP API, Socket.io, the import pipeline, storage on SQLite and PostgreSQL",
    "cli": "the CLI as a user runs it (subprocess and in-process) against the real embedded server; the Python API",
    "formats": "scanner exports: detection, readers, the real corpus in tests/data/real, compressed and .nessus files",
    "gate": "the severity gate and the CI reports (JUnit, Markdown, GitHub, GitLab)",
    "cron": "unattended runs: --if-changed and the ledger, --lock, -qq and --log-file, sweep DIR",
    "hx11": "HexTrackr 1.1.x: the protocol double, the client and the CLI against it, the real server (real_hx11)",
    "faults": "bad input, injected faults, fuzzing and security, with the fault figures at the end of the run",
    "scaleout": "several workers sharing PostgreSQL and Redis",
    "browser": "the browser view in headless Chromium (Selenium)",
}
# Modules left directly in tests/ (the landing check runs test_artifacts.py by this path).
TOP_LEVEL = {"test_artifacts.py": "unit"}
TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    for name, what in SUITES.items():
        config.addinivalue_line("markers", f"{name}: {what} (tests/{name}/)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test gets the marker of its suite folder."""
    for item in items:
        try:
            parts = item.path.resolve().relative_to(TESTS).parts
        except ValueError:
            continue
        suite = parts[0] if len(parts) > 1 else TOP_LEVEL.get(parts[0])
        if suite in SUITES:
            item.add_marker(suite)
        else:
            item.warn(pytest.PytestWarning(f"{'/'.join(parts)} is in no suite: move it into one of tests/"
                                           f"{{{','.join(SUITES)}}}/ (tests/conftest.py SUITES)"))
