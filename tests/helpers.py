"""Test helpers shared by every engineer's tests: real server processes, database checks, CSV generators,
real Socket.io clients that disconnect quickly."""

from __future__ import annotations

import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

LISTEN_RE = re.compile(r"hextrackr serve: listening on (http://\S+)")

TENABLE_HEADER = [
    "asset.id", "asset.name", "asset.display_ipv4_address", "asset.ipv4_addresses", "asset.operating_systems",
    "definition.id", "definition.name", "definition.family", "definition.cve", "definition.vpr.score",
    "definition.vpr_v2.score", "definition.description", "definition.solution", "definition.plugin_published",
    "definition.plugin_updated", "definition.vulnerability_published", "severity", "state", "first_seen",
    "last_seen",
]
GENERIC_HEADER = ["hostname", "ip_address", "cve", "severity", "vpr_score", "plugin_id", "plugin_name", "state",
                  "first_seen", "last_seen"]


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


# --------------------------------------------------------------------------- database checks
def db_rows(db_path: Path | str, table: str, where: str = "", args: Iterable[Any] = ()) -> list[dict]:
    """Every row of ``table`` (optionally filtered) as dicts, ordered by rowid/first column."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
        return [dict(r) for r in conn.execute(sql, tuple(args)).fetchall()]
    finally:
        conn.close()


def db_count(db_path: Path | str, table: str, where: str = "", args: Iterable[Any] = ()) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(conn.execute(sql, tuple(args)).fetchone()[0])
    finally:
        conn.close()


@contextmanager
def hold_write_lock(db_path: Path | str) -> Iterator[sqlite3.Connection]:
    """Another connection's write lock on a server's SQLite file, for the ``with`` block (``.close()`` releases it
    early): an import that has started stays mid-way (staged, waiting to merge), however fast imports have
    become. Take it once the upload is accepted (the server records the import when the POST arrives)."""
    holder = sqlite3.connect(str(db_path), timeout=5, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield holder
    finally:
        holder.close()


def wait_import_recorded(db_path: Path | str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the server has recorded an import (its upload accepted); fails if the CLI process ends first."""
    deadline = time.monotonic() + timeout
    while db_count(db_path, "imports") == 0:
        assert time.monotonic() < deadline and proc.poll() is None, "the import never started"
        time.sleep(0.02)


def db_snapshot(db_path: Path | str) -> dict[str, list[tuple]]:
    """The data tables' full content (not the import history), to compare before/after a failed import."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in ("vulnerabilities", "vulnerability_snapshots", "tickets")}
    finally:
        conn.close()


# --------------------------------------------------------------------------- CSV generators (deterministic)
def tenable_rows(n: int, *, seed: int = 1, hosts: int = 500, date: str = "2025-11-20") -> Iterable[list[str]]:
    """``n`` Tenable VM export rows: each row a distinct finding (asset x plugin), some with several CVEs."""
    rnd = random.Random(seed)
    sev = ["Critical", "High", "Medium", "Low", "Info"]
    for i in range(n):
        h = i % hosts
        plugin = 100000 + i // hosts
        ncve = 1 if i % 7 else 2
        cves = ",".join(f"CVE-20{20 + (plugin + k) % 5}-{(plugin * 3 + k) % 90000 + 10000}" for k in range(ncve))
        yield [
            f"a{h:05d}-0000-4000-8000-{h:012d}", f"host{h:05d}.corp.example", f"10.{h // 65536}.{h // 256 % 256}.{h % 256}",
            f"10.{h // 65536}.{h // 256 % 256}.{h % 256}", "Linux", str(plugin), f"Plugin {plugin} vulnerability",
            "General", cves, f"{rnd.random() * 10:.1f}", f"{rnd.random() * 10:.1f}",
            f"Description of plugin {plugin}, with a comma and \"quotes\".", "Upgrade the package.",
            "2024-01-01", "2025-01-01", "2023-06-01", sev[(i * 31) % 5], "ACTIVE", "2025-01-15", date,
        ]


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_tenable_csv(path: Path, n: int, **kw: Any) -> Path:
    return write_csv(path, TENABLE_HEADER, tenable_rows(n, **kw))


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


# --------------------------------------------------------------------------- HTTP
def post_import(url: str, token: str | None, content: bytes | str | Path, *, filename: str = "scan.csv",
                kind: str = "vulnerabilities", session_id: str | None = None, timeout: float = 60.0,
                **fields: str) -> Any:
    """POST a CSV to the import endpoint (streamed with MultipartEncoder); returns the requests.Response."""
    import requests
    from requests_toolbelt import MultipartEncoder

    form: dict[str, Any] = {}
    if session_id is not None:
        form["sessionId"] = session_id
    form.update(fields)
    if isinstance(content, Path):
        handle: Any = open(content, "rb")
    else:
        handle = content.encode("utf-8") if isinstance(content, str) else content
    form["csvFile"] = (filename, handle, "text/csv")
    try:
        enc = MultipartEncoder(fields=form)
        headers = {"Content-Type": enc.content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        path = "/api/vulnerabilities/import" if kind == "vulnerabilities" else "/api/tickets/import"
        return requests.post(url + path, data=enc, headers=headers, timeout=timeout)
    finally:
        if isinstance(content, Path):
            handle.close()


def get_json(url: str, token: str | None, path: str, timeout: float = 30.0) -> Any:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(url + path, headers=headers, timeout=timeout)


def wait_for_outcome(url: str, token: str, session_id: str, timeout: float = 60.0) -> dict:
    """Poll the progress endpoint until the import has ended (bounded); returns the final SessionState."""
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = get_json(url, token, f"/api/import/progress/{session_id}").json()
        if state.get("outcome") not in (None, "running"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"import {session_id} did not end within {timeout}s: {state}")


GENERIC_CSV = (
    "hostname,ip_address,cve,severity,vpr_score,plugin_id,plugin_name,state,first_seen,last_seen\n"
    "web01,10.0.0.1,\"CVE-2024-0001,CVE-2024-0002\",High,7.5,1001,OpenSSL bug,ACTIVE,2025-01-01,2025-11-20\n"
    "web02,10.0.0.2,CVE-2024-0003,Low,1.0,1002,Banner leak,ACTIVE,2025-01-01,2025-11-20\n"
)
