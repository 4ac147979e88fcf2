"""A protocol-faithful test double of a deployed HexTrackr 1.1.12 server.

It reproduces the observed behaviour described in ``/work/shared/PROTOCOL-hextrackr-1.1.md`` (Express +
express-session + csurf + multer + express-rate-limit + Socket.io 4 behind a TLS proxy), so the
``hextrackr-1.1`` dialect of the CLI can be tested without the real server:

- ``POST /api/auth/login`` (JSON): 200 + ``Set-Cookie: hextrackr.sid=…; HttpOnly; Secure; SameSite=Lax`` only
  when the request carries ``X-Forwarded-Proto: https`` (the server trusts its proxy); over plain http without
  it: 200 success and **no** cookie. Bad password: 401.
- ``GET /health`` (public, outside ``/api/``) → ``{"status":"ok","db":true,"uptime":<s>}``: no dialect, no version.
- ``GET /api/auth/csrf`` → ``{"success":true,"csrfToken":…}`` (public: without the cookie the token is bound to
  no session and useless); ``GET /api/auth/status`` (public) nests its answer:
  ``{"success":true,"data":{"authenticated":false}}`` / ``{"success":true,"data":{"authenticated":true,"user":…}}``;
  every POST but the login needs ``x-csrf-token``;
  missing/invalid token, wrong MIME and wrong upload field name all answer 500 ``Internal server error``.
- API calls without the cookie: 401 ``{"error":"Authentication required","authenticated":false}``.
- ``POST /api/vulnerabilities/import-staging`` (multipart ``csvFile``/``vendor``/``scanDate``/``sessionId``)
  answers at once; the first ``progress-update`` is emitted **before** the answer is sent.
  ``/api/vulnerabilities/import`` and ``/api/import`` answer 500.
- Socket.io 4 on ``/socket.io/``: the handshake needs the cookie and ``X-Forwarded-Proto: https``, else 400
  ``{"code":3,"message":"Bad request"}``; the websocket upgrade is refused for an ``http://`` Origin.
- ``join-progress``/``leave-progress`` with rooms ``progress-<id>``; the joiner always enters the room (that
  is what makes join-before-post work) but unknown ids get no answer at all (not even an ack);
  ``progress-status`` goes to a joiner of an existing session.
- ``progress-update`` (float progress, status ``initialized``, metadata with currentStep 1..3 …) throttled to
  one per 100 ms per session, dropped updates never re-sent; ``progress-complete`` / ``progress-error``.
- Stage messages as observed; an optional multi-second stall that blocks the event loop, after which the
  in-flight progress polls are reset (TCP RST).
- ``GET /api/import/progress/<id>``: 404 until the upload is received, deleted ``complete_retention`` s after
  completion (5 s in production) and ``error_retention`` s after an error (10 s).
- ``GET /api/imports`` **always 500** (``importService.getImportHistory is not a function`` on 1.1.12;
  ``history_route=True`` models a build where it works: ``{"success":true,"data":[…]}``, newest first).
- ``GET /api/vulnerabilities/last-import`` → ``{"lastImport","rowCount","vendor","filename"}`` of the newest
  import record (written once parsing is done, whatever the outcome; ``{"lastImport":null,"rowCount":0}``).
- Rate limit on ``/api/``: ``rate_limit`` requests per ``rate_window`` s per client, keyed on the first
  ``X-Forwarded-For`` address when present (``trust proxy``), else the peer (60 per 15 min in production);
  every ``/api/`` answer carries ``RateLimit-Policy/Limit/Remaining/Reset``; past the limit 429 with
  ``Retry-After``. A POST refused by the CSRF check (which runs first) is not counted.
- Two imports at once lose data (1.1.12 measured 190 + 529 records missing): while another import runs, an
  import stores only part of its records (``lost_records`` counts them) and still says it completed.
- Unknown routes: Express's HTML 404 page. No cancel, anywhere.

Use::

    with HX11Double(step_delay=0.01) as hx:
        requests.post(hx.url + "/api/auth/login", ...)

The history rows' fields are not documented by the protocol page; the double uses the columns of HexTrackr's
``imports`` table (``id, filename, vendor, scan_date, import_date, row_count, file_size, processing_time,
vulnerability_count``). A row is written when parsing is done (``processing_time`` null) and completed at the
end; a failed import leaves it with ``processing_time`` null.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import math
import os
import secrets
import socket
import struct
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.cookies import SimpleCookie
from typing import Any, Callable
from urllib.parse import unquote

import socketio
import uvicorn

VERSION = "1.1.12"
COOKIE_NAME = "hextrackr.sid"
ALLOWED_CSV_MIMES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")
INTERNAL_ERROR = {"success": False, "error": "Internal server error"}
AUTH_REQUIRED = {"error": "Authentication required", "authenticated": False}
BAD_HANDSHAKE = {"code": 3, "message": "Bad request"}
RATE_LIMITED = {"error": "Too many requests from this IP, please try again later."}
HISTORY_BROKEN = {"success": False, "error": "Failed to fetch import history",
                  "details": "importService.getImportHistory is not a function"}
PUBLIC_AUTH_PATHS = ("/api/auth/login", "/api/auth/csrf", "/api/auth/status")
STALL_RESET_WINDOW = 0.5  # s after a stall during which progress polls are reset

# Production values, overridable per double.
PROD_RATE_LIMIT = 60
PROD_RATE_WINDOW = 15 * 60.0
PROD_COMPLETE_RETENTION = 5.0
PROD_ERROR_RETENTION = 10.0
PROD_THROTTLE = 0.1


def _now_ms() -> int:
    return int(time.time() * 1000)


def express_404(method: str, path: str) -> bytes:
    """Express's default 404 page (finalhandler)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
        f"</head>\n<body>\n<pre>Cannot {method} {path}</pre>\n</body>\n</html>\n"
    ).encode()


@dataclass
class Tracked:
    """One ProgressTracker session."""

    session_id: str
    start_time: int
    metadata: dict[str, Any]
    progress: float = 0.0
    status: str = "initialized"
    last_emit: float = 0.0  # monotonic time of the last emitted progress-update
    emitted: int = 0
    dropped: int = 0

    def status_payload(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "sessionId": self.session_id,
            "startTime": self.start_time,
            "status": self.status,
            "progress": self.progress,
            "message": self.metadata.get("message", ""),
            "metadata": dict(self.metadata),
            "lastUpdate": _now_ms(),
        }


@dataclass
class Request:
    scope: dict[str, Any]
    receive: Callable[..., Any]
    method: str
    path: str
    headers: dict[str, str]
    query: str

    @property
    def client_ip(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else "?"

    async def body(self, limit: int = 10 * 1024 * 1024) -> bytes:
        chunks, size = [], 0
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            if not msg.get("more_body"):
                break
        return b"".join(chunks)

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:
            return None
        morsel = jar.get(name)
        return unquote(morsel.value) if morsel else None


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None
    content_type: str | None = None
    path: str | None = None
    size: int = 0


class _Reset(Exception):
    """Abort the connection with a TCP reset."""


class HX11Double:
    """A HexTrackr 1.1.12 server double on an ephemeral 127.0.0.1 port (see the module docstring).

    Knobs (all keyword arguments):
      users: {username: password}; step_delay: seconds between simulated import steps;
      throttle: min seconds between two progress-update emits of one session (0.1 in production);
      complete_retention / error_retention: seconds a finished / failed session stays pollable;
      rate_limit / rate_window: requests per window on /api/ per client (None: no limit);
      fail_at / fail_message: emit progress-error once progress reaches fail_at;
      stall / stall_at: block the event loop for `stall` seconds once progress reaches stall_at,
      then reset the progress polls that were in flight;
      batch_rows: rows per staging/processing batch;
      tls: (certfile, keyfile) to serve https directly (then the connection itself is "secure");
      summary_bytes: pad metadata.importSummary to at least this size (the real one can be ~70 KB);
      trust_proxy: False models a server whose proxy trust is misconfigured (never sets the cookie over http);
      auth_status_route: False models a 1.1 build without the public /api/auth/status (Express 404 page there);
      history_route: True models a 1.1 build whose /api/imports works (1.1.12's always answers 500);
      concurrent_loss: share of an import's records lost while another import runs (1.1.12: ~2-5 %);
      progress_500: how many progress polls of a known session answer 500 "Failed to check progress" (its
      catch branch; -1: all of them);
      socket_silent_from: from this progress on, progress-update is not emitted (the socket goes silent while
      the polls still see progress; progress-complete still comes).
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        step_delay: float = 0.02,
        throttle: float = PROD_THROTTLE,
        complete_retention: float = PROD_COMPLETE_RETENTION,
        error_retention: float = PROD_ERROR_RETENTION,
        rate_limit: int | None = PROD_RATE_LIMIT,
        rate_window: float = PROD_RATE_WINDOW,
        fail_at: float | None = None,
        fail_message: str = "Import failed: SQLITE_CONSTRAINT: NOT NULL constraint failed: vulnerabilities_current.hostname",
        stall: float = 0.0,
        stall_at: float = 65.0,
        batch_rows: int = 1000,
        trust_proxy: bool = True,
        summary_bytes: int = 0,
        tls: tuple[str, str] | None = None,
        auth_status_route: bool = True,
        history_route: bool = False,
        concurrent_loss: float = 0.04,
        progress_500: int = 0,
        socket_silent_from: float | None = None,
    ) -> None:
        self.users = dict(users if users is not None else {"admin": "hextrackr-test"})
        self.step_delay = step_delay
        self.throttle = throttle
        self.complete_retention = complete_retention
        self.error_retention = error_retention
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.fail_at = fail_at
        self.fail_message = fail_message
        self.stall = stall
        self.stall_at = stall_at
        self.batch_rows = max(1, batch_rows)
        self.trust_proxy = trust_proxy
        self.summary_bytes = summary_bytes
        self.tls = tls
        self.auth_status_route = auth_status_route
        self.history_route = history_route
        self.concurrent_loss = concurrent_loss
        self.progress_500 = progress_500
        self.socket_silent_from = socket_silent_from
        self.started_at = time.monotonic()
        self.running_imports = 0
        self.lost_records = 0
        self.rate_seen: dict[str, int] = {}  # rate-limit key -> requests counted (tests read it)

        self.url = ""
        self.port = 0
        # Observable state for tests.
        self.request_log: list[tuple[str, str, int]] = []  # (method, path, status)
        self.sessions: dict[str, Tracked] = {}
        self.history: list[dict[str, Any]] = []
        self.emitted: list[tuple[str, str, dict[str, Any]]] = []  # (event, room, payload)
        self.joins: list[str] = []
        self.leaves: list[str] = []
        self.timeline: list[tuple[str, str]] = []  # ("emit <event>" | "answer", session id), in order
        self.resets = 0
        self.stalling = False  # True while the event loop is blocked by the stall

        self._auth: dict[str, dict[str, Any]] = {}  # cookie sid -> {"user", "csrf"}
        self._rate: dict[str, tuple[float, int]] = {}  # ip -> (window start, count)
        # vulnerabilities_current as 1.1.12 keeps it: records mapped by its mapVulnerabilityRow (tests/support/hx11_rows.py)
        self.current: list[dict[str, Any]] = []
        self._by_key: dict[str, int] = {}  # enhanced or legacy unique key -> index in current
        self._next_import_id = 1
        self._stall_ended: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tmpdir = tempfile.mkdtemp(prefix="hx11-double-")
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins="*",  # origin policy is enforced below, as the proxy setup does
            ping_interval=25,
            ping_timeout=20,
            logger=False,
            engineio_logger=False,
        )
        self._sio_app = socketio.ASGIApp(self.sio, socketio_path="socket.io")
        self.sio.on("join-progress", self._on_join)
        self.sio.on("leave-progress", self._on_leave)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "HX11Double":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        tls_options = {"ssl_certfile": self.tls[0], "ssl_keyfile": self.tls[1]} if self.tls else {}
        config = uvicorn.Config(
            self._asgi, log_level=os.environ.get("HX11_DOUBLE_LOG", "critical"), lifespan="off", interface="asgi3", http="h11", ws="websockets-sansio"
            if _has_ws_impl("websockets-sansio") else "auto", access_log=False,
            timeout_graceful_shutdown=1, proxy_headers=False, **tls_options,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]
                # Disconnect clients and stop engine.io's background tasks, then cancel what is left.
                closing = [self.sio.eio.disconnect(eio_sid) for eio_sid in list(self.sio.eio.sockets)]
                if closing:
                    try:
                        loop.run_until_complete(asyncio.wait_for(
                            asyncio.gather(*closing, return_exceptions=True), 0.5))
                    except Exception:
                        pass
                loop.run_until_complete(self.sio.shutdown())
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                sock.close()
                loop.close()

        self._thread = threading.Thread(target=run, name="hx11-double", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("hx11 double did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
        for name in os.listdir(self._tmpdir):
            try:
                os.unlink(os.path.join(self._tmpdir, name))
            except OSError:
                pass
        try:
            os.rmdir(self._tmpdir)
        except OSError:
            pass

    def __enter__(self) -> "HX11Double":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests
    def login_cookie(self, username: str | None = None) -> str:
        """Create an authenticated session directly; returns the cookie value (``s:<id>.<sig>``)."""
        user = username or next(iter(self.users))
        return self._new_auth(user)

    def csrf_for(self, cookie_value: str) -> str:
        return self._auth[self._sid_of(cookie_value)]["csrf"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # ------------------------------------------------------------------ ASGI entry
    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # pragma: no cover - lifespan is off
            return
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if path.startswith("/socket.io"):
            await self._socketio_gate(scope, receive, send, headers)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        req = Request(scope, receive, scope["method"], path, headers, scope.get("query_string", b"").decode())
        try:
            status = await self._http(req, send)
        except _Reset:
            self._reset_connection(scope)
            status = 0
        self.request_log.append((req.method, path, status))

    async def _socketio_gate(self, scope: dict[str, Any], receive: Any, send: Any, headers: dict[str, str]) -> None:
        """What express-session + the proxy setup do in front of engine.io."""
        # Only the handshake (no engine.io sid yet) goes through the session check, as allowRequest does;
        # requests of an open engine.io session (polls, the upgrade) are not checked again.
        handshake = b"sid=" not in scope.get("query_string", b"")
        cookie_ok = not handshake or self._authenticated(headers) is not None
        proto_ok = not handshake or _secure(scope, headers)
        if scope["type"] == "websocket":
            origin = headers.get("origin", "")
            if origin.lower().startswith("http://") or not (cookie_ok and proto_ok):
                await send({"type": "websocket.close", "code": 1008})  # uvicorn answers 403
                return
        elif not (cookie_ok and proto_ok):
            await _send_json(send, 400, BAD_HANDSHAKE)
            return
        await self._sio_app(scope, receive, send)

    def _authenticated(self, headers: dict[str, str]) -> dict[str, Any] | None:
        raw = headers.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:
            return None
        morsel = jar.get(COOKIE_NAME)
        if morsel is None:
            return None
        return self._auth.get(self._sid_of(unquote(morsel.value)))

    @staticmethod
    def _sid_of(cookie_value: str) -> str:
        # express-session cookies look like "s:<sid>.<signature>"
        value = cookie_value[2:] if cookie_value.startswith("s:") else cookie_value
        return value.rsplit(".", 1)[0]

    def _new_auth(self, user: str) -> str:
        sid = secrets.token_urlsafe(24)
        sig = hashlib.sha256(sid.encode()).hexdigest()[:43]
        self._auth[sid] = {"user": user, "csrf": secrets.token_hex(16)}
        return f"s:{sid}.{sig}"

    # ------------------------------------------------------------------ HTTP routes
    async def _http(self, req: Request, send: Any) -> int:
        m, p = req.method, req.path
        if m == "GET" and p == "/health":
            return await _send_json(send, 200, {"status": "ok", "db": True,
                                                "uptime": round(time.monotonic() - self.started_at, 6)})
        csrf_refused = (m == "POST" and p.startswith("/api/") and p not in PUBLIC_AUTH_PATHS
                        and not self._csrf_ok(req.headers))
        if p.startswith("/api/") and self.rate_limit is not None and not csrf_refused:
            key = _rate_key(req)
            retry, remaining, reset = self._rate_check(key)
            rate_headers = [(b"ratelimit-policy", f"{self.rate_limit};w={int(self.rate_window)}".encode()),
                            (b"ratelimit-limit", str(self.rate_limit).encode()),
                            (b"ratelimit-remaining", str(remaining).encode()),
                            (b"ratelimit-reset", str(reset).encode())]
            inner = send

            async def send(message: dict[str, Any]) -> None:  # every /api/ answer carries the RateLimit-* headers
                if message["type"] == "http.response.start":
                    message = {**message, "headers": list(message.get("headers", [])) + rate_headers}
                await inner(message)

            if retry is not None:
                await req.body()
                return await _send_json(send, 429, RATE_LIMITED, extra=[("Retry-After", str(retry))])
        if csrf_refused:  # csrf-sync runs before the limiter and the routes' requireAuth
            await req.body()
            return await _send_json(send, 500, INTERNAL_ERROR)
        if m == "POST" and p == "/api/auth/login":
            return await self._login(req, send)
        if m == "POST" and p == "/api/auth/logout":
            return await self._protected(req, send, self._logout, post=True)
        if m == "GET" and p == "/api/auth/csrf":
            auth = self._authenticated(req.headers)
            if auth is None:
                # Public route: without a session the token is bound to nothing and no POST accepts it.
                return await _send_json(send, 200, {"success": True, "csrfToken": secrets.token_hex(16)})
            return await self._csrf(req, send, auth)
        if m == "GET" and p == "/api/auth/status" and self.auth_status_route:  # public, nested under "data"
            auth = self._authenticated(req.headers)
            if auth is None:
                return await _send_json(send, 200, {"success": True, "data": {"authenticated": False}})
            return await _send_json(send, 200, {"success": True, "data": {
                "authenticated": True, "user": {"username": auth["user"], "role": "admin"}}})
        if m == "GET" and p == "/api/vulnerabilities/last-import":
            return await self._protected(req, send, self._last_import)
        if m == "POST" and p == "/api/vulnerabilities/import-staging":
            return await self._protected(req, send, self._import_staging, post=True)
        if m == "POST" and p in ("/api/vulnerabilities/import", "/api/import"):
            return await self._protected(req, send, self._broken_import, post=True)
        if m == "GET" and p.startswith("/api/import/progress/"):
            return await self._protected(req, send, self._progress)
        if m == "GET" and p == "/api/imports":
            return await self._protected(req, send, self._imports)
        body = express_404(m, p)
        return await _send(send, 404, body, "text/html; charset=utf-8",
                           extra=[("Content-Security-Policy", "default-src 'none'"),
                                  ("X-Content-Type-Options", "nosniff")])

    def _rate_check(self, key: str) -> tuple[int | None, int, int]:
        """Count one request of ``key``: (Retry-After seconds past the limit else None, remaining, reset s)."""
        now = time.monotonic()
        start, count = self._rate.get(key, (now, 0))
        if now - start >= self.rate_window:
            start, count = now, 0
        count += 1
        self._rate[key] = (start, count)
        self.rate_seen[key] = self.rate_seen.get(key, 0) + 1
        reset = max(1, math.ceil(self.rate_window - (now - start)))
        limit = self.rate_limit or 0
        return (reset if count > limit else None), max(0, limit - count), reset

    def _csrf_ok(self, headers: dict[str, str]) -> bool:
        auth = self._authenticated(headers)
        return auth is not None and headers.get("x-csrf-token") == auth["csrf"]

    async def _protected(self, req: Request, send: Any, handler: Any, post: bool = False) -> int:
        auth = self._authenticated(req.headers)
        if auth is None:
            await req.body()
            return await _send_json(send, 401, AUTH_REQUIRED)
        if post and req.headers.get("x-csrf-token") != auth["csrf"]:
            await req.body()
            return await _send_json(send, 500, INTERNAL_ERROR)
        return await handler(req, send, auth)

    async def _login(self, req: Request, send: Any) -> int:
        try:
            data = json.loads(await req.body() or b"{}")
        except ValueError:
            return await _send_json(send, 500, INTERNAL_ERROR)
        user = data.get("username") if isinstance(data, dict) else None
        password = data.get("password") if isinstance(data, dict) else None
        if not isinstance(user, str) or self.users.get(user) != password:
            return await _send_json(send, 401, {"success": False, "error": "Invalid username or password"})
        body = {"success": True, "data": {"user": {"id": list(self.users).index(user) + 1, "username": user,
                                                   "role": "admin"}}}
        secure = scope_is_tls(req.scope) or (self.trust_proxy and _secure(req.scope, req.headers))
        if not secure:
            # express-session refuses to set a Secure cookie over what it thinks is plain http
            return await _send_json(send, 200, body)
        value = self._new_auth(user)
        cookie = (f"{COOKIE_NAME}={value.replace(':', '%3A')}; Path=/; Expires="
                  f"{time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(time.time() + 86400))}; "
                  "HttpOnly; Secure; SameSite=Lax")
        return await _send_json(send, 200, body, extra=[("Set-Cookie", cookie)])

    async def _logout(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        for sid, value in list(self._auth.items()):
            if value is auth:
                del self._auth[sid]
        return await _send_json(send, 200, {"success": True, "message": "Logged out"})

    async def _csrf(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        return await _send_json(send, 200, {"success": True, "csrfToken": auth["csrf"]})

    async def _broken_import(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        await req.body()
        return await _send_json(send, 500, INTERNAL_ERROR)

    async def _imports(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        if not self.history_route:
            return await _send_json(send, 500, HISTORY_BROKEN)
        rows = sorted(self.history, key=lambda r: r["id"], reverse=True)
        return await _send_json(send, 200, {"success": True, "data": rows})

    async def _last_import(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        if not self.history:
            return await _send_json(send, 200, {"lastImport": None, "rowCount": 0})
        row = max(self.history, key=lambda r: (r["import_date"], r["id"]))
        return await _send_json(send, 200, {"lastImport": row["scan_date"] or row["import_date"][:10],
                                            "rowCount": row["row_count"] or 0, "vendor": row["vendor"],
                                            "filename": row["filename"]})

    async def _progress(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        if self._stall_ended is not None and time.monotonic() - self._stall_ended < STALL_RESET_WINDOW:
            raise _Reset()
        session_id = unquote(req.path[len("/api/import/progress/"):])
        tracked = self.sessions.get(session_id)
        if tracked is None:
            return await _send_json(send, 404, {"success": False, "error": "Session not found"})
        if self.progress_500:
            self.progress_500 -= 1 if self.progress_500 > 0 else 0
            return await _send_json(send, 500, {"success": False, "error": "Failed to check progress",
                                                "details": "SQLITE_BUSY: database is locked"})
        return await _send_json(send, 200, {
            "success": True, "sessionId": session_id, "progress": tracked.progress, "status": tracked.status,
            "message": tracked.metadata.get("message", ""), "metadata": dict(tracked.metadata),
        })

    async def _import_staging(self, req: Request, send: Any, auth: dict[str, Any]) -> int:
        try:
            upload = await self._read_multipart(req)
        except ValueError:
            return await _send_json(send, 500, INTERNAL_ERROR)
        if upload.file_field is None:
            return await _send_json(send, 400, {"error": "No file uploaded"})
        if upload.file_field != "csvFile" or (upload.content_type or "").split(";")[0].strip().lower() not in \
                ALLOWED_CSV_MIMES:
            # multer: "Unexpected field" / fileFilter error -> the generic error handler
            _unlink(upload.path)
            return await _send_json(send, 500, INTERNAL_ERROR)
        filename = upload.filename or "upload.csv"
        vendor = upload.fields.get("vendor") or _vendor_from_filename(filename)
        scan_date = upload.fields.get("scanDate") or datetime.now(timezone.utc).strftime("%Y-%m-%d")
        session_id = upload.fields.get("sessionId") or str(uuid.uuid4())
        metadata = {"operation": "csv-import", "filename": filename, "vendor": vendor, "scanDate": scan_date,
                    "totalSteps": 3, "currentStep": 0}
        tracked = Tracked(session_id=session_id, start_time=_now_ms(), metadata=metadata)
        self.sessions[session_id] = tracked
        # The first progress goes out before the answer: a client that joins after the POST misses it.
        await self._update(tracked, 5, "Parsing CSV file...", currentStep=1)
        await asyncio.sleep(0.05)  # let the engine.io writers flush it first
        task = asyncio.get_running_loop().create_task(self._run_import(tracked, upload, auth["user"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.timeline.append(("answer", session_id))
        return await _send_json(send, 200, {"success": True, "sessionId": session_id,
                                            "message": "CSV import started", "filename": filename,
                                            "vendor": vendor, "scanDate": scan_date})

    async def _read_multipart(self, req: Request) -> Upload:
        from python_multipart.multipart import MultipartParser, parse_options_header

        ctype, params = parse_options_header(req.headers.get("content-type", ""))
        if ctype != b"multipart/form-data" or b"boundary" not in params:
            await req.body()
            raise ValueError("not multipart")
        upload = Upload()
        state: dict[str, Any] = {"headers": {}, "hname": b"", "hval": b"", "buf": None, "fh": None, "name": None}

        def on_part_begin() -> None:
            state["headers"], state["buf"], state["fh"], state["name"] = {}, None, None, None

        def on_header_field(data: bytes, start: int, end: int) -> None:
            state["hname"] += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["hval"] += data[start:end]

        def on_header_end() -> None:
            state["headers"][state["hname"].decode("latin-1").lower()] = state["hval"].decode("utf-8", "replace")
            state["hname"], state["hval"] = b"", b""

        def on_headers_finished() -> None:
            _, disp = parse_options_header(state["headers"].get("content-disposition", ""))
            name = disp.get(b"name", b"").decode("utf-8", "replace")
            state["name"] = name
            if b"filename" in disp:
                if upload.file_field is not None:
                    raise ValueError("more than one file")
                upload.file_field = name
                upload.filename = os.path.basename(disp[b"filename"].decode("utf-8", "replace"))
                upload.content_type = state["headers"].get("content-type", "application/octet-stream")
                fd, path = tempfile.mkstemp(dir=self._tmpdir, suffix=".csv")
                upload.path = path
                state["fh"] = os.fdopen(fd, "wb")
            else:
                state["buf"] = bytearray()

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["fh"] is not None:
                state["fh"].write(data[start:end])
                upload.size += end - start
            elif state["buf"] is not None:
                state["buf"] += data[start:end]

        def on_part_end() -> None:
            if state["fh"] is not None:
                state["fh"].close()
                state["fh"] = None
            elif state["buf"] is not None:
                upload.fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")

        parser = MultipartParser(params[b"boundary"], callbacks={  # type: ignore[arg-type]
            "on_part_begin": on_part_begin, "on_header_field": on_header_field,
            "on_header_value": on_header_value, "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        })
        try:
            while True:
                msg = await req.receive()
                if msg["type"] == "http.disconnect":
                    raise ValueError("client went away")
                parser.write(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            parser.finalize()
        except Exception as exc:
            if state["fh"] is not None:
                state["fh"].close()
            _unlink(upload.path)
            raise ValueError(str(exc)) from None
        return upload

    # ------------------------------------------------------------------ the import
    async def _update(self, tracked: Tracked, progress: float, message: str, **metadata: Any) -> None:
        """ProgressTracker.updateProgress: state always updated, emit throttled to one per `throttle` s."""
        tracked.progress = progress
        tracked.metadata.update(metadata)
        tracked.metadata["message"] = message
        now = time.monotonic()
        if self.socket_silent_from is not None and progress >= self.socket_silent_from:
            return
        if tracked.emitted and now - tracked.last_emit < self.throttle:
            tracked.dropped += 1
            return  # dropped, never re-sent
        tracked.last_emit = now
        tracked.emitted += 1
        await self._emit("progress-update", tracked.session_id, {
            "sessionId": tracked.session_id, "progress": progress, "message": message,
            "status": tracked.status, "timestamp": _now_ms(), "metadata": dict(tracked.metadata),
        })

    async def _emit(self, event: str, session_id: str, payload: dict[str, Any]) -> None:
        room = f"progress-{session_id}"
        self.emitted.append((event, room, payload))
        self.timeline.append((f"emit {event}", session_id))
        await self.sio.emit(event, payload, room=room)

    async def _step(self, tracked: Tracked, progress: float, message: str, **metadata: Any) -> None:
        if self.fail_at is not None and progress >= self.fail_at:
            raise _ImportError(self.fail_message)
        if self.stall and progress >= self.stall_at and self._stall_ended is None:
            self.stalling = True
            time.sleep(self.stall)  # the real server blocks its event loop here
            self.stalling = False
            self._stall_ended = time.monotonic()
        await self._update(tracked, progress, message, **metadata)
        await asyncio.sleep(self.step_delay)

    async def _run_import(self, tracked: Tracked, upload: Upload, user: str) -> None:
        started = time.monotonic()
        record: dict[str, Any] | None = None
        self.running_imports += 1
        try:
            await asyncio.sleep(self.step_delay)
            header, rows = _read_csv(upload.path or "")
            n = len(rows)
            if not header:
                raise _ImportError("Import failed: CSV file is empty or has no header row")
            record = self._new_record(tracked, upload, n)
            await self._step(tracked, 15, f"Parsed {n} rows", currentStep=1, rowCount=n, totalRows=n,
                             importId=record["id"])
            batches = max(1, math.ceil(n / self.batch_rows))
            for b in range(1, batches + 1):
                done = min(n, b * self.batch_rows)
                await self._step(tracked, 25 + 35 * done / max(1, n),
                                 f"Inserted {done}/{n} records to staging table...", currentStep=2,
                                 insertedCount=done, totalRows=n, rowCount=n)
            await self._step(tracked, 60, f"Staging complete: {n} records loaded", currentStep=2,
                             insertedCount=n)
            await self._step(tracked, 65, "Processing staging data to final tables...", currentStep=3)
            inserted, updated, resolved = self._apply(header, rows, tracked.metadata["vendor"])
            if self.running_imports > 1 and self.concurrent_loss > 0:  # 1.1.12 loses records when two run at once
                self._lose(max(1, int(inserted * self.concurrent_loss)))
            await self._step(tracked, 70, f"Identified {inserted} new and {updated} existing vulnerabilities",
                             currentStep=3, processedCount=0)
            for b in range(1, batches + 1):
                await self._step(tracked, 70 + 25 * b / batches, f"Processing batch {b}/{batches}...",
                                 currentStep=3, processedCount=min(n, b * self.batch_rows),
                                 batchNumber=b, totalBatches=batches)
            await self._step(tracked, 95, "Finalizing import and cleaning up...", currentStep=3)
            elapsed_ms = int((time.monotonic() - started) * 1000)
            summary = _import_summary(header, rows, inserted, updated, resolved, tracked.metadata)
            if self.summary_bytes:
                _pad_summary(summary, rows, self.summary_bytes)
            tracked.status = "completed"
            tracked.progress = 100
            tracked.metadata.update(
                message="Import completed successfully", processedRows=n, insertedToCurrent=inserted,
                updatedInCurrent=updated, resolvedCount=resolved, insertedToSnapshots=n,
                totalProcessingTime=elapsed_ms, rowsPerSecond=round(n / max(elapsed_ms / 1000, 0.001)),
                importSummary=summary,
            )
            record.update(processing_time=elapsed_ms, vulnerability_count=inserted + updated)
            await self._emit("progress-complete", tracked.session_id, {
                "sessionId": tracked.session_id, "progress": 100, "message": "Import completed successfully",
                "status": "completed", "timestamp": _now_ms(), "duration": _now_ms() - tracked.start_time,
                "metadata": dict(tracked.metadata),
            })
            self._forget_later(tracked.session_id, self.complete_retention)
        except Exception as exc:  # noqa: BLE001 - the server reports every failure as progress-error
            message = str(exc) if isinstance(exc, _ImportError) else f"Import failed: {exc}"
            tracked.status = "error"
            tracked.metadata["message"] = message
            await self._emit("progress-error", tracked.session_id, {
                "sessionId": tracked.session_id, "progress": tracked.progress, "message": message,
                "status": "error", "timestamp": _now_ms(), "metadata": dict(tracked.metadata),
                "error": message,
            })
            self._forget_later(tracked.session_id, self.error_retention)
        finally:
            self.running_imports -= 1
            _unlink(upload.path)

    def _lose(self, n: int) -> None:
        """Lose ``n`` of the records just stored, as 1.1.12's interleaved staging/processing does (their
        ``lifecycle_state`` becomes ``lost``: no longer active, never resolved either)."""
        active = [r for r in self.current if r["lifecycle_state"] == "active"]
        for record in active[-n:] if n else []:
            record["lifecycle_state"] = "lost"
        self.lost_records += min(n, len(active))

    def active_records(self) -> int:
        """How many records are active in vulnerabilities_current (tests read it)."""
        return sum(1 for r in self.current if r["lifecycle_state"] == "active")

    def _forget_later(self, session_id: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self.sessions.pop, session_id, None)

    def _new_record(self, tracked: Tracked, upload: Upload, n: int) -> dict[str, Any]:
        record = {
            "id": self._next_import_id, "filename": tracked.metadata["filename"],
            "vendor": tracked.metadata["vendor"], "scan_date": tracked.metadata["scanDate"],
            "import_date": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "row_count": n, "file_size": upload.size, "processing_time": None, "vulnerability_count": 0,
        }
        self._next_import_id += 1
        self.history.append(record)
        return record

    def _apply(self, header: list[str], rows: list[list[str]], vendor: str) -> tuple[int, int, int]:
        """What 1.1.12 does to vulnerabilities_current: every active record into its grace period, each row mapped
        by mapVulnerabilityRow and looked up by its enhanced or legacy unique key (found: updated, else inserted),
        then what is still in its grace period resolved. Counts of inserted, updated and resolved records."""
        from support import hx11_rows

        for record in self.current:
            if record["lifecycle_state"] == "active":
                record["lifecycle_state"] = "grace_period"
        inserted = updated = 0
        for cells in rows:
            row = dict(zip(header, cells))  # PapaParse with header: true
            for mapped in hx11_rows.map_vulnerability_row(row):
                stored = hx11_rows.staged(mapped)
                enhanced, legacy = hx11_rows.enhanced_unique_key(stored), hx11_rows.legacy_unique_key(stored)
                at = self._by_key.get(enhanced, self._by_key.get(legacy))
                record = {**stored, "lifecycle_state": "active", "enhanced_unique_key": enhanced}
                if at is None:
                    self.current.append({**record, "unique_key": legacy})
                    at = len(self.current) - 1
                    self._by_key.setdefault(legacy, at)
                    inserted += 1
                else:
                    self.current[at].update(record)
                    updated += 1
                self._by_key[enhanced] = at
        resolved = 0
        for record in self.current:
            if record["lifecycle_state"] == "grace_period":
                record["lifecycle_state"] = "resolved"
                resolved += 1
        return inserted, updated, resolved

    # ------------------------------------------------------------------ socket.io
    async def _on_join(self, sid: str, session_id: Any = None) -> Any:
        if isinstance(session_id, str):
            self.joins.append(session_id)
            await self.sio.enter_room(sid, f"progress-{session_id}")
            tracked = self.sessions.get(session_id)
            if tracked is not None:
                await self.sio.emit("progress-status", tracked.status_payload(), to=sid)
        return self.sio.not_handled  # the real server never acknowledges

    async def _on_leave(self, sid: str, session_id: Any = None) -> Any:
        if isinstance(session_id, str):
            self.leaves.append(session_id)
            await self.sio.leave_room(sid, f"progress-{session_id}")
        return self.sio.not_handled

    # ------------------------------------------------------------------ connection reset
    def _reset_connection(self, scope: dict[str, Any]) -> None:
        self.resets += 1
        server = self._server
        if server is None:
            return
        for proto in list(server.server_state.connections):
            cycle = getattr(proto, "cycle", None)
            if cycle is not None and getattr(cycle, "scope", None) is scope:
                transport = proto.transport  # type: ignore[union-attr]
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                transport.abort()
                return


class _ImportError(Exception):
    pass


def _rate_key(req: Request) -> str:
    """What express-rate-limit keys on with ``trust proxy``: the first X-Forwarded-For address, else the peer."""
    forwarded = req.headers.get("x-forwarded-for", "").split(",")[0].strip()
    return forwarded or req.client_ip


def scope_is_tls(scope: dict[str, Any]) -> bool:
    return scope.get("scheme") in ("https", "wss")


def _secure(scope: dict[str, Any], headers: dict[str, str]) -> bool:
    """What Express with ``trust proxy`` calls ``req.secure``: TLS, or X-Forwarded-Proto: https."""
    return scope_is_tls(scope) or headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def _has_ws_impl(name: str) -> bool:
    try:
        from uvicorn.config import WS_PROTOCOLS

        return name in WS_PROTOCOLS
    except Exception:  # pragma: no cover
        return False


def _unlink(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def _vendor_from_filename(filename: str) -> str:
    lower = filename.lower()
    for vendor in ("cisco", "tenable", "qualys", "palo"):
        if vendor in lower:
            return "palo_alto" if vendor == "palo" else vendor
    return "tenable"


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [r for r in reader if any(c.strip() for c in r)]
    return header, rows


def _import_summary(header: list[str], rows: list[list[str]], inserted: int, updated: int, resolved: int,
                    metadata: dict[str, Any]) -> dict[str, Any]:
    cols = [h.strip().lower() for h in header]
    per_cve: dict[str, int] = {}
    if "cve" in cols:
        i = cols.index("cve")
        for r in rows:
            if i < len(r):
                per_cve[r[i]] = per_cve.get(r[i], 0) + 1
    return {"filename": metadata.get("filename"), "vendor": metadata.get("vendor"),
            "scanDate": metadata.get("scanDate"), "totalRows": len(rows), "newVulnerabilities": inserted,
            "updatedVulnerabilities": updated, "resolvedVulnerabilities": resolved,
            "cveBreakdown": per_cve}


def _pad_summary(summary: dict[str, Any], rows: list[list[str]], size: int) -> None:
    """Per-host details, as the real summary carries, until the summary is at least ``size`` bytes of JSON."""
    details: list[dict[str, Any]] = []
    summary["hostDetails"] = details
    approx = len(json.dumps(summary))
    i = 0
    while approx < size:
        row = rows[i % len(rows)] if rows else [f"host{i}"]
        item = {"hostname": row[0], "ip": row[1] if len(row) > 1 else "", "cve": row[2] if len(row) > 2 else "",
                "action": "inserted", "row": i}
        details.append(item)
        approx += len(json.dumps(item)) + 2
        i += 1


async def _send(send: Any, status: int, body: bytes, ctype: str,
                extra: list[tuple[str, str]] | None = None) -> int:
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode()),
               (b"x-powered-by", b"Express")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


async def _send_json(send: Any, status: int, data: Any, extra: list[tuple[str, str]] | None = None) -> int:
    return await _send(send, status, json.dumps(data).encode(), "application/json; charset=utf-8", extra)


def self_signed_cert(directory: str) -> tuple[str, str]:
    """A throw-away certificate for 127.0.0.1 made with the openssl CLI: (certfile, keyfile)."""
    import subprocess

    cert, key = os.path.join(directory, "hx11-cert.pem"), os.path.join(directory, "hx11-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )
    return cert, key


def csv_text(rows: int, *, start: int = 0, cves: int = 50) -> str:
    """A generic vulnerability CSV with ``rows`` data rows (hostnames start at ``start``)."""
    out = io.StringIO()
    out.write("hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,"
              "first_seen,last_seen\n")
    for i in range(start, start + rows):
        out.write(f"host{i:06d},10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255},CVE-2025-{1000 + i % cves},"
                  f"High,{10000 + i % cves},Plugin {i % cves},desc,patch,open,2025-11-01,2025-11-20\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Run the double by hand: ``cd tests && python -m support.hx11_double [--stall 5] [--rate-limit 60] …``."""
    import argparse

    parser = argparse.ArgumentParser(description="HexTrackr 1.1.12 protocol double (for manual testing)")
    parser.add_argument("--password", default="hextrackr-test", help="password of user 'admin'")
    parser.add_argument("--step-delay", type=float, default=0.05)
    parser.add_argument("--stall", type=float, default=0.0)
    parser.add_argument("--fail-at", type=float, default=None)
    parser.add_argument("--rate-limit", type=int, default=PROD_RATE_LIMIT, help="0: no limit")
    args = parser.parse_args(argv)
    double = HX11Double(users={"admin": args.password}, step_delay=args.step_delay, stall=args.stall,
                        fail_at=args.fail_at, rate_limit=args.rate_limit or None)
    with double:
        print(f"HexTrackr 1.1 double on {double.url} (user admin); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
