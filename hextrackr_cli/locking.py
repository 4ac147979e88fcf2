"""The package's one lock: an exclusive ``flock`` on a lock file, the holder's PID written inside.

Used by ``--lock`` / ``--lock-wait`` (one cron run at a time), by ``hextrackr sweep`` (lock implied) and by the
one-import-at-a-time guard for HexTrackr 1.1.x servers. The OS releases a flock when its holder's process ends,
however it ends (Ctrl-C, SIGKILL, a crash), so a dead holder never leaves a stale lock; the file itself stays
(deleting it would let two processes lock two different inodes of the same name).

Auto names live in ``$XDG_RUNTIME_DIR/hextrackr`` (a tmpfs cleared at logout), else in
``$XDG_STATE_HOME/hextrackr/locks``; one file per purpose + server + profile.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Mapping

from hextrackr_cli.errors import LockHeld, UsageError
from hextrackr_cli.settings import default_runtime_dir, default_state_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None  # type: ignore[assignment]

POLL_SECONDS = 0.05  # how often a --lock-wait retries; a flock has no blocking-with-timeout call
_LOCK_CONTENT = re.compile(rb"\A\d*\n?\Z")  # what a lock file holds: nothing, or its holder's PID


def lock_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where auto-named lock files go: the XDG runtime dir if there is one, else the XDG state dir."""
    runtime = default_runtime_dir(env)
    return runtime if runtime is not None else default_state_dir(env) / "locks"


def default_lock_path(server: str, profile: str = "", *, purpose: str = "run", env: Mapping[str, str] | None = None) -> Path:
    """The auto lock file for ``purpose`` against ``server`` with ``profile``: readable host in the name, a
    digest of the exact (server, profile) pair so two URLs never share a file by accident."""
    digest = hashlib.sha256(f"{purpose}\0{server}\0{profile}".encode()).hexdigest()[:12]
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", server.lower()).split("/")[0]
    host = re.sub(r"[^a-z0-9.-]+", "_", host)[:40] or "server"
    return lock_dir(env) / f"{purpose}-{host}-{digest}.lock"


@dataclass(frozen=True)
class LockRequest:
    """What ``--lock [PATH]`` / ``--lock-wait`` asked for; ``path`` None = the auto name."""

    path: str | None = None
    wait: float = 0.0
    required: bool = True  # False: implied (sweep), so a platform without flock runs without it

    def lock(self, server: str, profile: str, *, env: Mapping[str, str] | None = None) -> "FileLock":
        path = Path(self.path) if self.path else default_lock_path(server, profile, env=env)
        return FileLock(path, wait=self.wait, required=self.required)


def read_holder(path: Path) -> int | None:
    """The PID the holder wrote into ``path``, or None (empty file, unreadable, not a number)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    first = text.split()[0] if text else ""
    return int(first) if first.isdigit() else None


class FileLock:
    """An exclusive lock on ``path``, held from ``acquire()`` (or ``with``) to ``release()``.

    ``wait`` is how many seconds to keep trying (0 = one try). A refusal raises ``LockHeld`` (exit 75) naming
    the holder's PID. Not reentrant: a second FileLock on the same path in the same process is refused too.
    """

    def __init__(self, path: Path | str, *, wait: float = 0.0, what: str = "another hextrackr run",
                 required: bool = True) -> None:
        self.path = Path(path)
        self.wait = max(0.0, float(wait))
        self.what = what
        self.required = required
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FileLock":
        if fcntl is None:  # pragma: no cover - Windows
            if not self.required:  # an implied lock: Task Scheduler's "Do not start a new instance" does the job
                return self
            raise UsageError(
                "--lock needs flock(2), which this platform does not have",
                hint="on Windows let Task Scheduler refuse overlapping runs: 'Do not start a new instance'",
            )
        if self._fd is not None:
            return self
        fd = self._open()
        try:
            deadline = time.monotonic() + self.wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._refusal() from None
                    time.sleep(POLL_SECONDS)
            # Ours now: say who holds it, for the refusal another run will print.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except BaseException:  # a refusal, Ctrl-C while waiting, a full disk: never keep the descriptor
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # nobody holds it: no PID to name
        except OSError:
            pass
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_CLOEXEC: a child we exec must not inherit (and so prolong) the lock.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot open lock file {self.path}: {exc.strerror or exc}") from None
        try:
            head = os.pread(fd, 64, 0)
        except OSError:  # a directory, a FIFO...: not ours to lock
            head = b"?"
        if not _LOCK_CONTENT.match(head):  # never truncate someone's file (`--lock scan.csv other.csv`)
            os.close(fd)
            raise UsageError(
                f"{self.path} is not a lock file (it holds other data); refusing to use it as the lock",
                hint="give the lock its own file with --lock=PATH, or put --lock after the FILE arguments",
            )
        return fd

    def _refusal(self) -> LockHeld:
        pid = read_holder(self.path)
        if pid is None:  # the holder has the lock but has not written its PID yet: give it a moment
            time.sleep(POLL_SECONDS)
            pid = read_holder(self.path)
        who = f"{self.what} (PID {pid})" if pid is not None else self.what
        waited = f" after waiting {self.wait:g}s" if self.wait else ""
        return LockHeld(
            f"{who} holds the lock {self.path}{waited}; nothing was done",
            holder_pid=pid,
            path=str(self.path),
            hint=None if self.wait else "wait for it with --lock-wait SECONDS",
        )
