"""Helpers shared by the fault suite's tests: the bad-input corpus, CLI runs, database fingerprints."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from helpers import hold_write_lock, wait_import_recorded  # noqa: F401  (re-exported for the fault tests)

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
CORPUS_DIR = TESTS / "data" / "bad"
TOKEN = "fault-suite-admin-token-0123456789"
OTHER_TOKEN = "fault-suite-other-token-9876543210"
THIRD_TOKEN = "fault-suite-third-token-5555555555"
HEADER = "hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,first_seen,last_seen\n"


def manifest() -> dict[str, dict]:
    return json.loads((CORPUS_DIR / "manifest.json").read_text(encoding="utf-8"))


def build_corpus(dest: Path) -> dict[str, Path]:
    """Every corpus file written into ``dest`` by the generator (the two big files are not committed)."""
    spec = importlib.util.spec_from_file_location("make_bad_corpus", TESTS / "data" / "make_bad_corpus.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.CASES.clear()
    mod.build()
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (data, _meta) in mod.CASES.items():
        (dest / name).write_bytes(data)
        out[name] = dest / name
    return out


def gen_csv(path: Path, rows: int, *, offset: int = 0, hosts: int = 5000, tag: str = "") -> Path:
    """A generic-format scan: ``rows`` findings, each a distinct record (host x CVE), deterministic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for i in range(offset, offset + rows):
            h = i % hosts
            f.write(
                f"host{h}.example.com,10.{h // 250 % 250}.{h % 250}.{i % 200 + 1},CVE-2024-{10000 + i},High,"
                f"{20000 + i},Plugin {i}{tag},Description {i},Patch,ACTIVE,2025-10-01,2025-11-20\n"
            )
    return path


def cli_env(home: Path, server_url: str | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env.update(XDG_CONFIG_HOME=str(home / "cfg"), XDG_DATA_HOME=str(home / "data"), PYTHONUNBUFFERED="1",
               COLUMNS="100", NO_COLOR="1")
    if server_url:
        env["HEXTRACKR_SERVER"] = server_url
    if token:
        env["HEXTRACKR_TOKEN"] = token
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 90,
            input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hextrackr_cli", *args], env=env, capture_output=True,
                          timeout=timeout, cwd=cwd, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)


def spawn_cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hextrackr_cli", *args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_json_until(proc: subprocess.Popen, predicate: Any, timeout: float = 60) -> list[dict]:
    """NDJSON objects from the CLI's stdout until ``predicate(obj)``; the CLI's stdout must stay open."""
    import queue
    import threading

    q: queue.Queue = queue.Queue()
    seen: list[dict] = []

    def reader() -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        q.put(line)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = threading.Thread(target=reader, daemon=True)
        t.start()
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


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_file(url: str, path: Path | None = None, *, data: bytes | None = None, filename: str = "scan.csv",
              token: str | None = TOKEN, session_id: str | None = None, kind: str = "vulnerabilities",
              fields: dict[str, str] | None = None, timeout: float = 60) -> requests.Response:
    """A raw multipart upload (text fields first), without any client-side check."""
    from requests_toolbelt.multipart.encoder import MultipartEncoder

    parts: list[tuple[str, Any]] = []
    if session_id:
        parts.append(("sessionId", session_id))
    for k, v in (fields or {}).items():
        parts.append((k, v))
    payload = data if data is not None else Path(path).read_bytes()  # type: ignore[arg-type]
    parts.append(("csvFile", (filename, payload, "text/csv")))
    enc = MultipartEncoder(fields=parts)
    headers = {"Content-Type": enc.content_type}
    if token is not None:
        headers.update(auth(token))
    return requests.post(f"{url}/api/{kind}/import", data=enc, headers=headers, timeout=timeout)


def status(url: str, sid: str, token: str = TOKEN) -> requests.Response:
    return requests.get(f"{url}/api/import/progress/{sid}", headers=auth(token), timeout=10)


def wait_outcome(url: str, sid: str, *, token: str = TOKEN, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            r = status(url, sid, token)
            body = r.json() if r.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            body = {}
        if body.get("outcome") not in (None, "running", "pending"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"session {sid} did not finish: {body}")


def imports_total(url: str, token: str = TOKEN) -> int:
    r = requests.get(f"{url}/api/imports", headers=auth(token), timeout=10)
    r.raise_for_status()
    return int(r.json()["total"])


def fingerprint(db_path: Path | str) -> dict[str, str]:
    """sha256 of every data table's full ordered content (not the import history)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out = {}
        for t in ("vulnerabilities", "vulnerability_snapshots", "tickets", "plugins"):
            h = hashlib.sha256()
            for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2"):
                h.update(repr(row).encode("utf-8"))
            out[t] = h.hexdigest()
        return out
    finally:
        conn.close()


def count(db_path: Path | str, table: str = "vulnerabilities", where: str = "", args: tuple = ()) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(conn.execute(sql, args).fetchone()[0])
    finally:
        conn.close()


def new_sid() -> str:
    return str(uuid.uuid4())


def last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def db_rows_all(db_path: Path | str, table: str = "vulnerabilities") -> list[dict]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        conn.close()


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def slow_enabled(config: Any) -> bool:
    """Long runs (marked ``slow``) only when asked for: ``-m slow`` or HEXTRACKR_FUZZ_SLOW=1."""
    return "slow" in (config.getoption("markexpr") or "") or os.environ.get("HEXTRACKR_FUZZ_SLOW") == "1"
