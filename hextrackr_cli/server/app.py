"""Build the ASGI app (Socket.io + HTTP API) and run it with uvicorn, in the foreground or a daemon thread."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

from hextrackr_cli import protocol
from hextrackr_cli.server.context import ServerContext

log = logging.getLogger("hextrackr.server")


def default_database_url() -> str:
    from hextrackr_cli.settings import default_data_dir

    return f"sqlite:///{default_data_dir() / 'hextrackr.db'}"


# Server-side loggers (ours with its children, uvicorn's, asyncio's). In embedded mode (--server local) they
# write to a file in the data directory, never to the terminal of the command the server runs inside.
SERVER_LOGGERS = ("hextrackr.server", "uvicorn", "asyncio")


def log_to_file(path: Path) -> None:
    """Send the server's log lines (warnings, errors with their tracebacks) to ``path`` only (mode 0600)."""
    from logging.handlers import RotatingFileHandler

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)

    class FileOnly(RotatingFileHandler):
        def handleError(self, record: logging.LogRecord) -> None:
            pass  # a line that cannot be written (disk full) is lost, never printed on the terminal instead

    handler = FileOnly(path, maxBytes=1 << 20, backupCount=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("hextrackr-embedded-log")
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "hextrackr-embedded-log"]:
            logger.removeHandler(old)
            old.close()
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)


def _quiet_logger(name: str, log_level: str) -> logging.Logger:
    """python-socketio/engineio's own chatter ("Invalid session ...") only when asked for (--log-level info)."""
    logger = logging.getLogger(name)
    if log_level.lower() in ("debug", "trace", "info"):
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
    return logger


def build_app(ctx: ServerContext, transports: tuple[str, ...] = ("websocket", "polling"),
              log_level: str = "warning") -> Any:
    """The ASGI app: engine.io at /socket.io/, everything else to the HTTP API."""
    import socketio

    from hextrackr_cli.server.http import HttpApp
    from hextrackr_cli.server.sockets import ImportNamespace

    class _AsyncServer(socketio.AsyncServer):
        async def _handle_eio_disconnect(self, eio_sid: str, *args: Any) -> None:
            await super()._handle_eio_disconnect(eio_sid, *args)
            # python-engineio leaves a polling client's pending GET open after the client's CLOSE packet until
            # the next ping (25 s), so a polling client's disconnect() blocks that long: wake that GET now.
            sock = getattr(self.eio, "sockets", {}).get(eio_sid)
            queue = getattr(sock, "queue", None)
            if queue is not None:
                try:
                    queue.put_nowait(None)
                except Exception:
                    pass

    extra: dict[str, Any] = {}
    if ctx.shared is not None:  # rooms and events across workers: python-socketio's Redis client manager
        extra["client_manager"] = ctx.shared.manager()
    sio = _AsyncServer(
        **extra,
        async_mode="asgi",
        cors_allowed_origins="*",
        transports=list(transports),
        ping_timeout=protocol.PING_TIMEOUT,
        ping_interval=protocol.PING_INTERVAL,
        logger=_quiet_logger("hextrackr.socketio", log_level),
        engineio_logger=_quiet_logger("hextrackr.engineio", log_level),
    )
    sio.register_namespace(ImportNamespace(ctx))
    ctx.sio = sio
    return socketio.ASGIApp(sio, other_asgi_app=HttpApp(ctx), socketio_path="socket.io")


def make_context(*, database: str | None, tokens: list[str], retention: float, max_upload: int,
                 message_queue: str | None = None) -> ServerContext:
    from hextrackr_cli.server.storage import open_database

    db = open_database(database or default_database_url())
    db.initialize()  # creates or migrates the schema
    db.fail_stale_imports()
    _clean_uploads(db.upload_dir)
    shared = None
    if message_queue:
        from hextrackr_cli.server.state import SharedState

        shared = SharedState(message_queue, runner=db.runner)
    return ServerContext(db=db, tokens=tokens, retention=retention, max_upload=max_upload,
                         upload_dir=db.upload_dir, shared=shared)


def _clean_uploads(directory: Path) -> None:
    """Remove uploads left by a server that died mid-import (older than a day, so a live neighbour's are kept)."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    cutoff = time.time() - 86400
    for entry in entries:
        try:
            if entry.name.startswith("upload-") and entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            pass


class EmbeddedServer:
    """A running server (uvicorn in a daemon thread with its own event loop). ``stop()`` is idempotent."""

    def __init__(self, ctx: ServerContext, server: Any, thread: threading.Thread, url: str, token: str) -> None:
        self.ctx = ctx
        self._server = server
        self._thread = thread
        self.url = url
        self.token = token
        self.database = ctx.db.url
        self._stopped = False
        self._stop_lock = threading.Lock()

    @property
    def db_path(self) -> Path:
        return self.ctx.db.path

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.ctx.importer.shutdown(timeout=10.0)
        loop = self.ctx.loop
        if loop is not None and self._thread.is_alive():
            # tell every Socket.io client goodbye (CLOSE packet) so no long-poll holds up the shutdown
            try:
                asyncio.run_coroutine_threadsafe(self.ctx.close_clients(), loop).result(timeout=3.0)
            except Exception:
                pass
        self._server.should_exit = True
        self._thread.join(timeout=15.0)

    def wait(self) -> None:
        """Block until the server thread ends."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> "EmbeddedServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_background(
    *,
    database: str | None = None,
    tokens: list[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    retention: float = 300.0,
    transports: tuple[str, ...] = ("websocket", "polling"),
    max_upload: int = 1 << 30,
    log_level: str = "warning",
    log_file: Path | None = None,
    message_queue: str | None = None,
) -> EmbeddedServer:
    """uvicorn in a daemon thread with its own loop on a socket bound to host:port (0 = free port).

    Returns once it accepts connections. ``tokens`` None -> a random token is generated. ``log_file``: the
    server's log goes there instead of stderr (the in-process server of --server local).
    """
    import uvicorn

    tokens = list(tokens) if tokens else [secrets.token_urlsafe(32)]
    if log_file is not None:
        log_to_file(log_file)
    ctx = make_context(database=database, tokens=tokens, retention=retention, max_upload=max_upload,
                       message_queue=message_queue)
    app = build_app(ctx, tuple(transports), log_level)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]

    extra: dict[str, Any] = {"log_config": None} if log_file is not None else {}
    config = uvicorn.Config(app, lifespan="off", log_level=log_level, access_log=False,
                            timeout_graceful_shutdown=1, ws="auto", **extra)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    async def main() -> None:
        ctx.start(asyncio.get_running_loop())
        try:
            await server.serve(sockets=[sock])
        finally:
            await ctx.stop()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starter below; never a traceback on the console
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"hextrackr-server-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            reason = f": {failure[0]}" if failure else ""
            raise RuntimeError(f"the embedded server did not start{reason}")
        time.sleep(0.01)
    url_host = f"[{host}]" if ":" in host else host
    return EmbeddedServer(ctx, server, thread, f"http://{url_host}:{bound_port}", tokens[0])
