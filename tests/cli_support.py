"""Old name of the CLI tests' helpers, kept for the tests that import it: everything here lives in
``tests/support/`` (see its ``__init__``), with this suite's token as the default; new tests import from there."""

from __future__ import annotations

from pathlib import Path

from support.cli import ANSI_RE, Result, interrupt_when, invoke, read_json_until, run_cli, spawn_cli  # noqa: F401
from support.cli import cli_env as _cli_env
from support.data import HEADER, gen_csv  # noqa: F401
from support.db import db_count
from support.fixtures import BIG_ROWS, TOKEN, big_csv, medium_csv, server, small_csv  # noqa: F401
from support.http import imports_total as _imports_total
from support.http import progress
from support.http import wait_outcome as _wait_outcome
from support.server import SERVER_SCRIPT, free_port  # noqa: F401
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
