"""The HTTP side of the ``hextrackr-1.1`` dialect (deployed HexTrackr 1.1.x servers), over requests.

What a 1.1 server needs, and what this module does about it:

- Cookie session: ``POST /api/auth/login`` (JSON) sets ``hextrackr.sid`` — ``Secure``, so requests will not
  send it back over plain http by itself: we keep it in memory and send it explicitly on every request.
- Over plain http the server (which trusts its TLS proxy) sets the cookie only when the request says
  ``X-Forwarded-Proto: https``; a login that "succeeds" without a cookie is retried with that header, and
  if there is still no cookie the user is told why.
- CSRF: the token from ``GET /api/auth/csrf`` goes in ``x-csrf-token`` on every POST. A missing/invalid token,
  a wrong MIME type or a wrong field name all come back as 500 "Internal server error": we say which of
  those to check instead of showing a bare 500.
- Upload: streamed multipart (``requests_toolbelt.MultipartEncoder``): ``vendor``, ``scanDate``,
  ``sessionId``, then ``csvFile`` (file name ``*.csv``, content type ``text/csv``) to
  ``/api/vulnerabilities/import-staging``. Never retried blindly: a second POST would start a second import.
- Polling: ``progress()`` returns a typed ``PollResult`` (``ok`` / ``not-found`` / ``rate-limited`` with the
  Retry-After seconds / ``reset`` for a connection reset during a server stall) and leaves waiting to the
  caller, because the production rate limit (60 requests per 15 minutes on ``/api/``) must be spent wisely.
- Socket.io: ``socket_options()`` gives the python-socketio arguments that pass the 1.1 handshake (cookie,
  ``X-Forwarded-Proto``) and keep the websocket upgrade from being refused (no ``http://`` Origin).

The login, CSRF and Socket.io parts are ``client.hx11.session`` (methods of ``Hx11Api``), the wire facts and
typed answers ``client.hx11.wire``. Errors leave as ``hextrackr_cli.errors`` exceptions with fix-it text. This module never prints and never
logs the password or the cookie.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests

from hextrackr_cli import protocol
from hextrackr_cli.client.http import (
    USER_AGENT, Aborted, ProgressReader, UploadAborted, VerifyingSession as _Session, describe_non_json, error_text,
    json_or_none, other_status, refused, retry_after_seconds, short as _short, unreachable,
)
from hextrackr_cli.client.hx11 import session
from hextrackr_cli.client.hx11.wire import (
    COOKIE_NAME, CREDENTIALS_HINT, INTERNAL_ERROR, PATH_LAST_IMPORT, POLL_NOT_FOUND, POLL_OK, POLL_RATE_LIMITED,
    POLL_RESET, PollResult, RateLimited, SocketOptions, csv_upload_name, reset_seconds,
)
from hextrackr_cli.errors import AuthError, HextrackrError, ServerError, ServerUnreachable, UsageError

__all__ = ["Hx11Api", "PollResult", "RateLimited", "SocketOptions", "UploadAborted", "POLL_OK", "POLL_NOT_FOUND",
           "POLL_RATE_LIMITED", "POLL_RESET", "COOKIE_NAME"]

class Hx11Api:
    """HTTP client for a HexTrackr 1.1.x server (cookie session + CSRF)."""

    dialect = protocol.HEXTRACKR_11

    def __init__(
        self,
        base_url: str,
        *,
        cookie: str | None = None,
        verify: bool | str = True,
        credentials_hint: str = CREDENTIALS_HINT,
        forwarded_proto: bool | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.plain_http = urlsplit(self.base_url).scheme == "http"
        # None: decide at login (only over plain http, only when the server needs it).
        self.forwarded_proto = bool(forwarded_proto)
        self.verify = verify
        self.credentials_hint = credentials_hint
        self.timeout = (connect_timeout, read_timeout)
        self.cookie: str | None = None
        self.csrf_token: str | None = None
        self.user: Mapping[str, Any] | None = None
        self.probe_reason = ""  # what made probe() say yes
        # Rate limit (60 /api/ requests per 15 min in production): what we spent and what the server says is left.
        self.api_requests = 0
        self.rate_limit: int | None = None
        self.rate_remaining: int | None = None
        # A 429 is waited out (Retry-After) while time.monotonic() < deadline (None: no --timeout); on_wait says so.
        self.deadline: float | None = None
        self.on_wait: Callable[[str], None] | None = None
        self.abort: threading.Event | None = None  # Ctrl-C ends a wait early
        # A session this object logged in is logged out on close() unless keep_session (login --save-cookie).
        self.keep_session = False
        self._own_session = False
        self.session: requests.Session = _Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.session.verify = verify
        if forwarded_proto:
            self.session.headers["X-Forwarded-Proto"] = "https"
        if cookie:
            self.set_cookie(cookie)

    # ------------------------------------------------------------------ plumbing
    def url(self, path: str) -> str:
        return self.base_url + path

    def close(self) -> None:
        """Log out a session we created (unless ``keep_session``), then close the HTTP connections."""
        if self._own_session and self.cookie and not self.keep_session:
            deadline, self.deadline = self.deadline, time.monotonic()  # never wait out a 429 just to log out
            try:
                self.logout()
            except HextrackrError:
                pass
            finally:
                self.deadline = deadline
        self._own_session = False
        self.session.close()

    def __enter__(self) -> "Hx11Api":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_cookie(self, value: str) -> None:
        """Use this session cookie value (as the server set it) on every request from now on."""
        self.cookie = value
        self.csrf_token = None
        self.session.headers["Cookie"] = f"{COOKIE_NAME}={value}"

    def forget_cookie(self) -> None:
        """Stop sending the session cookie (it was refused or expired)."""
        self.cookie = None
        self.csrf_token = None
        self.session.headers.pop("Cookie", None)

    def _use_forwarded_proto(self) -> None:
        self.forwarded_proto = True
        self.session.headers["X-Forwarded-Proto"] = "https"

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        return unreachable(self.base_url, exc)

    def _send(self, method: str, path: str, *, wait_429: bool = True, **kwargs: Any) -> requests.Response:
        """One HTTP request (exceptions from requests pass through). Counts the ``/api/`` requests, reads the
        ``RateLimit-*`` headers, and (``wait_429``) waits out a 429's ``Retry-After`` while the deadline allows,
        said through ``on_wait``; a 429 it cannot wait out is returned to the caller. express-rate-limit answers
        429 before the route runs, so repeating the request starts nothing twice (a streamed upload body cannot
        be repeated here: its 429 goes back to ``upload()``, which re-opens the file)."""
        while True:
            resp = self.session.request(method, self.url(path), timeout=self.timeout, **kwargs)
            if path.startswith("/api/"):
                self.api_requests += 1
                for attr, header in (("rate_limit", "RateLimit-Limit"), ("rate_remaining", "RateLimit-Remaining")):
                    value = resp.headers.get(header, "").strip()
                    if value.isdigit():
                        setattr(self, attr, int(value))
            if resp.status_code != 429 or not wait_429 or isinstance(kwargs.get("data"), ProgressReader):
                return resp
            if not self.wait_out(retry_after_seconds(resp, reset_seconds(resp)), f"{method} {path}"):
                return resp

    def wait_out(self, wait: float, what: str) -> bool:
        """Wait ``wait`` seconds for the rate limit if the deadline allows (saying so); False when it does not
        (or Ctrl-C ended the wait)."""
        if self.deadline is not None and time.monotonic() + wait > self.deadline:
            return False
        if self.on_wait is not None:
            self.on_wait(f"the server's rate limit was reached ({what}); waiting {wait:.0f}s as it asks "
                         "(Retry-After)" + (", within --timeout" if self.deadline is not None else ""))
        if self.abort is not None:
            return not self.abort.wait(wait)
        time.sleep(wait)
        return True

    def _describe_non_json(self, resp: requests.Response) -> str:
        return describe_non_json(resp, self.base_url, html_404=f"is {self.base_url} a HexTrackr 1.1.x server? for our "
                                                              "own server use --dialect seed")

    def _error_from(self, resp: requests.Response, what: str, *, post: bool = False) -> HextrackrError:
        status = resp.status_code
        body = json_or_none(resp)
        message = error_text(body)
        if status == 429:
            wait = retry_after_seconds(resp, 60.0)
            return RateLimited(
                f"{what}: the server's rate limit was reached (429: {message or 'too many requests'})",
                retry_after=wait,
                hint=f"HexTrackr allows about 60 API requests per 15 minutes; retry in {int(wait + 0.999)} s",
            )
        if status in (401, 403):
            if isinstance(body, Mapping) and body.get("authenticated") is False:
                return AuthError(f"{what}: the server says the session is not authenticated ({status}: {message})",
                                 hint="the login session expired or was refused; log in again — " + self.credentials_hint)
            return AuthError(f"{what}: the server refused the credentials ({status}{': ' + message if message else ''})",
                             hint=self.credentials_hint)
        if body is None:
            return ServerError(f"{what}: {self._describe_non_json(resp)}")
        if status == 500 and message == INTERNAL_ERROR:
            hint = ("HexTrackr 1.1 answers this when the CSRF token is missing or stale, the file is not sent as "
                    "text/csv, or the upload field is not csvFile; log in again and retry, and check the "
                    "server log" if post else "check the server log")
            return ServerError(f"{what}: server answered 500 {message!r}", hint=hint)
        return ServerError(other_status(resp, what, body))

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        resets: int = 1,
    ) -> requests.Response:
        """One request: connection resets retried ``resets`` times (never for bodies that cannot be replayed)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._send(method, path, json=json_body, data=data, headers=dict(headers or {}),
                                  params=params)
            except Aborted:
                raise UploadAborted("upload aborted; nothing was imported") from None
            except requests.exceptions.SSLError as exc:
                raise self._unreachable(exc) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if refused(exc) or attempt > resets:
                    raise self._unreachable(exc) from None
                time.sleep(min(4.0, 0.5 * attempt))
                continue
            except requests.exceptions.RequestException as exc:
                raise ServerError(f"{what}: {type(exc).__name__}: {_short(str(exc))}") from None
            if resp.status_code in ok:
                return resp
            raise self._error_from(resp, what, post=method == "POST")

    def _json(self, resp: requests.Response, what: str) -> Any:
        body = json_or_none(resp)
        if body is None:
            raise ServerError(f"{what}: {self._describe_non_json(resp)}")
        return body

    # authentication and the socket.io options (client/hx11/session.py)
    login = session.login
    logout = session.logout
    csrf = session.csrf
    _post_headers = session.post_headers
    auth_status = session.auth_status
    probe = session.probe
    check_session = session.check_session
    socket_options = session.socket_options

    # ------------------------------------------------------------------ import
    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        session_id: str,
        import_type: str = "vulnerabilities",
        vendor: str | None = None,
        scan_date: str | None = None,
        filename: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        abort: threading.Event | None = None,
        on_notice: Callable[[str], None] | None = None,
        fields: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Stream ``path`` to ``/api/vulnerabilities/import-staging``; returns the server's answer.

        Any export but a plain Tenable VM CSV is first converted to the columns 1.1.12 reads
        (``client.hx11.convert``; ``on_notice`` is told what was converted).
        Join ``progress-<session_id>`` on the socket **before** calling this: the server emits before it
        answers. A 500 "Internal server error" is retried once with a fresh CSRF token.
        """
        from hextrackr_cli.client.hx11.convert import ConversionAborted, prepare_for_hx11

        if not protocol.is_session_id(session_id):
            raise UsageError(f"malformed session id {session_id!r}: expected a UUID")
        if import_type != "vulnerabilities":
            raise UsageError(f"HexTrackr 1.1.x servers import vulnerability scans only, not --type {import_type}",
                             hint="import tickets through the HexTrackr web UI")
        try:
            prepared = prepare_for_hx11(path, filename or Path(path).name, abort, force=(fields or {}).get("format"))
        except ConversionAborted:
            raise UploadAborted("upload aborted; nothing was imported") from None
        if prepared.note and on_notice is not None:
            on_notice(prepared.note)
        try:
            return self._upload(prepared.path, session_id=session_id, vendor=vendor, scan_date=scan_date,
                                filename=prepared.name, on_progress=on_progress, abort=abort)
        finally:
            prepared.cleanup()

    def _upload(self, path: Path, *, session_id: str, vendor: str | None, scan_date: str | None, filename: str,
                on_progress: Callable[[int, int], None] | None, abort: threading.Event | None) -> dict[str, Any]:
        from requests_toolbelt.multipart.encoder import MultipartEncoder

        name = csv_upload_name(filename)
        what = f"upload of {name}"
        attempt = 0
        while True:
            attempt += 1
            fields: list[tuple[str, Any]] = []
            if vendor:
                fields.append(("vendor", vendor))
            if scan_date:
                fields.append(("scanDate", scan_date))
            fields.append(("sessionId", session_id))
            with open(path, "rb") as fh:
                fields.append((protocol.UPLOAD_FIELD, (name, fh, "text/csv")))
                enc = MultipartEncoder(fields=fields)
                headers = {**self._post_headers(), "Content-Type": enc.content_type}
                try:
                    resp = self._call("POST", self.dialect.import_path, what=what, data=ProgressReader(enc, on_progress, abort),
                                      headers=headers, resets=0)
                except RateLimited as exc:
                    if self.wait_out(exc.retry_after, f"POST {self.dialect.import_path}"):
                        continue  # 429 comes before the upload route: nothing was started
                    raise
                except ServerError as exc:
                    stale_token = attempt == 1 and INTERNAL_ERROR in exc.message
                    if stale_token and self.csrf_token != self.csrf(refresh=True):
                        continue  # the token had changed: that was the problem
                    raise
                except ServerUnreachable as exc:
                    raise ServerUnreachable(
                        exc.message, hint="the upload may or may not have reached the server; check "
                                          "`hextrackr imports` before retrying, a second upload starts a second import",
                    ) from None
            body = self._json(resp, what)
            if not isinstance(body, Mapping) or body.get("success") is False or not body.get("sessionId"):
                raise ServerError(f"{what}: unexpected answer {_short(str(body))}")
            return dict(body)

    def progress(self, session_id: str) -> PollResult:
        """One poll of ``/api/import/progress/<id>``; waiting (Retry-After, backoff) is the caller's job."""
        if not protocol.is_session_id(session_id):
            raise UsageError(f"malformed session id {session_id!r}: expected a UUID")
        path = self.dialect.progress_path.format(session_id=session_id)
        what = f"status of session {session_id}"
        try:
            resp = self._send("GET", path, wait_429=False)
        except requests.exceptions.SSLError as exc:
            raise self._unreachable(exc) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if refused(exc):
                raise self._unreachable(exc) from None
            # A long server stall resets the in-flight poll: not a failure, look again later.
            return PollResult(POLL_RESET, detail=_short(str(exc), 120))
        except requests.exceptions.RequestException as exc:
            return PollResult(POLL_RESET, detail=_short(str(exc), 120))
        body = json_or_none(resp)
        if resp.status_code == 200 and isinstance(body, Mapping):
            return PollResult(POLL_OK, body=body)
        if resp.status_code == 404 and isinstance(body, Mapping):
            return PollResult(POLL_NOT_FOUND, body=body, detail=str(body.get("error") or "Session not found"))
        if resp.status_code == 429:
            return PollResult(POLL_RATE_LIMITED, retry_after=retry_after_seconds(resp, 60.0),
                              detail=str(body.get("error")) if isinstance(body, Mapping) else "")
        raise self._error_from(resp, what)

    def last_import(self) -> dict[str, Any]:
        """``GET /api/vulnerabilities/last-import``: ``{"lastImport": date, "rowCount": CSV rows, "vendor",
        "filename"}`` of the newest import record (written once parsing is done, whatever the outcome)."""
        what = "last import"
        body = self._json(self._call("GET", PATH_LAST_IMPORT, what=what), what)
        if not isinstance(body, Mapping):
            raise ServerError(f"{what}: unexpected answer {_short(str(body))}")
        return dict(body)

    def imports(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Import history in the seed shape (``imports``, ``total``, …; raw rows in ``data``).

        ``GET /api/imports`` always answers 500 on 1.1.12 (its handler calls a function the release does not
        have): then the last import (``last-import``) is all the server can tell, and the answer says so with
        ``"lastImportOnly": true``."""
        from hextrackr_cli.client.hx11.history import history_rows, import_record, last_import_record

        try:
            body = self._json(self._call("GET", self.dialect.imports_path, what="import history"), "import history")
        except RateLimited:
            raise
        except ServerError as exc:
            last = self.last_import()
            record = last_import_record(last)
            page = [record] if record is not None and offset == 0 and limit != 0 else []
            return {"imports": page, "total": 1 if record is not None else 0, "limit": limit, "offset": offset,
                    "lastImportOnly": True, "historyError": exc.message, "data": [last]}
        rows = history_rows(body)
        if not isinstance(body, (Mapping, list)):
            raise ServerError(f"import history: unexpected answer {_short(str(body))}")
        shown = rows[offset: offset + limit] if limit else rows[offset:]
        return {"imports": [import_record(r) for r in shown], "total": len(rows), "limit": limit,
                "offset": offset, "data": rows}
