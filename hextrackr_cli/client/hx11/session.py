"""The HexTrackr 1.1.x session: login (X-Forwarded-Proto over plain http), logout, the CSRF token, the public\nauth status (the probe for ``--dialect auto``) and the Socket.io options that pass its handshake.\n\nThe functions are ``Hx11Api``'s methods (``self`` is the API); they never print and never log the password or\nthe cookie.\n"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import requests

from hextrackr_cli.client.http import USER_AGENT, VerifyingSession as _Session, json_or_none, short as _short
from hextrackr_cli.errors import AuthError, ServerError
from hextrackr_cli.client.hx11.wire import (
    COOKIE_NAME, PATH_CSRF, PATH_LOGIN, PATH_LOGOUT, PATH_STATUS, SocketOptions, cookie_from,
)

if TYPE_CHECKING:
    from hextrackr_cli.client.hx11.api import Hx11Api


def login(self: Hx11Api, username: str, password: str) -> Mapping[str, Any]:
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
    value = cookie_from(resp)
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


def logout(self: Hx11Api) -> None:
    """End the server session (every login not logged out stays in the server's sessions store)."""
    try:
        self._call("POST", PATH_LOGOUT, what="logout", headers=self._post_headers())
    finally:
        self._own_session = False
        self.forget_cookie()


def csrf(self: Hx11Api, refresh: bool = False) -> str:
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


def post_headers(self: Hx11Api) -> dict[str, str]:
    return {"x-csrf-token": self.csrf()}


def auth_status(self: Hx11Api) -> Mapping[str, Any] | None:
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


def probe(self: Hx11Api) -> bool:
    """True when ``/api/auth/status`` answers like HexTrackr 1.1.x (for ``--dialect auto`` when ``/health``
    did not tell). One request of the rate limit."""
    if self.auth_status() is not None:
        self.probe_reason = "/api/auth/status answers like HexTrackr 1.1.x"
        return True
    return False


def check_session(self: Hx11Api) -> bool:
    """True if the cookie we hold is still a logged-in session (one request: ``/api/auth/status``)."""
    if not self.cookie:
        return False
    status = self.auth_status()
    return bool(status and status.get("authenticated"))


def socket_options(self: Hx11Api) -> SocketOptions:
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
