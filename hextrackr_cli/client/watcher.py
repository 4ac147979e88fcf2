"""One watcher: follows an import session and yields typed events, whatever the transport.

Socket.io first (websocket, then engine.io long-polling), with python-socketio's own reconnection
(1, 2, 4, 8, 16 s, at most 5 attempts, jittered); after every reconnect the room is re-joined and the state
re-read. HTTP polling of the progress endpoint takes over when the socket cannot connect, gives up
reconnecting, or stays silent while the status endpoint shows progress. While the socket is reconnecting, the
status endpoint is polled too, so an import that ends meanwhile is never missed.

Events land in one queue; the command's loop takes them with :meth:`Watcher.get`. The watcher never prints.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Mapping

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.client.seed.api import SeedApi, SessionNotFound
from hextrackr_cli.client.strategy import Fetched, OutcomeUnknown, Strategy
from hextrackr_cli.errors import AuthError, ExitStatus, HextrackrError, ServerError, ServerUnreachable

LIVENESS = 10.0  # seconds of socket silence before the status endpoint is asked whether it moved on
GIVE_UP_AFTER = 30.0  # seconds of failing status polls (without a socket) before the watch is declared broken


def _quiet_logger(name: str) -> Any:
    import logging

    log = logging.getLogger(name)
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


class _Failure:
    """An exception raised in a background thread, re-raised by :meth:`Watcher.get` in the caller's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _outcome_exit(outcome: str) -> int:
    if outcome == protocol.OUTCOME_COMPLETED:
        return ExitStatus.OK
    return ExitStatus.IMPORT_FAILED


def _event_key(e: Mapping[str, Any]) -> tuple[Any, ...]:
    return (e.get("type"), e.get("progress"), e.get("message"), e.get("processedRows"))


class Watcher:
    """Follow one session; see the module docstring."""

    def __init__(
        self,
        api: SeedApi,
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

    # ------------------------------------------------------------------ socket
    def _new_client(self) -> Any:
        import engineio.payload
        import socketio

        # A polling response may carry more than engine.io's default 16 packets when events burst.
        engineio.payload.Payload.max_decode_packets = max(engineio.payload.Payload.max_decode_packets, 512)
        return socketio.Client(
            reconnection=True,
            reconnection_attempts=protocol.MAX_RECONNECT_ATTEMPTS,
            reconnection_delay=protocol.RECONNECT_DELAY,
            reconnection_delay_max=protocol.RECONNECT_DELAY_MAX,
            randomization_factor=0.5,
            # Our own silent loggers: with logger=False the libraries attach a stderr handler that would print
            # their errors (and handler tracebacks) into the user's terminal. The watcher reports, never prints.
            logger=_quiet_logger("hextrackr.socketio"),
            engineio_logger=_quiet_logger("hextrackr.engineio"),
            handle_sigint=False,
            ssl_verify=bool(self.verify),
            request_timeout=self.connect_timeout,
            **self.strategy.client_kwargs(),
        )

    def _connect_socket(self) -> None:
        import socketio

        order = [["websocket"]] if self.transport == "websocket" else [["websocket"], ["polling", "websocket"]]
        last_error = "no transport worked"
        for transports in order:
            sio = self._new_client()
            self._register(sio)
            self._connect_error = None
            try:
                sio.connect(
                    self.server_url,
                    transports=transports,
                    wait_timeout=self.connect_timeout,
                    **self.strategy.connect_kwargs(),
                )
            except (socketio.exceptions.ConnectionError, ValueError, OSError) as exc:
                self._raise_if_auth(exc)
                last_error = self._describe_connect_error(exc)
                self._close_socket(sio, quick=True)
                continue
            self._sio = sio
            self._connected.set()
            self._ever_connected = True
            self._last_socket_msg = time.monotonic()
            self.mode = "socket"
            self.transport_name = self._current_transport(sio)
            return
        raise ServerUnreachable(f"socket.io connection to {self.server_url} failed: {last_error}")

    @staticmethod
    def _current_transport(sio: Any) -> str:
        try:
            name = sio.transport()
        except Exception:
            name = "websocket"
        return ev.WEBSOCKET if name == "websocket" else ev.SOCKET_POLLING

    def _describe_connect_error(self, exc: BaseException) -> str:
        data = self._connect_error
        if isinstance(data, Mapping) and data.get("message"):
            return str(data["message"])
        if data:
            return str(data)
        return str(exc) or type(exc).__name__

    def _raise_if_auth(self, exc: BaseException) -> None:
        texts = [str(exc), str(self._connect_error or "")]
        for t in texts:
            low = t.lower()
            if "unauthorized" in low or "forbidden" in low or " 401" in low or " 403" in low or "token" in low:
                raise AuthError(
                    f"the server refused the socket.io connection ({self._describe_connect_error(exc)})",
                    hint=self.strategy.auth_hint,
                ) from None

    def _register(self, sio: Any) -> None:
        dialect = self.dialect

        def on_connect() -> None:
            self._connected.set()
            self._last_socket_msg = time.monotonic()
            if self._reconnecting:
                self._reconnecting = False
                self._reconnect_attempt = 0
                self.transport_name = self._current_transport(sio)
                self._need_rejoin = True  # the supervisor re-joins, re-reads the state, then reports Reconnected

        def on_connect_error(data: Any = None) -> None:
            self._connect_error = data
            if self._reconnecting and not self._closing:
                text = str(data.get("message") if isinstance(data, Mapping) else data)
                if "unauthorized" in text.lower():
                    self.fail(AuthError("the server refused the socket.io reconnection", hint=self.strategy.auth_hint))
                    return
                self._reconnect_attempt += 1
                if self._reconnect_attempt < protocol.MAX_RECONNECT_ATTEMPTS:
                    delay = min(protocol.RECONNECT_DELAY * 2**self._reconnect_attempt, protocol.RECONNECT_DELAY_MAX)
                    self.put(ev.Reconnecting(self._reconnect_attempt + 1, delay, text))

        def on_disconnect(reason: Any = None) -> None:
            self._connected.clear()
            if self._closing or self._done or self.mode == "polling":  # a socket kept beside the polls
                return
            self._reconnecting = True
            self._reconnect_attempt = 0
            self._last_poll = 0.0  # ask the status endpoint at once: did it end meanwhile?
            self.put(ev.Reconnecting(1, protocol.RECONNECT_DELAY, str(reason or "connection lost")))

        def on_final(*_: Any) -> None:
            if self._closing or self._done:
                return
            self._connected.clear()
            self._reconnecting = False
            self._switch_to_polling(
                f"socket.io reconnection failed after {protocol.MAX_RECONNECT_ATTEMPTS} attempts"
            )

        def make_progress_handler(name: str) -> Callable[..., None]:
            def on_progress(data: Any = None, *_: Any) -> None:
                self._last_socket_msg = time.monotonic()
                try:
                    event = self.strategy.translate(name, data)
                except (protocol.ProtocolError, ValueError, TypeError):
                    return
                if event is None or event.get("sessionId") != self.session_id:
                    return
                self._on_progress(event, self.transport_name or ev.WEBSOCKET)

            return on_progress

        def on_cancelled(data: Any = None, *_: Any) -> None:
            self._last_socket_msg = time.monotonic()
            if isinstance(data, Mapping) and data.get("sessionId") not in (None, self.session_id):
                return
            self._finish(
                ev.Outcome(
                    protocol.OUTCOME_CANCELLED,
                    self.session_id or "",
                    ExitStatus.IMPORT_FAILED,
                    import_id=(self._last or {}).get("importId"),
                    message="cancelled; the server confirmed and rolled the import back",
                    confirmed=True,
                    source=self.transport_name,
                )
            )

        sio.on("connect", on_connect)
        sio.on("connect_error", on_connect_error)
        sio.on("disconnect", on_disconnect)
        sio.on("__disconnect_final", on_final)
        for name in dialect.progress_events:
            sio.on(name, make_progress_handler(name))
        if dialect.cancelled_event:
            sio.on(dialect.cancelled_event, on_cancelled)

    def _join(self, *, reserve: bool, first: bool) -> None:
        sio = self._sio
        if sio is None:
            return
        state = self.strategy.join(sio, self.session_id or "", reserve=reserve, first=first,
                                   timeout=self.connect_timeout)
        if state is not None:
            self._on_status(state, source="join")

    def _rejoin(self) -> None:
        self._need_rejoin = False
        try:
            self._join(reserve=self.reserved and not self.active, first=False)
        except HextrackrError as exc:
            self.put(ev.Notice(f"re-joining the session failed: {exc}", "warning"))
        self.put(ev.Reconnected(self.transport_name))
        if self.active:
            self._poll_once(retries=1)

    def _cancel_via_new_socket(self, sid: str, on_ack: Any) -> None:
        try:
            sio = self._new_client()
            sio.reconnection = False
            sio.connect(self.server_url, wait_timeout=5, **self.strategy.connect_kwargs())
        except Exception as exc:
            self.put(ev.Notice(f"could not send the cancel (no socket.io connection: {exc})", "warning"))
            return
        try:
            ack = sio.call(self.dialect.cancel_event, sid, timeout=5)
            on_ack(ack)
        except Exception as exc:
            self.put(ev.Notice(f"the cancel was not acknowledged ({type(exc).__name__})", "warning"))
        finally:
            self._close_socket(sio, quick=True)
        self._last_poll = 0.0

    @staticmethod
    def _close_socket(sio: Any, quick: bool = False) -> None:
        try:
            sio.reconnection = False
            abort = getattr(sio, "_reconnect_abort", None)
            if abort is not None:
                abort.set()
            if quick:
                sio.eio.disconnect(abort=True)
            elif sio.connected:
                sio.disconnect()
            else:
                sio.eio.disconnect(abort=True)
        except Exception:
            pass

    # ------------------------------------------------------------------ state
    def _on_progress(self, event: dict[str, Any], source: str) -> None:
        with self._lock:
            if self._done:
                return
            terminal = event.get("type") in protocol.TERMINAL_TYPES
            last = self._last
            if last is not None and not terminal:
                if _event_key(event) == _event_key(last):
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

    def _poll_due(self, now: float, base: float) -> bool:
        if now < self._poll_not_before:
            return False
        return now - self._last_poll >= self.strategy.poll_gap(base, self._polls)

    def _apply(self, fetched: Fetched, source: str) -> None:
        if fetched.state is not None:
            self._on_status(fetched.state, source=source)
        elif fetched.event is not None:
            self._on_progress(fetched.event, source)
        elif fetched.outcome is not None:
            if fetched.outcome.message:  # how it was decided (e.g. from the import history)
                self.put(ev.Notice(fetched.outcome.message))
            self._finish(fetched.outcome)

    def _poll_once(self, *, retries: int | None = None, quiet: bool = False) -> None:
        self._last_poll = time.monotonic()
        self._polls += 1
        sid = self.session_id or ""
        try:
            fetched = self.strategy.poll(sid, retries=retries)
        except SessionNotFound:
            if self._last is None and not quiet:
                raise
            return
        except (AuthError, ServerUnreachable, ServerError) as exc:
            if isinstance(exc, (AuthError, OutcomeUnknown)):
                raise
            wait = getattr(exc, "retry_after", None)
            if isinstance(wait, (int, float)):
                # 429: the server's rate limit; waiting it out is not a failure (--timeout still bounds it)
                self._poll_not_before = time.monotonic() + wait
                self.put(ev.Notice(f"the server's rate limit was reached; next status poll in {wait:g}s", "warning"))
                return
            if quiet:
                return
            now = time.monotonic()
            if self._poll_fail_since is None:
                self._poll_fail_since = now
                self.put(ev.Notice(f"status poll failed ({exc.message}); retrying", "warning"))
            elif now - self._poll_fail_since > self.give_up_after:
                how_long = int(now - self._poll_fail_since)
                if isinstance(exc, ServerUnreachable):
                    raise ServerUnreachable(f"lost contact with the server for {how_long}s ({exc.message})",
                                            hint=f"the import may still be running: hextrackr watch {sid}") from None
                # The server answers, with errors: not a network failure, and not the import's failure either.
                raise ServerUnreachable(f"the server answered every status poll for {how_long}s with an error "
                                        f"({exc.message})",
                                        hint=f"the import may still be running: hextrackr watch {sid}") from None
            return
        if self._poll_fail_since is not None and not quiet:
            self._poll_fail_since = None
            self.put(ev.Notice("status polling recovered"))
        source = ev.POLLING if self.mode == "polling" else "status"
        self._apply(fetched, source)

    def _check_liveness(self) -> None:
        """The socket has been silent: if the status endpoint has moved on, stop trusting the socket."""
        sid = self.session_id or ""
        try:
            fetched = self.strategy.poll(sid, retries=0)
        except OutcomeUnknown:
            raise
        except HextrackrError:
            return
        body = fetched.state
        if body is not None:
            event = protocol.state_event(body, sid)
            outcome = protocol.state_outcome(body)
        else:
            event = fetched.event
            outcome = protocol.OUTCOME_RUNNING if fetched.outcome is None else fetched.outcome.outcome
            if event is not None and event.get("type") in protocol.TERMINAL_TYPES:
                outcome = protocol.OUTCOME_COMPLETED
        last = self._last
        moved = outcome != protocol.OUTCOME_RUNNING or (
            event is not None
            and (last is None or (_event_key(event) != _event_key(last) and event["progress"] >= last.get("progress", 0)))
        )
        if moved:
            self._switch_to_polling(f"socket.io silent for {int(self.liveness)}s while the server reports progress",
                                    keep_socket=self.strategy.keeps_socket_while_polling)
            self._apply(fetched, ev.POLLING)
