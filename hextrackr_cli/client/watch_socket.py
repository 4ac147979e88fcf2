"""The Watcher's Socket.io side: the client built for the dialect, connect (websocket, then long-polling),
the handlers (reconnects, progress, cancelled), join and re-join, the cancel sent on a socket of its own.

The functions are the Watcher's methods (``self`` is the Watcher); they never print.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.errors import AuthError, ExitStatus, HextrackrError, ServerUnreachable

if TYPE_CHECKING:
    from hextrackr_cli.client.watcher import Watcher


def quiet_logger(name: str) -> Any:
    import logging

    log = logging.getLogger(name)
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def new_client(self: Watcher) -> Any:
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
        logger=quiet_logger("hextrackr.socketio"),
        engineio_logger=quiet_logger("hextrackr.engineio"),
        handle_sigint=False,
        ssl_verify=bool(self.verify),
        request_timeout=self.connect_timeout,
        **self.strategy.client_kwargs(),
    )


def connect_socket(self: Watcher) -> None:
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


def current_transport(sio: Any) -> str:
    try:
        name = sio.transport()
    except Exception:
        name = "websocket"
    return ev.WEBSOCKET if name == "websocket" else ev.SOCKET_POLLING


def describe_connect_error(self: Watcher, exc: BaseException) -> str:
    data = self._connect_error
    if isinstance(data, Mapping) and data.get("message"):
        return str(data["message"])
    if data:
        return str(data)
    return str(exc) or type(exc).__name__


def raise_if_auth(self: Watcher, exc: BaseException) -> None:
    texts = [str(exc), str(self._connect_error or "")]
    for t in texts:
        low = t.lower()
        if "unauthorized" in low or "forbidden" in low or " 401" in low or " 403" in low or "token" in low:
            raise AuthError(
                f"the server refused the socket.io connection ({self._describe_connect_error(exc)})",
                hint=self.strategy.auth_hint,
            ) from None


def register(self: Watcher, sio: Any) -> None:
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


def join(self: Watcher, *, reserve: bool, first: bool) -> None:
    sio = self._sio
    if sio is None:
        return
    state = self.strategy.join(sio, self.session_id or "", reserve=reserve, first=first,
                               timeout=self.connect_timeout)
    if state is not None:
        self._on_status(state, source="join")


def rejoin(self: Watcher) -> None:
    self._need_rejoin = False
    try:
        self._join(reserve=self.reserved and not self.active, first=False)
    except HextrackrError as exc:
        self.put(ev.Notice(f"re-joining the session failed: {exc}", "warning"))
    self.put(ev.Reconnected(self.transport_name))
    if self.active:
        self._poll_once(retries=1)


def cancel_via_new_socket(self: Watcher, sid: str, on_ack: Any) -> None:
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


def close_socket(sio: Any, quick: bool = False) -> None:
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
