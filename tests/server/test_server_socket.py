"""Socket.io behaviour of the embedded server with real python-socketio clients over websocket and polling."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import socketio

from support.data import GENERIC_CSV, write_tenable_csv
from support.db import db_count, db_snapshot, hold_write_lock
from support.http import get_json, post_import, wait_for_outcome
from support.server import EventLog, close_client, socket_client

TRANSPORTS = ["websocket", "polling"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clients():
    made = []

    def make(url: str, token: str | None, transport: str, log: EventLog | None = None):
        sio = socket_client(url, token, transport, log)
        made.append(sio)
        return sio

    yield make
    for sio in made:
        close_client(sio)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (several seconds of work) to cancel or queue behind with certainty."""
    return write_tenable_csv(tmp_path_factory.mktemp("csv") / "tenable_vulns_2025-11-20.csv", 60_000)


@pytest.fixture(scope="module")
def medium_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tenable_csv(tmp_path_factory.mktemp("csv") / "tenable_vulns_2025-11-21.csv", 20_000)


def session_events(log: EventLog, sid: str) -> list[dict]:
    return [d for d in log.progress() if d["sessionId"] == sid]


def test_connect_without_or_with_a_wrong_token_is_refused(live_server, transport) -> None:
    for token in (None, "wrong"):
        sio = socketio.Client(reconnection=False)
        errors: list = []
        sio.on("connect_error", lambda data: errors.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            sio.connect(live_server.url, auth={"token": token} if token else None, transports=[transport],
                        wait_timeout=10)
        assert errors == [{"message": "unauthorized"}]
        close_client(sio)


def test_reserve_then_post_delivers_every_stage_in_order_ending_with_complete(live_server, big_csv, clients,
                                                                              transport) -> None:
    log = EventLog()
    sio = clients(live_server.url, live_server.token, transport, log)
    sid = str(uuid.uuid4())
    ack = sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)
    assert ack["ok"] is True and ack["session"]["status"] == "pending"
    r = post_import(live_server.url, live_server.token, big_csv, filename=big_csv.name, session_id=sid)
    assert r.status_code == 202
    assert log.wait(lambda l: any(d["type"] == "complete" for d in session_events(l, sid)), 120)
    events = session_events(log, sid)
    types = [e["type"] for e in events]
    assert types[-1] == "complete" and types.count("complete") == 1
    order = ["parsing", "loading", "processing", "finalizing", "complete"]
    assert [order.index(t) for t in types] == sorted(order.index(t) for t in types)
    # the first report goes out at once; stages shorter than the throttle window may be folded into the next
    assert types[0] == "parsing" and len(events) >= 3
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 100
    middle = events[1:-1]
    assert any(isinstance(e["eta"], int) for e in middle)
    assert all(e["eta"] is None or e["eta"] >= 0 for e in events)
    assert all({"sessionId", "type", "progress", "message", "timestamp", "eta"} <= set(e) for e in events)
    done = events[-1]
    assert done["rows"] == 60_000 and done["importId"] == r.json()["importId"] and done["eta"] == 0
    assert db_count(live_server.db_path, "vulnerabilities") == done["records"]


def test_progress_events_respect_two_per_second(live_server, medium_csv, clients, transport) -> None:
    big_csv = medium_csv
    log = EventLog()
    sio = clients(live_server.url, live_server.token, transport, log)
    sid = str(uuid.uuid4())
    sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)
    post_import(live_server.url, live_server.token, big_csv, session_id=sid)
    assert log.wait(lambda l: any(d["type"] == "complete" for d in session_events(l, sid)), 120)
    stamps = [d["timestamp"] for d in session_events(log, sid) if d["type"] not in ("complete", "error")]
    for i, t in enumerate(stamps):
        in_window = [u for u in stamps[i:] if u < t + 1000]
        assert len(in_window) <= 2, stamps


def test_join_of_a_running_import_sends_the_current_state_at_once(live_server, medium_csv, clients,
                                                                  transport) -> None:
    big_csv = medium_csv
    r = post_import(live_server.url, live_server.token, big_csv)
    sid = r.json()["sessionId"]
    log = EventLog()
    sio = clients(live_server.url, live_server.token, transport, log)
    ack = sio.call("joinSession", sid, timeout=10)
    assert ack["ok"] is True and ack["session"]["sessionId"] == sid
    assert log.wait(lambda l: len(session_events(l, sid)) >= 1, 10)
    assert log.wait(lambda l: any(d["type"] == "complete" for d in session_events(l, sid)), 120)


def test_join_after_the_end_gets_the_final_state(live_server, clients, transport) -> None:
    r = post_import(live_server.url, live_server.token, GENERIC_CSV)
    sid = r.json()["sessionId"]
    wait_for_outcome(live_server.url, live_server.token, sid)
    log = EventLog()
    sio = clients(live_server.url, live_server.token, transport, log)
    ack = sio.call("joinSession", sid, timeout=10)
    assert ack["ok"] and ack["session"]["outcome"] == "completed"
    assert log.wait(lambda l: any(d["type"] == "complete" for d in session_events(l, sid)), 10)


def test_unknown_and_malformed_session_ids_are_refused_through_the_ack(live_server, clients, transport) -> None:
    sio = clients(live_server.url, live_server.token, transport)
    unknown = str(uuid.uuid4())
    assert sio.call("joinSession", unknown, timeout=10) == {"ok": False, "error": f"Session {unknown} not found"}
    for bad in ("nope", 42, None, {"sessionId": "x"}):
        assert sio.call("joinSession", bad, timeout=10) == {"ok": False, "error": "Invalid session id"}
    assert sio.call("cancelImport", unknown, timeout=10) == {"ok": False, "error": f"Session {unknown} not found"}


def test_another_token_cannot_join_or_cancel_a_session_it_does_not_own(server_factory, clients, transport) -> None:
    srv = server_factory(tokens=["admin-token-aaaaaaaaaaaa", "user-token-bbbbbbbbbbbb"])
    r = post_import(srv.url, "admin-token-aaaaaaaaaaaa", GENERIC_CSV)
    sid = r.json()["sessionId"]
    user = clients(srv.url, "user-token-bbbbbbbbbbbb", transport)
    assert user.call("joinSession", sid, timeout=10) == {"ok": False, "error": f"Session {sid} not found"}
    assert user.call("cancelImport", sid, timeout=10)["ok"] is False


def test_cancel_mid_import_rolls_back_and_confirms_to_the_room(live_server, big_csv, clients, transport) -> None:
    first = post_import(live_server.url, live_server.token, GENERIC_CSV)
    wait_for_outcome(live_server.url, live_server.token, first.json()["sessionId"])
    before = db_snapshot(live_server.db_path)
    log = EventLog()
    sio = clients(live_server.url, live_server.token, transport, log)
    sid = str(uuid.uuid4())
    sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)
    post_import(live_server.url, live_server.token, big_csv, session_id=sid)
    with hold_write_lock(live_server.db_path):  # the import stays mid-way (before its merge) until released
        assert log.wait(lambda l: any(d["type"] == "loading" for d in session_events(l, sid)), 60)
        assert sio.call("cancelImport", sid, timeout=10) == {"ok": True}
    assert log.wait(lambda l: "importCancelled" in l.names(), 60)
    assert [d for _, n, d in log.events if n == "importCancelled"] == [{"sessionId": sid}]
    assert not any(d["type"] == "complete" for d in session_events(log, sid))
    state = wait_for_outcome(live_server.url, live_server.token, sid)
    assert state["outcome"] == "cancelled" and state["cancelled"] is True
    assert db_snapshot(live_server.db_path) == before
    assert sio.call("cancelImport", sid, timeout=10) == {"ok": False, "error": "Import already cancelled"}


def test_a_queued_import_says_it_waits_and_can_be_cancelled_while_waiting(live_server, big_csv, clients,
                                                                          transport) -> None:
    log = EventLog()
    sio = clients(live_server.url, live_server.token, transport, log)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for sid in (a, b):
        sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)
    post_import(live_server.url, live_server.token, big_csv, session_id=a)
    post_import(live_server.url, live_server.token, GENERIC_CSV, session_id=b)  # recorded before the lock below
    with hold_write_lock(live_server.db_path):  # a stays mid-way (before its merge) until released
        assert log.wait(lambda l: any(d["type"] == "loading" for d in session_events(l, a)), 60)
        assert log.wait(lambda l: any("Waiting for another import" in d["message"] for d in session_events(l, b)), 30)
        assert sio.call("cancelImport", b, timeout=10) == {"ok": True}
        assert log.wait(lambda l: any(d == {"sessionId": b} for _, n, d in l.events if n == "importCancelled"), 30)
    assert log.wait(lambda l: any(d["type"] == "complete" for d in session_events(l, a)), 120)
    assert wait_for_outcome(live_server.url, live_server.token, b)["outcome"] == "cancelled"


def test_two_concurrent_imports_lose_nothing(live_server, tmp_path) -> None:
    files = [write_tenable_csv(tmp_path / f"t{i}.csv", 3000, seed=i, hosts=100 + i) for i in range(2)]
    results: list = [None, None]

    def upload(i: int) -> None:
        results[i] = post_import(live_server.url, live_server.token, files[i], filename=f"vendor{i}_x.csv")

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    states = [wait_for_outcome(live_server.url, live_server.token, r.json()["sessionId"]) for r in results]
    assert [s["outcome"] for s in states] == ["completed", "completed"]
    total = sum(s["summary"]["records"] for s in states)
    assert total > 6000 and db_count(live_server.db_path, "vulnerabilities") == total


def test_after_cleanup_the_polling_endpoint_still_answers_the_final_outcome(server_factory, clients,
                                                                           transport) -> None:
    srv = server_factory(retention=0.2)
    r = post_import(srv.url, srv.token, GENERIC_CSV)
    sid = r.json()["sessionId"]
    wait_for_outcome(srv.url, srv.token, sid)
    deadline = time.monotonic() + 10
    while sid in srv.ctx.tracker.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sid not in srv.ctx.tracker.sessions and sid not in srv.ctx.tracker.timing
    state = get_json(srv.url, srv.token, f"/api/import/progress/{sid}").json()
    assert state["outcome"] == "completed" and state["summary"]["records"] == 3
    assert state["lastEvent"]["type"] == "complete"
    log = EventLog()
    sio = clients(srv.url, srv.token, transport, log)
    assert sio.call("joinSession", sid, timeout=10)["ok"] is True
    assert log.wait(lambda l: any(d["type"] == "complete" for d in l.progress()), 10)
    assert sio.call("cancelImport", sid, timeout=10) == {"ok": False, "error": "Import already completed"}


def test_stop_disconnects_clients_promptly_and_leaves_no_thread_behind(server_factory) -> None:
    before = set(threading.enumerate())
    srv = server_factory()
    disconnected = threading.Event()
    sios = []
    for transport in TRANSPORTS:
        sio = socket_client(srv.url, srv.token, transport)
        sio.on("disconnect", lambda *a: disconnected.set())
        sios.append(sio)
    r = post_import(srv.url, srv.token, GENERIC_CSV)
    wait_for_outcome(srv.url, srv.token, r.json()["sessionId"])
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 5
    assert disconnected.wait(10)
    deadline = time.monotonic() + 10
    while any(s.connected for s in sios) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(s.connected for s in sios)
    for s in sios:
        close_client(s)
    time.sleep(0.2)
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive() and not t.daemon or "hextrackr" in t.name or t.name.startswith("import-")]
    assert leftover == []
