"""Generated artefacts (completions, man page) match the code; the entry points start fast and lean."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from hextrackr_cli import __version__
from hextrackr_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man" / "hextrackr.1"
COMPLETIONS = ROOT / "completions"
IN_CI = bool(os.environ.get("CI"))

# Modules that only an import, a watch or the server need; --help and --version must not pay for them.
HEAVY = ("socketio", "engineio", "requests", "urllib3", "rich", "uvicorn", "websocket", "websockets", "requests_toolbelt",
         "hextrackr_cli.server", "hextrackr_cli.client", "hextrackr_cli.render")


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_artifacts", ROOT / "scripts" / "gen_artifacts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, **kw)  # type: ignore[call-overload]


def need(tool: str) -> str:
    """The path of `tool`, or skip (outside CI) / fail (in CI) with the reason."""
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is not installed (Debian: apt-get install {'groff-base' if tool == 'groff' else tool})"
        if IN_CI and tool in ("groff", "man"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# --------------------------------------------------------------------------- drift
def test_committed_completions_and_man_page_match_the_code() -> None:
    """`scripts/gen_artifacts.py --check` passes: nobody changed the commands without regenerating."""
    res = run(sys.executable, "scripts/gen_artifacts.py", "--check")
    assert res.returncode == 0, res.stderr + "\n(run `make artifacts` and commit the result)"


def test_drift_check_fails_and_names_the_file_when_a_committed_file_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The check is real: a stale man page makes it exit 1 naming the file; regenerating fixes it."""
    gen = load_generator()
    for rel in ("completions", "man"):
        shutil.copytree(ROOT / rel, tmp_path / rel)
    stale = tmp_path / "man" / "hextrackr.1"
    stale.write_text(stale.read_text().replace("HEXTRACKR_SERVER", "HEXTRACKR_SERVR", 1))
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert "man/hextrackr.1" in capsys.readouterr().err
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert stale.read_bytes() == MAN.read_bytes()


def test_generation_is_deterministic() -> None:
    """Two runs give the same bytes (no dates, no dict-order surprises)."""
    gen = load_generator()
    assert gen.artifacts() == gen.artifacts()


def test_completion_command_prints_the_committed_scripts() -> None:
    """`hextrackr completion SHELL` prints exactly what completions/ holds."""
    for shell in ("bash", "zsh", "fish"):
        res = run(sys.executable, "-m", "hextrackr_cli", "completion", shell)
        assert res.returncode == 0, res.stderr
        assert res.stdout == (COMPLETIONS / f"hextrackr.{shell}").read_text()


# --------------------------------------------------------------------------- completion scripts work
def test_bash_accepts_the_bash_completion_script() -> None:
    res = run(need("bash"), "-n", str(COMPLETIONS / "hextrackr.bash"))
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_accept_their_scripts(shell: str) -> None:
    res = run(need(shell), "-n", str(COMPLETIONS / f"hextrackr.{shell}"))
    assert res.returncode == 0, res.stderr


def _bash_complete(words: str, cword: int) -> list[str]:
    """Source the committed script in a real bash and ask it to complete `words`."""
    bindir = Path(sys.executable).parent
    script = (
        f"source {COMPLETIONS / 'hextrackr.bash'}\n"
        f"COMP_WORDS=({words}); COMP_CWORD={cword}\n"
        "_hextrackr_completion hextrackr\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    if not (bindir / "hextrackr").exists():
        pytest.skip("the hextrackr console script is not installed next to this Python")
    res = subprocess.run([need("bash"), "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line]


def test_bash_completion_completes_commands_and_option_choices() -> None:
    """In a real bash, `hextrackr im<TAB>` offers import/imports and `--output <TAB>` the four modes."""
    assert _bash_complete("hextrackr im", 1) == ["import", "imports"]
    assert _bash_complete("hextrackr --output ''", 2) == ["auto", "rich", "plain", "json"]
    assert _bash_complete("hextrackr config ''", 2) == ["get", "list", "set"]


# --------------------------------------------------------------------------- the man page
def test_man_page_renders_without_groff_warnings() -> None:
    """groff with all warnings on prints nothing on stderr, and man -l formats the page."""
    res = run(need("groff"), "-man", "-Tutf8", "-ww", "-z", str(MAN))
    assert res.returncode == 0 and res.stderr == "", res.stderr
    shown = subprocess.run(
        [need("man"), "-l", str(MAN)], capture_output=True, text=True, timeout=60, env={**os.environ, "MANPAGER": "cat", "MANWIDTH": "100"}
    )
    assert shown.returncode == 0, shown.stderr
    assert "HEXTRACKR(1)" in shown.stdout and "EXIT STATUS" in shown.stdout


def _rendered_man() -> str:
    res = subprocess.run(
        [need("groff"), "-man", "-Tascii", "-P-c", "-P-b", "-P-u", str(MAN)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "MANWIDTH": "200"},
    )
    assert res.returncode == 0
    return re.sub(r"\s+", " ", res.stdout)


def _walk(ctx: click.Context):  # type: ignore[no-untyped-def]
    yield ctx
    if isinstance(ctx.command, click.Group):
        for name in ctx.command.list_commands(ctx):
            sub = ctx.command.get_command(ctx, name)
            assert sub is not None
            yield from _walk(click.Context(sub, info_name=name, parent=ctx))


def test_man_page_documents_every_command_option_and_exit_status() -> None:
    """Every command path and every option flag of the click tree, and codes 0-5 and 130, are in the page."""
    text = _rendered_man()
    root = click.Context(cli, info_name="hextrackr")
    for ctx in _walk(root):
        assert ctx.command_path in text, ctx.command_path
        for param in ctx.command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for flag in param.opts + param.secondary_opts:
                    assert flag in text, f"{ctx.command_path} {flag}"
    section = text.split("EXIT STATUS", 1)[1].split("FILES", 1)[0]
    for code in ("0", "1", "2", "3", "4", "5", "130"):
        assert re.search(rf"(^| ){code} ", section), code
    for name in ("HEXTRACKR_SERVER", "HEXTRACKR_TOKEN", "HEXTRACKR_PROFILE", "HEXTRACKR_CONFIG", "NO_COLOR"):
        assert name in text.split("ENVIRONMENT", 1)[1]
    assert "config.toml" in text.split("FILES", 1)[1] and "EXAMPLES" in text


# --------------------------------------------------------------------------- entry points and start-up
def test_python_dash_m_prints_the_version() -> None:
    res = run(sys.executable, "-m", "hextrackr_cli", "--version")
    assert res.returncode == 0
    assert res.stdout.strip() == f"hextrackr, version {__version__}"


def _imported_modules(*args: str) -> set[str]:
    """The modules a real `python -m hextrackr_cli ARGS` process imports (from -X importtime)."""
    res = run(sys.executable, "-X", "importtime", "-m", "hextrackr_cli", *args)
    assert res.returncode == 0, res.stderr[-2000:]
    names = set()
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "click" in names  # the measurement works
    return names


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("import", "--help"), ("serve", "--help"), ("completion", "bash")])
def test_help_and_version_import_no_network_rendering_or_server_modules(args: tuple[str, ...]) -> None:
    """--help/--version stay fast: no socketio, requests, rich or server module is imported."""
    heavy = sorted(m for m in _imported_modules(*args) if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []


def test_help_documents_exit_statuses_and_environment() -> None:
    res = run(sys.executable, "-m", "hextrackr_cli", "--help")
    assert res.returncode == 0
    assert "Exit status:" in res.stdout and "130" in res.stdout and "HEXTRACKR_SERVER" in res.stdout


BLOCK_SERVER_DEPS = """
import sys
class _Block:
    blocked = ("uvicorn", "websockets", "multipart", "python_multipart")
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ImportError(f"{name} is blocked: a client without the server extra")
        return None
sys.meta_path.insert(0, _Block())
from hextrackr_cli.cli import run
rc = run(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.startswith("hextrackr_cli.server"))
print("SERVER-MODULES:" + ",".join(leaked), file=sys.stderr)
sys.exit(rc)
"""


def test_client_import_works_without_the_server_extra(tmp_path: Path, live_server) -> None:  # type: ignore[no-untyped-def]
    """`pip install .` without [server]: an import to a remote server works with uvicorn/websockets/multipart
    unimportable, and no hextrackr_cli.server module is loaded."""
    csv_file = tmp_path / "generic_vulns_2025-11-20.csv"
    rows = ["hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,first_seen,last_seen"]
    rows += [f"host{i:03d},10.0.0.{i},CVE-2024-{1000 + i},High,{5000 + i},Plugin {i},desc,fix,ACTIVE,2025-11-01,2025-11-20" for i in range(40)]
    csv_file.write_text("\n".join(rows) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env.update(HEXTRACKR_TOKEN=live_server.token, XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"))
    res = subprocess.run(
        [sys.executable, "-c", BLOCK_SERVER_DEPS, "--server", live_server.url, "--output", "json", "import", str(csv_file)],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "SERVER-MODULES:\n" in res.stderr
    assert '"outcome": "completed"' in res.stdout or '"outcome":"completed"' in res.stdout


@pytest.mark.parametrize("args", [("--server", "local", "import", "{csv}"), ("serve", "--port", "0")], ids=["server-local", "serve"])
def test_embedded_server_without_the_server_extra_says_what_to_install(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Without uvicorn & co., `--server local` and `serve` exit 2 naming `pip install 'hextrackr[server]'`."""
    csv_file = tmp_path / "generic_vulns_2025-11-20.csv"
    csv_file.write_text("hostname,ip_address,cve,severity\nh1,10.0.0.1,CVE-2024-1,High\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"))
    argv = [a.format(csv=csv_file) for a in args]
    res = subprocess.run([sys.executable, "-c", BLOCK_SERVER_DEPS, *argv], capture_output=True, text=True, timeout=60,
                         env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 2, res.stderr
    assert "pip install 'hextrackr[server]'" in res.stderr and "Traceback" not in res.stderr
