"""``hextrackr serve``: run the embedded import server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import os
import re
import secrets
import signal
import sys
import threading
from typing import Any

from hextrackr_cli.errors import UsageError

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
    if message_queue:
        raise UsageError("--message-queue is not supported by this server yet; run one worker without it")
    if workers != 1:
        raise UsageError("--workers above 1 needs a message queue, which this server does not support yet")
    if database and "://" in database and not database.startswith("sqlite:///"):
        raise UsageError(
            f"database {database.split('://', 1)[0]}:// is not supported yet; use sqlite:///PATH",
        )
    token_list = [t for t in tokens if t]
    generated = False
    if not token_list:
        single = global_flags.get("token") or os.environ.get("HEXTRACKR_TOKEN")
        if single:
            token_list = [single]
    if not token_list:
        token_list = [secrets.token_urlsafe(32)]
        generated = True

    try:
        from hextrackr_cli.server.app import start_background
    except ImportError as exc:  # the server extra is not installed
        raise UsageError(
            f"the embedded server needs extra packages ({exc.name}); install them with pip install 'hextrackr[server]'"
        ) from None

    try:
        server = start_background(
            database=database, tokens=token_list, host=host, port=port, retention=retention,
            transports=tuple(transports.split(",")), max_upload=limit,
        )
    except OSError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # bad database URL
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None

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
