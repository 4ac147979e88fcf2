"""The config file (mode 0600, atomic, round-trips) and `hextrackr login` / `config set|get|list`."""

from __future__ import annotations

import http.server
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from hextrackr_cli import configfile
from hextrackr_cli.errors import UsageError
from support.cli import pty_session

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECRET = "s3cr3t-T0ken-value-that-must-never-be-printed"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no HEXTRACKR_* from the caller, config and data under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_") and k not in ("NO_COLOR",)}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_DATA_HOME=str(tmp_path / "xdg-data"), TERM="dumb")
    env.update(extra)
    return env


def hextrackr(tmp_path: Path, *args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hextrackr_cli", *args],
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env=cli_env(tmp_path, **env),
        timeout=60,
    )


def config_path(tmp_path: Path) -> Path:
    return tmp_path / "xdg-config" / "hextrackr" / "config.toml"


# --------------------------------------------------------------------------- the file
def test_file_is_0600_and_directory_0700_even_with_a_permissive_umask(tmp_path: Path) -> None:
    """With umask 000 the config still is readable by its owner only."""
    path = tmp_path / "a" / "b" / "config.toml"
    old = os.umask(0)
    try:
        configfile.set_profile_values(path, "prod", server="https://prod.example", token=SECRET)
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700


def test_rewriting_a_world_readable_file_makes_it_private_and_keeps_its_content(tmp_path: Path) -> None:
    """A config someone made 0644 by hand becomes 0600 on the next write; its other keys survive."""
    path = tmp_path / "config.toml"
    path.write_text('[profiles.default]\nusername = "ann"\n')
    path.chmod(0o644)
    configfile.set_profile_values(path, "default", token=SECRET)
    assert mode(path) == 0o600
    assert tomllib.loads(path.read_text())["profiles"]["default"] == {"username": "ann", "token": SECRET}


def test_an_existing_directory_is_not_chmodded(tmp_path: Path) -> None:
    """--config /some/shared/dir/x.toml must not change the permissions of that directory."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    configfile.set_profile_values(shared / "x.toml", "default", server="https://x.example")
    assert mode(shared) == 0o755 and mode(shared / "x.toml") == 0o600


def test_the_temporary_file_is_private_before_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret is never in a file others could read, not even the temporary one before the rename."""
    seen: list[int] = []
    real_fdopen = os.fdopen

    def spy(fd: int, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    old = os.umask(0)
    monkeypatch.setattr(configfile.os, "fdopen", spy)
    try:
        configfile.set_profile_values(tmp_path / "config.toml", "default", token=SECRET)
    finally:
        os.umask(old)
    assert seen == [0o600]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the rename fails (disk full, ...), the old config is intact and nothing is left behind."""
    path = tmp_path / "config.toml"
    configfile.set_profile_values(path, "default", server="https://old.example")
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(configfile.os, "replace", broken_replace)
    with pytest.raises(OSError):
        configfile.set_profile_values(path, "default", server="https://new.example")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_setting_one_profile_keeps_other_profiles_and_default_profile(tmp_path: Path) -> None:
    """A write touches only the keys it sets; None removes a key."""
    path = tmp_path / "config.toml"
    configfile.set_profile_values(path, "prod", server="https://prod.example", token=SECRET)
    configfile.set_profile_values(path, "staging", server="https://staging.example")
    configfile.set_default_profile(path, "prod")
    configfile.set_profile_values(path, "staging", insecure="yes", server=None)
    assert configfile.default_profile(path) == "prod"
    assert configfile.list_profiles(path) == {
        "prod": {"server": "https://prod.example", "token": SECRET},
        "staging": {"insecure": True},
    }


def test_concurrent_writers_lose_no_profile(tmp_path: Path) -> None:
    """Writers racing on one file (serve storing its token while login runs) are serialised."""
    path = tmp_path / "config.toml"
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(5):
                configfile.set_profile_values(path, f"p{i}", server=f"https://h{i}.example", poll_interval=j + 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    profiles = configfile.list_profiles(path)
    assert sorted(profiles) == [f"p{i}" for i in range(8)]
    assert all(p["poll_interval"] == 5.0 for p in profiles.values())


_names = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)


@hsettings(max_examples=60, deadline=None)
@given(profile=_names, username=st.text(min_size=1, max_size=60), token=st.text(min_size=1, max_size=60))
def test_any_text_value_round_trips_through_the_toml_writer(tmp_path_factory: pytest.TempPathFactory, profile: str, username: str, token: str) -> None:
    """Quotes, backslashes, newlines, control characters and non-ASCII come back exactly as stored."""
    path = tmp_path_factory.mktemp("rt") / "config.toml"
    configfile.set_profile_values(path, profile, username=username, token=token)
    assert configfile.list_profiles(path) == {profile: {"username": username, "token": token}}


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("colour", "blue", "unknown config key"),
        ("insecure", "perhaps", "true or false"),
        ("poll_interval", "soon", "must be a number"),
        ("server", "ftp://x", "http:// or https://"),
    ],
)
def test_bad_keys_and_values_are_refused_before_writing(tmp_path: Path, key: str, value: str, message: str) -> None:
    """Nothing is written when a key is unknown or a value has the wrong type."""
    path = tmp_path / "config.toml"
    with pytest.raises(UsageError) as info:
        configfile.set_profile_values(path, "default", **{key: value})
    assert message in str(info.value)
    assert not path.exists()


def test_mask_never_shows_a_short_secret_and_only_the_tail_of_a_long_one() -> None:
    assert configfile.mask("token", "abc") == "****"
    assert configfile.mask("token", SECRET) == "****" + SECRET[-4:]
    assert configfile.mask("cookie", "hextrackr.sid=abcdefghijklmnopqrstuvwxyz") == "****wxyz"
    assert configfile.mask("server", "https://x.example") == "https://x.example"


# --------------------------------------------------------------------------- config set / get / list
def test_config_set_refuses_a_token_on_the_command_line(tmp_path: Path) -> None:
    """`config set token VALUE` would leave the token in shell history: exit 2, nothing stored."""
    res = hextrackr(tmp_path, "config", "set", "token", SECRET)
    assert res.returncode == 2
    assert "shell history" in res.stderr
    assert not config_path(tmp_path).exists()
    assert SECRET not in res.stdout + res.stderr


def test_config_set_token_from_stdin_then_list_and_get_show_it_masked(tmp_path: Path) -> None:
    """The token goes in through stdin, lands in a 0600 file, and comes out of list/get masked."""
    res = hextrackr(tmp_path, "config", "set", "token", "-", input=SECRET + "\n")
    assert res.returncode == 0, res.stderr
    assert hextrackr(tmp_path, "config", "set", "server", "https://prod.example/").returncode == 0
    path = config_path(tmp_path)
    assert mode(path) == 0o600
    assert tomllib.loads(path.read_text())["profiles"]["default"]["token"] == SECRET

    listed = hextrackr(tmp_path, "config", "list")
    got = hextrackr(tmp_path, "config", "get", "token")
    server = hextrackr(tmp_path, "config", "get", "server")
    for res in (listed, got):
        assert res.returncode == 0
        assert SECRET not in res.stdout + res.stderr
        assert "****" + SECRET[-4:] in res.stdout
    assert server.stdout.strip() == "https://prod.example"
    assert "[default]" in listed.stdout and "server = https://prod.example" in listed.stdout


def test_config_get_of_an_unset_key_exits_1_and_unknown_key_exits_2(tmp_path: Path) -> None:
    unset = hextrackr(tmp_path, "config", "get", "username")
    unknown = hextrackr(tmp_path, "config", "get", "colour")
    assert (unset.returncode, unset.stdout) == (1, "")
    assert "not set" in unset.stderr
    assert unknown.returncode == 2 and "unknown config key" in unknown.stderr


def test_config_profiles_follow_profile_flag_and_env(tmp_path: Path) -> None:
    """--profile / HEXTRACKR_PROFILE pick the profile that set/get act on; default_profile is settable."""
    assert hextrackr(tmp_path, "--profile", "prod", "config", "set", "server", "https://prod.example").returncode == 0
    assert hextrackr(tmp_path, "config", "set", "server", "https://dev.example", HEXTRACKR_PROFILE="dev").returncode == 0
    assert hextrackr(tmp_path, "config", "set", "default_profile", "prod").returncode == 0
    assert hextrackr(tmp_path, "config", "get", "server").stdout.strip() == "https://prod.example"
    assert hextrackr(tmp_path, "config", "get", "server", HEXTRACKR_PROFILE="dev").stdout.strip() == "https://dev.example"
    listed = hextrackr(tmp_path, "config", "list").stdout
    assert "[prod]  # selected, default" in listed and "[dev]" in listed


# --------------------------------------------------------------------------- login
def test_login_reads_the_token_from_stdin_checks_it_and_stores_it_0600(tmp_path: Path, live_server) -> None:  # type: ignore[no-untyped-def]
    """Against a real server: exit 0, profile holds URL and token, file 0600, the token is never printed."""
    res = hextrackr(tmp_path, "--server", live_server.url, "--profile", "prod", "login", input=live_server.token + "\n")
    assert res.returncode == 0, res.stderr
    assert live_server.token not in res.stdout + res.stderr
    path = config_path(tmp_path)
    assert mode(path) == 0o600
    data = tomllib.loads(path.read_text())
    assert data["profiles"]["prod"] == {"server": live_server.url, "token": live_server.token}
    assert data["default_profile"] == "prod"


def test_login_with_a_wrong_token_exits_4_and_stores_nothing(tmp_path: Path, live_server) -> None:  # type: ignore[no-untyped-def]
    res = hextrackr(tmp_path, "--server", live_server.url, "login", input="not-the-token\n")
    assert res.returncode == 4, res.stderr
    assert "refused the token" in res.stderr
    assert not config_path(tmp_path).exists()


def test_login_to_an_unreachable_server_exits_3(tmp_path: Path) -> None:
    """A closed port is reported as unreachable (exit 3), quickly, without a traceback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    res = hextrackr(tmp_path, "--server", f"http://127.0.0.1:{port}", "login", input="whatever\n")
    assert res.returncode == 3
    assert "cannot reach" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - start < 30
    assert not config_path(tmp_path).exists()


@pytest.fixture
def html_server() -> Iterator[str]:
    """A web server that is not HexTrackr: answers every GET with an HTML page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_login_to_a_server_that_answers_html_says_so_and_stores_nothing(tmp_path: Path, html_server: str) -> None:
    res = hextrackr(tmp_path, "--server", html_server, "login", input=SECRET + "\n")
    assert res.returncode == 1
    assert "instead of JSON" in res.stderr
    assert not config_path(tmp_path).exists()


def test_login_never_takes_the_token_from_a_flag(tmp_path: Path) -> None:
    res = hextrackr(tmp_path, "--server", "https://x.example", "--token", SECRET, "login")
    assert res.returncode == 2
    assert "--token" in res.stderr and SECRET not in res.stderr
    assert not config_path(tmp_path).exists()


def test_login_without_a_terminal_needs_the_server_from_flag_or_env(tmp_path: Path) -> None:
    res = hextrackr(tmp_path, "login", input=SECRET + "\n")
    assert res.returncode == 2
    assert "HEXTRACKR_SERVER" in res.stderr




def test_login_on_a_terminal_prompts_and_does_not_echo_the_token(tmp_path: Path, live_server) -> None:  # type: ignore[no-untyped-def]
    """On a TTY: a prompt for the URL, a hidden prompt for the token; the token never appears on screen."""
    status, screen = pty_session(
        [sys.executable, "-m", "hextrackr_cli", "login"],
        cli_env(tmp_path),
        [(b"Server URL", live_server.url.encode() + b"\r"), (b"Token", live_server.token.encode() + b"\r")],
    )
    assert status == 0, screen.decode(errors="replace")
    assert live_server.token.encode() not in screen
    assert b"Logged in to" in screen
    assert configfile.get_profile_value(config_path(tmp_path), "default", "token") == live_server.token


# --------------------------------------------------------------------------- login to HexTrackr 1.1.x
@pytest.fixture(scope="module")
def hx11_server():  # type: ignore[no-untyped-def]
    """The HexTrackr 1.1.12 double (tests/support/hx11_double.py) with one user."""
    from support.hx11_double import HX11Double

    with HX11Double(users={"ann": "correct horse"}, rate_limit=None) as double:
        yield double


def test_login_to_hextrackr_11_keeps_the_cookie_only_when_asked_and_never_the_password(tmp_path: Path, hx11_server) -> None:  # type: ignore[no-untyped-def]
    """1.1.x login with user + password from stdin: the profile gets server, dialect, user (and the cookie with
    --save-cookie), never the password; nothing secret is printed."""
    args = ("--server", hx11_server.url, "--dialect", "hextrackr-1.1", "--username", "ann")
    plain = hextrackr(tmp_path, *args, "--profile", "old", "login", input="correct horse\n")
    assert plain.returncode == 0, plain.stderr
    kept = hextrackr(tmp_path, *args, "--profile", "hx", "login", "--save-cookie", input="correct horse\n")
    assert kept.returncode == 0, kept.stderr
    profiles = configfile.list_profiles(config_path(tmp_path))
    assert profiles["old"] == {"server": hx11_server.url, "dialect": "hextrackr-1.1", "username": "ann"}
    cookie = profiles["hx"].pop("cookie")
    assert profiles["hx"] == profiles["old"] and len(cookie) > 8
    text = config_path(tmp_path).read_text() + plain.stderr + kept.stderr + kept.stdout
    assert "correct horse" not in text
    assert cookie not in kept.stderr + kept.stdout and "****" + cookie[-4:] in kept.stderr


def test_login_to_hextrackr_11_with_a_wrong_password_exits_4(tmp_path: Path, hx11_server) -> None:  # type: ignore[no-untyped-def]
    res = hextrackr(tmp_path, "--server", hx11_server.url, "--dialect", "hextrackr-1.1", "--username", "ann", "login", input="wrong\n")
    assert res.returncode == 4, res.stderr
    assert not config_path(tmp_path).exists()


def test_token_login_to_a_hextrackr_11_server_points_to_the_user_login(tmp_path: Path, hx11_server) -> None:  # type: ignore[no-untyped-def]
    """A token login against 1.1.x (which has no tokens) says how to log in there instead of 'bad token'."""
    res = hextrackr(tmp_path, "--server", hx11_server.url, "login", input=SECRET + "\n")
    assert res.returncode == 4
    assert "HexTrackr 1.1.x" in res.stderr and "--dialect hextrackr-1.1" in res.stderr


# --------------------------------------------------------------------------- proxies from the environment
class _Proxy:
    """A minimal HTTP proxy on 127.0.0.1: absolute-URI requests are forwarded, CONNECT is tunnelled.
    It records (method, target) of every request it relays."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        socks = [a, b]
        try:
            while True:
                ready, _, _ = select.select(socks, [], [], 30)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return

    def _handle(self, conn: socket.socket) -> None:
        from urllib.parse import urlsplit

        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            self.log.append((method, target))
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                with socket.create_connection((host, int(port)), timeout=10) as up:
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if rest:
                        up.sendall(rest)
                    self._pipe(conn, up)
                return
            url = urlsplit(target)
            headers = [h for h in lines[1:] if not h.lower().startswith(("connection:", "proxy-connection:", "keep-alive:"))]
            path = url.path + (f"?{url.query}" if url.query else "")
            request = f"{method} {path} {version}\r\n" + "\r\n".join(headers + ["Connection: close"]) + "\r\n\r\n"
            with socket.create_connection((url.hostname, url.port or 80), timeout=10) as up:
                up.sendall(request.encode("latin-1") + rest)
                self._pipe(conn, up)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._accept.join(5)
        for t in self._threads:
            t.join(5)


@pytest.fixture
def http_proxy() -> Iterator[_Proxy]:
    proxy = _Proxy()
    try:
        yield proxy
    finally:
        proxy.close()


def _proxy_env(tmp_path: Path, token: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env(tmp_path).items() if "proxy" not in k.lower()}
    env.update(HEXTRACKR_TOKEN=token, **extra)
    return env


def _small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "generic_vulns_2025-11-20.csv"
    rows = ["hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,first_seen,last_seen"]
    rows += [f"host{i},10.0.0.{i},CVE-2024-{1000 + i},High,{5000 + i},P{i},d,f,ACTIVE,2025-11-01,2025-11-20" for i in range(30)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_http_proxy_from_the_environment_carries_http_and_socket_traffic(tmp_path: Path, live_server, http_proxy: _Proxy, transport: str) -> None:  # type: ignore[no-untyped-def]
    """With http_proxy set, the upload and the Socket.io websocket (via CONNECT) or the HTTP progress polling all
    go through the proxy, and the import completes."""
    env = _proxy_env(tmp_path, live_server.token, http_proxy=http_proxy.url)
    res = subprocess.run(
        [sys.executable, "-m", "hextrackr_cli", "--server", live_server.url, "--output", "json", "import",
         "--transport", transport, str(_small_csv(tmp_path))],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    host = live_server.url.split("://", 1)[1]
    targets = [(m, t) for m, t in http_proxy.log]
    assert ("POST", f"{live_server.url}/api/vulnerabilities/import") in targets, targets
    if transport == "websocket":
        assert ("CONNECT", host) in targets, targets
    else:
        assert any(t.startswith(f"{live_server.url}/api/import/progress/") for _, t in targets), targets


def test_no_proxy_sends_everything_direct(tmp_path: Path, live_server, http_proxy: _Proxy) -> None:  # type: ignore[no-untyped-def]
    """NO_PROXY naming the server's host keeps both requests and the socket away from the proxy."""
    env = _proxy_env(tmp_path, live_server.token, http_proxy=http_proxy.url, HTTP_PROXY=http_proxy.url, NO_PROXY="127.0.0.1")
    res = subprocess.run(
        [sys.executable, "-m", "hextrackr_cli", "--server", live_server.url, "--output", "json", "import", str(_small_csv(tmp_path))],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert http_proxy.log == []


def test_http_proxy_carries_engineio_long_polling(tmp_path: Path, server_factory, http_proxy: _Proxy) -> None:  # type: ignore[no-untyped-def]
    """Against a server that offers only engine.io polling, the Socket.io polling requests use the proxy too."""
    srv = server_factory(transports=("polling",))
    env = _proxy_env(tmp_path, srv.token, http_proxy=http_proxy.url)
    res = subprocess.run(
        [sys.executable, "-m", "hextrackr_cli", "--server", srv.url, "--output", "json", "import", str(_small_csv(tmp_path))],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert any(t.startswith(f"{srv.url}/socket.io/") for _, t in http_proxy.log), http_proxy.log
