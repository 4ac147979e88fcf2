"""hextrackr_cli.locking: one exclusive lock across real processes, the holder's PID named, exit 75."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hextrackr_cli.errors import ExitStatus, LockHeld
from hextrackr_cli.locking import FileLock, default_lock_path, lock_dir, read_holder

# A second process: takes the lock, says so on stdout, holds it for argv[2] seconds (or until killed).
HOLDER = """
import sys, time
from hextrackr_cli.locking import FileLock
with FileLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def spawn_holder(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_is_refused_with_the_holders_pid_and_exit_75(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = spawn_holder(path, 30)
    try:
        with pytest.raises(LockHeld) as info:
            FileLock(path).acquire()
        assert info.value.holder_pid == holder.pid
        assert info.value.exit_status == ExitStatus.TEMPFAIL == 75
        assert f"PID {holder.pid}" in str(info.value) and str(path) in str(info.value)
        assert "nothing was done" in str(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_lock_wait_waits_for_the_holder_then_runs(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = spawn_holder(path, 1.0)
    started = time.monotonic()
    with FileLock(path, wait=20) as lock:
        waited = time.monotonic() - started
        assert lock.held
        assert read_holder(path) == os.getpid()
    assert holder.wait(10) == 0
    assert 0.5 < waited < 15  # it did wait for the holder, and did not sit out the whole 20 s


def test_lock_wait_gives_up_after_its_seconds(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = spawn_holder(path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(LockHeld) as info:
            FileLock(path, wait=0.5).acquire()
        assert 0.45 < time.monotonic() - started < 5
        assert "after waiting 0.5s" in str(info.value) and info.value.holder_pid == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    holder = spawn_holder(path, 30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert path.exists() and read_holder(path) == holder.pid  # its PID is still written there...
    with FileLock(path) as lock:  # ...but the OS released the flock: taken at once
        assert lock.held and read_holder(path) == os.getpid()


def test_release_on_exception_and_the_file_names_nobody_afterwards(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "run.lock"
    with pytest.raises(RuntimeError):
        with FileLock(path):
            raise RuntimeError("boom")
    assert read_holder(path) is None
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    holder = spawn_holder(path, 0)  # another process can take it straight away
    assert holder.wait(10) == 0


def test_same_process_second_lock_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with FileLock(path):
        with pytest.raises(LockHeld) as info:
            FileLock(path).acquire()
        assert info.value.holder_pid == os.getpid()


def test_auto_name_per_server_and_profile_in_runtime_dir_else_state_dir(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    env = {"XDG_RUNTIME_DIR": str(runtime), "XDG_STATE_HOME": str(tmp_path / "state")}
    a = default_lock_path("https://hx.example.org:8443/", "prod", env=env)
    assert a.parent == runtime / "hextrackr" and a.name.startswith("run-hx.example.org_8443-")
    assert a != default_lock_path("https://hx.example.org:8443/", "test", env=env)
    assert a != default_lock_path("https://other.example.org", "prod", env=env)
    assert a != default_lock_path("https://hx.example.org:8443/", "prod", purpose="hx11-import", env=env)
    assert a == default_lock_path("https://hx.example.org:8443/", "prod", env=env)
    no_runtime = {"XDG_STATE_HOME": str(tmp_path / "state")}
    assert lock_dir(no_runtime) == tmp_path / "state" / "hextrackr" / "locks"
    with FileLock(default_lock_path("http://127.0.0.1:1", "p", env=no_runtime)) as lock:
        assert lock.path.parent == tmp_path / "state" / "hextrackr" / "locks"


def test_unopenable_lock_path_is_a_usage_error(tmp_path: Path) -> None:
    from hextrackr_cli.errors import UsageError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot open lock file"):
        FileLock(blocker / "run.lock").acquire()


def test_a_file_that_is_not_a_lock_file_is_never_truncated(tmp_path: Path) -> None:
    from hextrackr_cli.errors import UsageError

    scan = tmp_path / "scan.csv"
    scan.write_text("hostname,cve\nweb01,CVE-2024-0001\n")
    with pytest.raises(UsageError, match="is not a lock file"):
        FileLock(scan).acquire()
    assert scan.read_text() == "hostname,cve\nweb01,CVE-2024-0001\n"


def test_without_flock_an_asked_lock_is_refused_and_an_implied_one_is_skipped(tmp_path: Path, monkeypatch) -> None:
    import hextrackr_cli.locking as locking
    from hextrackr_cli.errors import UsageError
    from hextrackr_cli.locking import LockRequest

    monkeypatch.setattr(locking, "fcntl", None)  # as on Windows
    with pytest.raises(UsageError, match="flock"):
        LockRequest(path=str(tmp_path / "a.lock")).lock("http://127.0.0.1:1", "p").acquire()
    with LockRequest(path=str(tmp_path / "b.lock"), required=False).lock("http://127.0.0.1:1", "p") as lock:
        assert not lock.held
