"""The browser view of the embedded server: pages and vendored assets (issue 8).

``GET /`` lists recent imports, ``GET /imports/{sessionId}`` opens the progress modal for one session and
``GET /static/...`` serves the page code and the vendored socket.io-client / Bootstrap files (package data,
never a CDN). Pages and assets hold no data, so they need no token: the page asks for the token once, keeps it
in ``sessionStorage`` and sends it as ``Authorization: Bearer`` / Socket.io ``auth`` (never in a URL).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from hextrackr_cli import protocol

Send = Callable[[dict[str, Any]], Awaitable[None]]

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
IMPORT_PREFIX = protocol.PAGE_IMPORT_PREFIX  # protocol.page_url(server_url, session_id) is its URL

# Vendored files only change with a package upgrade; our own page code may change with any edit, so it is
# revalidated (cheap: ETag + 304).
VENDOR_CACHE = "public, max-age=86400"
APP_CACHE = "no-cache"
PAGE_CACHE = "no-store"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
COMPRESSIBLE = (".html", ".js", ".css", ".svg", ".txt", ".json")
# Files served from /static/ (anything else there is 404, e.g. source maps that are not vendored).
_ALLOWED_SUFFIXES = frozenset(CONTENT_TYPES) | {""}

# No inline script or style anywhere, so the policy can be strict. 'self' in connect-src covers the
# same-origin ws:/wss: Socket.io connection (CSP Level 3).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def handles(path: str) -> bool:
    """True for the paths this module answers (the HTTP app routes them here before its 404)."""
    return path == "/" or path == "/index.html" or path.startswith(IMPORT_PREFIX) or path.startswith(STATIC_PREFIX)


@dataclass(frozen=True)
class Asset:
    body: bytes
    gz: bytes | None
    etag: bytes
    content_type: bytes


class _AssetCache:
    """Static files read once (they are package data and small: ~400 KB in all), gzip pre-computed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, Asset | None] = {}
        self._lock = threading.Lock()

    def get(self, rel: str) -> Asset | None:
        with self._lock:
            if rel in self._cache:
                return self._cache[rel]
        asset = self._load(rel)
        with self._lock:
            self._cache[rel] = asset
        return asset

    def _load(self, rel: str) -> Asset | None:
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
            return None
        path = self.root.joinpath(*parts)
        suffix = path.suffix.lower()
        if suffix not in _ALLOWED_SUFFIXES or suffix == "":
            return None
        try:
            resolved = path.resolve(strict=True)
            resolved.relative_to(self.root)
            if not resolved.is_file():
                return None
            body = resolved.read_bytes()
        except (OSError, ValueError):
            return None
        ctype = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        gz = gzip.compress(body, 6, mtime=0) if suffix in COMPRESSIBLE and len(body) > 1024 else None
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        return Asset(body=body, gz=gz, etag=etag, content_type=ctype.encode())


_assets = _AssetCache(STATIC_DIR)


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], head: bool) -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())] + SECURITY_HEADERS
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_asset(scope: dict[str, Any], send: Send, asset: Asset, cache: str, *, page: bool = False) -> None:
    head = scope.get("method") == "HEAD"
    req = _headers(scope)
    headers = [(b"content-type", asset.content_type), (b"cache-control", cache.encode())]
    if page:
        headers.append((b"content-security-policy", CSP.encode()))
    else:
        headers.append((b"etag", asset.etag))
        inm = req.get(b"if-none-match")
        if inm is not None and asset.etag in [t.strip().removeprefix(b"W/") for t in inm.split(b",")]:
            await send({"type": "http.response.start", "status": 304,
                        "headers": [(b"etag", asset.etag), (b"cache-control", cache.encode())] + SECURITY_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
    body = asset.body
    if asset.gz is not None:
        headers.append((b"vary", b"accept-encoding"))
        if b"gzip" in req.get(b"accept-encoding", b""):
            body = asset.gz
            headers.append((b"content-encoding", b"gzip"))
    await _respond(send, 200, body, headers, head)


async def _not_found(scope: dict[str, Any], send: Send, what: str) -> None:
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found - HexTrackr</title>"
        "<link rel=\"stylesheet\" href=\"/static/vendor/bootstrap/css/bootstrap.min.css\"></head>"
        f"<body class=\"p-4\"><h1 class=\"h4\">Not found</h1><p>{_escape(what)}</p>"
        "<p><a href=\"/\">Recent imports</a></p></body></html>"
    ).encode("utf-8")
    await _respond(send, 404, body, [(b"content-type", b"text/html; charset=utf-8"),
                                     (b"cache-control", PAGE_CACHE.encode()),
                                     (b"content-security-policy", CSP.encode())], scope.get("method") == "HEAD")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


async def serve(scope: dict[str, Any], send: Send) -> None:
    """Answer one GET/HEAD request for a path where ``handles(path)`` is true."""
    method = scope.get("method", "GET")
    path = scope.get("path", "")
    if method not in ("GET", "HEAD"):
        await _respond(send, 405, b"method not allowed\n",
                       [(b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD")], False)
        return
    if path in ("/", "/index.html"):
        asset = _assets.get("index.html")
        if asset is None:  # broken install: say so instead of a traceback
            return await _not_found(scope, send, "the page files are missing from this installation")
        return await _send_asset(scope, send, asset, PAGE_CACHE, page=True)
    if path.startswith(IMPORT_PREFIX):
        session_id = path[len(IMPORT_PREFIX):].rstrip("/")
        if not protocol.is_session_id(session_id):
            return await _not_found(scope, send, "An import page needs a session id (a UUID), e.g. /imports/"
                                                 "f47ac10b-58cc-4372-a567-0e02b2c3d479.")
        asset = _assets.get("import.html")
        if asset is None:
            return await _not_found(scope, send, "the page files are missing from this installation")
        return await _send_asset(scope, send, asset, PAGE_CACHE, page=True)
    rel = path[len(STATIC_PREFIX):]
    asset = _assets.get(rel)
    if asset is None or rel.endswith(".html"):
        return await _not_found(scope, send, f"no such file: {path[:200]}")
    cache = VENDOR_CACHE if rel.startswith("vendor/") else APP_CACHE
    await _send_asset(scope, send, asset, cache)
