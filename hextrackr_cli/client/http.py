"""HTTP plumbing both dialects share: the verifying session, transport errors in words, a non-JSON answer
described, ``Retry-After``, the upload body reader (progress, Ctrl-C) and the upload-aborted error.

Each dialect's API (``client.seed.api``, ``client.hx11.api``) adds its own endpoints, retries and
status-code meanings on top. This module never prints.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable, Mapping

import requests

from hextrackr_cli import __version__
from hextrackr_cli.errors import BadInputError, HextrackrError, ServerUnreachable

USER_AGENT = f"hextrackr/{__version__}"
UPLOAD_PIECE = 1 << 18  # bytes read from the multipart encoder per send
REFUSED_WORDS = ("refused", "resolve", "not known", "getaddrinfo")


class VerifyingSession(requests.Session):
    """A Session whose ``verify`` is honoured: plain requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
    override ``Session.verify`` (python-engineio never passes ``verify=``), which would silently ignore
    ``--ca-bundle`` / ``--insecure``."""

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("verify") is None:
            kwargs["verify"] = self.verify
        return super().request(method, url, *args, **kwargs)


class UploadAborted(HextrackrError):
    """The upload was stopped by Ctrl-C before the server accepted it."""


class NothingToSend(BadInputError):
    """A file the dialect does not send, and rightly (a clean scan to a server that would resolve everything an
    import does not contain): the import is a success; ``note`` says why, ``rows`` how many rows were read."""

    def __init__(self, message: str, *, rows: int, note: str) -> None:
        super().__init__(message)
        self.rows, self.note = rows, note


class Aborted(Exception):
    """Raised inside the request body reader to stop an upload (not an OSError, so urllib3 lets it through)."""


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(resp: requests.Response | None, default: float) -> float:
    """``Retry-After`` (seconds or an HTTP date) of a response, else ``default``."""
    value = resp.headers.get("Retry-After") if resp is not None else None
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return default


def refused(exc: Exception) -> bool:
    """A connection error that repeating cannot cure soon (refused, the name does not resolve)."""
    return any(w in str(exc) for w in REFUSED_WORDS)


def unreachable(base_url: str, exc: Exception) -> ServerUnreachable:
    """A transport failure of a request to ``base_url`` as the error the user reads (exit 3)."""
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate" in str(exc).lower():
            return ServerUnreachable(
                f"TLS verification failed for {base_url}: its certificate is not trusted",
                hint="pass --ca-bundle PATH for a private CA, or --insecure to skip verification",
            )
        return ServerUnreachable(
            f"TLS handshake with {base_url} failed",
            hint="does the server speak https on that port? try http:// if it is plain HTTP",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ServerUnreachable(f"{base_url} did not answer in time", hint="check the server and the network, then retry")
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        what = "the host name does not resolve"
    elif "Connection refused" in text:
        what = "connection refused"
    elif "reset" in text.lower() or "aborted" in text.lower():
        what = "the connection was reset"
    else:
        what = "the connection failed"
    return ServerUnreachable(f"cannot reach {base_url}: {what}",
                             hint="is the server running? check --server / HEXTRACKR_SERVER")


def json_or_none(resp: requests.Response) -> Any:
    """The decoded JSON body, or None when the answer is not JSON."""
    if "json" not in resp.headers.get("Content-Type", ""):
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def error_text(body: Any) -> str:
    """The ``error`` (or ``message``) a JSON error answer carries, else ''."""
    if isinstance(body, Mapping):
        return str(body.get("error") or body.get("message") or "")
    return ""


def describe_non_json(resp: requests.Response, base_url: str, *, html_404: str | None = None) -> str:
    """What came back instead of JSON, in one line (an HTML page names its ``<pre>`` or ``<title>``);
    ``html_404`` is the dialect's question for a 404 HTML page (no such route)."""
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    text = resp.text
    if "html" in ctype or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        m = re.search(r"<pre>(.*?)</pre>", text, re.I | re.S) or re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        said = f" ({short(m.group(1), 80)!r})" if m else ""
        if resp.status_code == 404 and html_404:
            return f"server answered 404 with an HTML page{said}: it has no such route — {html_404}"
        return (f"server answered {resp.status_code} with an HTML page{said}, not JSON "
                f"(is {base_url} a HexTrackr server, or a proxy/login page in front of it?)")
    snippet = short(text, 80)
    return f"server answered {resp.status_code} with {ctype}, not JSON" + (f": {snippet!r}" if snippet else "")


def other_status(resp: requests.Response, what: str, body: Any) -> str:
    """The message of a JSON error answer no dialect rule covers."""
    return f"{what}: server answered {resp.status_code}: {error_text(body) or short(resp.text) or resp.reason}"


class ProgressReader:
    """Wraps the multipart encoder: reports bytes sent (at most every 0.1 s, and the end once) and stops the
    upload (``Aborted``) when ``abort`` is set."""

    def __init__(self, encoder: Any, on_progress: Callable[[int, int], None] | None,
                 abort: threading.Event | None) -> None:
        self._enc = encoder
        self._on_progress = on_progress
        self._abort = abort
        self.len = encoder.len
        self.sent = 0
        self._last_report = 0.0

    def read(self, size: int = -1) -> bytes:
        if self._abort is not None and self._abort.is_set():
            raise Aborted()
        # http.client asks for 8 KiB at a time: 9,000 trips through the encoder per 72 MB; bigger pieces (more
        # than asked for is allowed) halve the upload's time through loopback
        chunk = self._enc.read(max(size, UPLOAD_PIECE))
        self.sent += len(chunk)
        if self._on_progress is not None and chunk:
            now = time.monotonic()
            if now - self._last_report >= 0.1 or self.sent >= self.len:
                self._last_report = now
                self._on_progress(self.sent, self.len)
        return chunk
