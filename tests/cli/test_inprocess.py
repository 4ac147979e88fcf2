"""Commands run in-process (cli.run(argv, env=Environment(...))): fast tests against the real embedded server,
with the streams, terminal state and variables of the Environment, not of the test process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from support.cli import invoke
from support.data import gen_csv
from support.fixtures import TOKEN, server  # noqa: F401  (server is a fixture)


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "dumb", **extra}


@pytest.fixture(autouse=True)
def _decoy_process_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test process's own variables point elsewhere: a command that read them would fail visibly."""
    monkeypatch.setenv("HEXTRACKR_SERVER", "http://127.0.0.1:9")
    monkeypatch.setenv("HEXTRACKR_TOKEN", "decoy-token")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "decoy-cfg"))


def test_import_runs_in_process_and_its_ndjson_goes_to_the_environments_stdout(tmp_path: Path, server: Any) -> None:
    scan = gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 60)
    started = time.monotonic()
    res = invoke(["import", str(scan), "--output", "json"],
                 base_env(tmp_path, HEXTRACKR_SERVER=server.url, HEXTRACKR_TOKEN=TOKEN))
    assert res.exit_code == 0, res
    summary = [x for x in res.json_lines() if x.get("event") == "summary"][-1]
    assert (summary["outcome"], summary["rows"], summary["exitCode"]) == ("completed", 60, 0)
    assert time.monotonic() - started < 20


def test_plain_output_goes_to_the_environments_stderr_and_the_outcome_is_the_exit_status(tmp_path: Path, server: Any) -> None:
    bad = tmp_path / "generic_scan_2025-11-20.csv"
    bad.write_text("")  # empty: refused locally, nothing sent
    res = invoke(["import", str(bad)], base_env(tmp_path, HEXTRACKR_SERVER=server.url, HEXTRACKR_TOKEN=TOKEN))
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("hextrackr: error: ") and str(bad.name) in res.stderr


def test_imports_and_status_print_on_the_environments_stdout(tmp_path: Path, server: Any) -> None:
    env = base_env(tmp_path, HEXTRACKR_SERVER=server.url, HEXTRACKR_TOKEN=TOKEN)
    scan = gen_csv(tmp_path / "generic_scan_2025-11-20.csv", 10)
    sid = "7d3f1c8e-0000-4000-8000-00000000abcd"
    assert invoke(["import", str(scan), "--session-id", sid], env).exit_code == 0
    listed = invoke(["imports"], env)
    assert listed.exit_code == 0 and sid in listed.stdout and "generic_scan_2025-11-20.csv" in listed.stdout
    status = invoke(["status", sid, "--json"], env)
    assert status.exit_code == 0 and '"completed"' in status.stdout


def test_the_environments_variables_are_used_not_the_processs(tmp_path: Path, server: Any) -> None:
    """With no server in the Environment and no terminal, the command refuses: the decoy HEXTRACKR_SERVER of
    the process is not seen."""
    res = invoke(["imports"], base_env(tmp_path))
    assert res.exit_code == 2 and "no server configured" in res.stderr


def test_a_terminal_environment_falls_back_to_the_embedded_server_in_its_own_data_dir(tmp_path: Path) -> None:
    res = invoke(["imports"], base_env(tmp_path), tty=True)
    assert res.exit_code == 0, res
    assert f"using the embedded server (database {tmp_path / 'data' / 'hextrackr' / 'hextrackr.db'})" in res.stderr
    assert "no imports yet" in res.stderr
    assert (tmp_path / "data" / "hextrackr" / "hextrackr.db").exists()


def test_config_commands_use_the_environments_streams_and_config_location(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    secret = "in-process-secret-token-0123456789"
    assert invoke(["config", "set", "token", "-"], env, input=secret + "\n").exit_code == 0
    assert invoke(["config", "set", "server", "https://a.example/"], env).exit_code == 0
    got = invoke(["config", "get", "server"], env)
    assert (got.exit_code, got.stdout) == (0, "https://a.example\n")
    listed = invoke(["config", "list"], env)
    assert str(tmp_path / "cfg" / "hextrackr" / "config.toml") in listed.stdout
    assert secret not in listed.stdout + listed.stderr and "****" + secret[-4:] in listed.stdout
    assert not (tmp_path / "decoy-cfg").exists()


def test_a_bad_value_is_refused_in_process_with_one_line(tmp_path: Path) -> None:
    res = invoke(["config", "set", "output", "fancy"], base_env(tmp_path))
    assert res.exit_code == 2
    assert res.stderr == "hextrackr: error: output must be one of auto, rich, plain, json, not 'fancy'\n"


def test_help_and_usage_errors_are_written_to_the_environments_streams() -> None:
    helped = invoke(["import", "--help"])
    assert helped.exit_code == 0 and "Upload FILE(s)" in helped.stdout and "Global options" in helped.stdout
    wrong = invoke(["import", "--no-such-flag", "x.csv"])
    assert wrong.exit_code == 2 and "No such option" in wrong.stderr and wrong.stdout == ""


def test_lock_file_and_log_file_follow_the_environments_xdg_dirs(tmp_path: Path, server: Any, monkeypatch) -> None:
    """--lock's auto name and the skipped line's log go where the Environment's variables say, not the process's."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "decoy-run"))
    (tmp_path / "run").mkdir()
    scan = gen_csv(tmp_path / "scan.csv", 20)
    env = base_env(tmp_path, HEXTRACKR_SERVER=server.url, HEXTRACKR_TOKEN=TOKEN, XDG_RUNTIME_DIR=str(tmp_path / "run"),
                   XDG_STATE_HOME=str(tmp_path / "state"), HEXTRACKR_LOG_FILE=str(tmp_path / "cron.log"))
    assert invoke(["import", str(scan), "--if-changed", "--lock"], env).exit_code == 0
    res = invoke(["-qq", "import", str(scan), "--if-changed", "--lock"], env)
    assert res.exit_code == 0
    assert [p.name.startswith("run-127.0.0.1") for p in (tmp_path / "run" / "hextrackr").iterdir()] == [True]
    assert not (tmp_path / "decoy-run").exists()
    assert "skipped scan.csv: unchanged since import 1" in (tmp_path / "cron.log").read_text()
