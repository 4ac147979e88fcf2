"""``hextrackr serve``: run the embedded import server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import threading
from typing import Any

from hextrackr_cli.errors import UsageError

WORKER_TOKENS_ENV = "HEXTRACKR_SERVE_WORKER_TOKENS"  # supervisor -> worker, so no token shows in `ps`
_SIZE_RE = re.compile(r"\A\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*\Z", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"1GiB"`` -> 1073741824, ``"500MB"`` -> 500000000, ``"1024"`` -> 1024."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise UsageError(f"--max-upload must be a size like 500MiB or 1GiB, not {text!r}")
    number, unit, binary = m.groups()
    base = 1024 if (binary or not unit) else 1000
    power = "KMGT".find(unit.upper()) + 1 if unit else 0
    value = int(float(number) * base**power)
    if value <= 0:
        raise UsageError(f"--max-upload must be more than 0 bytes, not {text!r}")
    return value


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def run_serve(
    global_flags: dict,
    *,
    host: str = "127.0.0.1",
    port: int = 8989,
    database: str | None = None,
    tokens: tuple[str, ...] = (),
    max_upload: str = "1GiB",
    retention: float = 300.0,
    transports: str = "websocket,polling",
    message_queue: str | None = None,
    workers: int = 1,
) -> int:
    """Serve until interrupted; returns the exit status (0 after a clean shutdown)."""
    limit = parse_size(max_upload)
    shared_db = database is not None and database.startswith(("postgresql://", "postgres://"))
    if database and "://" in database and not shared_db and not database.startswith("sqlite:///"):
        raise UsageError(
            f"database {database.split('://', 1)[0]}:// is not supported; use sqlite:///PATH or postgresql://…",
        )
    if workers > 1 and not (message_queue and shared_db):
        raise UsageError("--workers above 1 needs --database postgresql://… and --message-queue redis://… "
                         "(the workers share the database and their Socket.io rooms)")
    token_list = [t for t in tokens if t]
    generated = False
    if not token_list:  # a supervised worker gets the tokens from its supervisor (never on a command line)
        token_list = [t for t in os.environ.pop(WORKER_TOKENS_ENV, "").split("\n") if t]
    if not token_list:
        single = global_flags.get("token") or os.environ.get("HEXTRACKR_TOKEN")
        if single:
            token_list = [single]
    if not token_list:
        token_list = [secrets.token_urlsafe(32)]
        generated = True

    if workers > 1:
        if generated:
            _say(f"hextrackr serve: generated token (shown once): {token_list[0]}")
        return supervise(global_flags, workers, token_list, host=host, port=port, database=database,
                         max_upload=max_upload, retention=retention, transports=transports,
                         message_queue=message_queue)
    try:
        from hextrackr_cli.server.app import start_background
        from hextrackr_cli.server.storage import StorageError
    except ImportError as exc:  # the server extra is not installed
        raise UsageError(
            f"the embedded server needs extra packages ({exc.name}); install them with pip install 'hextrackr[server]'"
        ) from None

    try:
        server = start_background(
            database=database, tokens=token_list, host=host, port=port, retention=retention,
            transports=tuple(transports.split(",")), max_upload=limit, message_queue=message_queue,
        )
    except OSError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # bad database URL
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    except StorageError as exc:  # PostgreSQL unreachable or refusing us at start-up
        raise UsageError(f"cannot open the database: {exc}") from None

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if generated:
            _store_local_profile(global_flags, server.url, token_list[0])
        _say(f"hextrackr serve: listening on {server.url}")
        _say(f"hextrackr serve: Browser view: {server.url}/")
        _say(f"hextrackr serve: database {server.database}")
        if server.ctx.shared is not None:
            from hextrackr_cli.server.storage import masked_url

            _say(f"hextrackr serve: message queue {masked_url(server.ctx.shared.url)} "
                 f"(key prefix {server.ctx.shared.prefix})")
        while not stop.is_set() and server._thread.is_alive():
            stop.wait(0.5)
    finally:
        _say("hextrackr serve: stopping (running imports are rolled back and recorded as failed: safe to run again)")
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    _say("hextrackr serve: stopped")
    return 0


def _store_local_profile(global_flags: dict, url: str, token: str) -> None:
    """Print the generated token once and keep it in the profile ``local`` so the local CLI finds it."""
    from pathlib import Path

    from hextrackr_cli.settings import default_config_path

    path = Path(global_flags.get("config") or os.environ.get("HEXTRACKR_CONFIG") or default_config_path())
    _say(f"hextrackr serve: generated token (shown once): {token}")
    try:
        from hextrackr_cli.configfile import set_profile_values

        set_profile_values(path, "local", server=url, token=token)
        _say(f"hextrackr serve: stored the server URL and token in profile 'local' of {path} (mode 0600)")
    except Exception as exc:  # the server still runs; the user has the token on screen
        _say(f"hextrackr serve: could not store the token in {path}: {exc}")


def supervise(global_flags: dict, workers: int, tokens: list[str], *, host: str, port: int, **options: Any) -> int:
    """``--workers N``: N worker processes on ports PORT … PORT+N-1 (each its own ``hextrackr serve``).

    One port per worker, so a load balancer can keep a polling client on one worker (sticky sessions, see
    docs/scaling.md). A worker that exits on its own is restarted; SIGINT/SIGTERM stop them all.
    """
    env = dict(os.environ, **{WORKER_TOKENS_ENV: "\n".join(tokens)})
    env.pop("HEXTRACKR_TOKEN", None)
    # URLs may carry passwords: through the environment too, never a worker's command line
    for name, var in (("database", "HEXTRACKR_DATABASE"), ("message_queue", "HEXTRACKR_MESSAGE_QUEUE")):
        value = options.pop(name, None)
        if value:
            env[var] = str(value)

    def command(i: int) -> list[str]:
        args = [sys.executable, "-m", "hextrackr_cli"]
        if global_flags.get("config"):
            args += ["--config", str(global_flags["config"])]
        args += ["serve", "--host", host, "--port", str(port + i if port else 0), "--workers", "1"]
        for name, value in options.items():
            if value is not None:
                args += [f"--{name.replace('_', '-')}", str(value)]
        return args

    def start(i: int) -> subprocess.Popen:
        return subprocess.Popen(command(i), stdin=subprocess.DEVNULL, env=env)

    procs = [start(i) for i in range(workers)]
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    _say(f"hextrackr serve: supervising {workers} workers (pids {', '.join(str(p.pid) for p in procs)})")
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code is not None and not stop.is_set():
                    _say(f"hextrackr serve: worker {i + 1} (pid {proc.pid}) exited with status {code}; restarting it")
                    time.sleep(1.0)
                    procs[i] = start(i)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for s, handler in previous.items():
            signal.signal(s, handler)
    _say("hextrackr serve: all workers stopped")
    return 0
