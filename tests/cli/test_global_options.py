"""Global options anywhere: before or after the command name, same precedence, same help."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_cli
from support.cli_suite import cli_env
from support.data import gen_csv
from support.fixtures import TOKEN, server  # noqa: F401  (server is a fixture)

from hextrackr_cli import cli as cli_module
from hextrackr_cli.globalopts import GLOBAL_OPTIONS


def _summary(stdout: bytes) -> dict[str, Any]:
    lines = [json.loads(x) for x in stdout.decode().splitlines() if x.strip()]
    return [x for x in lines if x.get("event") == "summary"][-1]


def test_import_with_output_and_server_after_the_file_works_like_before_the_command(tmp_path: Path, server: Any) -> None:
    """`import FILE --output json --server URL` imports and prints the same NDJSON summary as the flags first."""
    scan = gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 40)
    env = cli_env(tmp_path, None)  # no HEXTRACKR_SERVER: only the flag names the server
    after = run_cli(["import", str(scan), "--output", "json", "--server", server.url], env)
    before = run_cli(["--output", "json", "--server", server.url, "import", str(scan)], env)
    for res in (after, before):
        assert res.returncode == 0, res.stderr.decode()
    a, b = _summary(after.stdout), _summary(before.stdout)
    assert a["outcome"] == b["outcome"] == "completed"
    assert a["rows"] == b["rows"] == 40
    assert a["sessionId"] != b["sessionId"]


def test_status_and_imports_take_global_options_after_their_arguments(tmp_path: Path, server: Any) -> None:
    env = cli_env(tmp_path, None, token=None)
    res = run_cli(["imports", "--json", "--server", server.url, "--token", TOKEN], env)
    assert res.returncode == 0, res.stderr.decode()
    assert "imports" in json.loads(res.stdout)
    refused = run_cli(["imports", "--server", server.url, "--token", "wrong-token"], env)
    assert refused.returncode == 4  # the --token after the command is the one sent


def test_without_the_flag_the_command_still_says_no_server(tmp_path: Path) -> None:
    """The flag after the command is what made the import above work (not a server found some other way)."""
    scan = gen_csv(tmp_path / "s.csv", 5)
    res = run_cli(["import", str(scan), "--output", "json"], cli_env(tmp_path, None))
    assert res.returncode == 2 and b"no server configured" in res.stderr


# ----------------------------------------------------------------- precedence, in-process (the settings a command gets)
@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Run the click tree in-process; `imports` hands back the Settings it resolved instead of connecting."""
    got: dict[str, Any] = {}
    import hextrackr_cli.commands.history as history

    def fake_run_imports(settings: Any, **opts: Any) -> int:
        got["settings"] = settings
        return 0

    monkeypatch.setattr(history, "run_imports", fake_run_imports)
    for k in list(__import__("os").environ):
        if k.startswith("HEXTRACKR_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return got


def _settings(captured: dict[str, Any], *argv: str) -> Any:
    assert cli_module.run(list(argv)) == 0
    return captured.pop("settings")


def test_every_global_option_after_the_command_gives_the_same_settings_as_before(captured: dict[str, Any], tmp_path: Path) -> None:
    opts = ["--server", "https://a.example", "--token", "t0k", "--profile", "default", "--config", str(tmp_path / "c.toml"),
            "--output", "json", "--no-color", "-v", "-q", "--ca-bundle", "/etc/ca.pem", "--insecure",
            "--dialect", "seed", "--username", "u1", "--password-stdin"]
    before = _settings(captured, *opts, "imports")
    after = _settings(captured, "imports", *opts)
    assert before == after
    assert (after.server, after.token, after.output, after.color, after.verbose, after.quiet) == (
        "https://a.example", "t0k", "json", False, 1, True)
    assert (after.ca_bundle, after.insecure, after.dialect, after.username, after.password_stdin) == (
        "/etc/ca.pem", True, "seed", "u1", True)
    assert after.sources["server"] == "flag"


def test_a_flag_after_the_command_beats_the_environment_and_the_profile(captured: dict[str, Any], tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[profiles.default]\nserver = "https://profile.example"\noutput = "plain"\n')
    monkeypatch.setenv("HEXTRACKR_SERVER", "https://env.example")
    s = _settings(captured, "imports", "--config", str(config))
    assert (s.server, s.output) == ("https://env.example", "plain")  # env > profile
    s = _settings(captured, "imports", "--config", str(config), "--server", "https://flag.example", "--output", "json")
    assert (s.server, s.output) == ("https://flag.example", "json")  # flag (after the command) > env > profile


def test_given_before_and_after_the_later_wins_and_verbose_counts_add_up(captured: dict[str, Any]) -> None:
    s = _settings(captured, "--server", "https://first.example", "-v", "imports", "--server", "https://second.example", "-vv")
    assert (s.server, s.verbose) == ("https://second.example", 3)


def test_serve_keeps_its_own_token_option() -> None:
    """serve's --token (accepted tokens, repeatable) is not replaced by the global one."""
    serve = cli_module.cli.commands["serve"]
    tokens = [p for p in serve.params if "--token" in getattr(p, "opts", ())]
    assert len(tokens) == 1 and tokens[0].name == "tokens" and tokens[0].multiple


# ----------------------------------------------------------------- help
def _help(*argv: str) -> str:
    res = run_cli([*argv, "--help"], {**cli_env(Path("/nonexistent"), None), "COLUMNS": "200"})
    assert res.returncode == 0
    return res.stdout.decode()


@pytest.mark.parametrize("command", [["import"], ["watch"], ["cancel"], ["status"], ["imports"], ["login"], ["config", "set"]])
def test_each_command_help_lists_every_global_option_with_the_same_text(command: list[str]) -> None:
    root, sub = _help(), _help(*command)
    assert "Global options (also accepted before the command name):" in sub
    for decls, kw in GLOBAL_OPTIONS:
        text = re.sub(r"\s+", " ", kw["help"])
        assert text in re.sub(r"\s+", " ", root) and text in re.sub(r"\s+", " ", sub), (command, decls)
