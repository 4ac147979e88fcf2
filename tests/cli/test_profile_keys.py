"""One table of profile keys: `config set` refuses what the reader would refuse, and a bad value found in the
file names the file, the profile and the key, for every command that reads settings."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from test_config_cmd import config_path, hextrackr

from hextrackr_cli import configfile, profile_keys
from hextrackr_cli.errors import UsageError
from hextrackr_cli.settings import resolve


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("output", "fancy", "auto, rich, plain, json"),
        ("poll_interval", "0.01", "at least 0.05"),
        ("dialect", "v2", "auto, seed, hextrackr-1.1"),
        ("log_interval", "-1", "at least 0"),
        ("insecure", "perhaps", "true or false"),
    ],
)
def test_config_set_refuses_a_value_the_reader_would_refuse_and_leaves_the_file_alone(
    tmp_path: Path, key: str, value: str, allowed: str
) -> None:
    """exit 2, one line naming the key and the allowed values; the file is byte-for-byte what it was."""
    assert hextrackr(tmp_path, "config", "set", "server", "https://prod.example").returncode == 0
    path = config_path(tmp_path)
    before = path.read_bytes()
    res = hextrackr(tmp_path, "config", "set", "--", key, value)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and allowed in lines[0] and repr(value) in lines[0], res.stderr
    assert path.read_bytes() == before
    # and the commands that read the profile still work
    assert hextrackr(tmp_path, "config", "get", "server").stdout.strip() == "https://prod.example"


def test_config_set_accepts_the_smallest_allowed_values_and_the_reader_uses_them(tmp_path: Path) -> None:
    """What `config set` writes, `resolve` reads back with the same type (no drift between writer and reader)."""
    for key, value in (("poll_interval", "0.05"), ("output", "json"), ("insecure", "yes"), ("log_interval", "0")):
        res = hextrackr(tmp_path, "config", "set", key, value)
        assert res.returncode == 0, res.stderr
    s = resolve({"config": str(config_path(tmp_path))}, {}, stderr_isatty=False, stdin_isatty=False)
    assert (s.poll_interval, s.output, s.insecure, s.log_interval) == (0.05, "json", True, 0.0)


def _hand_edit(tmp_path: Path, line: str) -> Path:
    path = config_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'default_profile = "prod"\n\n[profiles.prod]\nserver = "http://127.0.0.1:9"\n{line}\n')
    return path


SID = str(uuid.UUID(int=1))


@pytest.mark.parametrize(
    "line, key",
    [('output = "fancy"', "output"), ("poll_interval = 0.01", "poll_interval"), ('insecure = "perhaps"', "insecure"),
     ('server = "ftp://x"', "server"), ("username = 5", "username")],
)
def test_a_hand_edited_bad_value_makes_every_command_name_file_profile_and_key(tmp_path: Path, line: str, key: str) -> None:
    """Each settings-reading command exits 2 with one line: the file, the profile and the key (no traceback)."""
    if line.startswith("server"):
        path = config_path(tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'default_profile = "prod"\n\n[profiles.prod]\n{line}\n')
    else:
        path = _hand_edit(tmp_path, line)
    scan = tmp_path / "tenable_vulns_2025-11-20.csv"
    scan.write_text("hostname,ip_address,plugin_id,severity\nh1,10.0.0.1,1,high\n")
    for args in (["imports"], ["status", SID], ["watch", SID], ["cancel", SID], ["import", str(scan)]):
        res = hextrackr(tmp_path, *args)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, (args, res.stderr)
        assert str(path) in lines[0] and "profile 'prod'" in lines[0] and f"{key} must be" in lines[0], lines[0]
        assert "Traceback" not in res.stderr


def test_the_reader_checks_the_whole_profile_even_a_key_a_flag_overrides(tmp_path: Path) -> None:
    """A bad file value is reported even when --output would win: the file is wrong whatever the flags."""
    path = _hand_edit(tmp_path, 'output = "fancy"')
    with pytest.raises(UsageError) as info:
        resolve({"config": str(path), "output": "plain"}, {}, stderr_isatty=False, stdin_isatty=False)
    assert f"config file {path}, profile 'prod': output must be one of auto, rich, plain, json" in str(info.value)


def test_config_set_fixes_a_hand_edited_bad_value(tmp_path: Path) -> None:
    """The fix the error names works: `config set` still runs on a file holding a bad value."""
    path = _hand_edit(tmp_path, 'output = "fancy"')
    assert "config set output VALUE" in hextrackr(tmp_path, "imports").stderr
    assert hextrackr(tmp_path, "config", "set", "output", "plain").returncode == 0
    resolve({"config": str(path)}, {}, stderr_isatty=False, stdin_isatty=False)  # no longer raises


def test_environment_values_go_through_the_same_checks_naming_the_variable(tmp_path: Path) -> None:
    res = hextrackr(tmp_path, "--server", "http://127.0.0.1:9", "imports", HEXTRACKR_OUTPUT="fancy")
    assert res.returncode == 2
    assert "HEXTRACKR_OUTPUT" in res.stderr and "auto, rich, plain, json" in res.stderr


def test_every_key_of_the_table_is_a_setting_the_man_page_lists() -> None:
    """The man page's CONFIG FILE section comes from the table: each key with its allowed values."""
    man = (Path(__file__).resolve().parent.parent.parent / "man" / "hextrackr.1").read_text()
    for spec in profile_keys.KEYS.values():
        assert f"\\fB{spec.name}\\fR" in man, spec.name
    assert "auto, rich, plain, json" in man


def test_secret_keys_are_masked_and_refused_on_the_command_line() -> None:
    assert {"token", "cookie"} <= profile_keys.SECRET_KEYS
    for name in ("token", "cookie"):
        assert configfile.mask(name, "x" * 30) == "****xxxx"
