"""The plain ASGI HTTP API (docs/wire.md): uploads streamed to disk, polling, history, health."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs

from hextrackr_cli import __version__, protocol
from hextrackr_cli.formats import SEVERITY_LEVELS, metadata_from_filename, parse_scan_date
from hextrackr_cli.formats import names as format_names
from hextrackr_cli.server.context import Principal, ServerContext
from hextrackr_cli.server.pipeline import Job
from hextrackr_cli.server.reading import ImportProblem, sniff
from hextrackr_cli.server.storage import Duplicate, Unavailable, import_record
from hextrackr_cli.server.upload import MAX_FIELD, HttpError, Upload, clean_filename

log = logging.getLogger("hextrackr.server")

Scope = dict[str, Any]  # ASGI
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

DRAIN_LIMIT = 16 * 1024 * 1024  # body read and discarded after a 413 so the client sees the answer
_SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
_VENDOR_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._ -]{0,63}\Z")


async def send_json(send: Send, status: int, body: Any, headers: list[Any] | None = None) -> None:
    payload = json.dumps(body).encode("utf-8")
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    hdrs += [(k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v) for k, v in headers or []]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": payload})


class HttpApp:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # uvicorn runs with lifespan off; answer politely anyway
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.route(scope, receive, tracking_send)
        except HttpError as exc:
            if not started:
                await send_json(send, exc.status, {"error": exc.message, "code": exc.code}, exc.headers)
        except Unavailable as exc:  # locked beyond the busy timeout, disk full, read-only, unreachable...
            log.error("database error on %s %s: %s", scope.get("method"), scope.get("path"), exc)
            if not started:
                await send_json(send, 503, {"error": f"database unavailable: {exc}", "code": "database"},
                                [("retry-after", "5")])
        except OSError as exc:  # the upload could not be written (disk full, permissions)
            log.error("storage error on %s %s: %s", scope.get("method"), scope.get("path"), exc)
            if not started:
                await send_json(send, 503, {"error": f"cannot store the upload: {exc.strerror or exc}",
                                            "code": "storage"}, [("retry-after", "5")])
        except Exception as exc:
            log.exception("request %s %s failed", scope.get("method"), scope.get("path"))
            if not started:
                await send_json(send, 500, {"error": f"internal error: {type(exc).__name__}", "code": "internal"})

    # ------------------------------------------------------------------ routing
    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        if path == protocol.PATH_HEALTH:
            self._method(method, "GET")
            return await self.health(send)
        if not path.startswith("/api/"):
            from hextrackr_cli.server import web  # browser pages + vendored assets (no data, no token)

            if web.handles(path):
                return await web.serve(scope, send)
            raise HttpError(404, f"no such endpoint: {path}", "not_found")
        principal = self.authenticate(scope)
        if path in (protocol.PATH_IMPORT_VULNS, protocol.PATH_IMPORT_TICKETS):
            self._method(method, "POST")
            kind = "vulnerabilities" if path == protocol.PATH_IMPORT_VULNS else "tickets"
            return await self.upload(scope, receive, send, principal, kind)
        prefix = "/api/import/progress/"
        if path.startswith(prefix):
            self._method(method, "GET")
            return await self.progress(send, principal, path[len(prefix):])
        if path == protocol.PATH_IMPORTS:
            self._method(method, "GET")
            return await self.imports(scope, send, principal)
        if path == protocol.PATH_COMPLETED:
            self._method(method, "GET")
            return await self.completed(scope, send, principal)
        if path.startswith(protocol.PATH_IMPORTS + "/"):
            self._method(method, "GET")
            return await self.import_one(send, principal, path[len(protocol.PATH_IMPORTS) + 1:])
        raise HttpError(404, f"no such endpoint: {path}", "not_found")

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            raise HttpError(405, f"method {method} not allowed here (use {allowed})", "method_not_allowed",
                            [("allow", allowed)])

    def authenticate(self, scope: Scope) -> Principal:
        addr = (scope.get("client") or ("?", 0))[0]
        wait = self.ctx.limiter.retry_after(addr)
        if wait:
            raise HttpError(429, "too many failed authentication attempts; try again later", "rate_limited",
                            [("retry-after", str(wait))])
        token = None
        for k, v in scope.get("headers", []):
            if k == b"authorization":
                text = v.decode("latin-1").strip()
                if text[:7].lower() == "bearer ":
                    token = text[7:].strip()
                break
        principal = self.ctx.authenticate(token)
        if principal is None:
            self.ctx.limiter.fail(addr)
            message = "missing bearer token" if token is None else "invalid token"
            raise HttpError(401, message, "unauthorized", [("www-authenticate", "Bearer")])
        return principal

    # ------------------------------------------------------------------ endpoints
    async def health(self, send: Send) -> None:
        ok = await asyncio.to_thread(self.ctx.db.healthy)
        body = {"status": "ok" if ok else "error", "version": __version__, "database": "ok" if ok else "unavailable",
                "dialect": "seed", protocol.HEALTH_BROWSER_VIEW: True}
        if self.ctx.shared is not None:  # several workers: events and cancels cross them through Redis
            queue_ok = await asyncio.to_thread(self.ctx.queue_ok)
            body["messageQueue"] = "ok" if queue_ok else "unavailable"
            ok = ok and queue_ok
            body["status"] = "ok" if ok else "error"
        await send_json(send, 200 if ok else 503, body)

    async def progress(self, send: Send, principal: Principal, session_id: str) -> None:
        if not protocol.is_session_id(session_id):
            raise HttpError(400, f"invalid session id {session_id[:64]!r}: expected a UUID", "invalid_session_id")
        state, _ = await asyncio.to_thread(self.ctx.state_for, session_id.lower(), principal)
        if state is None:
            raise HttpError(404, f"Session {session_id} not found", "not_found")
        await send_json(send, 200, state)

    async def imports(self, scope: Scope, send: Send, principal: Principal) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        limit = _int_param(query, "limit", 50, 1, 1000)
        offset = _int_param(query, "offset", 0, 0, 10**12)
        rows, total = await asyncio.to_thread(
            self.ctx.db.list_imports, limit, offset, None if principal.admin else principal.token_id
        )
        await send_json(send, 200, {"imports": [import_record(r) for r in rows], "total": total, "limit": limit,
                                    "offset": offset})

    async def completed(self, scope: Scope, send: Send, principal: Principal) -> None:
        """Did an import of these bytes (sha256), with this type and vendor, complete? The latest one, if so.

        Failed, cancelled and running imports never count; the latest running one is named (``running``) when none
        completed. The vendor is the one an upload would get: ``vendor``,
        else the one in ``filename``; with neither, the format's default, which the same bytes always share, so
        any vendor matches. Another token's imports are invisible (the admin token sees all).
        """
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sha = (query.get("sha256") or [""])[0].strip().lower()
        if not _SHA256_RE.match(sha):
            raise HttpError(400, f"invalid sha256 {sha[:80]!r}: expected 64 hex digits", "invalid_sha256")
        kind = (query.get("type") or ["vulnerabilities"])[0]
        if kind not in ("vulnerabilities", "tickets"):
            raise HttpError(400, f"invalid type {kind[:32]!r}: vulnerabilities or tickets", "invalid_type")
        vendor = (query.get("vendor") or [""])[0].strip() or None
        if vendor is not None and not _VENDOR_RE.match(vendor):
            raise HttpError(400, f"invalid vendor {vendor[:64]!r}: letters, digits, '.', '_', '-' only", "invalid_vendor")
        filename = (query.get("filename") or [""])[0]
        vendor = vendor or (metadata_from_filename(clean_filename(filename))[0] if filename else None)
        from hextrackr_cli.server.storage import import_record

        owner = None if principal.admin else principal.token_id
        row = await asyncio.to_thread(self.ctx.db.completed_import, sha256=sha, type_=kind, vendor=vendor, owner=owner)
        running = None
        if row is None:  # an identical import still under way: a client may follow it instead of sending it again
            running = await asyncio.to_thread(self.ctx.db.completed_import, sha256=sha, type_=kind, vendor=vendor,
                                              owner=owner, status="running")
        await send_json(send, 200, {"found": row is not None, "import": import_record(row) if row else None,
                                    "running": import_record(running) if running else None})

    async def import_one(self, send: Send, principal: Principal, ident: str) -> None:
        if not ident.isdigit() or len(ident) > 18:
            raise HttpError(400, f"invalid import id {ident[:32]!r}: expected a number", "invalid_import_id")
        row = await asyncio.to_thread(self.ctx.db.import_by_id, int(ident))
        if row is None or not principal.may_see(row["owner"]):
            raise HttpError(404, f"import {ident} not found", "not_found")
        await send_json(send, 200, import_record(row))

    # ------------------------------------------------------------------ upload
    async def upload(self, scope: Scope, receive: Receive, send: Send, principal: Principal, kind: str) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        ctype, params = parse_options_header(headers.get("content-type", b""))
        if ctype != b"multipart/form-data" or not params.get(b"boundary"):
            raise HttpError(415, "expected multipart/form-data with a csvFile field", "unsupported_media_type")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.ctx.max_upload + MAX_FIELD * 4:
            raise HttpError(413, f"upload larger than the limit of {self.ctx.max_upload} bytes", "too_large")

        upload = Upload(self.ctx, kind)
        parser = MultipartParser(params[b"boundary"], upload.callbacks())  # type: ignore[arg-type]
        try:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    upload.discard()
                    return
                chunk = message.get("body", b"")
                more = message.get("more_body", False)
                if chunk:
                    parser.write(chunk)
                if upload.error is not None:
                    break
            if upload.error is None:
                parser.finalize()
        except HttpError:
            upload.discard()
            raise
        except Exception as exc:  # malformed multipart body
            upload.discard()
            if upload.error is None:
                raise HttpError(400, f"malformed multipart body: {exc}", "bad_request") from None
        if upload.error is not None:
            upload.discard()
            if more:  # let the client finish sending so it can read the answer
                drained = 0
                while more and drained < DRAIN_LIMIT:
                    message = await receive()
                    drained += len(message.get("body", b""))
                    more = message.get("more_body", False) and message["type"] != "http.disconnect"
            raise upload.error
        try:
            await self._start_import(send, principal, kind, upload)
        finally:
            upload.close()

    async def _start_import(self, send: Send, principal: Principal, kind: str, upload: Upload) -> None:
        ctx = self.ctx
        if upload.path is None:
            raise HttpError(400, "missing csvFile field (the CSV file to import)", "missing_file")
        fields = upload.fields
        session_id = fields.get("sessionId", "").strip() or str(uuid.uuid4())
        if not protocol.is_session_id(session_id):
            upload.discard()
            raise HttpError(400, f"invalid sessionId {session_id[:64]!r}: expected a UUID", "invalid_session_id")
        session_id = session_id.lower()
        filename = clean_filename(upload.filename or "upload.csv")
        f_vendor, f_date = metadata_from_filename(filename)
        vendor = fields.get("vendor", "").strip() or None
        if vendor is not None and not _VENDOR_RE.match(vendor):
            upload.discard()
            raise HttpError(400, f"invalid vendor {vendor[:64]!r}: letters, digits, '.', '_', '-' only", "invalid_vendor")
        scan_date = fields.get("scanDate", "").strip() or None
        if scan_date is not None:
            try:
                parse_scan_date(scan_date)
            except ValueError as exc:
                upload.discard()
                raise HttpError(400, f"invalid scanDate: {exc}", "invalid_scan_date") from None
        format_name = fields.get("format", "").strip() or None
        min_severity = fields.get("minSeverity", "").strip().title() or None
        if min_severity is not None and min_severity not in SEVERITY_LEVELS:
            upload.discard()
            raise HttpError(400, f"invalid minSeverity {min_severity[:32]!r}: one of {', '.join(SEVERITY_LEVELS)}",
                            "invalid_min_severity")
        if format_name is not None and format_name not in format_names():
            upload.discard()
            raise HttpError(400, f"invalid format {format_name[:32]!r}: one of {', '.join(format_names())}",
                            "invalid_format")
        sha = upload.sha.hexdigest()

        # idempotency and ownership of the session id
        existing = ctx.tracker.get(session_id)
        if (existing is not None and existing.status == protocol.PENDING and existing.owner != principal.token_id) or (
                existing is None and ctx.shared is not None
                and await asyncio.to_thread(ctx.reserved_by_other, session_id, principal)):  # on another worker
            upload.discard()
            raise HttpError(409, f"session id {session_id} is already in use", "conflict")
        row = await asyncio.to_thread(ctx.db.import_by_session, session_id)
        if row is not None:
            upload.discard()
            return await self._existing(send, principal, row, sha, session_id)

        # refuse what the first bytes already tell (no import record, nothing stored)
        try:
            head = await asyncio.to_thread(upload.head)
            fmt = sniff(head, kind, format_name)
        except ImportProblem as exc:
            upload.discard()
            message = f"{filename}: {exc}"
            if existing is not None and existing.status == protocol.PENDING:
                ctx.tracker.emit_progress(session_id, protocol.ERROR, 0, message)
                ctx.tracker.cleanup(session_id)
            raise HttpError(422, message, "unprocessable") from None
        vendor = vendor or f_vendor or fmt.default_vendor
        scan_date = scan_date or f_date or _today()
        if ctx.shared is not None and not await asyncio.to_thread(ctx.queue_ok):  # events reach this worker only
            upload.discard()
            raise HttpError(503, "the message queue (Redis) is unreachable: imports are refused until it is back",
                            "message_queue", [("retry-after", "5")])
        try:
            import_id = await asyncio.to_thread(
                ctx.db.create_import, session_id=session_id, owner=principal.token_id, type_=kind,
                filename=filename, vendor=vendor, scan_date=scan_date, sha256=sha, size=upload.size,
            )
        except Duplicate:  # a concurrent POST with the same session id won the race
            upload.discard()
            row = await asyncio.to_thread(ctx.db.import_by_session, session_id)
            if row is None:
                raise
            return await self._existing(send, principal, row, sha, session_id)
        session = ctx.tracker.create_session(session_id, owner=principal.token_id, import_id=import_id,
                                             import_type=kind)
        if existing is not None and existing.cancelled:
            session.cancelled = True
        job = Job(session_id=session_id, import_id=import_id, kind=kind, path=upload.keep(), filename=filename,
                  vendor=vendor, scan_date=scan_date, size=upload.size, format_name=format_name,
                  min_severity=None if min_severity in (None, "Info") else min_severity,
                  limit=ctx.max_upload)
        ctx.importer.submit(job)
        await send_json(send, 202, self._answer(session_id, import_id, filename, vendor, scan_date, kind))

    async def _existing(self, send: Send, principal: Principal, row: dict[str, Any], sha: str, session_id: str) -> None:
        if not principal.may_see(row["owner"]) or row["sha256"] != sha:
            raise HttpError(409, f"session id {session_id} is already used by another upload", "conflict")
        await send_json(send, 200, self._answer(session_id, row["id"], row["filename"], row["vendor"],
                                                row["scan_date"], row["type"]))

    @staticmethod
    def _answer(session_id: str, import_id: int, filename: str, vendor: str | None, scan_date: str | None,
                kind: str) -> dict[str, Any]:
        return {"sessionId": session_id, "importId": import_id,
                "statusUrl": protocol.PATH_PROGRESS.format(session_id=session_id), "filename": filename,
                "vendor": vendor, "scanDate": scan_date, "type": kind}


def _today() -> str:
    import datetime as _dt

    return _dt.date.today().isoformat()


def _int_param(query: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    values = query.get(name)
    if not values:
        return default
    text = values[-1]
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise HttpError(400, f"{name} must be a whole number from {lo} to {hi}, not {text[:32]!r}", "bad_request")
    return int(text)
