"""Socket.io handlers (namespace ``/``): auth on connect, joinSession (+ reserve), cancelImport."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio

from hextrackr_cli import protocol
from hextrackr_cli.server.context import Principal, ServerContext, finished_message
from hextrackr_cli.server.tracker import session_state

log = logging.getLogger("hextrackr.server")

RESERVATION_TTL = 60.0


def _client_addr(environ: dict[str, Any]) -> str:
    scope = environ.get("asgi.scope") or {}
    client = scope.get("client") or (environ.get("REMOTE_ADDR"), 0)
    return str(client[0])


class ImportNamespace(socketio.AsyncNamespace):
    def __init__(self, ctx: ServerContext) -> None:
        super().__init__("/")
        self.ctx = ctx

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        addr = _client_addr(environ)
        if self.ctx.limiter.retry_after(addr):
            self._close_transport_soon(sid)
            raise socketio.exceptions.ConnectionRefusedError("too many failed authentication attempts")
        token = auth.get("token") if isinstance(auth, dict) else None
        principal = self.ctx.authenticate(token)
        if principal is None:
            self.ctx.limiter.fail(addr)
            self._close_transport_soon(sid)
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        await self.save_session(sid, {"principal": principal})

    def _close_transport_soon(self, sid: str) -> None:
        """Close the refused client's Engine.IO connection once the error has gone out.

        "/" is our only namespace, so a refused client has nothing left to do; a polling client would otherwise
        hang in its disconnect until the next ping (25 s), because it never sends its CLOSE packet.
        """
        try:
            eio_sid = self.server.manager.eio_sid_from_sid(sid, "/")
        except Exception:
            return
        if eio_sid is None:
            return
        loop = asyncio.get_running_loop()

        async def close() -> None:
            try:
                await self.server.eio.disconnect(eio_sid)
            except Exception:
                pass

        loop.call_later(0.2, lambda: loop.create_task(close()))

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        # rooms are left by python-socketio itself; nothing else is held per connection
        return None

    async def _principal(self, sid: str) -> Principal | None:
        try:
            data = await self.get_session(sid)
        except KeyError:
            return None
        principal = data.get("principal")
        return principal if isinstance(principal, Principal) else None

    async def _caller(self, sid: str, event: str, data: Any,
                      extra: tuple[Any, ...]) -> tuple[Principal, str] | dict[str, Any]:
        """(principal, session id) of a client's call, or the refusal to ack: not authenticated, more than one
        argument, or no valid session id."""
        principal = await self._principal(sid)
        if principal is None:
            return {"ok": False, "error": "unauthorized"}
        if extra:
            return {"ok": False, "error": f"{event} takes one argument: the session id"}
        session_id = _session_id(data)
        if session_id is None:
            return {"ok": False, "error": "Invalid session id"}
        return principal, session_id

    async def on_joinSession(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        call = await self._caller(sid, "joinSession", data, extra)
        if isinstance(call, dict):
            return call
        principal, session_id = call
        reserve = isinstance(data, dict) and bool(data.get("reserve"))
        ctx = self.ctx
        session = ctx.visible_session(session_id, principal)
        if session is not None:
            await self.enter_room(sid, session_id)
            state = session_state(session)
            self._send_current(sid, state)
            return {"ok": True, "session": state}
        if ctx.tracker.get(session_id) is None:
            state, _ = await asyncio.to_thread(ctx.state_for, session_id, principal)
            if state is not None:
                await self.enter_room(sid, session_id)
                self._send_current(sid, state)
                return {"ok": True, "session": state}
            if reserve:
                row = await asyncio.to_thread(ctx.db.import_by_session, session_id)
                if row is None and ctx.tracker.get(session_id) is None:
                    session = ctx.tracker.reserve(session_id, principal.token_id, RESERVATION_TTL)
                    await self.enter_room(sid, session_id)
                    return {"ok": True, "session": session_state(session)}
                return {"ok": False, "error": f"Session {session_id} is already in use"}
        return {"ok": False, "error": f"Session {session_id} not found"}

    def _send_current(self, sid: str, state: dict[str, Any]) -> None:
        """The joiner (only) gets the current state at once, through the ordered emit queue."""
        event = state.get("lastEvent")
        if event is None and state.get("status") != protocol.PENDING:
            session = self.ctx.tracker.get(state["sessionId"])
            event = session.latest if session is not None else None
        if event is not None:
            self.ctx.emit(protocol.IMPORT_PROGRESS, event, to=sid)
        if state.get("cancelled"):
            self.ctx.emit(protocol.IMPORT_CANCELLED, {"sessionId": state["sessionId"]}, to=sid)

    async def on_cancelImport(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        call = await self._caller(sid, "cancelImport", data, extra)
        if isinstance(call, dict):
            return call
        principal, session_id = call
        ctx = self.ctx
        session = ctx.visible_session(session_id, principal)
        if session is not None:
            if session.status == protocol.PENDING:
                ctx.tracker.emit_cancelled(session_id)
                ctx.tracker.cleanup(session_id)
                return {"ok": True}
            if session.status == protocol.ACTIVE:
                if ctx.tracker.request_cancel(session_id):
                    return {"ok": True}
                if session.committing:
                    return {"ok": False, "error": "Import is committing; too late to cancel"}
            return {"ok": False, "error": finished_message(session.status, session.cancelled)}
        if ctx.tracker.get(session_id) is None:
            ack = await asyncio.to_thread(ctx.remote_cancel, session_id, principal)  # runs on another worker
            if ack is not None:
                return ack
            row = await asyncio.to_thread(ctx.db.import_by_session, session_id)
            if row is not None and principal.may_see(row["owner"]):
                if row["status"] == "running":
                    return {"ok": False, "error": "Import is not running on this server"}
                return {"ok": False, "error": finished_message(row["status"], row["status"] == "cancelled")}
        return {"ok": False, "error": f"Session {session_id} not found"}


def _session_id(data: Any) -> str | None:
    """The session id of a call (the id itself, or ``{"sessionId": …}``), lower-cased; None unless a UUID."""
    session_id = data.get("sessionId") if isinstance(data, dict) else data
    if not isinstance(session_id, str) or not protocol.is_session_id(session_id):
        return None
    return session_id.lower()
