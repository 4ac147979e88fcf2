"""Session state shared by several server workers through Redis (``hextrackr serve --message-queue redis://…``).

Without a message queue the ProgressTracker's memory is the store (one worker; nothing here is used). With one:

- Socket.io rooms and events cross workers through python-socketio's ``AsyncRedisManager`` (``manager()``).
- Each session's state (SessionState incl. the last event, status, owner, the throttle window's last send time) is
  written through to a Redis hash on every change, kept while the import runs and for the retention (5 min)
  after it ends, so ``joinSession`` and ``GET /api/import/progress/{id}`` answer on any worker (``load()``).
- The cancel flag and the commit point live in that hash and change only in Lua scripts, so a cancel received by
  any worker and the owner's point of no return exclude each other atomically; the owner hears the cancel on a
  pub/sub channel and stops at its next batch boundary (``SharedTracker``).
- Each worker keeps a heartbeat key alive; a worker whose key expired (killed) has its running imports recorded
  as failed by another worker, which tells the room (``sweep()``).

Keys: ``{prefix}:session:{id}``, ``{prefix}:worker:{host:pid}``; channels ``{prefix}:socketio``,
``{prefix}:cancel``. The prefix comes from the URL's ``prefix`` query parameter (default ``hextrackr``), so
several deployments can share one Redis.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
from typing import Any, Callable, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hextrackr_cli import protocol
from hextrackr_cli.server.reading import ImportProblem
from hextrackr_cli.server.storage import RUNNER, Database, runner_alive
from hextrackr_cli.server.tracker import ProgressTracker, Session, session_state

log = logging.getLogger("hextrackr.server")

HEARTBEAT = 1.0  # seconds between two refreshes of a worker's heartbeat key
WORKER_TTL = 5  # seconds after which a silent worker counts as gone
ACTIVE_TTL = 3600  # a running session's hash outlives a lost worker by at most this (the sweep ends it sooner)
ORPHAN_GRACE = 10.0  # seconds an import record may exist before its worker's session does
FULL_SWEEP = 30.0  # seconds between two looks at the running imports when no worker has gone

# cancel: refused when committing or finished; otherwise set the flag and tell the owner
_CANCEL = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return 'missing' end
if redis.call('HGET', KEYS[1], 'committing') == '1' then return 'committing' end
if st ~= ARGV[3] and st ~= ARGV[4] then return st end
redis.call('HSET', KEYS[1], 'cancelled', '1')
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 'ok'
"""
# the owner's point of no return: refused once cancelled; afterwards cancels are refused
_COMMIT = """
if redis.call('HGET', KEYS[1], 'cancelled') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'committing', '1')
return 1
"""


class QueueUnavailable(ImportProblem):
    """Redis cannot be reached: the import stops before its commit rather than run with events lost."""


def split_url(url: str) -> tuple[str, str]:
    """``redis://host:port/db?prefix=name`` -> (the URL for redis-py, the key prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"--message-queue must be a redis://, rediss:// or unix:// URL, not {parts.scheme or url!r}://")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), "") or "hextrackr"
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class SharedState:
    """The Redis side of several workers: session hashes, cancel scripts and channel, worker heartbeats."""

    def __init__(self, url: str, runner: str = RUNNER) -> None:
        try:
            import redis
        except ImportError:
            raise ValueError("a message queue needs the redis package; install it with pip install 'hextrackr[redis]'") \
                from None
        self.url, self.prefix = split_url(url)
        self.runner = runner  # this worker, as the import records name it
        self.redis = redis.Redis.from_url(self.url, socket_timeout=3, socket_connect_timeout=2,
                                          health_check_interval=10)
        self.channel = f"{self.prefix}:socketio"
        self.cancel_channel = f"{self.prefix}:cancel"
        self._cancel = self.redis.register_script(_CANCEL)
        self._commit = self.redis.register_script(_COMMIT)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending: dict[str, tuple[dict[str, str], float]] = {}
        self.reachable = True  # as of the last heartbeat: lookups made on the event loop skip Redis when it is down
        self.up_since = time.monotonic()  # Redis reachable since (heartbeats lost in an outage need time to return)
        self.live_workers: set[str] = set()  # heartbeats seen by the last sweep
        self.last_full_sweep = 0.0
        self._pending_cond = threading.Condition()
        self.Error: type[Exception] = redis.RedisError

    def key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def worker_key(self, runner: str) -> str:
        return f"{self.prefix}:worker:{runner}"

    def manager(self) -> Any:
        """python-socketio's Redis client manager on this deployment's channel (publishing first, see below)."""
        import socketio

        class PublishFirstRedisManager(socketio.AsyncRedisManager):
            """``AsyncRedisManager`` delivers an emit to this worker's clients and then publishes it to the others;
            this one publishes first, so every worker fans the event out at the same time, and does not publish an
            emit meant for one client of this worker (the joiner's current state)."""

            async def _handle_emit(self, message: dict[str, Any]) -> None:
                if message.get("host_id") == self.host_id and not message.get("_published"):
                    room = message.get("room")
                    if room is None or not self.is_connected(room, message.get("namespace") or "/"):
                        await self._publish(message)
                    message["_published"] = True  # emit() publishes after delivering: it is done already
                await super()._handle_emit(message)

            async def _publish(self, data: dict[str, Any]) -> None:
                if not data.get("_published"):
                    await super()._publish(data)

        # a bounded connect: an unreachable Redis must not hold the emit queue for a TCP timeout (no read timeout:
        # the manager's subscription reads block while the channel is quiet)
        return PublishFirstRedisManager(self.url, channel=self.channel, redis_options={"socket_connect_timeout": 2})

    # ------------------------------------------------------------------ health
    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except self.Error:
            return False

    # ------------------------------------------------------------------ session hashes
    def save(self, session: Session, ttl: float, last_sent: float | None = None, *, wait: bool = True) -> None:
        """Write a session's state through (never the cancel flag or commit point: the scripts own those).

        ``wait=False``: hand it to the writer thread (the latest state of a session wins), so a caller holding
        the tracker's lock or running on the event loop never waits for Redis.
        """
        mapping = {"state": json.dumps(session_state(session)), "status": session.status, "owner": session.owner,
                   "runner": self.runner}
        if last_sent is not None:
            mapping["lastSent"] = repr(last_sent)  # the throttle window: when the room last heard from it
        if wait:
            self._write(session.id, mapping, ttl)
            return
        with self._pending_cond:
            self._pending[session.id] = (mapping, ttl)
            self._pending_cond.notify()

    def _write(self, session_id: str, mapping: dict[str, str], ttl: float) -> None:
        key = self.key(session_id)
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(key, mapping=cast("dict[Any, Any]", mapping))  # redis-py: a Mapping invariant in its key
            pipe.expire(key, max(1, int(ttl)))
            pipe.execute()
        except self.Error as exc:
            log.warning("message queue: cannot store session %s: %s", session_id, exc)

    def _writer(self) -> None:
        while True:
            with self._pending_cond:
                while not self._pending and not self._stop.is_set():
                    self._pending_cond.wait(0.5)
                items, self._pending = self._pending, {}
            for session_id, (mapping, ttl) in items.items():
                self._write(session_id, mapping, ttl)
            if self._stop.is_set() and not items:
                return

    def load(self, session_id: str) -> dict[str, Any] | None:
        """The stored hash of a session (``state`` parsed), or None."""
        raw = self.redis.hgetall(self.key(session_id))
        if not raw:
            return None
        data: dict[str, Any] = {_text(k): _text(v) for k, v in raw.items()}
        try:
            data["state"] = json.loads(data.get("state") or "null")
        except ValueError:
            return None
        if data["state"] is None:
            return None
        data["state"]["cancelled"] = data["state"].get("cancelled") or (
            data.get("cancelled") == "1" and data.get("status") != protocol.COMPLETED)
        return data

    def cancel(self, session_id: str) -> str:
        """'ok' | 'committing' | 'missing' | the finished status. Raises ``self.Error`` when Redis is down."""
        result = self._cancel(keys=[self.key(session_id)],
                              args=[self.cancel_channel, session_id, protocol.ACTIVE, protocol.PENDING])
        return result.decode() if isinstance(result, bytes) else str(result)

    def try_commit(self, session_id: str) -> bool:
        return bool(self._commit(keys=[self.key(session_id)]))

    def publish_cancel(self, session_id: str) -> None:
        self.redis.publish(self.cancel_channel, session_id)

    # ------------------------------------------------------------------ workers
    def worker_alive(self, runner: str | None) -> bool:
        if not runner:
            return False
        if self.redis.exists(self.worker_key(runner)):
            return True
        return runner_alive(runner)  # a process of this host that still exists (Redis may just have been down)

    def start(self, on_cancel: Callable[[str], None]) -> None:
        """Heartbeat and cancel-listener threads (daemons; ``stop()`` ends them)."""
        self._threads = [threading.Thread(target=self._beat, name="mq-heartbeat", daemon=True),
                         threading.Thread(target=self._writer, name="mq-writer", daemon=True),
                         threading.Thread(target=self._listen, args=(on_cancel,), name="mq-cancel", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        with self._pending_cond:
            self._pending_cond.notify()
        for t in self._threads:
            if t.name == "mq-writer":
                t.join(5.0)  # the last states (completed, failed) reach Redis before the worker exits
        try:
            self.redis.delete(self.worker_key(self.runner))
        except self.Error:
            pass

    def _beat(self) -> None:
        while True:
            try:
                self.redis.set(self.worker_key(self.runner), "1", ex=WORKER_TTL)
                if not self.reachable:
                    self.up_since = time.monotonic()
                self.reachable = True
            except self.Error:
                self.reachable = False
            if self._stop.wait(HEARTBEAT):
                return

    def _listen(self, on_cancel: Callable[[str], None]) -> None:
        while not self._stop.is_set():
            # redis-py leaves pubsub() unannotated
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.cancel_channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message and message.get("type") == "message":
                        try:
                            on_cancel(message["data"].decode())
                        except Exception:
                            log.exception("cancel from another worker failed")
            except self.Error:
                self._stop.wait(0.5)  # Redis is down: try again (the commit script refuses meanwhile)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    pass

    # ------------------------------------------------------------------ trackers
    def make_tracker(self, emit: Any, call_later: Any, **kw: Any) -> "SharedTracker":
        return SharedTracker(emit, call_later, shared=self, **kw)


class SharedTracker(ProgressTracker):
    """The ProgressTracker whose sessions are also visible to, and cancellable from, every other worker."""

    def __init__(self, emit: Any, call_later: Any, *, shared: SharedState, **kw: Any) -> None:
        super().__init__(emit, call_later, **kw)
        self.shared = shared

    def _save(self, session: Session, ttl: float | None = None, wait: bool = False) -> None:
        timing = self.timing.get(session.id)
        self.shared.save(session, ACTIVE_TTL if ttl is None else ttl, timing.last_time if timing else None,
                         wait=wait)

    def create_session(self, session_id: str, **meta: Any) -> Session:
        with self._lock:
            session = super().create_session(session_id, **meta)
            try:  # cancelled while reserved (on whichever worker): the import stops before it starts
                if self.shared.redis.hget(self.shared.key(session_id), "cancelled") == b"1":
                    session.cancelled = True
            except self.shared.Error:
                pass
            self._save(session, wait=True)  # visible to every worker before the upload is answered
            return session

    def reserve(self, session_id: str, owner: str, ttl: float = 60.0) -> Session:
        with self._lock:
            session = super().reserve(session_id, owner, ttl)
            self._save(session, ttl, wait=True)
            return session

    def get(self, session_id: str) -> Session | None:
        session = super().get(session_id)
        if session is not None and session.status == protocol.PENDING and self.shared.reachable:
            # a reservation made here, but the upload went to another worker: that worker has the session now
            try:
                status = self.shared.redis.hget(self.shared.key(session_id), "status")
            except self.shared.Error:
                return session
            if status is not None and _text(status) != protocol.PENDING:
                with self._lock:
                    if self.sessions.get(session_id) is session:
                        self.sessions.pop(session_id, None)
                        self._drop_timers(session_id)
                return None
        return session

    def _send(self, session: Session, timing: Any, event: dict[str, Any]) -> None:
        super()._send(session, timing, event)
        self._save(session)

    def emit_cancelled(self, session_id: str) -> None:
        with self._lock:
            super().emit_cancelled(session_id)
            session = self.sessions.get(session_id)
            if session is not None:
                self._save(session, self.retention if session.status != protocol.ACTIVE else None)

    def complete_session(self, session_id: str, success: bool = True) -> None:
        with self._lock:
            super().complete_session(session_id, success)
            session = self.sessions.get(session_id)
            if session is not None:
                self._save(session, self.retention)

    def request_cancel(self, session_id: str, reason: str | None = None) -> bool:
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None or session.committing:
                return False
            if reason is not None:  # this worker is stopping: its own import fails, nobody cancelled it
                return super().request_cancel(session_id, reason)
            try:
                result = self.shared.cancel(session_id)
            except self.shared.Error:
                result = "missing"  # Redis is down: this worker's own flag (the commit is refused anyway)
            if result not in ("ok", "missing"):
                return False
            return super().request_cancel(session_id, reason)

    def try_commit(self, session_id: str) -> bool:
        with self._lock:
            if not super().try_commit(session_id):
                return False
            session = self.sessions.get(session_id)
            try:
                ok = self.shared.try_commit(session_id)
            except self.shared.Error as exc:
                if session is not None:
                    session.committing = False
                raise QueueUnavailable(f"the message queue (Redis) is unreachable ({exc}); nothing was changed") \
                    from None
            if not ok and session is not None:
                session.committing = False
                session.cancelled = True
            return ok

    def remote_cancel(self, session_id: str) -> None:
        """A cancel accepted by some worker (the script set the flag): stop the import if it runs here."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return
            if session.status == protocol.PENDING:
                super().emit_cancelled(session_id)
                self.cleanup(session_id)
            elif session.status == protocol.ACTIVE and not session.committing:
                session.cancelled = True


def sweep(shared: SharedState, db: Database, tracker: ProgressTracker, emit: Callable[..., None],
          retention: float) -> int:
    """Record as failed the running imports whose worker is gone, and tell their rooms. Returns how many.

    The database is asked only when a worker's heartbeat disappeared since the last call, or every FULL_SWEEP
    seconds (a worker that came and went between two calls; this worker's own orphans).
    """
    if not db.shared_by_workers or not shared.reachable or time.monotonic() - shared.up_since < WORKER_TTL + 2 * HEARTBEAT:
        return 0  # after a Redis outage every worker needs a beat to show it is alive again
    live = {k.decode().rsplit(":worker:", 1)[-1] for k in shared.redis.scan_iter(match=shared.worker_key("*"))}
    vanished = bool(shared.live_workers - live)
    shared.live_workers = live
    if not vanished and time.monotonic() - shared.last_full_sweep < FULL_SWEEP:
        return 0
    shared.last_full_sweep = time.monotonic()
    failed = 0
    now = _dt.datetime.now(_dt.timezone.utc)
    for row in db.running_imports():
        runner = row.get("runner")
        if runner == shared.runner:
            session = tracker.sessions.get(row["session_id"])
            if session is not None or _age(row.get("started_at"), now) < ORPHAN_GRACE:
                continue
            message = "the import stopped on this worker (database connection lost?); nothing was changed"
        elif shared.worker_alive(runner):
            continue
        else:
            message = "the worker running this import stopped; nothing was changed"
        conn = db.connect()
        try:
            done = db.fail_import(conn, row["id"], message)
        finally:
            conn.close()
        if not done:
            continue
        failed += 1
        event = protocol.progress_event(row["session_id"], protocol.ERROR, 0, message, importId=row["id"])
        stub = Session(id=row["session_id"], startTime=protocol.now_ms(), status=protocol.FAILED,
                       import_id=row["id"], error=message, latest=event, last_event=event)
        stub.endTime = protocol.now_ms()
        try:
            stored = shared.load(row["session_id"])
            if stored is not None:
                stub.owner = stored.get("owner", "")
                stub.import_type = stored["state"].get("importType") or stub.import_type
        except shared.Error:
            pass
        shared.save(stub, retention)
        emit(protocol.IMPORT_PROGRESS, event, row["session_id"])
        log.warning("import %s: %s", row["id"], message)
    return failed


def _text(value: bytes | str) -> str:
    """A Redis reply as text (the client answers bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else value


def _age(started_at: str | None, now: _dt.datetime) -> float:
    try:
        started = _dt.datetime.fromisoformat((started_at or "").replace("Z", "+00:00"))
    except ValueError:
        return ORPHAN_GRACE
    return (now - started).total_seconds()
