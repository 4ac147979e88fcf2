"""The Python API (hextrackr_cli.Client) against the real embedded server, and docs/api.md's example run as is."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

import hextrackr_cli
from support.data import gen_csv
from support.fixtures import TOKEN, server  # noqa: F401  (server is a fixture)
from hextrackr_cli import AuthError, BadInputError, Client, HextrackrError, ImportResult, ServerUnreachable
from hextrackr_cli import events as ev

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "api.md"


def test_the_documented_example_runs_against_the_embedded_server(tmp_path: Path) -> None:
    example = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert example is not None
    script = tmp_path / "example.py"
    script.write_text(example.group(1))
    scan = gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 120)
    env = {"PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    res = subprocess.run([sys.executable, str(script), str(scan)], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "outcome: completed" in lines and lines[-3].startswith("completed 120 120 ")
    assert lines[-2] == "status: completed"
    assert re.fullmatch(r"history: \d+ completed generic_scan_2025-11-20.csv", lines[-1])
    assert any(re.fullmatch(r"\s*\d+% .+", x) for x in lines)
    assert (tmp_path / "data" / "hextrackr" / "hextrackr.db").exists()


def test_import_watch_status_imports_cancel_through_the_client(tmp_path: Path, server: Any) -> None:
    scan = gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 80)
    seen: list[Any] = []
    sid = str(uuid.uuid4())
    with Client(server=server.url, token=TOKEN) as client:
        result = client.import_file(scan, session_id=sid, vendor="acme", on_event=seen.append)
        assert isinstance(result, ImportResult) and result.ok
        assert (result.outcome, result.exit_status, result.session_id, result.rows) == ("completed", 0, sid, 80)
        assert result.counts["inserted"] == 80 and isinstance(result.import_id, int)
        assert isinstance(seen[-1], ev.Outcome) and any(isinstance(e, ev.Uploaded) for e in seen)

        watched = list(client.watch(sid))  # a finished session: its outcome, at once
        assert isinstance(watched[-1], ev.Outcome) and watched[-1].outcome == "completed"
        assert client.status(sid)["status"] == "completed"
        history = client.imports(limit=5)
        assert history["imports"][0]["sessionId"] == sid and history["imports"][0]["vendor"] == "acme"
        late = client.cancel(sid)
        assert (late.outcome, late.exit_status) == ("completed", 1)  # nothing to cancel: it had ended


def test_a_failed_import_is_a_result_with_the_servers_message(tmp_path: Path, server: Any) -> None:
    ragged = tmp_path / "generic_scan_2025-11-20.csv"
    text = gen_csv(tmp_path / "ok.csv", 30).read_text().splitlines()
    text[22] = "host,10.0.0.1"
    ragged.write_text("\n".join(text) + "\n")
    with Client(server=server.url, token=TOKEN) as client:
        result = client.import_file(ragged)
    assert (result.outcome, result.exit_status) == ("failed", 1)
    assert "line 23" in result.message, result.message


def test_errors_are_hextrackr_errors_carrying_the_exit_status(tmp_path: Path, server: Any) -> None:
    scan = gen_csv(tmp_path / "s.csv", 5)
    with pytest.raises(AuthError) as auth:
        with Client(server=server.url, token="wrong-token") as client:
            client.import_file(scan)
    assert auth.value.exit_status == 4
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ServerUnreachable) as down:
        Client(server=dead, token=TOKEN).imports()
    assert down.value.exit_status == 3
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(BadInputError) as bad, Client(server=server.url, token=TOKEN) as client:
        client.import_file(empty)
    assert bad.value.exit_status == 2 and isinstance(bad.value, HextrackrError)
    with pytest.raises(HextrackrError) as malformed:
        Client(server=server.url, token=TOKEN).status("not-a-uuid")
    assert malformed.value.exit_status == 2


def test_leaving_the_block_stops_the_embedded_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Client.local() as client:
        url = client.url
        assert client.imports()["imports"] == []
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nobody listens any more


def test_the_profile_client_uses_the_profiles_server_and_token(tmp_path: Path, server: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.prod]\nserver = "{server.url}"\ntoken = "{TOKEN}"\n')
    with Client.from_profile("prod", config=config) as client:
        assert client.url == server.url and "imports" in client.imports()


def test_import_hextrackr_cli_is_cheap_and_all_lists_the_api() -> None:
    code = ("import sys, hextrackr_cli; print(sorted(m for m in sys.modules if m.startswith(('hextrackr', 'click', "
            "'requests', 'socketio', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hextrackr_cli']"
    for name in ("Client", "ImportResult", "HextrackrError", "UsageError", "AuthError", "ServerUnreachable"):
        assert name in hextrackr_cli.__all__ and getattr(hextrackr_cli, name) is not None


def _import_in_background(server: Any, scan: Path, sid: str) -> tuple[threading.Thread, threading.Event, list[ImportResult]]:
    """Start an import in a thread; the Event is set at its first progress event."""
    running = threading.Event()
    results: list[ImportResult] = []

    def importer() -> None:
        with Client(server=server.url, token=TOKEN) as client:
            results.append(client.import_file(
                scan, session_id=sid, on_event=lambda e: running.set() if isinstance(e, ev.Progress) else None))

    t = threading.Thread(target=importer)
    t.start()
    return t, running, results


def test_watch_follows_a_running_import_to_its_outcome(tmp_path: Path, server: Any) -> None:
    """A second client watches an import while it runs: its progress, then the same outcome, once."""
    sid = str(uuid.uuid4())
    t, running, results = _import_in_background(server, gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 30_000), sid)
    try:
        assert running.wait(30), "the import never reported progress"
        with Client(server=server.url, token=TOKEN) as watcher:
            events = list(watcher.watch(sid, timeout=60))
    finally:
        t.join(60)
    assert isinstance(events[-1], ev.Outcome) and events[-1].outcome == "completed"
    assert sum(isinstance(e, ev.Outcome) for e in events) == 1
    assert results and results[0].rows == 30_000 == events[-1].summary.get("rows")


def test_leaving_a_watch_early_closes_it_and_the_import_goes_on(tmp_path: Path, server: Any) -> None:
    sid = str(uuid.uuid4())
    t, running, results = _import_in_background(server, gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 30_000), sid)
    try:
        assert running.wait(30)
        with Client(server=server.url, token=TOKEN) as watcher:
            first = next(iter(watcher.watch(sid)))  # then the loop is left: the generator closes its watcher
            assert not isinstance(first, ev.Outcome)
    finally:
        t.join(60)
    assert results and results[0].outcome == "completed"
