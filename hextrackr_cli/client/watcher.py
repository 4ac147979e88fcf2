"""One watcher: follows an import session and yields typed events, whatever the transport.

Socket.io first (websocket, then engine.io long-polling), with python-socketio's own reconnection
(1, 2, 4, 8, 16 s, at most 5 attempts, jittered); after every reconnect the room is re-joined and the state
re-read. HTTP polling of the progress endpoint takes over when the socket cannot connect, gives up
reconnecting, or stays silent while the status endpoint shows progress. While the socket is reconnecting, the
status endpoint is polled too, so an import that ends meanwhile is never missed.

Events land in one queue; the command's loop takes them with :meth:`Watcher.get`. The watcher never prints.
This module keeps the session state and the outcome decision; the socket side is ``client.watch_socket``,
the polling side and the silent-socket check ``client.watch_poll``, the dialect's details a ``Strategy``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Mapping

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.client import watch_poll, watch_socket
from hextrackr_cli.client.watch_poll import event_key
from hextrackr_cli.client.strategy import Strategy
from hextrackr_cli.errors import AuthError, ExitStatus, HextrackrError, ServerError

LIVENESS = 10.0  # seconds of socket silence before the status endpoint is asked whether it moved on
GIVE_UP_AFTER = 30.0  # seconds of failing status polls (without a socket) before the watch is declared broken


class _Failure:
    """An exception raised in a background thread, re-raised by :meth:`Watcher.get` in the caller's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _outcome_exit(outcome: str) -> int:
    if outcome == protocol.OUTCOME_COMPLETED:
        return ExitStatus.OK
    return ExitStatus.IMPORT_FAILED


class Watcher:
    """Follow one session; see the module docstring."""

    def __init__(
        self,
        api: Any,  # the dialect's API (client.seed.api.SeedApi, client.hx11.api.Hx11Api)
        *,
        server_url: str,
        token: str | None,
        transport: str = "auto",
        poll_interval: float = 1.0,
        liveness: float = LIVENESS,
        give_up_after: float = GIVE_UP_AFTER,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        strategy: Strategy | None = None,
    ) -> None:
        """``strategy`` carries the dialect's wire details (``client.strategy``); the default speaks the seed
        protocol with ``token``."""
        if transport not in ("auto", "websocket", "polling"):
            raise ValueError(f"unknown transport {transport!r}")
        self.api = api
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.transport = transport
        self.poll_interval = poll_interval
        self.liveness = liveness
        self.give_up_after = give_up_after
        self.verify = verify
        self.connect_timeout = connect_timeout
        if strategy is None:  # the seed dialect unless told otherwise
            from hextrackr_cli.client.seed.strategy import SeedStrategy

            strategy = SeedStrategy(api, token, verify)
        self.strategy: Strategy = strategy
        self.dialect: protocol.Dialect = self.strategy.dialect

        self.session_id: str | None = None
        self.mode: str | None = None  # "socket" | "polling"
        self.transport_name = ""
        self.active = False  # False between a reserve-join and the POST: nothing to poll yet
        self.reserved = False

        self._q: queue.Queue[Any] = queue.Queue()
        self._lock = threading.RLock()
        self._done = False
        self._closing = False
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._last_socket_msg = time.monotonic()
        self._last_liveness_check = 0.0
        self._last_poll = 0.0
        self._polls = 0  # polls since the last mode change (a dialect may space them out)
        self._poll_not_before = 0.0  # a 429's Retry-After
        self._poll_fail_since: float | None = None
        self._sio: Any = None
        self._connected = threading.Event()
        self._ever_connected = False
        self._reconnecting = False
        self._reconnect_attempt = 0
        self._need_rejoin = False
        self._connect_error: Any = None
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------------ public API
    def put(self, event: ev.Event) -> None:
        """Let a producer beside the watcher (the uploader) feed the same queue."""
        self._q.put(event)

    def fail(self, exc: BaseException) -> None:
        self._q.put(_Failure(exc))

    def get(self, timeout: float = 0.1) -> ev.Event | None:
        """The next event, or None after ``timeout``. Background failures are raised here."""
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, _Failure):
            raise item.exc
        return item

    @property
    def done(self) -> bool:
        return self._done

    @property
    def last_event(self) -> dict[str, Any] | None:
        return self._last

    def start(self, session_id: str, *, reserve: bool = False) -> None:
        """Connect and join ``session_id`` (``reserve``: before the POST), or start polling.

        Raises AuthError when the credentials are refused, SessionNotFound for an unknown session,
        ServerUnreachable when ``--transport websocket`` cannot connect.
        """
        self.session_id = session_id
        self.reserved = reserve
        self.active = not reserve
        self.strategy.start(session_id)
        if self.transport == "polling":
            self._switch_to_polling("--transport polling")
        else:
            try:
                self._connect_socket()
            except AuthError:
                raise
            except HextrackrError as exc:
                if self.transport == "websocket":
                    raise
                self._switch_to_polling(f"socket.io could not connect ({exc.message})")
            else:
                self._join(reserve=reserve, first=True)
                self.put(ev.TransportChanged(self.transport_name, "connected"))
        if self.strategy.checks_on_start and not reserve:
            self._poll_once(retries=0)  # raises SessionNotFound for an id the server does not know
        self._supervisor = threading.Thread(target=self._supervise, name="hextrackr-watcher", daemon=True)
        self._supervisor.start()

    def mark_posted(self, answer: Mapping[str, Any] | None = None) -> None:
        """The POST was accepted: the session exists, polling may start."""
        self.strategy.posted(answer)
        self.active = True
        self._last_socket_msg = time.monotonic()

    def request_cancel(self) -> None:
        """Emit the dialect's cancel event (no wait); the confirmation arrives as an Outcome."""
        if self.dialect.cancel_event is None or self.session_id is None:
            return
        sid = self.session_id

        def on_ack(*args: Any) -> None:
            ack = args[0] if args else None
            if isinstance(ack, Mapping) and ack.get("ok") is False:
                self.put(ev.Notice(f"cancel refused by the server: {ack.get('error') or 'no reason given'}", "warning"))
                self._last_poll = 0.0  # read the state now: the import may have ended

        sio = self._sio
        if sio is not None and self._connected.is_set():
            try:
                sio.emit(self.dialect.cancel_event, sid, callback=on_ack)
                return
            except Exception:
                pass
        # No live socket (HTTP polling): a short-lived connection just to send the cancel.
        threading.Thread(target=self._cancel_via_new_socket, args=(sid, on_ack), daemon=True).start()

    def close(self) -> None:
        """Stop everything without blocking for long (engine.io long-polling can take ~30 s to close)."""
        self._closing = True
        self._stop.set()
        sio = self._sio
        self._sio = None
        if sio is not None and self.session_id and self._connected.is_set():
            try:
                self.strategy.leave(sio, self.session_id)
            except Exception:
                pass
        if sio is not None:
            t = threading.Thread(target=self._close_socket, args=(sio,), daemon=True)
            t.start()
            t.join(1.0)

    # the socket side (client/watch_socket.py)
    _new_client = watch_socket.new_client
    _connect_socket = watch_socket.connect_socket
    _current_transport = staticmethod(watch_socket.current_transport)
    _describe_connect_error = watch_socket.describe_connect_error
    _raise_if_auth = watch_socket.raise_if_auth
    _register = watch_socket.register
    _join = watch_socket.join
    _rejoin = watch_socket.rejoin
    _cancel_via_new_socket = watch_socket.cancel_via_new_socket
    _close_socket = staticmethod(watch_socket.close_socket)

    # ------------------------------------------------------------------ state
    def _on_progress(self, event: dict[str, Any], source: str) -> None:
        with self._lock:
            if self._done:
                return
            terminal = event.get("type") in protocol.TERMINAL_TYPES
            last = self._last
            if last is not None and not terminal:
                if event_key(event) == event_key(last):
                    return
                if event.get("progress", 0) < last.get("progress", 0):
                    return  # older than what we have shown (events can race across threads/transports)
                if last.get("type") in protocol.TERMINAL_TYPES:
                    return
            self._last = event
            self.put(ev.Progress(event, source))
            if event.get("type") == protocol.COMPLETE:
                self._finish(
                    ev.Outcome(
                        protocol.OUTCOME_COMPLETED,
                        self.session_id or "",
                        ExitStatus.OK,
                        import_id=event.get("importId"),
                        message=event.get("message", ""),
                        summary=ev.summary_from(event),
                        source=source,
                    )
                )
            elif event.get("type") == protocol.ERROR:
                self._finish(
                    ev.Outcome(
                        protocol.OUTCOME_FAILED,
                        self.session_id or "",
                        ExitStatus.IMPORT_FAILED,
                        import_id=event.get("importId"),
                        message=event.get("message") or "the import failed on the server",
                        summary=ev.summary_from(event),
                        source=source,
                    )
                )

    def _on_status(self, body: Mapping[str, Any], *, source: str) -> None:
        """A SessionState (join ack or polling body): show its progress, finish on a final outcome."""
        outcome = protocol.state_outcome(body)
        event = protocol.state_event(body, self.session_id or "")
        if outcome == protocol.OUTCOME_RUNNING:
            if event is not None and event.get("type") not in protocol.TERMINAL_TYPES:
                self._on_progress(event, source)
            return
        if outcome == protocol.OUTCOME_CANCELLED:
            with self._lock:
                if event is not None and event.get("type") not in protocol.TERMINAL_TYPES:
                    self._on_progress(event, source)
                self._finish(
                    ev.Outcome(
                        protocol.OUTCOME_CANCELLED,
                        self.session_id or "",
                        ExitStatus.IMPORT_FAILED,
                        import_id=body.get("importId"),
                        message="cancelled; the server confirmed and rolled the import back",
                        confirmed=True,
                        source=source,
                    )
                )
            return
        self._on_progress(protocol.final_event(body, self.session_id or ""), source)

    def _finish(self, outcome: ev.Outcome) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            self.put(outcome)
        self._stop.set()

    def _switch_to_polling(self, reason: str, *, keep_socket: bool = False) -> None:
        """Poll the status endpoint from now on; ``keep_socket``: a silent but connected socket stays open
        beside the polls (a 1.1.x server's ``progress-complete`` may still come that way, and its session is
        gone 5 s later)."""
        with self._lock:
            if self.mode == "polling":
                return
            self.mode = "polling"
            self.transport_name = ev.POLLING
            self._last_poll = 0.0
            self._polls = 0
            self._poll_fail_since = None
        sio = self._sio
        if keep_socket and sio is not None and self._connected.is_set():
            self.put(ev.TransportChanged(ev.POLLING, reason))
            return
        self._sio = None
        if sio is not None:
            threading.Thread(target=self._close_socket, args=(sio, True), daemon=True).start()
        self.put(ev.TransportChanged(ev.POLLING, reason))

    # ------------------------------------------------------------------ supervisor
    def _supervise(self) -> None:
        try:
            while not self._stop.wait(0.05):
                if self._done:
                    return
                if self._need_rejoin and self._connected.is_set():
                    self._rejoin()
                if not self.active:
                    continue
                now = time.monotonic()
                if self.mode == "polling":
                    if self._poll_due(now, self.poll_interval):
                        self._poll_once(retries=0)
                elif not self._connected.is_set():
                    # reconnecting: the status endpoint keeps the outcome from being missed
                    if self._poll_due(now, max(self.poll_interval, 1.0)):
                        self._poll_once(retries=0, quiet=True)
                elif now - self._last_socket_msg >= self.liveness and now - self._last_liveness_check >= self.liveness:
                    self._last_liveness_check = now
                    self._check_liveness()
        except HextrackrError as exc:
            self.fail(exc)
        except Exception as exc:  # a bug in here must not hang the command
            self.fail(ServerError(f"watcher failed: {type(exc).__name__}: {exc}"))

    # the polling side and the socket-silence check (client/watch_poll.py)
    _poll_due = watch_poll.poll_due
    _apply = watch_poll.apply
    _poll_once = watch_poll.poll_once
    _check_liveness = watch_poll.check_liveness
