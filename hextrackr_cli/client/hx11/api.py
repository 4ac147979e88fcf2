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

Errors leave as ``hextrackr_cli.errors`` exceptions with fix-it text. This module never prints and never
logs the password or the cookie.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests

from hextrackr_cli import protocol
from hextrackr_cli.client.http import (
    USER_AGENT, Aborted, ProgressReader, UploadAborted, VerifyingSession as _Session, describe_non_json, error_text,
    json_or_none, other_status, refused, retry_after_seconds, short as _short, unreachable,
)
from hextrackr_cli.errors import AuthError, ExitStatus, HextrackrError, ServerError, ServerUnreachable, UsageError

COOKIE_NAME = "hextrackr.sid"
PATH_LOGIN = "/api/auth/login"
PATH_LOGOUT = "/api/auth/logout"
PATH_CSRF = "/api/auth/csrf"
PATH_STATUS = "/api/auth/status"
PATH_LAST_IMPORT = "/api/vulnerabilities/last-import"
INTERNAL_ERROR = "Internal server error"

# PollResult.status
POLL_OK = "ok"
POLL_NOT_FOUND = "not-found"
POLL_RATE_LIMITED = "rate-limited"
POLL_RESET = "reset"

CREDENTIALS_HINT = "check --username / HEXTRACKR_USERNAME and the password (HEXTRACKR_PASSWORD, the prompt or --password-stdin)"


class RateLimited(ServerError):
    """429 from the server that could not be waited out within ``--timeout``; ``retry_after`` is how long it
    asked us to wait (seconds). Exit 5 (the time ran out), never 1: nothing failed on the server."""

    exit_status = ExitStatus.TIMEOUT

    def __init__(self, message: str, *, retry_after: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PollResult:
    """One look at ``GET /api/import/progress/<id>``."""

    status: str  # POLL_OK | POLL_NOT_FOUND | POLL_RATE_LIMITED | POLL_RESET
    body: Mapping[str, Any] | None = None
    retry_after: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class SocketOptions:
    """How to connect python-socketio's ``Client`` to a 1.1 server.

    ``socketio.Client(**opts.client_kwargs)`` then ``client.connect(**opts.connect_kwargs())``.
    ``connect_kwargs()`` builds fresh dicts each call: python-engineio deletes the ``Cookie`` entry from the
    headers dict it is given when it opens the websocket, so a dict must never be reused.
    """

    url: str
    headers: Mapping[str, str]
    websocket_extra_options: Mapping[str, Any]
    verify: bool | str
    socketio_path: str = "socket.io"
    _session_factory: Callable[[], requests.Session] | None = field(default=None, repr=False, compare=False)

    @property
    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "websocket_extra_options": dict(self.websocket_extra_options),
            "ssl_verify": self.verify is not False,
        }
        if self._session_factory is not None:
            kwargs["http_session"] = self._session_factory()
        return kwargs

    def connect_kwargs(self, transports: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        return {
            "url": self.url,
            "headers": dict(self.headers),
            "transports": list(transports) if transports else ["polling", "websocket"],
            "socketio_path": self.socketio_path,
        }


def _reset_seconds(resp: requests.Response) -> float:
    """``RateLimit-Reset`` (seconds until the window resets), else 60."""
    value = resp.headers.get("RateLimit-Reset", "").strip()
    return float(value) if value.isdigit() else 60.0


def csv_upload_name(name: str) -> str:
    """The file name the 1.1 server accepts: base name ending in ``.csv``."""
    base = os.path.basename(name.replace("\\", "/")) or "upload.csv"
    return base if base.lower().endswith(".csv") else base + ".csv"


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
            if not self.wait_out(retry_after_seconds(resp, _reset_seconds(resp)), f"{method} {path}"):
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

    # ------------------------------------------------------------------ authentication
    def login(self, username: str, password: str) -> Mapping[str, Any]:
        """Log in and keep the session cookie; returns the user object the server sent.

        Over plain http the request says ``X-Forwarded-Proto: https`` from the start: the server trusts its TLS
        proxy and sets its Secure cookie only for "https" requests (one login, not two, of the rate limit)."""
        what = f"login as {username}"
        if self.plain_http and not self.forwarded_proto:
            self._use_forwarded_proto()
        resp = self._call("POST", PATH_LOGIN, what=what, json_body={"username": username, "password": password})
        body = self._json(resp, what)
        if not isinstance(body, Mapping) or body.get("success") is False:
            raise AuthError(f"{what}: the server did not accept the login", hint=self.credentials_hint)
        value = _cookie_from(resp)
        if value:
            self.session.cookies.clear()  # the explicit header is what we send
            self.set_cookie(value)
            self._own_session = True
            data = body.get("data")
            user = data.get("user") if isinstance(data, Mapping) else None
            self.user = user if isinstance(user, Mapping) else {"username": username}
            return self.user
        if self.plain_http:
            raise AuthError(
                f"{what}: the server answered success but set no session cookie, even with X-Forwarded-Proto: https",
                hint="HexTrackr only issues its Secure cookie to https requests; use the https:// URL of its proxy "
                     "(nginx) or check the server's trust-proxy setting",
            )
        raise AuthError(f"{what}: the server answered success but set no session cookie ({COOKIE_NAME})",
                        hint="is a proxy stripping Set-Cookie? check the server's session configuration")

    def logout(self) -> None:
        """End the server session (every login not logged out stays in the server's sessions store)."""
        try:
            self._call("POST", PATH_LOGOUT, what="logout", headers=self._post_headers())
        finally:
            self._own_session = False
            self.forget_cookie()

    def csrf(self, refresh: bool = False) -> str:
        """The CSRF token for POSTs (fetched once per login)."""
        if self.csrf_token and not refresh:
            return self.csrf_token
        if not self.cookie:
            raise AuthError("not logged in to the HexTrackr 1.1 server", hint=self.credentials_hint)
        body = self._json(self._call("GET", PATH_CSRF, what="CSRF token"), "CSRF token")
        token = body.get("csrfToken") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise ServerError(f"CSRF token: the server's answer has no csrfToken: {_short(str(body))}")
        self.csrf_token = token
        return token

    def _post_headers(self) -> dict[str, str]:
        return {"x-csrf-token": self.csrf()}

    def auth_status(self) -> Mapping[str, Any] | None:
        """``GET /api/auth/status`` (public on 1.1): ``{"authenticated": bool, "user"?: …}`` — 1.1.12 nests it,
        ``{"success":true,"data":{"authenticated":…}}`` — or None when the answer is not that (no such route:
        not a HexTrackr 1.1 server). A 429 it cannot wait out raises RateLimited."""
        try:
            resp = self._send("GET", PATH_STATUS)
        except requests.exceptions.RequestException as exc:
            raise self._unreachable(exc) from None
        if resp.status_code == 429:
            raise self._error_from(resp, "authentication status")
        body = json_or_none(resp)
        if resp.status_code != 200 or not isinstance(body, Mapping):
            return None
        data = body.get("data")
        for candidate in (data, body):
            if isinstance(candidate, Mapping) and isinstance(candidate.get("authenticated"), bool):
                return candidate
        return None

    def probe(self) -> bool:
        """True when ``/api/auth/status`` answers like HexTrackr 1.1.x (for ``--dialect auto`` when ``/health``
        did not tell). One request of the rate limit."""
        if self.auth_status() is not None:
            self.probe_reason = "/api/auth/status answers like HexTrackr 1.1.x"
            return True
        return False

    def check_session(self) -> bool:
        """True if the cookie we hold is still a logged-in session (one request: ``/api/auth/status``)."""
        if not self.cookie:
            return False
        status = self.auth_status()
        return bool(status and status.get("authenticated"))

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

    # ------------------------------------------------------------------ socket.io
    def socket_options(self) -> SocketOptions:
        """python-socketio arguments for this server: cookie + X-Forwarded-Proto, and no ``http://`` Origin.

        The websocket upgrade is refused for an ``http://`` Origin, and websocket-client sends
        ``Origin: http://host`` by default for ``ws://`` URLs — so over plain http the Origin is suppressed
        (over https its default ``https://`` Origin is accepted). The cookie also goes into an ``http_session``
        because engine.io's long-polling requests after the handshake do not repeat the connect headers.
        """
        if not self.cookie:
            raise AuthError("not logged in to the HexTrackr 1.1 server", hint=self.credentials_hint)
        headers = {"Cookie": f"{COOKIE_NAME}={self.cookie}", "User-Agent": USER_AGENT}
        if self.plain_http or self.forwarded_proto:
            headers["X-Forwarded-Proto"] = "https"
        ws_options: dict[str, Any] = {"suppress_origin": True} if self.plain_http else {}
        verify = self.verify

        def session_factory() -> requests.Session:
            s = _Session()
            s.headers.update(headers)
            s.verify = verify
            return s

        return SocketOptions(url=self.base_url, headers=headers, websocket_extra_options=ws_options, verify=verify,
                             _session_factory=session_factory)


def _cookie_from(resp: requests.Response) -> str | None:
    """The ``hextrackr.sid`` value a response set, as sent (URL-encoded), Secure or not."""
    raw_headers = getattr(getattr(resp, "raw", None), "headers", None)
    values: list[str] = []
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        values = list(raw_headers.getlist("Set-Cookie"))
    elif resp.headers.get("Set-Cookie"):
        values = [resp.headers["Set-Cookie"]]
    for value in values:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except Exception:
            continue
        morsel = jar.get(COOKIE_NAME)
        if morsel is not None and morsel.value:
            return morsel.value
    fallback = resp.cookies.get(COOKIE_NAME)
    return fallback or None
