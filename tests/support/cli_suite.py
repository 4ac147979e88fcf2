"""The CLI suites' defaults: the token of the ``server`` fixture (``support.fixtures.TOKEN``) is the default token
of these helpers, and an import is polled every 0.2 s. The helpers themselves live in ``support.cli``,
``support.http`` and ``support.server``."""

from __future__ import annotations

from pathlib import Path

from support.cli import cli_env as _cli_env
from support.db import db_count
from support.fixtures import TOKEN
from support.http import imports_total as _imports_total
from support.http import progress
from support.http import wait_outcome as _wait_outcome
from support.server import ServerProcess as _ServerProcess


def cli_env(tmp_path: Path, server_url: str | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    return _cli_env(tmp_path, server_url, token, **extra)


def status(url: str, sid: str, token: str = TOKEN) -> dict:
    r = progress(url, sid, token)
    r.raise_for_status()
    return dict(r.json())


def wait_outcome(url: str, sid: str, timeout: float = 60, token: str = TOKEN) -> dict:
    return _wait_outcome(url, sid, token=token, timeout=timeout, interval=0.2)


def imports_total(url: str, token: str = TOKEN) -> int:
    return _imports_total(url, token)


def vuln_rows(db_path: Path) -> int:
    return db_count(db_path, "vulnerabilities")


class ServerProcess(_ServerProcess):
    def __init__(self, db_path: Path, port: int, token: str = TOKEN) -> None:
        super().__init__(db_path, port, token)
