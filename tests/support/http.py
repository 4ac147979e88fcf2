"""The HTTP API by hand, as a script or another client would use it (requests, no client-side checks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def post_import(url: str, token: str | None, content: bytes | str | Path, *, filename: str = "scan.csv",
                kind: str = "vulnerabilities", session_id: str | None = None, timeout: float = 60.0,
                **fields: str) -> requests.Response:
    """POST a CSV to the import endpoint, streamed (MultipartEncoder), session id first."""
    form: dict[str, Any] = {}
    if session_id is not None:
        form["sessionId"] = session_id
    form.update(fields)
    if isinstance(content, Path):
        with open(content, "rb") as handle:
            form["csvFile"] = (filename, handle, "text/csv")
            return _post(url, kind, form, token, timeout)
    form["csvFile"] = (filename, content.encode("utf-8") if isinstance(content, str) else content, "text/csv")
    return _post(url, kind, form, token, timeout)


def post_file(url: str, path: Path | None = None, *, data: bytes | None = None, filename: str = "scan.csv",
              token: str | None, session_id: str | None = None, kind: str = "vulnerabilities",
              fields: dict[str, str] | None = None, timeout: float = 60) -> requests.Response:
    """A raw multipart upload (text fields first) of ``data`` or the bytes of ``path``."""
    payload = data if data is not None else Path(path or "").read_bytes()
    return post_import(url, token, payload, filename=filename, kind=kind, session_id=session_id or None,
                       timeout=timeout, **(fields or {}))


def _post(url: str, kind: str, form: dict[str, Any], token: str | None, timeout: float) -> requests.Response:
    from requests_toolbelt.multipart.encoder import MultipartEncoder

    enc = MultipartEncoder(fields=form)
    headers = {"Content-Type": enc.content_type, **auth(token)}
    path = "/api/vulnerabilities/import" if kind == "vulnerabilities" else "/api/tickets/import"
    return requests.post(url + path, data=enc, headers=headers, timeout=timeout)


def get_json(url: str, token: str | None, path: str, timeout: float = 30.0) -> requests.Response:
    """GET ``path`` with the token (the Response: its status is part of what a test checks)."""
    return requests.get(url + path, headers=auth(token), timeout=timeout)


def progress(url: str, sid: str, token: str | None) -> requests.Response:
    """GET the progress endpoint of a session."""
    return requests.get(f"{url}/api/import/progress/{sid}", headers=auth(token), timeout=10)


def wait_outcome(url: str, sid: str, *, token: str | None, timeout: float = 60, interval: float = 0.1) -> dict:
    """Poll the progress endpoint until the import has ended (bounded); returns the final SessionState. A poll
    that fails (server restarting, not found yet) is tried again."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        try:
            r = progress(url, sid, token)
            body = r.json() if r.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            body = {}
        if body.get("outcome") not in (None, "running", "pending"):
            return body
        time.sleep(interval)
    raise AssertionError(f"session {sid} did not finish within {timeout}s: {body}")


def imports_total(url: str, token: str | None) -> int:
    r = requests.get(f"{url}/api/imports", headers=auth(token), timeout=10)
    r.raise_for_status()
    return int(r.json()["total"])


def wait_for_outcome(url: str, token: str, session_id: str, timeout: float = 60.0) -> dict:
    """``wait_outcome`` as the server suites call it (token before the session id, polled every 0.05 s)."""
    return wait_outcome(url, session_id, token=token, timeout=timeout, interval=0.05)
