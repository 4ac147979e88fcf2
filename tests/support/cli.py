"""The CLI as a user runs it: its own environment (XDG dirs in the test's tmp), a real subprocess, its NDJSON
read line by line with a real deadline, a real Ctrl-C; and the in-process runner (``cli.run(argv, env=…)``)."""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ANSI_RE = r"\x1b\[[0-9;?]*[A-Za-z]"


def cli_env(home: Path, server_url: str | None, token: str | None, **extra: str) -> dict[str, str]:
    """os.environ without HEXTRACKR_* and NO_COLOR, every XDG directory under ``home``, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env.update(
        XDG_CONFIG_HOME=str(home / "cfg"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),  # the import ledger, lock files without a runtime dir
        XDG_RUNTIME_DIR=str(home),  # auto-named lock files
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


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60, input: bytes | None = None, *,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hextrackr_cli", *args], env=env, capture_output=True,
                          timeout=timeout, cwd=cwd, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)


def spawn_cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hextrackr_cli", *args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_json_until(proc: subprocess.Popen, predicate: Any, timeout: float = 30) -> list[dict]:
    """NDJSON objects from the CLI's stdout until ``predicate(obj)`` holds; all of them. The deadline holds even
    while the CLI prints nothing (each line is read in a helper thread)."""
    q: queue.Queue = queue.Queue()
    seen: list[dict] = []

    def reader() -> None:
        assert proc.stdout is not None
        q.put(proc.stdout.readline())

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        threading.Thread(target=reader, daemon=True).start()
        try:
            line = q.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
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


def pty_session(argv: list[str], env: dict[str, str], answers: list[tuple[bytes, bytes]], timeout: float = 60) -> tuple[int, bytes]:
    """Run argv on a real pseudo-terminal; when the output shows a prompt, type the answer. Returns (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(argv[0], argv, env)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if pending and pending[0][0] in output:
                os.write(fd, pending.pop(0)[1])
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output
