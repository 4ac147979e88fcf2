"""The tests' fixtures: generated scans of three sizes, the embedded server (in this process), and a tiny
disk (a real "No space left on device")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from support.data import gen_csv

TOKEN = "client-test-token"
BIG_ROWS = 60_000


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60k rows (BIG_ROWS): long enough (a few seconds on the server) to watch, interrupt and time out."""
    return gen_csv(tmp_path_factory.mktemp("csv") / "generic_scan_2025-11-20.csv", BIG_ROWS)


@pytest.fixture(scope="module")
def medium_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30k rows: several progress events, about a second on the server."""
    return gen_csv(tmp_path_factory.mktemp("csv") / "medium.csv", 30_000)


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    return gen_csv(tmp_path / "small.csv", 50)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    """The real embedded server on an ephemeral port with a SQLite file in tmp_path."""
    from hextrackr_cli.server.app import start_background

    srv = start_background(database=f"sqlite:///{tmp_path / 'server.db'}", tokens=[TOKEN])
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 3 MiB tmpfs (root only): a real 'No space left on device' for the server's database."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
