"""Several `hextrackr serve` workers sharing a real Redis (Socket.io message queue, session state) and a real
PostgreSQL database (issue 9): events, joins, polls and cancels cross workers; a killed worker's import fails
cleanly; concurrent imports lose nothing; Redis down is said and refused.

Each module run gets a fresh database ``hextrackr_test_<random>`` (dropped afterwards) and its own Redis key
prefix, so parallel runs never meet. Without PostgreSQL/Redis on loopback the module is skipped with the reason,
unless CI_STRICT is set (then it fails: CI must run it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from support.cli import read_json_until, spawn_cli
from support.cli_suite import cli_env
from support.data import gen_csv
from support.server import free_port
from support.data import GENERIC_CSV
from support.http import get_json, post_import, wait_for_outcome
from support.server import EventLog, close_client, socket_client, spawn_server

PG_ADMIN = os.environ.get("HEXTRACKR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("HEXTRACKR_TEST_REDIS", "redis://127.0.0.1:6379/0")
TOKEN = "scaleout-token-0123456789"
OTHER = "scaleout-other-token-0123456789"  # a second, non-admin token of the same workers


def _unavailable(reason: str) -> None:
    if os.environ.get("CI_STRICT"):
        pytest.fail(f"{reason} (CI_STRICT is set: these tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install '.[postgres]')")
    name = f"hextrackr_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def mq_url() -> str:
    try:
        import redis
    except ImportError:
        _unavailable("redis is not installed (pip install '.[redis]')")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis is not reachable at {REDIS}: {exc}")
    return f"{REDIS}?prefix=hextrackr_test_{secrets.token_hex(4)}"


def _spawn(tmp: Path, pg: str, mq: str, *extra: str) -> Any:
    return spawn_server(tmp, "--database", pg, "--message-queue", mq, "--token", OTHER, *extra, token=TOKEN)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, pg_url: str, mq_url: str) -> Iterator[list[Any]]:
    """Three real worker processes (A, B, C) on their own ports, one database, one Redis."""
    procs = [_spawn(tmp_path_factory.mktemp(f"worker{i}"), pg_url, mq_url) for i in range(3)]
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200k rows: several seconds on a worker, long enough to watch, cancel and kill mid-way."""
    return gen_csv(tmp_path_factory.mktemp("csv") / "generic_scan_2025-11-20.csv", 200_000)


def _pg_count(pg: str, sql: str, *args: Any) -> int:
    import psycopg

    with psycopg.connect(pg) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def _running(url: str, sid: str, at_least: float = 12, timeout: float = 30) -> dict:
    """Wait until the import's state (seen from ``url``) is loading past ``at_least`` %."""
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = get_json(url, TOKEN, f"/api/import/progress/{sid}").json()
        if state.get("outcome") != "running" or state.get("progress", 0) >= at_least:
            return state
        time.sleep(0.02)
    raise AssertionError(f"import {sid} did not get going: {state}")


def test_posted_to_a_watched_by_the_cli_on_b_cancelled_from_c(workers: list[Any], scan: Path, pg_url: str,
                                                             tmp_path: Path) -> None:
    a, b, c = workers
    before = _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities")
    r = post_import(a.url, TOKEN, scan, vendor="cancelme")
    assert r.status_code == 202, r.text
    sid = r.json()["sessionId"]
    watch = spawn_cli(["--output", "json", "watch", sid], cli_env(tmp_path, b.url, TOKEN))
    try:
        # the CLI on B hears the progress A emits (through Redis)
        seen = read_json_until(watch, lambda o: o.get("type") in ("parsing", "loading"), timeout=30)
        assert seen[-1]["sessionId"] == sid
        sio = socket_client(c.url, TOKEN)
        try:
            ack = sio.call("cancelImport", sid, timeout=10)
        finally:
            close_client(sio)
        assert ack == {"ok": True}
        out, err = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["outcome"] == "cancelled", lines[-3:]
    assert watch.returncode == 1
    # the cancel crossed to A, which rolled back: nothing of it in the database, the record says cancelled
    for w in workers:
        assert wait_for_outcome(w.url, TOKEN, sid)["outcome"] == "cancelled"
    assert _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities") == before
    assert _pg_count(pg_url, "SELECT count(*) FROM imports WHERE session_id = %s AND status = 'cancelled'", sid) == 1


def test_polling_client_on_b_follows_an_import_on_a(workers: list[Any], tmp_path: Path, pg_url: str) -> None:
    a, b, _ = workers
    log = EventLog()
    sio = socket_client(b.url, TOKEN, transport="polling", log=log)
    try:
        path = gen_csv(tmp_path / "poll.csv", 20_000, offset=500_000)
        r = post_import(a.url, TOKEN, path, vendor="polled")
        sid = r.json()["sessionId"]
        ack = sio.call("joinSession", sid, timeout=10)
        assert ack["ok"] is True and ack["session"]["sessionId"] == sid  # the current state, from any worker
        assert log.wait(lambda l: l.terminal(), timeout=60)
    finally:
        close_client(sio)
    final = log.progress()[-1]
    assert final["type"] == "complete" and final["processedRows"] == 20_000
    assert final["records"] == _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities WHERE vendor = 'polled'")
    # the progress endpoint answers the same on every worker
    assert {wait_for_outcome(w.url, TOKEN, sid)["summary"]["records"] for w in workers} == {final["records"]}


def test_a_reservation_on_one_worker_holds_on_every_worker(workers: list[Any]) -> None:
    """Reserved (joinSession + reserve) on B by one token: another token's upload to A is refused, the reserving
    token's upload to A runs there and B's client hears it all."""
    a, b, _ = workers
    sid = str(uuid.uuid4())
    log = EventLog()
    sio = socket_client(b.url, OTHER, log=log)
    try:
        assert sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)["ok"] is True
        r = post_import(a.url, TOKEN, GENERIC_CSV, session_id=sid)
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        r = post_import(a.url, OTHER, GENERIC_CSV, session_id=sid, vendor="reserved")
        assert r.status_code == 202, r.text
        assert log.wait(lambda l: l.terminal(), timeout=30)
        assert log.progress()[-1]["type"] == "complete"
        ack = sio.call("joinSession", sid, timeout=10)  # B's stale reservation gave way to A's session
        assert ack["ok"] is True and ack["session"]["outcome"] == "completed"
    finally:
        close_client(sio)


class RoundRobin:
    """A load balancer without sticky sessions: each new TCP connection goes to the next worker."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.count = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            port = self.ports[self.count % len(self.ports)]
            self.count += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", port))
            except OSError:
                client.close()
                continue
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_cli_import_through_a_load_balancer_without_stickiness(workers: list[Any], tmp_path: Path,
                                                              pg_url: str) -> None:
    """Health check, websocket and upload land on different workers; the websocket transport still works."""
    lb = RoundRobin([int(w.url.rsplit(":", 1)[1]) for w in workers])
    try:
        path = gen_csv(tmp_path / "generic_scan_2025-11-21.csv", 20_000, offset=900_000)
        proc = spawn_cli(["--output", "json", "import", str(path), "--vendor", "balanced"],
                         cli_env(tmp_path, lb.url, TOKEN))
        out, err = proc.communicate(timeout=90)
    finally:
        lb.close()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert proc.returncode == 0, err.decode()[-2000:]
    assert lb.count >= 2  # the requests really were spread
    summary = lines[-1]
    assert summary["outcome"] == "completed" and summary["rows"] == 20_000
    assert [o["transport"] for o in lines if o.get("event") == "transport"] == ["websocket"]
    # live progress from whichever worker ran it, not just the end
    assert any(o.get("type") in ("parsing", "loading", "processing", "finalizing") for o in lines)
    assert _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities WHERE vendor = 'balanced'") == summary["records"]


def test_eight_concurrent_imports_across_workers_lose_no_row(workers: list[Any], tmp_path: Path,
                                                             pg_url: str) -> None:
    paths = [gen_csv(tmp_path / f"c{i}.csv", 5_000, offset=2_000_000 + i * 10_000) for i in range(8)]

    def one(i: int) -> dict:
        w = workers[i % len(workers)]
        r = post_import(w.url, TOKEN, paths[i], vendor=f"concurrent{i}")
        assert r.status_code == 202, r.text
        return wait_for_outcome(workers[(i + 1) % len(workers)].url, TOKEN, r.json()["sessionId"], timeout=120)

    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(one, range(8)))
    assert [s["outcome"] for s in states] == ["completed"] * 8
    for i, s in enumerate(states):
        assert s["summary"]["rows"] == 5_000
        stored = _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities WHERE vendor = %s", f"concurrent{i}")
        assert stored == s["summary"]["records"] == 5_000  # one record per row: 0 lost


def test_an_import_waiting_for_another_workers_import_says_so_and_can_be_cancelled(workers: list[Any], pg_url: str,
                                                                                 tmp_path: Path) -> None:
    """Merges are serialized across workers by a PostgreSQL advisory lock (held here by the test, as a running
    import on another worker would): the waiting import says it waits, and a cancel from another worker stops it."""
    import psycopg

    from hextrackr_cli.server.storage.postgres import IMPORT_LOCK

    a, b, c = workers
    log = EventLog()
    sio = socket_client(c.url, TOKEN, log=log)
    holder = psycopg.connect(pg_url, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (IMPORT_LOCK,))
        r = post_import(b.url, TOKEN, gen_csv(tmp_path / "w.csv", 100, offset=8_000_000), vendor="waiting")
        sid = r.json()["sessionId"]
        assert sio.call("joinSession", sid, timeout=10)["ok"] is True
        assert log.wait(lambda l: any("Waiting for another import" in d["message"] for d in l.progress()), 30)
        assert sio.call("cancelImport", sid, timeout=10) == {"ok": True}
        assert log.wait(lambda l: "importCancelled" in l.names(), 30)
    finally:
        close_client(sio)
        holder.close()
    assert wait_for_outcome(a.url, TOKEN, sid)["outcome"] == "cancelled"
    assert _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities WHERE vendor = 'waiting'") == 0
    r = post_import(b.url, TOKEN, gen_csv(tmp_path / "w2.csv", 100, offset=8_100_000), vendor="waited")
    assert wait_for_outcome(a.url, TOKEN, r.json()["sessionId"])["outcome"] == "completed"


def test_worker_killed_mid_import_fails_cleanly(workers: list[Any], scan: Path, pg_url: str, mq_url: str,
                                               tmp_path: Path) -> None:
    victim = _spawn(tmp_path / "victim", pg_url, mq_url)
    b = workers[1]
    log = EventLog()
    sio = socket_client(b.url, TOKEN, log=log)
    try:
        r = post_import(victim.url, TOKEN, scan, vendor="killed")
        sid = r.json()["sessionId"]
        assert sio.call("joinSession", sid, timeout=10)["ok"] is True
        state = _running(b.url, sid)
        assert state["outcome"] == "running", state
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        # another worker notices (heartbeat gone), records the failure and tells the room
        assert log.wait(lambda l: l.terminal(), timeout=30), log.names()
    finally:
        close_client(sio)
    final = log.progress()[-1]
    assert final["type"] == "error" and "worker" in final["message"]
    state = wait_for_outcome(b.url, TOKEN, sid)
    assert state["outcome"] == "failed"
    assert _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities WHERE vendor = 'killed'") == 0
    assert _pg_count(pg_url, "SELECT count(*) FROM imports WHERE session_id = %s AND status = 'failed'", sid) == 1
    # the shared database took no harm: the next import (on another worker) goes through
    r = post_import(workers[2].url, TOKEN, gen_csv(tmp_path / "after.csv", 100, offset=5_000_000), vendor="after")
    assert wait_for_outcome(b.url, TOKEN, r.json()["sessionId"])["outcome"] == "completed"


def test_postgresql_connection_lost_mid_import_fails_it_cleanly(workers: list[Any], scan: Path, pg_url: str) -> None:
    import psycopg

    a, b, _ = workers
    r = post_import(a.url, TOKEN, scan, vendor="connlost")
    sid = r.json()["sessionId"]
    assert _running(b.url, sid)["outcome"] == "running"
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:  # what a PostgreSQL restart does to a connection
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s"
            " AND application_name = 'hextrackr' AND query ILIKE '%%staging%%'", (name,)).fetchone()[0]
    assert killed == 1
    state = wait_for_outcome(b.url, TOKEN, sid)
    assert state["outcome"] == "failed"
    assert "PostgreSQL" in state["error"] and "nothing was changed" in state["error"]
    assert _pg_count(pg_url, "SELECT count(*) FROM vulnerabilities WHERE vendor = 'connlost'") == 0
    assert _pg_count(pg_url, "SELECT count(*) FROM imports WHERE session_id = %s AND status = 'failed'", sid) == 1
    # the worker itself is fine: its next import goes through
    r = post_import(a.url, TOKEN, gen_csv(Path(str(scan) + ".small.csv"), 100, offset=7_000_000), vendor="connback")
    assert wait_for_outcome(b.url, TOKEN, r.json()["sessionId"])["outcome"] == "completed"


def test_redis_down_is_reported_and_imports_are_refused(pg_url: str, tmp_path: Path) -> None:
    exe = shutil.which("redis-server")
    if exe is None:
        _unavailable("redis-server is not installed (needed to take a private Redis down)")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis_proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        server = _spawn(tmp_path / "w", pg_url, f"redis://127.0.0.1:{port}/0?prefix=down")
        health = requests.get(server.url + "/health", timeout=10)
        assert health.status_code == 200 and health.json()["messageQueue"] == "ok"

        redis_proc.terminate()
        redis_proc.wait(10)
        health = requests.get(server.url + "/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["messageQueue"] == "unavailable" and health.json()["database"] == "ok"
        r = post_import(server.url, TOKEN, gen_csv(tmp_path / "x.csv", 10), vendor="nomq")
        assert r.status_code == 503 and r.json()["code"] == "message_queue"
        assert "Redis" in r.json()["error"]
        assert _pg_count(pg_url, "SELECT count(*) FROM imports WHERE vendor = 'nomq'") == 0

        redis_proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while requests.get(server.url + "/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the server did not see Redis come back"
            time.sleep(0.1)
        r = post_import(server.url, TOKEN, gen_csv(tmp_path / "y.csv", 10), vendor="nomq")
        assert wait_for_outcome(server.url, TOKEN, r.json()["sessionId"])["outcome"] == "completed"
    finally:
        if server is not None:
            server.stop()
        redis_proc.terminate()
        redis_proc.wait(10)


def _two_free_ports() -> int:
    """A port P with P and P+1 both free now (the workers listen on PORT … PORT+N-1)."""
    for _ in range(100):
        port = free_port()
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue
    raise AssertionError("no two consecutive free ports")


def test_serve_workers_runs_that_many_workers(pg_url: str, mq_url: str, tmp_path: Path) -> None:
    port = _two_free_ports()
    env = cli_env(tmp_path, None, None, HEXTRACKR_TOKEN=TOKEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hextrackr_cli", "serve", "--port", str(port), "--workers", "2",
         "--database", pg_url, "--message-queue", mq_url],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        urls: list[str] = []
        pids: list[str] = []
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while len(urls) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "listening on" in line:
                urls.append(line.rsplit(" ", 1)[1].strip())
            if "supervising" in line:
                pids = line.split("pids ", 1)[1].rstrip(")\n").split(", ")
        assert sorted(urls) == [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
        for url in urls:
            assert requests.get(url + "/health", timeout=10).json()["messageQueue"] == "ok"
        assert len(pids) == 2
        for pid in pids:  # the token and the URLs reach the workers, but never on a command line
            cmdline = open(f"/proc/{pid}/cmdline").read()
            assert TOKEN not in cmdline and "postgresql://" not in cmdline and "redis://" not in cmdline
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
