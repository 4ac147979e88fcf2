"""What the HTTP app and the Socket.io namespace share: tokens, tracker, importer, the emit queue."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hextrackr_cli import protocol
from hextrackr_cli.server.pipeline import Importer
from hextrackr_cli.server.storage import Database
from hextrackr_cli.server.tracker import ProgressTracker, Session, session_state

if TYPE_CHECKING:
    from hextrackr_cli.server.state import SharedState

log = logging.getLogger("hextrackr.server")

AUTH_FAILURES_PER_MINUTE = 10


def token_id(token: str) -> str:
    """Public id of a token: the first 12 hex chars of its sha256 (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Principal:
    token_id: str
    admin: bool

    def may_see(self, owner: str | None) -> bool:
        return self.admin or owner == self.token_id


class RateLimiter:
    """Failed authentication attempts per client address: at most ``limit`` per ``window`` seconds."""

    def __init__(self, limit: int = AUTH_FAILURES_PER_MINUTE, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._fails: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, addr: str) -> int:
        """Seconds until ``addr`` may try again (0 = now)."""
        with self._lock:
            q = self._fails.get(addr)
            if not q:
                return 0
            now = time.monotonic()
            while q and now - q[0] > self.window:
                q.popleft()
            if len(q) < self.limit:
                return 0
            return max(1, int(self.window - (now - q[0])) + 1)

    def fail(self, addr: str) -> None:
        with self._lock:
            self._fails.setdefault(addr, collections.deque()).append(time.monotonic())


class _LoopHandle:
    """A cancellable ``call_later`` that may be created and cancelled from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, fn: Callable[[], None]) -> None:
        self._cancelled = False
        self._inner: asyncio.TimerHandle | None = None
        self._loop = loop

        def fire() -> None:
            if not self._cancelled:
                fn()

        def schedule() -> None:
            if not self._cancelled:
                self._inner = loop.call_later(delay, fire)

        loop.call_soon_threadsafe(schedule)

    def cancel(self) -> None:
        self._cancelled = True
        inner = self._inner
        if inner is not None:
            try:
                self._loop.call_soon_threadsafe(inner.cancel)
            except RuntimeError:  # loop closed
                pass


def finished_message(status: str, cancelled: bool) -> str:
    """The cancelImport refusal for a session that is over (its status or import record's, and cancel flag)."""
    if cancelled or status == "cancelled":
        return "Import already cancelled"
    if status == protocol.FAILED:
        return "Import already failed"
    return "Import already completed"


class ServerContext:
    def __init__(self, *, db: Database, tokens: list[str], retention: float, max_upload: int,
                 upload_dir: Path, shared: SharedState | None = None) -> None:
        if not tokens:
            raise ValueError("at least one token is required")
        self.db = db
        self._tokens = [(t.encode("utf-8"), token_id(t)) for t in tokens]
        self.admin_id = self._tokens[0][1]
        self.max_upload = max_upload
        self.upload_dir = upload_dir
        self.limiter = RateLimiter()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, Any, str | None, str | None]] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self.sio: Any = None  # set by the app builder
        self.shared = shared  # state.SharedState when workers share a message queue (Redis), else None
        self._sweeper: asyncio.Task[None] | None = None
        self._on_remote_cancel: Callable[[str], None] | None = None  # a cancel asked on another worker
        self.tracker: ProgressTracker
        if shared is None:
            self.tracker = ProgressTracker(self.emit, self.call_later, retention=retention)
        else:
            tracker = shared.make_tracker(self.emit, self.call_later, retention=retention)
            self.tracker, self._on_remote_cancel = tracker, tracker.remote_cancel
        self.importer = Importer(db, self.tracker)

    # ------------------------------------------------------------------ auth
    def authenticate(self, token: Any) -> Principal | None:
        if not isinstance(token, str) or not token:
            return None
        given = token.encode("utf-8", "replace")
        found = None
        for secret, tid in self._tokens:
            if hmac.compare_digest(given, secret):
                found = tid
        if found is None:
            return None
        return Principal(found, found == self.admin_id)

    # ------------------------------------------------------------------ loop plumbing
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue = asyncio.Queue()
        self._consumer = loop.create_task(self._consume())
        if self.shared is not None and self._on_remote_cancel is not None:
            self.shared.start(self._on_remote_cancel)
            self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Every second: imports whose worker is gone are recorded as failed and their rooms told."""
        from hextrackr_cli.server.state import sweep

        shared = self.shared
        while shared is not None:
            await asyncio.sleep(1.0)
            try:
                await asyncio.to_thread(sweep, shared, self.db, self.tracker, self.emit, self.tracker.retention)
            except Exception as exc:  # Redis or the database is down: next round
                log.debug("sweep: %s", exc)

    def queue_ok(self) -> bool:
        """False when the message queue is configured but unreachable (blocking)."""
        return self.shared is None or self.shared.ping()

    def _stored(self, session_id: str) -> dict[str, Any] | None:
        """The message queue's hash of a session (any worker's), None without a queue or while Redis is down."""
        if self.shared is None:
            return None
        try:
            return self.shared.load(session_id)
        except self.shared.Error:
            return None

    def remote_state(self, session_id: str, principal: Principal) -> dict[str, Any] | None:
        """SessionState of a session another worker runs (message queue only); blocking."""
        stored = self._stored(session_id)
        if stored is None or not principal.may_see(stored.get("owner")):
            return None
        state = stored["state"]
        return state if isinstance(state, dict) else None

    def reserved_by_other(self, session_id: str, principal: Principal) -> bool:
        """True when another token reserved ``session_id`` on another worker (message queue only); blocking."""
        stored = self._stored(session_id)
        return stored is not None and stored.get("status") == protocol.PENDING and stored.get("owner") != principal.token_id

    def remote_cancel(self, session_id: str, principal: Principal) -> dict[str, Any] | None:
        """The cancelImport ack for a session another worker runs (message queue only), None if unknown; blocking."""
        state = self.remote_state(session_id, principal)
        shared = self.shared
        if state is None or shared is None:
            return None
        try:
            result = shared.cancel(session_id)
        except shared.Error:
            return {"ok": False, "error": "the message queue (Redis) is unreachable; the cancel was not delivered"}
        if result == "ok":
            return {"ok": True}
        if result == "committing":
            return {"ok": False, "error": "Import is committing; too late to cancel"}
        if result == "missing":
            return None
        return {"ok": False, "error": finished_message(result, bool(state.get("cancelled")))}

    async def stop(self) -> None:
        self.tracker.shutdown()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.shared is not None:
            self.shared.stop()
        if self._consumer is not None:
            self._consumer.cancel()
            try:
                await self._consumer
            except (asyncio.CancelledError, Exception):
                pass

    async def close_clients(self) -> None:
        """Disconnect every Socket.io client (each gets a CLOSE packet) and stop engine.io's background task."""
        if self.sio is None:
            return
        for sock in list(getattr(self.sio.eio, "sockets", {}).values()):
            try:
                await sock.close(wait=False)
            except Exception:
                pass
        await self.sio.shutdown()

    def emit(self, event: str, data: dict[str, Any], room: str | None = None, to: str | None = None) -> None:
        """Queue a Socket.io emit; safe from any thread. One consumer keeps the order events were queued in."""
        loop, queue = self.loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (event, data, room, to))
        except RuntimeError:  # loop closed during shutdown
            pass

    def call_later(self, delay: float, fn: Callable[[], None]) -> _LoopHandle:
        assert self.loop is not None
        return _LoopHandle(self.loop, delay, fn)

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            event, data, room, to = await self._queue.get()
            try:
                await self.sio.emit(event, data, room=room, to=to)
            except Exception:
                log.exception("emit %s failed", event)

    # ------------------------------------------------------------------ session views
    def visible_session(self, session_id: str, principal: Principal) -> Session | None:
        session = self.tracker.get(session_id)
        if session is not None and principal.may_see(session.owner):
            return session
        return None

    def state_for(self, session_id: str, principal: Principal) -> tuple[Any, bool]:
        """(SessionState, from_memory) of a session the principal may see; DB after cleanup. Blocking (DB)."""
        session = self.visible_session(session_id, principal)
        if session is not None:
            return session_state(session), True
        if self.tracker.get(session_id) is not None:
            return None, True
        state = self.remote_state(session_id, principal)
        if state is not None:
            return state, True
        row = self.db.import_by_session(session_id)
        if row is None or not principal.may_see(row["owner"]):
            return None, False
        return state_from_record(row), False


def state_from_record(row: dict[str, Any]) -> dict[str, Any]:
    """SessionState for an import whose in-memory session is gone (final outcome from the import record)."""
    status = row["status"]
    cancelled = status == "cancelled"
    seed_status = {"completed": protocol.COMPLETED, "running": protocol.ACTIVE}.get(status, protocol.FAILED)
    last_event = json.loads(row["last_event"]) if row.get("last_event") else None
    summary = None
    if status == "completed":
        summary = {k: row[k] for k in ("rows", "records", "inserted", "updated", "resolved")}
        summary.update(importId=row["id"], durationMs=row["duration_ms"], format=row.get("format"),
                       vendor=row["vendor"])
    if last_event is None and status != "running":
        if status == "completed":
            last_event = protocol.progress_event(row["session_id"], protocol.COMPLETE, 100, "Import completed",
                                                 eta=0, **(summary or {}))
        else:
            last_event = protocol.progress_event(row["session_id"], protocol.ERROR, 0,
                                                 row["error"] or f"Import {status}")
    progress = 100 if status == "completed" else (last_event or {}).get("progress", 0)
    shown = {"type": (last_event or {}).get("type"), "message": (last_event or {}).get("message", ""),
             "eta": None if status != "completed" else 0}
    return protocol.session_state(
        row["session_id"], status=seed_status, cancelled=cancelled, import_id=row["id"], progress=progress,
        latest=shown, total_rows=row["rows"], processed_rows=row["rows"] if status == "completed" else 0,
        last_event=last_event, summary=summary, error=row["error"], import_type=row["type"],
        startedAt=row["started_at"], finishedAt=row["finished_at"])

