"""Real servers and real Socket.io clients: ``hextrackr serve`` in a subprocess, the embedded server in a
process of its own (killable, restartable on the same port), python-socketio clients recording what they hear."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LISTEN_RE = re.compile(r"hextrackr serve: listening on (http://\S+)")


# --------------------------------------------------------------------------- a real `hextrackr serve` process
@dataclass
class SpawnedServer:
    proc: subprocess.Popen
    url: str
    token: str
    db_path: Path
    stderr_lines: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the server and wait for it; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)


def spawn_server(tmp_path: Path, *extra_args: str, token: str | None = "test-token-0123456789",
                 env: dict | None = None, timeout: float = 30.0) -> SpawnedServer:
    """Run ``python -m hextrackr_cli serve --port 0 --database sqlite:///… --token …`` and wait until it listens."""
    db_path = tmp_path / "server" / "hextrackr.db"
    args = [sys.executable, "-m", "hextrackr_cli", "serve", "--port", "0", "--database", f"sqlite:///{db_path}"]
    if token is not None:
        args += ["--token", token]
    args += list(extra_args)
    full_env = dict(os.environ)
    full_env.setdefault("XDG_CONFIG_HOME", str(tmp_path / "config"))
    full_env.setdefault("XDG_DATA_HOME", str(tmp_path / "data"))
    full_env.pop("HEXTRACKR_TOKEN", None)
    full_env.update(env or {})
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)
    lines: list[str] = []
    found: queue.Queue = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            m = LISTEN_RE.search(line)
            if m:
                found.put(m.group(1))
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = found.get(timeout=timeout)
    except queue.Empty:
        url = None
    if url is None:
        proc.kill()
        proc.wait(5)
        raise AssertionError("hextrackr serve did not start:\n" + "".join(lines))
    if token is None:
        m = None
        for line in lines:
            m = re.search(r"generated token \(shown once\): (\S+)", line) or m
        token = m.group(1) if m else ""
    return SpawnedServer(proc, url, token, db_path, lines)


# --------------------------------------------------------------------------- the embedded server in its own process
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

    def __init__(self, db_path: Path, port: int, token: str) -> None:
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


# --------------------------------------------------------------------------- Socket.io clients
class EventLog:
    """Collects Socket.io events in arrival order; wait() blocks until a predicate holds (event driven)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, Any]] = []
        self._cond = threading.Condition()

    def add(self, name: str, data: Any) -> None:
        with self._cond:
            self.events.append((time.monotonic(), name, data))
            self._cond.notify_all()

    def wait(self, predicate: Any, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def progress(self) -> list[dict]:
        with self._cond:
            return [d for _, n, d in self.events if n == "importProgress"]

    def names(self) -> list[str]:
        with self._cond:
            return [n for _, n, _ in self.events]

    def terminal(self) -> bool:
        return any(d.get("type") in ("complete", "error") for d in self.progress()) or "importCancelled" in self.names()


def socket_client(url: str, token: str | None, transport: str = "websocket", log: EventLog | None = None) -> Any:
    """A connected python-socketio client recording importProgress/importCancelled into ``log``."""
    import engineio.payload
    import socketio

    engineio.payload.Payload.max_decode_packets = 256
    sio = socketio.Client(reconnection=False)
    if log is not None:
        sio.on("importProgress", lambda d: log.add("importProgress", d))
        sio.on("importCancelled", lambda d: log.add("importCancelled", d))
    sio.connect(url, auth={"token": token} if token is not None else None, transports=[transport],
                wait_timeout=20)
    return sio


def close_client(sio: Any) -> None:
    """Disconnect without the sync polling client's ~25 s wait for its pending long-poll."""
    try:
        if sio.connected:
            sio.eio.disconnect(abort=True)
    except Exception:
        pass
