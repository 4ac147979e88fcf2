"""Settings resolution: flag > environment > config profile > default, for every setting; output and colour."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hextrackr_cli import configfile
from hextrackr_cli.errors import UsageError
from hextrackr_cli.settings import default_config_path, resolve

# setting -> (flag key, flag value, env name, env value, profile value, default value)
# Every layer gets a different value so the winner is unambiguous; `sources` confirms it.
MATRIX = {
    "server": ("server", "https://flag.example", "HEXTRACKR_SERVER", "https://env.example", "https://profile.example", None),
    "token": ("token", "flag-token", "HEXTRACKR_TOKEN", "env-token", "profile-token", None),
    "output": ("output", "json", "HEXTRACKR_OUTPUT", "plain", "rich", "rich"),  # default auto -> rich on a TTY
    "dialect": ("dialect", "seed", "HEXTRACKR_DIALECT", "hextrackr-1.1", "seed", "auto"),
    "username": ("username", "flag-user", "HEXTRACKR_USERNAME", "env-user", "profile-user", None),
    "ca_bundle": ("ca_bundle", "/flag/ca.pem", "HEXTRACKR_CA_BUNDLE", "/env/ca.pem", "/profile/ca.pem", None),
    "insecure": ("insecure", True, "HEXTRACKR_INSECURE", "1", True, False),
    "poll_interval": ("poll_interval", 0.25, "HEXTRACKR_POLL_INTERVAL", "0.5", 2.0, 1.0),
    "log_interval": ("log_interval", 3.0, "HEXTRACKR_LOG_INTERVAL", "4", 5.0, 10.0),
}
EXPECTED_FROM_ENV = {"insecure": True, "poll_interval": 0.5, "log_interval": 4.0}

LAYERS = list(itertools.product([False, True], repeat=3))  # (flag, env, profile) present?


def _layer_id(combo: tuple[bool, bool, bool]) -> str:
    names = [n for n, on in zip(("flag", "env", "profile"), combo) if on]
    return "+".join(names) or "nothing"


@pytest.mark.parametrize("combo", LAYERS, ids=[_layer_id(c) for c in LAYERS])
@pytest.mark.parametrize("setting", sorted(MATRIX))
def test_precedence_flag_over_env_over_profile_over_default(tmp_path: Path, setting: str, combo: tuple[bool, bool, bool]) -> None:
    """The highest layer that has a value wins, and `sources` names it."""
    flag_key, flag_value, env_name, env_value, profile_value, default = MATRIX[setting]
    use_flag, use_env, use_profile = combo
    config = tmp_path / "config.toml"
    if use_profile:
        configfile.set_profile_values(config, "default", **{setting: profile_value})
    flags = {"config": str(config), flag_key: flag_value if use_flag else None}
    env = {env_name: env_value} if use_env else {}
    settings = resolve(flags, env, stderr_isatty=True, stdin_isatty=True)

    if use_flag:
        expected, source = flag_value, "flag"
    elif use_env:
        expected, source = EXPECTED_FROM_ENV.get(setting, env_value), "env"
    elif use_profile:
        expected, source = profile_value, "profile"
    else:
        expected, source = default, "default"
    assert getattr(settings, setting) == expected
    assert settings.source_of(setting) == source


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    """HEXTRACKR_SERVER="" (a blank CI variable) falls through to the profile instead of blanking it."""
    config = tmp_path / "config.toml"
    configfile.set_profile_values(config, "default", server="https://profile.example")
    settings = resolve({"config": str(config)}, {"HEXTRACKR_SERVER": ""}, stderr_isatty=False, stdin_isatty=False)
    assert settings.server == "https://profile.example"


def test_profile_selected_by_flag_then_env_then_default_profile(tmp_path: Path) -> None:
    """--profile beats HEXTRACKR_PROFILE, which beats default_profile in the file, which beats 'default'."""
    config = tmp_path / "config.toml"
    for name in ("default", "a", "b", "c"):
        configfile.set_profile_values(config, name, server=f"https://{name}.example")
    configfile.set_default_profile(config, "c")

    def server(flags: dict, env: dict) -> str | None:
        return resolve({"config": str(config), **flags}, env, stderr_isatty=False, stdin_isatty=False).server

    assert server({"profile": "a"}, {"HEXTRACKR_PROFILE": "b"}) == "https://a.example"
    assert server({}, {"HEXTRACKR_PROFILE": "b"}) == "https://b.example"
    assert server({}, {}) == "https://c.example"
    configfile.set_default_profile(config, None)
    assert server({}, {}) == "https://default.example"


def test_unknown_profile_flag_is_a_usage_error(tmp_path: Path) -> None:
    """Asking for a profile the file does not have says so and points to `config list`."""
    config = tmp_path / "config.toml"
    configfile.set_profile_values(config, "prod", server="https://prod.example")
    with pytest.raises(UsageError) as info:
        resolve({"config": str(config), "profile": "staging"}, {}, stderr_isatty=False, stdin_isatty=False)
    assert "staging" in str(info.value) and "config list" in str(info.value)


def test_config_path_flag_over_env_over_xdg(tmp_path: Path) -> None:
    """--config beats HEXTRACKR_CONFIG, which beats $XDG_CONFIG_HOME/hextrackr/config.toml."""
    xdg = tmp_path / "xdg"
    env_file, flag_file = tmp_path / "env.toml", tmp_path / "flag.toml"
    for path, name in ((default_config_path({"XDG_CONFIG_HOME": str(xdg)}), "xdg"), (env_file, "env"), (flag_file, "flag")):
        configfile.set_profile_values(path, "default", server=f"https://{name}.example")
    env = {"XDG_CONFIG_HOME": str(xdg)}
    kw = {"stderr_isatty": False, "stdin_isatty": False}
    assert resolve({}, env, **kw).server == "https://xdg.example"
    assert resolve({}, {**env, "HEXTRACKR_CONFIG": str(env_file)}, **kw).server == "https://env.example"
    assert resolve({"config": str(flag_file)}, {**env, "HEXTRACKR_CONFIG": str(env_file)}, **kw).server == "https://flag.example"
    assert resolve({}, env, **kw).config_path == xdg / "hextrackr" / "config.toml"


# --------------------------------------------------------------------------- output mode and colour
@pytest.mark.parametrize(
    "stderr_tty, env, flag, expected",
    [
        (True, {"TERM": "xterm-256color"}, None, "rich"),
        (False, {"TERM": "xterm-256color"}, None, "plain"),
        (True, {"TERM": "dumb"}, None, "plain"),
        (False, {"FORCE_COLOR": "1", "TERM": "xterm"}, None, "plain"),
        (False, {}, "rich", "rich"),
        (True, {}, "json", "json"),
        (True, {"HEXTRACKR_OUTPUT": "plain"}, None, "plain"),
        (True, {}, "auto", "rich"),
    ],
    ids=["tty", "not-a-tty", "term-dumb", "force-color-alone-is-not-a-tty", "flag-rich-without-tty", "flag-json", "env-plain", "explicit-auto"],
)
def test_output_auto_resolution(tmp_path: Path, stderr_tty: bool, env: dict, flag: str | None, expected: str) -> None:
    """auto means rich on a terminal, plain otherwise or with TERM=dumb; FORCE_COLOR alone never picks rich."""
    settings = resolve({"config": str(tmp_path / "none.toml"), "output": flag}, env, stderr_isatty=stderr_tty, stdin_isatty=stderr_tty)
    assert settings.output == expected


@pytest.mark.parametrize(
    "env, flags, color",
    [
        ({"TERM": "xterm"}, {}, True),
        ({"TERM": "xterm", "NO_COLOR": "1"}, {}, False),
        ({"TERM": "xterm", "NO_COLOR": ""}, {}, False),  # no-color.org: present at all means no colour
        ({"TERM": "dumb"}, {}, False),
        ({"TERM": "xterm"}, {"no_color": True}, False),
        ({"TERM": "xterm"}, {"output": "plain"}, False),
    ],
    ids=["terminal", "NO_COLOR", "NO_COLOR-empty", "TERM-dumb", "no-color-flag", "plain-output"],
)
def test_colour_off_for_no_color_dumb_terminal_flag_and_plain(tmp_path: Path, env: dict, flags: dict, color: bool) -> None:
    """NO_COLOR, TERM=dumb, --no-color and plain output all turn colour off; a rich terminal keeps it."""
    settings = resolve({"config": str(tmp_path / "none.toml"), **flags}, env, stderr_isatty=True, stdin_isatty=True)
    assert settings.color is color


def test_no_color_keeps_the_rich_view_on_a_terminal(tmp_path: Path) -> None:
    """NO_COLOR removes colour, not the live view."""
    settings = resolve({"config": str(tmp_path / "none.toml")}, {"NO_COLOR": "1", "TERM": "xterm"}, stderr_isatty=True, stdin_isatty=True)
    assert (settings.output, settings.color) == ("rich", False)


# --------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    "flags, env, message",
    [
        ({"server": "hextrackr.example.org"}, {}, "http:// or https://"),
        ({}, {"HEXTRACKR_OUTPUT": "fancy"}, "output must be one of"),
        ({}, {"HEXTRACKR_DIALECT": "v2"}, "dialect must be one of"),
        ({}, {"HEXTRACKR_POLL_INTERVAL": "fast"}, "poll interval must be a number"),
        ({}, {"HEXTRACKR_POLL_INTERVAL": "0"}, "poll interval must be at least"),
        ({}, {"HEXTRACKR_INSECURE": "perhaps"}, "insecure must be true or false"),
    ],
    ids=["server-without-scheme", "output", "dialect", "poll-interval-text", "poll-interval-zero", "insecure"],
)
def test_bad_values_are_usage_errors_naming_the_setting(tmp_path: Path, flags: dict, env: dict, message: str) -> None:
    """A bad setting from any layer is refused with a message naming it (exit 2 at the CLI boundary)."""
    with pytest.raises(UsageError) as info:
        resolve({"config": str(tmp_path / "none.toml"), **flags}, env, stderr_isatty=False, stdin_isatty=False)
    assert message in str(info.value)


def test_broken_config_file_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    """A hand-edited config that is not TOML names the file instead of crashing."""
    config = tmp_path / "config.toml"
    config.write_text("[profiles.default\nserver = 'x'\n")
    with pytest.raises(UsageError) as info:
        resolve({"config": str(config)}, {}, stderr_isatty=False, stdin_isatty=False)
    assert str(config) in str(info.value) and "not valid TOML" in str(info.value)


def test_insecure_makes_verify_false_and_ca_bundle_is_used_otherwise(tmp_path: Path) -> None:
    """`verify` for requests and the socket client: False with --insecure, the bundle path, else True."""
    base = {"config": str(tmp_path / "none.toml")}
    kw = {"stderr_isatty": False, "stdin_isatty": False}
    assert resolve(base, {}, **kw).verify is True
    assert resolve({**base, "ca_bundle": "/etc/ca.pem"}, {}, **kw).verify == "/etc/ca.pem"
    assert resolve({**base, "ca_bundle": "/etc/ca.pem", "insecure": True}, {}, **kw).verify is False


def test_insecure_from_flag_or_env_warns_once_on_stderr(tmp_path: Path) -> None:
    """--insecure / HEXTRACKR_INSECURE=1 says once, on stderr, that certificates are not checked."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    for extra_args, extra_env in ((["--insecure"], {}), ([], {"HEXTRACKR_INSECURE": "1"}), ([], {})):
        res = subprocess.run(
            [sys.executable, "-m", "hextrackr_cli", *extra_args, "--server", f"https://127.0.0.1:{port}", "imports"],
            capture_output=True, text=True, timeout=60, env={**env, **extra_env}, stdin=subprocess.DEVNULL,
        )
        assert res.returncode == 3
        expected = 1 if (extra_args or extra_env) else 0
        assert res.stderr.count("TLS certificates are not verified") == expected, res.stderr
        assert res.stdout == ""
