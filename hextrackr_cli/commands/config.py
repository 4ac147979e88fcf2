"""``hextrackr login``, ``hextrackr config set|get|list`` and ``hextrackr completion SHELL``.

Secrets (token, cookie, password) are never taken from a flag value and never printed in full.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

import click

from hextrackr_cli import configfile
from hextrackr_cli.environment import Environment
from hextrackr_cli.errors import (
    AuthError,
    ExitStatus,
    ServerError,
    ServerUnreachable,
    UsageError,
)
from hextrackr_cli.settings import (
    LOCAL,
    SECRET_KEYS,
    _pick,
    _to_bool,
    checked_profile,
    config_location,
)

LOGIN_TIMEOUT = 15.0  # seconds for the one verification request
SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_HEXTRACKR_COMPLETE"


def _say(message: str, env: Environment | None = None) -> None:
    (env or Environment()).say(message)


# --------------------------------------------------------------------------- login
def _read_secret(label: str, stdin_isatty: bool, env: Environment | None = None) -> str:
    """A hidden prompt on a terminal, else the first line of stdin."""
    if stdin_isatty:
        value = click.prompt(label, hide_input=True, err=True)
    else:
        value = (env.stdin if env is not None else sys.stdin).readline()
    value = (value or "").strip()
    if not value:
        where = "at the prompt" if stdin_isatty else "on stdin"
        raise UsageError(f"no {label.lower()} given {where}", hint='e.g. printf %s "$TOKEN" | hextrackr login --server URL')
    return value


def _tls_options(flags: Mapping[str, Any], env: Mapping[str, str], profile: Mapping[str, Any],
                 environment: Environment | None = None) -> bool | str:
    sources: dict[str, str] = {}
    ca_bundle = _pick("ca_bundle", flags.get("ca_bundle"), env, profile, None, sources)
    insecure = _to_bool(_pick("insecure", flags.get("insecure") or None, env, profile, False, sources), "insecure")
    if insecure:
        _say("hextrackr: warning: --insecure: TLS certificates are not verified", environment)
        return False
    return str(ca_bundle) if ca_bundle else True


def check_token(server: str, token: str, verify: bool | str, timeout: float = LOGIN_TIMEOUT) -> None:
    """One request (``GET /api/imports?limit=1``) that proves the server answers and accepts ``token``."""
    import requests

    url = server.rstrip("/") + "/api/imports"
    try:
        if verify is False:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # we warned once already
        resp = requests.get(
            url,
            params={"limit": 1},
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            verify=verify,
            allow_redirects=False,
        )
    except requests.exceptions.SSLError as exc:
        raise ServerUnreachable(
            f"TLS failed talking to {server}: {_reason(exc)}", hint="pass --ca-bundle PATH for a private CA"
        ) from None
    except requests.exceptions.Timeout:
        raise ServerUnreachable(f"{server} did not answer within {timeout:g}s") from None
    except requests.exceptions.RequestException as exc:
        raise ServerUnreachable(f"cannot reach {server}: {_reason(exc)}", hint="check the URL and that the server runs") from None
    if resp.status_code in (401, 403):
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("authenticated") is False:  # how HexTrackr 1.1.x says 401
            raise AuthError(
                f"{server} looks like a HexTrackr 1.1.x server, which has no API tokens",
                hint="log in with a user: hextrackr --dialect hextrackr-1.1 --username USER login",
            )
        raise AuthError(f"{server} refused the token ({resp.status_code})", hint="check the token and try `hextrackr login` again")
    content_type = resp.headers.get("Content-Type", "")
    if resp.status_code != 200:
        raise ServerError(f"{server} answered {resp.status_code} to GET /api/imports", hint="is this a HexTrackr server?")
    if "json" not in content_type:
        raise ServerError(
            f"{server} answered {content_type or 'something'} instead of JSON", hint="is this the HexTrackr server URL?"
        )


def _reason(exc: BaseException) -> str:
    """A short reason from a requests/urllib3 exception (their messages nest reprs several levels deep)."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "No route to host",
        "Network is unreachable",
        "certificate verify failed",
        "timed out",
    ):
        if marker in text:
            return marker.lower()
    return (text.strip().splitlines() or [type(exc).__name__])[0][:200]


def _login_hx11(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    existing: Mapping[str, Any],
    path: Path,
    profile: str,
    server: str,
    save_cookie: bool,
    stdin_isatty: bool,
    environment: Environment | None = None,
) -> str:
    """HexTrackr 1.1.x: log in with user name and password (never stored); keep the cookie if asked."""
    from hextrackr_cli.client.hx11.api import Hx11Api

    username = flags.get("username") or env.get("HEXTRACKR_USERNAME") or existing.get("username")
    if not username:
        if not stdin_isatty:
            raise UsageError("no user name given", hint="pass --username USER or set HEXTRACKR_USERNAME")
        username = click.prompt("User name", err=True)
    if flags.get("password_stdin") or (not stdin_isatty and not env.get("HEXTRACKR_PASSWORD")):
        password = _read_secret("Password", False, environment)
    elif env.get("HEXTRACKR_PASSWORD"):
        password = env["HEXTRACKR_PASSWORD"]
    else:
        password = _read_secret("Password", True)
    verify = _tls_options(flags, env, existing, environment)
    with Hx11Api(server, verify=verify) as api:
        api.keep_session = save_cookie  # a session nobody keeps is logged out again
        api.login(str(username), password)
        cookie = api.cookie
    values: dict[str, Any] = {"server": server, "dialect": "hextrackr-1.1", "username": str(username), "token": None}
    if save_cookie:
        values["cookie"] = cookie
    configfile.set_profile_values(path, profile, **values)
    kept = f"session cookie {configfile.mask('cookie', cookie)} kept" if save_cookie else "password and cookie not stored"
    return f"HexTrackr 1.1.x as {username}; {kept}"


def run_login(global_flags: Mapping[str, Any], save_cookie: bool = False, env: Environment | None = None) -> int:
    """Ask for the server URL and token, check them with one request, store them in the profile (0600)."""
    environment = env or Environment()
    variables = environment.environ
    if global_flags.get("token"):
        raise UsageError(
            "`hextrackr login` does not take the token from --token (it would end up in shell history)",
            hint='type it at the prompt, or pipe it: printf %s "$TOKEN" | hextrackr login --server URL',
        )
    path, profile = config_location(global_flags, variables)
    configfile.check_profile_name(profile)
    existing = checked_profile(path, profile, configfile.list_profiles(path).get(profile, {}))
    stdin_isatty = bool(environment.stdin_isatty)

    dialect = _pick("dialect", global_flags.get("dialect"), variables, existing, "auto", {})
    hx11 = dialect == "hextrackr-1.1" or save_cookie
    server = global_flags.get("server") or variables.get("HEXTRACKR_SERVER") or None
    if not server:
        if not stdin_isatty:
            raise UsageError("no server URL given", hint="pass --server URL or set HEXTRACKR_SERVER (the token is read from stdin)")
        server = click.prompt("Server URL", default=existing.get("server") or None, err=True)
    server = configfile.coerce_value("server", server)
    if server == LOCAL:
        raise UsageError("the embedded server needs no login", hint="`hextrackr --server local import FILE` starts it and finds its token")

    had_file = Path(path).exists()
    if hx11:
        what = _login_hx11(global_flags, variables, existing, path, profile, server, save_cookie, stdin_isatty, environment)
    else:
        token = _read_secret("Token", stdin_isatty, environment)
        verify = _tls_options(global_flags, variables, existing, environment)
        check_token(server, token, verify)
        configfile.set_profile_values(path, profile, server=server, token=token)
        what = f"token {configfile.mask('token', token)}"
    note = ""
    if configfile.default_profile(path) is None and profile != "default":
        configfile.set_default_profile(path, profile)
        note = f"; '{profile}' is now the default profile"
    environment.say(
        f"Logged in to {server} ({what}); saved to profile '{profile}' in {path}"
        f" (mode 0600{', new file' if not had_file else ''}){note}"
    )
    return ExitStatus.OK


# --------------------------------------------------------------------------- config set / get / list
def run_config_set(global_flags: Mapping[str, Any], key: str, value: str, env: Environment | None = None) -> int:
    """Set KEY to VALUE in the selected profile; ``default_profile`` is the file's top-level key."""
    env = env or Environment()
    path, profile = config_location(global_flags, env.environ)
    if key == "default_profile":
        configfile.set_default_profile(path, value or None)
        env.say(f"default_profile = {value} in {path}")
        return ExitStatus.OK
    if key in SECRET_KEYS:
        if value != "-":
            raise UsageError(
                f"a {key} is not taken from the command line (it would end up in shell history)",
                hint=f"run `hextrackr config set {key} -` and type it, or pipe it on stdin",
            )
        value = _read_secret(key.capitalize(), bool(env.stdin_isatty), env)
    configfile.set_profile_values(path, profile, **{key: value})
    shown = configfile.mask(key, configfile.get_profile_value(path, profile, key))
    env.say(f"[{profile}] {key} = {shown} in {path}")
    return ExitStatus.OK


def run_config_unset(global_flags: Mapping[str, Any], key: str) -> int:
    path, profile = config_location(global_flags, os.environ)
    configfile.set_profile_values(path, profile, **{key: None})
    return ExitStatus.OK


def run_config_get(global_flags: Mapping[str, Any], key: str, env: Environment | None = None) -> int:
    """Print KEY of the selected profile on stdout (secrets masked); exit 1 when it is not set."""
    env = env or Environment()
    path, profile = config_location(global_flags, env.environ)
    if key == "default_profile":
        value: Any = configfile.default_profile(path)
    else:
        configfile.coerce_value(key, None)  # unknown key -> usage error
        value = configfile.get_profile_value(path, profile, key)
    if value is None:
        env.say(f"hextrackr: {key} is not set in profile '{profile}' ({path})")
        return ExitStatus.IMPORT_FAILED
    env.print(configfile.mask(key, value))
    return ExitStatus.OK


def run_config_list(global_flags: Mapping[str, Any], env: Environment | None = None) -> int:
    """Every profile and its keys on stdout, secrets masked."""
    env = env or Environment()
    path, selected = config_location(global_flags, env.environ)
    profiles = configfile.list_profiles(path)
    default = configfile.default_profile(path)
    env.print(f"# {path}" + ("" if Path(path).exists() else " (does not exist yet)"))
    if default:
        env.print(f"default_profile = {default}")
    for name, table in profiles.items():
        marks = [m for m, on in (("selected", name == selected), ("default", name == default)) if on]
        env.print("")
        env.print(f"[{name}]" + (f"  # {', '.join(marks)}" if marks else ""))
        for k, v in table.items():
            env.print(f"{k} = {configfile.mask(k, v)}")
    return ExitStatus.OK


# --------------------------------------------------------------------------- completion
def completion_script(shell: str, root: click.Command) -> str:
    """The completion script click generates for the ``hextrackr`` command tree ``root`` in ``shell`` (bash, zsh
    or fish); the tree is given by cli.py, which imports the commands (never the other way round)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None or shell not in SHELLS:
        raise UsageError(f"no completion for shell {shell!r}", hint="choose bash, zsh or fish")
    return cls(root, {}, "hextrackr", COMPLETE_VAR).source()
