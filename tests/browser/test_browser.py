"""Browser progress view (issue 8): Debian's Chromium, headless, driven by Selenium against the real server.

The page runs the official socket.io-client and Bootstrap served by `hextrackr serve` (vendored package data),
so these tests also exercise our server with a Socket.io client nobody here wrote.

Screenshots of the running, error and cancelled states go to $HEXTRACKR_SCREENSHOT_DIR when it is set (that is
how docs/screenshots/*.png are made), else to the test's tmp dir.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent.parent))
from support.cli import run_cli  # noqa: E402
from support.cli_suite import cli_env  # noqa: E402
from support.data import gen_csv  # noqa: E402
from support.db import db_snapshot, hold_write_lock  # noqa: E402
from support.http import post_import, wait_for_outcome  # noqa: E402
from support.server import EventLog, close_client, socket_client  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-test-token-5f1d0c"
STATIC = Path(__file__).resolve().parent.parent.parent / "hextrackr_cli" / "server" / "static"
ETA_RE = re.compile(r"\AETA: (\d+s|\d+m \d+s)\Z")

CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1000,720",
)

# Injected before any page script: records what the user saw after each update and the connection history.
RECORDER = r"""
(function () {
  const hx = window.__hx = { updates: [], connection: [], retryDelays: [], cancelled: 0 };
  let pm, wsc;
  Object.defineProperty(window, 'ProgressModal', { configurable: true, get() { return pm; }, set(v) {
    pm = v;
    const update = v.updateProgress, cancelled = v.showCancelled;
    v.updateProgress = function (d) {
      const r = update.apply(this, arguments);
      const q = (s) => { const el = document.querySelector('#progressModal ' + s); return el ? el.textContent : null; };
      hx.updates.push({ type: d && d.type, progress: d && d.progress, bar: q('.progress-bar'), eta: q('.eta-display'),
                        state: v.state });
      return r;
    };
    v.showCancelled = function () { hx.cancelled += 1; return cancelled.apply(this, arguments); };
  } });
  Object.defineProperty(window, 'WebSocketClient', { configurable: true, get() { return wsc; }, set(v) {
    wsc = v;
    let lastRetry = null;
    v.onChange((c) => {
      hx.connection.push(c.connectionState + '/' + c.transport);
      if (c.nextRetryAt && c.nextRetryAt !== lastRetry) {
        lastRetry = c.nextRetryAt;
        hx.retryDelays.push(c.nextRetryAt - Date.now());
      }
    });
  } });
})();
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI_STRICT") == "1":
        pytest.fail(f"browser tests cannot run (CI_STRICT=1): {reason}")
    pytest.skip(reason)


def _install_chromium() -> str:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    return (result.stderr or result.stdout or "").strip()[-300:]


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Debian's chromium + chromedriver; installed with apt-get when missing and we are root."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[test]')")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.geteuid() == 0 and shutil.which("apt-get"):
            detail = _install_chromium()
            if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
                _unavailable(f"apt-get could not install chromium/chromium-driver: {detail}")
        else:
            _unavailable("chromium and chromium-driver are not installed and apt-get is unavailable (not root)")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="module")
def browser(chromium: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium per module (each test gets its own server, hence its own origin and storage)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium[0]
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromium[1]), options=opts)
    try:
        drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        drv.execute_cdp_cmd("Network.enable", {})
        yield drv
    finally:
        drv.quit()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The module's browser, back on a blank page afterwards (request log drained first)."""
    browser.get_log("performance")
    yield browser
    browser.get("about:blank")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("HEXTRACKR_SCREENSHOT_DIR")
    path = Path(target) if target else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def csv_30k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen_csv(tmp_path_factory.mktemp("browser-csv") / "generic_small_2025-11-20.csv", 30_000)


@pytest.fixture(scope="module")
def csv_250k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (several seconds of import) to click Cancel in the middle."""
    return gen_csv(tmp_path_factory.mktemp("browser-csv") / "generic_big_2025-11-20.csv", 250_000)


# --------------------------------------------------------------------------- helpers
def wait_js(drv: Any, script: str, timeout: float = 90.0, what: str = "") -> Any:
    """Wait until the JS expression ``script`` is truthy (checked every 50 ms); returns its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script("return " + script), message=what or script)


def sign_in(drv: Any, url: str, token: str = TOKEN) -> None:
    """Open the server's start page and give the token through the prompt (kept in sessionStorage)."""
    drv.get(url + "/")
    wait_js(drv, "document.querySelector('#tokenModal.show') !== null", 20, "token prompt shown")
    box = drv.find_element("id", "tokenInput")
    box.clear()
    box.send_keys(token)
    drv.find_element("css selector", "#tokenModal button[type=submit]").click()
    wait_js(drv, f"sessionStorage.getItem('hextrackr.token') === {json.dumps(token)}", 20, "token accepted")
    # the prompt is gone (faded out), as a user would see it, before anything under it is clicked
    wait_js(drv, "getComputedStyle(document.getElementById('tokenModal')).display === 'none'"
                 " && document.querySelector('.modal-backdrop') === null", 10, "token prompt closed")


def modal(drv: Any) -> dict:
    """What the progress modal shows right now."""
    return drv.execute_script("""
        const m = document.getElementById('progressModal');
        if (!m) return null;
        const q = (s) => m.querySelector(s);
        const vis = (el) => !!el && !el.classList.contains('d-none') && el.offsetParent !== null;
        return {state: m.dataset.state, shown: m.classList.contains('show') && vis(q('.modal-content')),
                title: q('.modal-title').textContent, bar: q('.progress-bar').textContent,
                barWidth: q('.progress-bar').style.width, barClass: q('.progress-bar').className,
                message: q('.status-message').textContent, messageClass: q('.status-message').className,
                eta: q('.eta-display').textContent, summary: q('.summary').textContent,
                cancelVisible: vis(q('.btn-cancel')), closeVisible: vis(q('.btn-close-modal')),
                connection: q('.connection-status').textContent};
    """)


def recorded(drv: Any) -> dict:
    return drv.execute_script("return window.__hx")


def request_urls(drv: Any) -> list[str]:
    """Every URL the browser requested (HTTP and WebSocket) since the log was last drained."""
    urls = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
        elif msg["method"] == "Network.webSocketCreated":
            urls.append(msg["params"]["url"])
    return urls


def start_cli_import(tmp_path: Path, url: str, csv: Path, session_id: str) -> None:
    """`hextrackr import FILE --detach` in a subprocess (returns once the server has the upload)."""
    result = run_cli(["--output", "json", "import", str(csv), "--detach", "--session-id", session_id],
                     cli_env(tmp_path, url, TOKEN), timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]


def generic_with_bad_row(path: Path, good_rows: int) -> Path:
    """A valid generic CSV whose line ``good_rows + 2`` is cut short (3 fields instead of 11)."""
    gen_csv(path, good_rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write("hostX.example.com,10.9.9.9,CVE-2024-99999\n")
    return path


class BlockingProxy:
    """A reverse proxy in front of the server. While ``block`` is set it refuses /socket.io/ (403), like a proxy
    without WebSocket or long-polling support (``block_websocket``: only WebSocket upgrades are refused); everything
    else is forwarded, one request per connection (a
    WebSocket upgrade is passed through). ``cut()`` drops every open connection, like a network blip."""

    def __init__(self, upstream: str, block: bool = True, block_websocket: bool = False) -> None:
        import socket
        import threading

        parts = urlsplit(upstream)
        self._upstream = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.block = block
        self.block_websocket = block_websocket
        self.refused: list[str] = []
        self._socks: list[Any] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: Any) -> None:
        import socket
        import threading

        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            header, rest = head.split(b"\r\n\r\n", 1)
            lines = header.split(b"\r\n")
            target = lines[0].split(b" ")[1].decode("latin-1")
            upgrade = any(ln.lower().startswith(b"upgrade:") for ln in lines[1:])
            if target.startswith("/socket.io/") and (self.block or (upgrade and self.block_websocket)):
                self.refused.append(target)
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if upgrade:
                kept = lines[1:]
            else:
                kept = [ln for ln in lines[1:] if not ln.lower().startswith((b"connection:", b"keep-alive:"))]
                kept.append(b"Connection: close")
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._socks.append(upstream)
            upstream.sendall(b"\r\n".join([lines[0], *kept]) + b"\r\n\r\n" + rest)

            def pump(src: Any, dst: Any) -> None:
                try:
                    while True:
                        data = src.recv(65536)
                        if not data:
                            break
                        dst.sendall(data)
                except OSError:
                    pass
                finally:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            pump(upstream, client)
        except OSError:
            pass
        finally:
            client.close()

    def cut(self) -> None:
        """Drop every open connection (the listener stays)."""
        import socket

        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._listener.close()
        self.cut()


@pytest.fixture
def server(server_factory: Callable[..., Any]) -> Any:
    return server_factory(tokens=[TOKEN])


# --------------------------------------------------------------------------- tests
def test_cli_import_followed_in_browser_shows_bar_eta_and_success(page: Any, server: Any, csv_250k: Path,
                                                                  tmp_path: Path, shots: Path) -> None:
    """An import started by the CLI: the page's bar advances with an ETA, then turns green with the summary."""
    sign_in(page, server.url)
    sid = str(uuid.uuid4())
    start_cli_import(tmp_path, server.url, csv_250k, sid)  # a few seconds: several updates to see
    page.get(f"{server.url}/imports/{sid}")

    wait_js(page, "window.__hx.updates.some(u => u.type !== 'complete' && u.progress >= 15 && u.progress <= 85"
                  " && /^ETA: /.test(u.eta))", 90, "an intermediate update with an ETA")
    if modal(page)["state"] == "running":
        page.save_screenshot(str(shots / "progress-running.png"))
    wait_js(page, "document.getElementById('progressModal').dataset.state === 'complete'", 120, "success state")

    final = wait_for_outcome(server.url, TOKEN, sid)
    shown = modal(page)
    assert shown["shown"] and shown["bar"] == "100%" and shown["barWidth"] == "100%"
    assert "bg-success" in shown["barClass"] and "progress-bar-animated" not in shown["barClass"]
    assert shown["message"] == final["lastEvent"]["message"] and "250000" in shown["message"]
    assert "rows: 250,000" in shown["summary"]
    assert shown["closeVisible"] and not shown["cancelVisible"]
    assert shown["title"] == "Importing Vulnerabilities"
    assert shown["connection"] == "Live (WebSocket)"

    updates = recorded(page)["updates"]
    running = [u for u in updates if u["type"] not in ("complete", "error")]
    percents = [u["progress"] for u in running]
    assert percents == sorted(percents), f"the bar went backwards: {percents}"
    assert len({p for p in percents if 0 < p < 100}) >= 3, f"the bar did not visibly advance: {percents}"
    assert all(u["bar"] == f"{round(u['progress'])}%" for u in running)
    etas = [u["eta"] for u in running if u["eta"] and u["eta"] != "ETA: calculating..."]
    assert etas and all(ETA_RE.match(e) for e in etas), etas

    urls = request_urls(page)
    assert any("/socket.io/" in u and u.startswith("ws://") for u in urls), "no WebSocket was opened"
    assert not [u for u in urls if TOKEN in u], "the token appeared in a URL"


def test_bad_file_shows_red_error_state_with_the_server_message(page: Any, server: Any, tmp_path: Path,
                                                               shots: Path) -> None:
    """A file the server refuses while importing: red bar, animation stopped, its message, modal stays open."""
    bad = generic_with_bad_row(tmp_path / "generic_bad_2025-11-20.csv", 60_000)
    sid = str(uuid.uuid4())
    sign_in(page, server.url)
    answer = post_import(server.url, TOKEN, bad, filename=bad.name, session_id=sid)
    assert answer.status_code == 202, answer.text
    page.get(f"{server.url}/imports/{sid}")
    wait_js(page, "document.getElementById('progressModal') &&"
                  " document.getElementById('progressModal').dataset.state === 'error'", 90, "error state")
    final = wait_for_outcome(server.url, TOKEN, sid)
    assert final["outcome"] == "failed"

    shown = modal(page)
    page.save_screenshot(str(shots / "progress-error.png"))
    assert shown["shown"], "the modal closed on error"
    assert shown["message"] == final["lastEvent"]["message"]
    assert "line 60002" in shown["message"] and bad.name in shown["message"]
    assert "bg-danger" in shown["barClass"]
    assert "progress-bar-animated" not in shown["barClass"] and "progress-bar-striped" not in shown["barClass"]
    assert "alert-danger" in shown["messageClass"]
    assert shown["closeVisible"] and not shown["cancelVisible"]


def test_cancel_button_mid_import_sends_cancelimport_and_db_is_unchanged(page: Any, server: Any, csv_250k: Path,
                                                                       tmp_path: Path, shots: Path) -> None:
    """Cancel in the modal: the room gets importCancelled, the page confirms it, the data is as before."""
    seed = gen_csv(tmp_path / "generic_seed_2025-11-01.csv", 50)
    first = post_import(server.url, TOKEN, seed, filename=seed.name)
    assert wait_for_outcome(server.url, TOKEN, first.json()["sessionId"])["outcome"] == "completed"
    before = db_snapshot(server.db_path)

    sign_in(page, server.url)
    sid = str(uuid.uuid4())
    start_cli_import(tmp_path, server.url, csv_250k, sid)
    log = EventLog()
    observer = socket_client(server.url, TOKEN, log=log)
    try:
        assert observer.call("joinSession", sid, timeout=10)["ok"]
        page.get(f"{server.url}/imports/{sid}")
        wait_js(page, "window.__hx.updates.some(u => u.progress >= 12 && u.type !== 'complete')", 90,
                "the import is loading")
        assert modal(page)["state"] == "running"
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        # Under load the modal may still be fading in: click once the button takes clicks, as a person would.
        WebDriverWait(page, 30, poll_frequency=0.05).until(
            ec.element_to_be_clickable(("css selector", "#progressModal .btn-cancel"))).click()
        wait_js(page, "document.getElementById('progressModal').dataset.state === 'cancelled'", 60,
                "cancel confirmed")
        assert log.wait(lambda lg: "importCancelled" in lg.names(), 30), log.names()
    finally:
        close_client(observer)

    shown = modal(page)
    page.save_screenshot(str(shots / "progress-cancelled.png"))
    assert shown["title"] == "Import cancelled" and "nothing was changed" in shown["message"]
    assert "progress-bar-animated" not in shown["barClass"]
    assert shown["closeVisible"] and not shown["cancelVisible"]
    assert recorded(page)["cancelled"] >= 1
    assert not any(d.get("type") == "complete" for d in log.progress())
    final = wait_for_outcome(server.url, TOKEN, sid)
    assert final["outcome"] == "cancelled"
    after = db_snapshot(server.db_path)
    changed = [t for t in set(before) | set(after) if t != "imports" and before.get(t) != after.get(t)]
    assert not changed, f"tables changed by a cancelled import: {changed}"


def test_socketio_blocked_page_polls_http_and_still_finishes(page: Any, server: Any, csv_250k: Path,
                                                              tmp_path: Path) -> None:
    """Behind a proxy that refuses /socket.io/, the page polls /api/import/progress/{id}, retries the socket
    after 1, 2, 4... s, and still shows the import finish."""
    proxy = BlockingProxy(server.url)
    try:
        sign_in(page, proxy.url)
        sid = str(uuid.uuid4())
        start_cli_import(tmp_path, server.url, csv_250k, sid)  # long enough for several 1 s polls
        page.get(f"{proxy.url}/imports/{sid}")
        wait_js(page, "window.__hx.updates.some(u => u.progress > 0 && u.progress < 100)", 90, "progress by polling")
        assert modal(page)["connection"].startswith("HTTP polling")
        wait_js(page, "document.getElementById('progressModal').dataset.state === 'complete'", 120, "success state")
        final = wait_for_outcome(server.url, TOKEN, sid)
        shown = modal(page)
        hx = recorded(page)
        urls = request_urls(page)
    finally:
        proxy.close()

    assert proxy.refused, "the page never tried Socket.io"
    assert shown["message"] == final["lastEvent"]["message"] and "bg-success" in shown["barClass"]
    assert shown["connection"].startswith("HTTP polling")
    assert not any(c.startswith("connected/") for c in hx["connection"]), hx["connection"]
    assert any(c.endswith("/http-polling") for c in hx["connection"])
    running = [u["progress"] for u in hx["updates"] if u["type"] not in ("complete", "error")]
    assert len({p for p in running if 0 < p < 100}) >= 2, running
    delays = hx["retryDelays"]
    assert delays, "no reconnect was scheduled"
    expected = [1000 * 2 ** i for i in range(len(delays))]
    assert len(delays) <= 5 and all(abs(d - e) <= 100 for d, e in zip(delays, expected)), (delays, expected)
    assert [u for u in urls if u.endswith(f"/api/import/progress/{sid}")], "the page did not poll"
    assert not [u for u in urls if TOKEN in u]


def test_websocket_refused_page_stays_live_over_engineio_long_polling(page: Any, server: Any, csv_30k: Path,
                                                                      tmp_path: Path) -> None:
    """Behind a proxy that refuses WebSocket upgrades only, socket.io-client falls back to Engine.IO long-polling
    and the page still gets live events (no HTTP polling of the API needed)."""
    proxy = BlockingProxy(server.url, block=False, block_websocket=True)
    try:
        sign_in(page, proxy.url)
        sid = str(uuid.uuid4())
        start_cli_import(tmp_path, server.url, csv_30k, sid)
        page.get(f"{proxy.url}/imports/{sid}")
        wait_js(page, "document.getElementById('progressModal').dataset.state === 'complete'", 90, "success state")
        hx = recorded(page)
        shown = modal(page)
        urls = request_urls(page)
    finally:
        proxy.close()

    assert proxy.refused and all("transport=websocket" in t for t in proxy.refused), proxy.refused
    assert "connected/polling" in hx["connection"] and not any(c.endswith("/http-polling") for c in hx["connection"])
    assert shown["connection"] == "Live (long-polling)" and "bg-success" in shown["barClass"]
    assert not [u for u in urls if "/api/import/progress/" in u], "the page polled the API despite a live socket"
    assert shown["message"] == wait_for_outcome(server.url, TOKEN, sid)["lastEvent"]["message"]


def test_lost_socket_page_polls_then_reconnects_and_rejoins(page: Any, server: Any, csv_250k: Path,
                                                           tmp_path: Path) -> None:
    """The live connection drops mid-import and Socket.io is refused for a while: the page keeps the bar moving
    by HTTP polling, reconnects with backoff once Socket.io is back, rejoins the session and finishes live."""
    proxy = BlockingProxy(server.url, block=False)
    try:
        sign_in(page, proxy.url)
        sid = str(uuid.uuid4())
        start_cli_import(tmp_path, server.url, csv_250k, sid)
        with hold_write_lock(server.db_path):  # the import outlasts the outage and the rejoin, however fast it is
            page.get(f"{proxy.url}/imports/{sid}")
            wait_js(page, "WebSocketClient.joined && window.__hx.updates.some(u => u.progress >= 10)", 90, "live")
            proxy.block = True
            proxy.cut()
            wait_js(page, "window.__hx.connection.some(c => c.endsWith('/http-polling'))", 30,
                    "fell back to polling")
            polled_from = len(recorded(page)["updates"])
            wait_js(page, f"window.__hx.updates.length > {polled_from}", 30, "progress while polling")
            # the heartbeat changes its message every ~0.5 s, so polling can show progress before the page's first
            # reconnect attempt (1 s backoff): keep Socket.io blocked until one attempt has been refused
            from selenium.webdriver.support.ui import WebDriverWait

            WebDriverWait(page, 30, poll_frequency=0.05).until(lambda _: proxy.refused,
                                                               message="a reconnect attempt while blocked")
            proxy.block = False
            wait_js(page, "WebSocketClient.joined && WebSocketClient.transport === 'websocket'", 60, "rejoined")
        wait_js(page, "document.getElementById('progressModal').dataset.state === 'complete'", 120, "success")
        hx = recorded(page)
        shown = modal(page)
    finally:
        proxy.close()

    assert proxy.refused, "no reconnect attempt was refused while Socket.io was blocked"
    fell = next(i for i, c in enumerate(hx["connection"]) if c.endswith("/http-polling"))
    assert any(c == "connected/websocket" for c in hx["connection"][fell:]), hx["connection"]
    assert hx["retryDelays"] and hx["retryDelays"][0] == pytest.approx(1000, abs=100)
    assert shown["connection"] == "Live (WebSocket)" and "bg-success" in shown["barClass"]
    assert shown["message"] == wait_for_outcome(server.url, TOKEN, sid)["lastEvent"]["message"]


def test_start_page_lists_imports_refuses_a_wrong_token_and_links_to_progress(page: Any, server: Any,
                                                                             tmp_path: Path) -> None:
    """GET / asks for the token (a wrong one is refused with the server's answer) and lists recent imports."""
    good = gen_csv(tmp_path / "generic_list_2025-11-20.csv", 30)
    sid = post_import(server.url, TOKEN, good, filename=good.name).json()["sessionId"]
    assert wait_for_outcome(server.url, TOKEN, sid)["outcome"] == "completed"

    page.get(server.url + "/")
    wait_js(page, "document.querySelector('#tokenModal.show') !== null", 20, "token prompt")
    page.find_element("id", "tokenInput").send_keys("not-the-token")
    page.find_element("css selector", "#tokenModal button[type=submit]").click()
    wait_js(page, "document.getElementById('tokenFeedback').textContent.includes('invalid token')", 20,
            "wrong token refused")
    assert page.execute_script("return sessionStorage.getItem('hextrackr.token')") is None
    sign_in(page, server.url)

    row = f"#importsTable tr[data-session-id='{sid}']"
    wait_js(page, f"document.querySelector({json.dumps(row)}) !== null", 20, "the import is listed")
    cells = page.execute_script(
        f"return Array.from(document.querySelectorAll({json.dumps(row + ' td')})).map(td => td.textContent)")
    assert cells[1] == good.name and cells[2] == "vulnerabilities" and cells[5] == "completed" and cells[6] == "30"
    page.find_element("css selector", f"{row} a").click()
    wait_js(page, "document.getElementById('progressModal') &&"
                  " document.getElementById('progressModal').dataset.state === 'complete'", 30, "final state")
    assert urlsplit(page.current_url).path == f"/imports/{sid}"
    assert "rows: 30" in modal(page)["summary"]

    wait_js(page, "ProgressModal.visible", 20, "modal fully shown")
    page.find_element("css selector", "#progressModal .btn-close-modal").click()  # hide(): modal removed
    wait_js(page, "document.getElementById('progressModal') === null && ProgressModal.currentSessionId === null", 20)
    page.find_element("id", "reopen").click()
    wait_js(page, "document.getElementById('progressModal') &&"
                  " document.getElementById('progressModal').dataset.state === 'complete'", 30, "shown again")


def test_upload_form_starts_an_import_and_opens_its_progress(page: Any, server: Any, tmp_path: Path) -> None:
    """The start page's form uploads a file and opens its progress page; a refused file shows why."""
    sign_in(page, server.url)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    page.find_element("id", "uploadFile").send_keys(str(empty))
    page.find_element("id", "uploadButton").click()
    wait_js(page, "document.getElementById('uploadFeedback').textContent.startsWith('Not imported:')", 30,
            "refusal shown")
    assert "empty" in page.find_element("id", "uploadFeedback").text.lower()

    good = gen_csv(tmp_path / "generic_form_2025-11-20.csv", 40)
    page.find_element("id", "uploadFile").send_keys(str(good))
    page.find_element("id", "uploadButton").click()
    wait_js(page, "location.pathname.startsWith('/imports/') && document.getElementById('progressModal') &&"
                  " document.getElementById('progressModal').dataset.state === 'complete'", 60, "import done")
    sid = urlsplit(page.current_url).path.rsplit("/", 1)[1]
    assert wait_for_outcome(server.url, TOKEN, sid)["summary"]["rows"] == 40


def test_unknown_session_page_says_not_found_in_the_error_state(page: Any, server: Any) -> None:
    """/imports/{id} for a session the server does not know shows the server's "not found" in red."""
    sign_in(page, server.url)
    sid = str(uuid.uuid4())
    page.get(f"{server.url}/imports/{sid}")
    wait_js(page, "document.getElementById('progressModal') &&"
                  " document.getElementById('progressModal').dataset.state === 'error'", 30, "error state")
    shown = modal(page)
    assert shown["message"] == f"Session {sid} not found" and "bg-danger" in shown["barClass"]


def test_page_formateta_matches_the_seed_and_the_python_protocol(page: Any, server: Any) -> None:
    """ProgressModal.formatETA gives the seed's strings (45s, 1m 30s, 61m 5s), the same as protocol.format_eta."""
    from hextrackr_cli import protocol

    page.get(server.url + "/")
    wait_js(page, "typeof ProgressModal === 'object'", 20)
    samples = [0, 1, 45, 59, 59.6, 60, 90, 3599, 3665, 86400]
    shown = page.execute_script("return arguments[0].map(s => ProgressModal.formatETA(s))", samples)
    assert shown[2] == "45s" and shown[6] == "1m 30s" and shown[8] == "61m 5s"
    assert shown == [protocol.format_eta(s) for s in samples]
    assert page.execute_script("return ProgressModal.formatETA(null)") == ""


def test_pages_and_vendored_assets_need_no_token_and_are_served_with_types_and_caching(server: Any) -> None:
    """Pages/assets come from the package (no CDN): right content types, cache headers, ETag 304, gzip."""
    base = server.url
    index = requests.get(base + "/", timeout=10)
    assert index.status_code == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert requests.get(base + "/api/imports", timeout=10).status_code == 401  # the data still needs the token

    for html in (index.text, requests.get(f"{base}/imports/{uuid.uuid4()}", timeout=10).text):
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs and all(r.startswith("/") or r.startswith("data:") for r in refs), refs

    sio_path = "/static/vendor/socket.io/socket.io.min.js"
    plain = requests.get(base + sio_path, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert plain.status_code == 200 and plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "max-age=" in plain.headers["cache-control"] and plain.headers["etag"]
    assert plain.content == (STATIC / "vendor" / "socket.io" / "socket.io.min.js").read_bytes()
    assert re.search(rb"Socket\.IO v4\.\d+\.\d+", plain.content[:200])
    again = requests.get(base + sio_path, headers={"If-None-Match": plain.headers["etag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    raw = requests.get(base + sio_path, headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True)
    assert raw.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw.raw.read()) == plain.content

    css = requests.get(base + "/static/vendor/bootstrap/css/bootstrap.min.css", timeout=10)
    assert css.headers["content-type"] == "text/css; charset=utf-8" and b"Bootstrap  v5." in css.content[:100]
    app_js = requests.get(base + "/static/js/progress.js", timeout=10)
    assert app_js.headers["cache-control"] == "no-cache"

    host = urlsplit(base)
    for path in ("/static/../http.py", "/static/%2e%2e/http.py", "/static/vendor/socket.io/socket.io.min.js.map",
                 "/static/index.html", "/imports/not-a-session-id", "/static/nope.js"):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status == 404, (path, resp.status)
        assert b"from __future__" not in body and b"async def" not in body  # never a source file
    assert requests.post(base + "/", timeout=10).status_code == 405


def test_vendored_assets_match_their_manifest_and_carry_licenses() -> None:
    """static/vendor holds the npm registry files listed (with sha256) in VERSIONS.txt, and their licenses."""
    vendor = STATIC / "vendor"
    manifest = (vendor / "VERSIONS.txt").read_text()
    listed = dict((name[2:], digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", manifest, re.M))
    files = {str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file() and p.name != "VERSIONS.txt"}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert "MIT" in (vendor / "socket.io" / "LICENSE").read_text()
    assert "MIT" in (vendor / "bootstrap" / "LICENSE").read_text()
    assert re.search(r"socket\.io-client 4\.\d+\.\d+", manifest) and re.search(r"bootstrap 5\.\d+\.\d+", manifest)
