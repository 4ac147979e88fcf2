"""A loopback TCP proxy the test controls, placed between the CLI and the real server.

Modes (switchable at any time, from the test's thread):
- ``pass``: forward bytes both ways (default);
- ``refuse``: every new connection is reset at once (as if nothing listened);
- ``blackhole``: new connections are accepted and never answered;
- ``cut_all()``: reset every live connection (mid-upload, mid-long-poll, mid-websocket);
- ``delay``: seconds to hold each server->client chunk; ``upload_delay``: the same for request bodies;
- ``ws``: ``pass`` | ``reject`` (websocket upgrade requests are reset: engine.io must use polling) |
  ``silent`` (websocket connections stay open but, once ``silence_ws()`` is called, no byte crosses either way);
- ``inject(...)``: answer the next N HTTP requests whose path starts with a prefix with a canned response
  (503 JSON, 502 HTML page, 429 + Retry-After, ...) and close, without reaching the server.

Counters (``connections``, ``cut``, ``injected``, ``ws_rejected``) let the tests prove a fault really happened.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Optional


@dataclass
class Canned:
    status: int
    reason: str
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...]
    remaining: int
    path_prefix: str
    method: Optional[str]


def _rst(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), like a crashed peer or a cut cable."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    def __init__(self, proxy: "TcpProxy", client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.websocket = False
        self.closed = False
        self.lock = threading.Lock()

    def close(self, reset: bool = False) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            if s is None:
                continue
            if reset:
                _rst(s)
            else:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass


class TcpProxy:
    """``TcpProxy(upstream_port).start()``; ``url`` is what the client should use. ``close()`` when done."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.ws = "pass"
        self.delay = 0.0
        self.upload_delay = 0.0  # seconds to hold each client->server chunk (a slow uplink)
        self._ws_silent = threading.Event()
        self._canned: list[Canned] = []
        self._conns: set[_Conn] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.connections = 0
        self.cut = 0
        self.injected = 0
        self.ws_rejected = 0
        self.ws_connections = 0
        self.requests: list[str] = []  # first request line of every forwarded connection

    # ------------------------------------------------------------------ control
    def start(self) -> "TcpProxy":
        threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self.cut_all()

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cut_all(self) -> int:
        """Reset every live connection; returns how many were cut."""
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            c.close(reset=True)
        self.cut += len(conns)
        return len(conns)

    def live(self) -> int:
        with self._lock:
            return len(self._conns)

    def silence_ws(self) -> None:
        """From now on no byte crosses an open websocket connection (it stays connected)."""
        self._ws_silent.set()

    def inject(self, status: int, *, count: int, body: bytes | str = b"", content_type: str = "application/json",
               headers: tuple[tuple[str, str], ...] = (), path_prefix: str = "/", method: str | None = None,
               reason: str = "Injected") -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            self._canned.append(Canned(status, reason, body, content_type, headers, count, path_prefix, method))

    def injections_left(self) -> int:
        with self._lock:
            return sum(c.remaining for c in self._canned)

    # ------------------------------------------------------------------ plumbing
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "refuse":
                _rst(client)
                continue
            if self.mode == "blackhole":
                with self._lock:
                    self._conns.add(_Conn(self, client))  # held open, never answered; cut_all() ends it
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _read_head(self, client: socket.socket) -> bytes:
        """Whatever the client sends first, at least the request head when it is HTTP (bounded)."""
        client.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        client.settimeout(None)
        return data

    def _match_canned(self, head: bytes) -> Canned | None:
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) < 2:
            return None
        method, path = parts[0], parts[1]
        with self._lock:
            for c in self._canned:
                if c.remaining > 0 and path.startswith(c.path_prefix) and (c.method is None or c.method == method):
                    c.remaining -= 1
                    return c
        return None

    def _serve(self, client: socket.socket) -> None:
        head = self._read_head(client)
        if not head:
            client.close()
            return
        first_line = head.split(b"\r\n", 1)[0]
        is_ws = b"transport=websocket" in first_line or b"upgrade: websocket" in head.lower()
        if is_ws and self.ws == "reject":
            self.ws_rejected += 1
            _rst(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            _rst(client)
            return
        conn = _Conn(self, client)
        conn.upstream = upstream
        conn.websocket = is_ws
        if is_ws:
            self.ws_connections += 1
        with self._lock:
            if self._stop.is_set():
                conn.close(reset=True)
                return
            self._conns.add(conn)
        try:
            framer = None if is_ws else _RequestFramer(self, conn)
            if framer is None:
                upstream.sendall(head)
            elif not framer.feed(head):
                return
            self._pump(conn, framer)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _pump(self, conn: _Conn, framer: "_RequestFramer | None") -> None:
        client, upstream = conn.client, conn.upstream
        assert upstream is not None
        socks = [client, upstream]
        while not conn.closed:
            try:
                readable, _, _ = select.select(socks, [], [], 0.5)
            except (OSError, ValueError):
                return
            for s in readable:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if conn.websocket and self._ws_silent.is_set():
                    continue  # swallowed: the socket stays open but nothing arrives
                try:
                    if s is upstream:
                        if self.delay:
                            time.sleep(self.delay)
                        client.sendall(data)
                    elif framer is not None:
                        if not framer.feed(data):
                            return
                    else:
                        upstream.sendall(data)
                except OSError:
                    return


class _RequestFramer:
    """Splits the client's byte stream into HTTP/1.1 requests (Content-Length bodies), so every request on a
    keep-alive connection can be matched against the canned answers. Anything it cannot frame (chunked bodies,
    protocol upgrades) passes through untouched from then on."""

    def __init__(self, proxy: TcpProxy, conn: _Conn) -> None:
        self.proxy = proxy
        self.conn = conn
        self.buf = b""
        self.body_left = 0
        self.passthrough = False
        self.canned: Canned | None = None

    def feed(self, data: bytes) -> bool:
        """Forward/answer ``data``; False when the connection must end (a canned answer was sent)."""
        upstream = self.conn.upstream
        assert upstream is not None
        if self.passthrough:
            upstream.sendall(data)
            return True
        self.buf += data
        while self.buf:
            if self.body_left:
                take = self.buf[: self.body_left]
                self.buf = self.buf[len(take):]
                self.body_left -= len(take)
                if self.canned is None:
                    if self.proxy.upload_delay:
                        time.sleep(self.proxy.upload_delay)
                    upstream.sendall(take)
                if self.body_left == 0 and self.canned is not None:
                    return self._answer()
                continue
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:  # not HTTP as we know it
                    self.passthrough = True
                    upstream.sendall(self.buf)
                    self.buf = b""
                return True
            head, self.buf = self.buf[: end + 4], self.buf[end + 4:]
            lower = head.lower()
            first_line = head.split(b"\r\n", 1)[0]
            self.proxy.requests.append(first_line.decode("latin-1", "replace"))
            length = 0
            for line in lower.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    try:
                        length = int(line.split(b":", 1)[1].strip())
                    except ValueError:
                        length = 0
            self.canned = self.proxy._match_canned(head)
            if self.canned is None:
                upstream.sendall(head)
                if b"transfer-encoding: chunked" in lower or b"upgrade:" in lower:
                    self.passthrough = True
                    if self.buf:
                        upstream.sendall(self.buf)
                        self.buf = b""
                    return True
            self.body_left = length
            if length == 0 and self.canned is not None:
                return self._answer()
        return True

    def _answer(self) -> bool:
        canned = self.canned
        assert canned is not None
        hdrs = [f"HTTP/1.1 {canned.status} {canned.reason}", f"Content-Type: {canned.content_type}",
                f"Content-Length: {len(canned.body)}", "Connection: close"]
        hdrs += [f"{k}: {v}" for k, v in canned.headers]
        try:
            self.conn.client.sendall(("\r\n".join(hdrs) + "\r\n\r\n").encode("latin-1") + canned.body)
        except OSError:
            pass
        self.proxy.injected += 1
        return False
