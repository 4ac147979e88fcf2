"""The seed dialect's HTTP API over requests: upload, status, history, health.

Every failure leaves this module as one of the exceptions of ``hextrackr_cli.errors`` with fix-it text;
transient answers (connection reset, 429, 502/503/504) are retried with backoff honouring ``Retry-After``.
This module never prints.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import requests

from hextrackr_cli import protocol
from hextrackr_cli.client.http import (
    USER_AGENT, Aborted, ProgressReader, UploadAborted, describe_non_json, error_text, json_or_none, other_status,
    refused, retry_after_seconds, short as _short, unreachable,
)
from hextrackr_cli.client.strategy import SessionNotFound
from hextrackr_cli.errors import AuthError, HextrackrError, ServerError, ServerUnreachable, UsageError

__all__ = ["SeedApi", "SessionNotFound", "UploadAborted"]

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


class SeedApi:
    """HTTP client for a seed-dialect server (ours)."""

    dialect = protocol.SEED

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        verify: bool | str = True,
        token_hint: str = "set HEXTRACKR_TOKEN or run `hextrackr login`",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 4,
        max_backoff: float = 16.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.verify = verify
        self.token_hint = token_hint
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.max_backoff = max_backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.verify = verify
        self.health_info: dict[str, Any] = {}  # the last /health answer (what the server says it offers)

    # ------------------------------------------------------------------ plumbing
    def url(self, path: str) -> str:
        return self.base_url + path

    def close(self) -> None:
        self.session.close()

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        return unreachable(self.base_url, exc)

    def _error_from(self, resp: requests.Response, what: str) -> HextrackrError:
        status = resp.status_code
        body = json_or_none(resp)
        message = error_text(body)
        if status in (401, 403):
            detail = f": {message}" if message else ""
            return AuthError(f"{what}: the server refused the credentials ({status}{detail})", hint=self.token_hint)
        if body is None:
            return ServerError(f"{what}: {describe_non_json(resp, self.base_url)}")
        if status == 404 and "progress" in resp.url:
            return SessionNotFound(f"{what}: {message or 'not found'}")
        return ServerError(other_status(resp, what, body))

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
        abort: threading.Event | None = None,
        body_factory: Callable[[], tuple[Any, dict[str, str]]] | None = None,
        params: Mapping[str, Any] | None = None,
        retry_connect: bool = True,
        retries: int | None = None,
        timeout: tuple[float, float] | None = None,
        retry_timeouts: bool = True,
        idempotent: bool | None = None,
    ) -> Any:
        """One JSON request with transient-failure retries; returns the decoded JSON body."""
        max_retries = self.retries if retries is None else retries
        # A 500 is retried (twice at most) only when repeating the request cannot do anything twice: a GET, or
        # an upload carrying its sessionId (the server answers a repeat of the same file idempotently).
        if idempotent is None:
            idempotent = method == "GET"
        retry_500 = min(2, max_retries) if idempotent else 0
        delay = 1.0
        attempt = 0
        while True:
            attempt += 1
            resp: requests.Response | None = None
            try:
                data, headers = body_factory() if body_factory else (None, {})
                resp = self.session.request(
                    method, self.url(path), data=data, headers=headers, params=params, timeout=timeout or self.timeout,
                    verify=self.verify,  # explicit, so REQUESTS_CA_BUNDLE cannot override --ca-bundle
                )
            except Aborted:
                raise UploadAborted("upload aborted; nothing was imported") from None
            except requests.exceptions.SSLError as exc:
                raise self._unreachable(exc) from None
            except (
                requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError,
            ) as exc:
                # A connection broken while the answer is read (ChunkedEncodingError) is as transient as one broken
                # before it: the server may be restarting.
                timed_out = isinstance(exc, requests.exceptions.Timeout)
                if attempt > max_retries or (refused(exc) and not retry_connect) or (timed_out and not retry_timeouts):
                    raise self._unreachable(exc) from None
                if abort is not None and abort.is_set():
                    raise UploadAborted("upload aborted; nothing was imported") from None
            except requests.exceptions.RequestException as exc:
                raise ServerError(f"{what}: {type(exc).__name__}: {_short(str(exc))}") from None
            if resp is not None:
                if resp.status_code in ok:
                    body = json_or_none(resp)
                    if body is None:
                        raise ServerError(f"{what}: {describe_non_json(resp, self.base_url)}")
                    return body
                if resp.status_code == 500 and attempt <= retry_500:
                    pass
                elif resp.status_code not in TRANSIENT_STATUS or attempt > max_retries:
                    raise self._error_from(resp, what)
            wait = min(self.max_backoff, retry_after_seconds(resp, delay))
            delay = min(self.max_backoff, delay * 2)
            if abort is not None:
                if abort.wait(wait):
                    raise UploadAborted("upload aborted; nothing was imported")
            else:
                time.sleep(wait)

    # ------------------------------------------------------------------ endpoints
    def health(self, timeout: float | None = None) -> dict[str, Any]:
        """GET /health (no auth). Fails fast when the server is not there or does not answer (a hung server
        or proxy): no retry on refusal or read timeout, and the read timeout is at most 10 s (or ``timeout``)."""
        read = min(10.0, timeout) if timeout else 10.0
        body = self.request(
            "GET", protocol.PATH_HEALTH, what="health check", ok=(200, 503), retry_connect=False,
            timeout=(min(self.timeout[0], read), read), retry_timeouts=False,
        )
        if not isinstance(body, dict):
            raise ServerError(f"health check: unexpected answer {_short(json.dumps(body))}")
        self.health_info = body
        return body

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        import_type: str = "vulnerabilities",
        session_id: str | None = None,
        vendor: str | None = None,
        scan_date: str | None = None,
        filename: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        abort: threading.Event | None = None,
        fields: dict[str, str] | None = None,
        on_notice: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Stream ``path`` as ``csvFile`` (text fields first); returns the 202/200 answer. The file is sent as it
        is (the server reads every format), so ``on_notice`` has nothing to be told."""
        from requests_toolbelt.multipart.encoder import MultipartEncoder

        endpoint = protocol.PATH_IMPORT_TICKETS if import_type == "tickets" else protocol.PATH_IMPORT_VULNS
        name = filename or Path(path).name
        handles: list[Any] = []

        def body() -> tuple[Any, dict[str, str]]:
            for h in handles:
                h.close()
            handles.clear()
            form: list[tuple[str, Any]] = []
            if session_id:
                form.append(("sessionId", session_id))
            if vendor:
                form.append(("vendor", vendor))
            if scan_date:
                form.append(("scanDate", scan_date))
            form.extend((fields or {}).items())
            fh = open(path, "rb")
            handles.append(fh)
            form.append((protocol.UPLOAD_FIELD, (name, fh, "text/csv")))
            enc = MultipartEncoder(fields=form)
            return ProgressReader(enc, on_progress, abort), {"Content-Type": enc.content_type}

        try:
            answer = self.request(
                "POST", endpoint, what=f"upload of {name}", ok=(200, 201, 202), abort=abort, body_factory=body,
                idempotent=bool(session_id),
            )
        finally:
            for h in handles:
                h.close()
        if not isinstance(answer, dict) or not answer.get("sessionId"):
            raise ServerError(f"upload of {name}: the server's answer has no sessionId: {_short(json.dumps(answer))}")
        return answer

    def progress(self, session_id: str, *, retries: int | None = None) -> dict[str, Any]:
        """GET /api/import/progress/{id}: the session state (also after cleanup)."""
        if not protocol.is_session_id(session_id):
            raise UsageError(f"malformed session id {session_id!r}: expected a UUID")
        body = self.request(
            "GET",
            self.dialect.progress_path.format(session_id=session_id),
            what=f"status of session {session_id}",
            retries=retries,
        )
        if not isinstance(body, dict):
            raise ServerError(f"status of session {session_id}: unexpected answer {_short(json.dumps(body))}")
        return body

    def imports(self, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        body = self.request(
            "GET", self.dialect.imports_path, what="import history", params={"limit": limit, "offset": offset}
        )
        if isinstance(body, list):  # tolerate a bare list
            body = {"imports": body, "total": len(body), "limit": limit, "offset": offset}
        if not isinstance(body, dict):
            raise ServerError(f"import history: unexpected answer {_short(json.dumps(body))}")
        return body

    def completed_import(self, sha256: str, *, import_type: str, vendor: str | None,
                         filename: str | None) -> tuple[bool, dict[str, Any] | None, dict[str, Any] | None]:
        """GET /api/imports/completed: (True, the latest completed ImportRecord of these bytes or None, the
        latest running one when none completed), or (False, None, None) when the server cannot answer (one of
        ours from before the endpoint)."""
        params = {"sha256": sha256, "type": import_type}
        if vendor:
            params["vendor"] = vendor
        if filename:
            params["filename"] = filename
        what = "did this content complete an import"
        body = self.request("GET", protocol.PATH_COMPLETED, what=what, params=params, ok=(200, 400, 404))
        if not isinstance(body, dict):
            raise ServerError(f"{what}: unexpected answer {_short(json.dumps(body))}")
        if "found" not in body:  # 404 no such endpoint, or 400 from the older /api/imports/{id} route
            if body.get("code") in ("not_found", "invalid_import_id"):
                return False, None, None
            raise ServerError(f"{what}: {body.get('error') or _short(json.dumps(body))}")
        record, running = body.get("import"), body.get("running")
        return (True, record if body.get("found") and isinstance(record, dict) else None,
                running if isinstance(running, dict) else None)

    def import_record(self, import_id: Any) -> dict[str, Any]:
        body = self.request("GET", protocol.PATH_IMPORT.format(import_id=import_id), what=f"import {import_id}")
        if not isinstance(body, dict):
            raise ServerError(f"import {import_id}: unexpected answer {_short(json.dumps(body))}")
        return body
