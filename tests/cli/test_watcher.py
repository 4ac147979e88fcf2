"""The watcher's transports: websocket, engine.io polling, HTTP polling fallback, liveness switch, reconnect."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from support.cli import read_json_until, run_cli, spawn_cli
from support.cli_suite import ServerProcess, cli_env
from support.fixtures import TOKEN, big_csv, medium_csv, server, small_csv  # noqa: F401  (fixtures)
from support.server import free_port
from support.db import hold_write_lock
from hextrackr_cli import events as ev
from hextrackr_cli.client.seed.api import SeedApi
from hextrackr_cli.client.watcher import Watcher


def _follow(w: Watcher, timeout: float = 60) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = w.get(0.1)
        if e is not None:
            got.append(e)
            if isinstance(e, ev.Outcome):
                return got
    raise AssertionError(f"no outcome; got {got[-5:]}")


def _post(url: str, path: Path, sid: str) -> dict:
    api = SeedApi(url, TOKEN)
    try:
        return api.upload(path, session_id=sid)
    finally:
        api.close()


def test_websocket_blocked_falls_back_to_socketio_polling_and_completes(tmp_path, medium_csv):
    """A server that refuses the websocket transport: the CLI follows over engine.io polling, exit 0."""
    from hextrackr_cli.server.app import start_background

    with start_background(database=f"sqlite:///{tmp_path / 's.db'}", tokens=[TOKEN], transports=("polling",)) as srv:
        env = cli_env(tmp_path, srv.url)
        proc = spawn_cli(["--output", "json", "import", str(medium_csv)], env)
        try:
            objs = read_json_until(proc, lambda o: o.get("event") == "uploaded")
            with hold_write_lock(srv.db_path):  # progress to follow, however fast the import is
                objs += read_json_until(proc, lambda o: o.get("type") == "loading")
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err.decode()
        objs += [json.loads(l) for l in out.decode().splitlines()]
        transports = [o["transport"] for o in objs if o.get("event") == "transport"]
        assert transports == ["socket.io polling"]
        assert sum(1 for o in objs if o.get("type") in ("parsing", "loading", "processing", "finalizing")) >= 2
        assert objs[-1]["outcome"] == "completed" and objs[-1]["rows"] == 30_000


def test_forced_http_polling_follows_the_import_to_the_end(server, medium_csv, tmp_path):
    """--transport polling: progress comes from GET /api/import/progress at --poll-interval, exit 0."""
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", "--transport", "polling", "--poll-interval", "0.1", str(medium_csv)], env)
    assert r.returncode == 0, r.stderr.decode()
    objs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [o for o in objs if o.get("event") == "transport"] == [
        {"event": "transport", "transport": "polling", "reason": "--transport polling"}
    ]
    assert sum(1 for o in objs if o.get("type") in ("parsing", "loading", "processing", "finalizing")) >= 1
    assert objs[-2]["type"] == "complete"
    assert objs[-1]["outcome"] == "completed" and objs[-1]["rows"] == 30_000


def test_socket_unreachable_switches_to_http_polling(server, small_csv):
    """When Socket.io cannot connect at all, the watcher says so and follows by HTTP polling to the outcome."""
    api = SeedApi(server.url, TOKEN)
    dead = f"http://127.0.0.1:{free_port()}"
    w = Watcher(api, server_url=dead, token=TOKEN, poll_interval=0.1, connect_timeout=2)
    sid = str(uuid.uuid4())
    try:
        w.start(sid, reserve=True)
        answer = _post(server.url, small_csv, sid)
        w.mark_posted(answer)
        got = _follow(w)
    finally:
        w.close()
        api.close()
    changes = [e for e in got if isinstance(e, ev.TransportChanged)]
    assert changes and changes[0].transport == ev.POLLING and "could not connect" in changes[0].reason
    outcome = got[-1]
    assert outcome.outcome == "completed" and outcome.exit_code == 0 and outcome.summary.get("rows") == 50


def test_silent_socket_while_status_moves_switches_to_polling(server, big_csv, tmp_path):
    """Socket connected but silent (joined on another server) while the status endpoint shows progress: switch."""
    from hextrackr_cli.server.app import start_background

    with start_background(database=f"sqlite:///{tmp_path / 'other.db'}", tokens=[TOKEN]) as quiet:
        api = SeedApi(server.url, TOKEN)
        w = Watcher(api, server_url=quiet.url, token=TOKEN, poll_interval=0.2, liveness=0.5)
        sid = str(uuid.uuid4())
        try:
            w.start(sid, reserve=True)  # the room on the quiet server never hears of this import
            w.mark_posted(_post(server.url, big_csv, sid))
            got = _follow(w)
        finally:
            w.close()
            api.close()
    changes = [e for e in got if isinstance(e, ev.TransportChanged)]
    assert [c.transport for c in changes] == [ev.WEBSOCKET, ev.POLLING]
    assert "silent" in changes[1].reason
    assert got[-1].outcome == "completed" and got[-1].summary.get("rows") == 60_000


def test_server_restart_mid_watch_reconnects_and_reports_the_real_outcome(tmp_path, big_csv):
    """The server dies mid-import and comes back: watch notices, reconnects (or polls the status endpoint while
    reconnecting) and reports the real outcome: the import failed because the server stopped (exit 1)."""
    port = free_port()
    srv = ServerProcess(tmp_path / "restart.db", port).start()
    proc = None
    try:
        env = cli_env(tmp_path, srv.url)
        r = run_cli(["import", "--detach", str(big_csv)], env)
        assert r.returncode == 0, r.stderr.decode()
        sid = r.stdout.decode().strip()
        proc = spawn_cli(["--output", "json", "watch", sid], env)
        lines = read_json_until(proc, lambda o: o.get("type") in ("loading", "processing"))
        srv.kill()
        lines += read_json_until(proc, lambda o: o.get("event") == "reconnecting")
        srv.start()
        out, err = proc.communicate(timeout=60)
        lines += [json.loads(l) for l in out.decode().splitlines()]
        assert proc.returncode == 1, err.decode()
        # Whichever comes first decides: the re-joined socket, or the status endpoint polled while reconnecting.
        assert any(o.get("event") == "reconnecting" for o in lines), lines
        assert lines[-1]["outcome"] == "failed" and "stopped" in lines[-1]["message"]
        assert "Traceback" not in err.decode()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        srv.stop()


def test_reconnect_rejoins_the_room_so_later_events_still_arrive(tmp_path, small_csv):
    """Joined (reserved) before the upload, the server restarts: the watcher reconnects by itself (backoff),
    re-joins (Reconnected is reported after the re-join), and the events of the import posted afterwards reach
    it over the socket."""
    srv = ServerProcess(tmp_path / "rejoin.db", free_port()).start()
    api = SeedApi(srv.url, TOKEN)
    w = Watcher(api, server_url=srv.url, token=TOKEN)
    sid = str(uuid.uuid4())
    try:
        w.start(sid, reserve=True)
        srv.kill()
        srv.start()
        got = []
        deadline = time.monotonic() + 30
        while not any(isinstance(e, ev.Reconnected) for e in got) and time.monotonic() < deadline:
            e = w.get(0.1)
            if e is not None:
                got.append(e)
        assert any(isinstance(e, ev.Reconnecting) for e in got)
        assert any(isinstance(e, ev.Reconnected) for e in got), got
        w.mark_posted(_post(srv.url, small_csv, sid))
        got += _follow(w)
    finally:
        w.close()
        api.close()
        srv.stop()
    assert not any(isinstance(e, ev.TransportChanged) and e.transport == ev.POLLING for e in got)
    progress = [e for e in got if isinstance(e, ev.Progress)]
    assert progress and progress[-1].type == "complete" and progress[-1].source == ev.WEBSOCKET
    assert got[-1].outcome == "completed" and got[-1].summary.get("rows") == 50


def test_forced_websocket_against_a_server_without_it_exits_3(tmp_path, small_csv):
    """--transport websocket when the server refuses websockets: exit 3 (no silent fallback), nothing imported."""
    from hextrackr_cli.server.app import start_background

    with start_background(database=f"sqlite:///{tmp_path / 'w.db'}", tokens=[TOKEN], transports=("polling",)) as srv:
        env = cli_env(tmp_path, srv.url)
        r = run_cli(["import", "--transport", "websocket", str(small_csv)], env)
        err = r.stderr.decode()
        assert r.returncode == 3, err
        assert "socket.io connection" in err and "Traceback" not in err
        assert requests.get(f"{srv.url}/api/imports", headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 0


def test_server_gone_for_good_while_polling_raises_unreachable(tmp_path, big_csv):
    """Polling and the server never comes back: after the give-up bound the watch breaks with
    ServerUnreachable (exit 3), whose hint says how to re-attach."""
    from hextrackr_cli.errors import ServerUnreachable

    srv = ServerProcess(tmp_path / "gone.db", free_port()).start()
    api = SeedApi(srv.url, TOKEN, retries=0)
    w = Watcher(api, server_url=srv.url, token=TOKEN, transport="polling", poll_interval=0.1, give_up_after=1.0)
    sid = str(uuid.uuid4())
    try:
        _post(srv.url, big_csv, sid)
        w.start(sid)  # like `hextrackr watch` over HTTP polling
        assert isinstance(w.get(5), ev.TransportChanged)
        srv.kill()
        with pytest.raises(ServerUnreachable) as info:
            _follow(w, timeout=30)
    finally:
        w.close()
        api.close()
        srv.stop()
    assert f"hextrackr watch {sid}" in str(info.value)
