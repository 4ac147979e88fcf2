"""The dead-worker sweep (state.sweep) on a real PostgreSQL database and a real Redis: it fails the running imports
whose worker is gone, and leaves alone an import this worker has just recorded but not yet given a session (the
HTTP handler records the import, then creates the session: a sweep may fall in between)."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, Iterator

import pytest

from hextrackr_cli.server import storage
from hextrackr_cli.server.state import WORKER_TTL, SharedState, sweep
from hextrackr_cli.server.tracker import ProgressTracker
from support.pg import pg_admin, pg_url  # noqa: F401  (fixtures: a fresh PostgreSQL database)

REDIS = os.environ.get("HEXTRACKR_TEST_REDIS", "redis://127.0.0.1:6379/0")



@pytest.fixture
def shared(pg_url: str) -> Iterator[tuple[SharedState, Any]]:
    try:
        import redis
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except Exception as exc:
        if os.environ.get("CI_STRICT"):
            pytest.fail(f"Redis is not reachable at {REDIS}: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS}: {exc}")
    db = storage.open_database(pg_url)
    db.initialize()
    state = SharedState(f"{REDIS}?prefix=hextrackr_test_{secrets.token_hex(4)}", runner=db.runner)
    state.up_since = time.monotonic() - 10 * WORKER_TTL  # reachable for long enough to judge heartbeats
    try:
        yield state, db
    finally:
        for key in state.redis.scan_iter(match=f"{state.prefix}:*"):
            state.redis.delete(key)


def _record(db: Any, session_id: str) -> int:
    return db.create_import(session_id=session_id, owner="", type_="vulnerabilities", filename="a.csv",
                            vendor="tenable", scan_date="2025-11-20", sha256="0" * 64, size=1)


def test_a_just_recorded_import_of_this_worker_is_left_alone_and_an_old_orphan_is_failed(shared: Any) -> None:
    state, db = shared
    emitted: list[tuple[str, dict, str]] = []
    tracker = ProgressTracker(lambda e, d, r: emitted.append((e, d, r)), lambda delay, fn: _Never(), retention=60)
    fresh = _record(db, "0f8fad5b-d9cb-469f-a165-70867728950e")
    old = _record(db, "7c9e6679-7425-40de-944b-e07fc1f90ae7")
    conn = db.connect()
    try:  # recorded a minute ago, and still no session on this worker: it stopped here (connection lost)
        conn.execute("UPDATE imports SET started_at = ? WHERE id = ?", ("2020-01-01T00:00:00.000Z", old))
    finally:
        conn.close()

    assert sweep(state, db, tracker, lambda *a: None, 60) == 1
    assert db.import_by_id(fresh)["status"] == "running"  # its session is about to be created
    failed = db.import_by_id(old)
    assert failed["status"] == "failed" and "stopped on this worker" in failed["error"]


class _Never:
    def cancel(self) -> None:
        pass
