"""Helpers for the CLI client tests: real server, real CLI subprocesses, generated CSVs."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

TOKEN = "client-test-token"
BIG_ROWS = 60_000
HEADER = "hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,first_seen,last_seen\n"
ANSI_RE = r"\x1b\[[0-9;?]*[A-Za-z]"


def gen_csv(path: Path, rows: int, *, offset: int = 0) -> Path:
    """A generic-format scan with ``rows`` distinct findings (deterministic)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in range(offset, offset + rows):
            h = i % 5000
            f.write(
                f"host{h}.example.com,10.{h // 250}.{h % 250}.{i % 200 + 1},CVE-2024-{10000 + i},High,{20000 + i},"
                f"Plugin {i},Description {i},Patch,ACTIVE,2025-10-01,2025-11-20\n"
            )
    return path


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


def cli_env(tmp_path: Path, server_url: str | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),  # the import ledger, lock files without a runtime dir
        XDG_RUNTIME_DIR=str(tmp_path),  # auto-named lock files
        PYTHONUNBUFFERED="1",
        COLUMNS="100",
    )
    env.pop("NO_COLOR", None)
    if server_url:
        env["HEXTRACKR_SERVER"] = server_url
    if token:
        env["HEXTRACKR_TOKEN"] = token
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hextrackr_cli", *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def spawn_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hextrackr_cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_json_until(proc: subprocess.Popen, predicate: Any, timeout: float = 30) -> list[dict]:
    """Read NDJSON lines from the process' stdout until ``predicate(obj)`` holds; return them all."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        obj = json.loads(line)
        seen.append(obj)
        if predicate(obj):
            return seen
    raise AssertionError(f"condition not met; saw {seen[-5:]}")


def interrupt_when(proc: subprocess.Popen, predicate: Any, presses: int = 1, timeout: float = 30) -> tuple[str, str, str]:
    """Read the CLI's NDJSON until ``predicate(obj)`` holds, press Ctrl-C (a real SIGINT) ``presses`` times 50 ms
    apart, and wait for the exit: (the session id of the last line read, stdout, stderr). Killed on any failure."""
    try:
        sid = read_json_until(proc, predicate)[-1]["sessionId"]
        for press in range(presses):
            if press:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return sid, out.decode(), err.decode()


def status(url: str, sid: str, token: str = TOKEN) -> dict:
    r = requests.get(f"{url}/api/import/progress/{sid}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def wait_outcome(url: str, sid: str, timeout: float = 60, token: str = TOKEN) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            body = status(url, sid, token)
        except requests.RequestException:
            body = {}
        if body.get("outcome") not in (None, "running", "pending"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"session {sid} did not finish: {body}")


def imports_total(url: str, token: str = TOKEN) -> int:
    r = requests.get(f"{url}/api/imports", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return int(r.json()["total"])


def vuln_rows(db_path: Path) -> int:
    conn = sqlite3.connect(str(db_path))
    try:
        return int(conn.execute("SELECT count(*) FROM vulnerabilities").fetchone()[0])
    finally:
        conn.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SERVER_SCRIPT = """
import signal, sys
from hextrackr_cli.server.app import start_background
srv = start_background(database=sys.argv[1], tokens=[sys.argv[2]], port=int(sys.argv[3]))
print("ready", srv.url, flush=True)
signal.sigwait([signal.SIGTERM])
srv.stop()
"""


class ServerProcess:
    """The embedded server in its own process on a fixed port, so it can be killed and restarted."""

    def __init__(self, db_path: Path, port: int, token: str = TOKEN) -> None:
        self.db_path = db_path
        self.port = port
        self.token = token
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, f"sqlite:///{self.db_path}", self.token, str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("ready"), line
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


# --------------------------------------------------------------------------- in-process runner
class Result:
    """What an in-process run gives back: the exit status and what the command wrote to each stream."""

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def __repr__(self) -> str:
        return f"Result(exit_code={self.exit_code}, stdout={self.stdout[-300:]!r}, stderr={self.stderr[-300:]!r})"

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def invoke(args: list[str], environ: dict[str, str] | None = None, *, input: str = "", tty: bool = False) -> Result:
    """Run ``hextrackr ARGS`` in this process through ``cli.run(argv, env=…)``: its own streams (stdin =
    ``input``), exactly the variables in ``environ`` (nothing from os.environ), terminals or not (``tty``)."""
    import io

    from hextrackr_cli.cli import run
    from hextrackr_cli.environment import Environment

    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin=io.StringIO(input), stdout=out, stderr=err, environ=dict(environ or {}),
                      stdin_isatty=tty, stdout_isatty=tty, stderr_isatty=tty)
    code = run(list(args), env=env)
    return Result(int(code), out.getvalue(), err.getvalue())
