"""The click command tree, kept thin, and ``main``: the one place errors become exit codes.

Command bodies live in ``hextrackr_cli.commands.*`` and are imported only when the command runs,
so ``--help`` and ``--version`` stay fast (no socketio, requests, rich or server imports here).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import click

from hextrackr_cli import __version__
from hextrackr_cli.errors import ExitStatus, HextrackrError
from hextrackr_cli.globalopts import Group, global_options

if TYPE_CHECKING:
    from hextrackr_cli.environment import Environment

EXIT_STATUS_HELP = """\b
Exit status:
  0    import completed
  1    import failed on the server (its message is printed)
  2    usage error or bad local input; nothing was sent
  3    server unreachable, or the watch broke and could not be recovered
  4    authentication or authorization refused
  5    --timeout reached; the import keeps running (re-attach with `hextrackr watch ID`)
  6    the import completed, but its findings cross the gate (--fail-on, --max)
  7    the import ended, but the server no longer tells how (HexTrackr 1.1.x forgets finished sessions)
  75   another run holds the lock (--lock); nothing was done (EX_TEMPFAIL)
  130  interrupted by Ctrl-C (the message says whether the server confirmed the cancel)
"""

ENV_HELP = """\b
Environment:
  HEXTRACKR_SERVER, HEXTRACKR_TOKEN, HEXTRACKR_PROFILE, HEXTRACKR_CONFIG, HEXTRACKR_OUTPUT,
  HEXTRACKR_DIALECT, HEXTRACKR_USERNAME, HEXTRACKR_PASSWORD, HEXTRACKR_CA_BUNDLE, HEXTRACKR_INSECURE,
  HEXTRACKR_FAIL_ON, HEXTRACKR_FAIL_SCOPE, HEXTRACKR_MAX, HEXTRACKR_WARN_ON, NO_COLOR.
  Precedence: flag > environment > config profile > default.
"""

# Imported only by the embedded server (`serve`, `--server local`); installed by the `server` extra.
SERVER_EXTRA_MODULES = frozenset({"uvicorn", "websockets", "multipart", "python_multipart"})

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Obj:
    """What the group hands to its commands: the raw global flags, resolved into Settings on demand, and the
    Environment (streams, isatty, variables) the command runs in."""

    def __init__(self, flags: dict[str, Any], env: Environment) -> None:
        self.flags = flags
        self.env = env

    def settings(self, **command_flags: Any) -> Any:
        from hextrackr_cli.settings import resolve

        settings = resolve({**self.flags, **command_flags}, environment=self.env)
        if settings.insecure:
            import warnings

            # One clear warning instead of urllib3's InsecureRequestWarning on every request.
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
            if not settings.silent:  # -qq: nothing at all unless something failed
                self.env.say("hextrackr: warning: TLS certificates are not verified (--insecure)")
        return settings


pass_obj = click.make_pass_decorator(Obj)


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS, epilog=EXIT_STATUS_HELP + "\n" + ENV_HELP)
@click.version_option(__version__, "-V", "--version", prog_name="hextrackr")
@global_options
@click.pass_context
def cli(ctx: click.Context, **flags: Any) -> None:
    """Import vulnerability scans into HexTrackr with live progress.

    Uploads scan exports (Tenable, Nessus, generic CSV), follows the import over Socket.io (falling back to
    HTTP polling), cancels on Ctrl-C, and tells a pipeline the truth through its exit status.
    """
    from hextrackr_cli.environment import Environment

    ctx.obj = Obj(flags, ctx.obj if isinstance(ctx.obj, Environment) else Environment())


_LEVELS = click.Choice(["critical", "high", "medium", "low", "info", "none"], case_sensitive=False)


def gate_options(f: Any) -> Any:
    """The gate and the CI reports, shared by import and watch."""
    for option in reversed((
        click.option("--fail-on", metavar="LEVEL", type=_LEVELS, default=None,
                     help="Exit 6 when the import completed with findings at LEVEL or above in scope "
                          "(critical|high|medium|low|info|none). [env: HEXTRACKR_FAIL_ON; default: none]"),
        click.option("--fail-scope", type=click.Choice(["new", "open"], case_sensitive=False), default=None,
                     help="Findings the gate counts: new = new and reopened by this import; open = this scan's "
                          "findings open after it. [default: new]"),
        click.option("--max", "max", metavar="LEVEL=N", multiple=True,
                     help="Exit 6 when more than N findings at exactly LEVEL are in scope (repeatable)."),
        click.option("--warn-on", metavar="LEVEL", type=_LEVELS, default=None,
                     help="Warn (and annotate in CI) on findings at LEVEL or above in scope; never fails."),
        click.option("--junit", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Write a JUnit XML report: one testcase per file, failed when the import failed or the "
                          "gate tripped."),
        click.option("--summary-md", metavar="FILE", type=click.Path(dir_okay=False),
                     help="Write a Markdown summary (outcome, severity table, gate, duration)."),
        click.option("--no-ci-annotations", "ci_annotations", is_flag=True, flag_value=False, default=True,
                     help="No GitHub Actions step summary and ::error lines, no GitLab sections."),
    )):
        f = option(f)
    return f


def _gate_flags(opts: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Split the gate's flags (resolved into Settings with env and profile) from the report options."""
    from hextrackr_cli.core.reporting import ReportOptions

    gate = {k: opts.pop(k) for k in ("fail_on", "fail_scope", "max", "warn_on")}
    gate["max"] = gate["max"] or None
    return gate, ReportOptions(opts.pop("junit"), opts.pop("summary_md"), opts.pop("ci_annotations"))


# --------------------------------------------------------------------------- import
def file_import_options(f: Any) -> Any:
    """The options each imported file takes, in `import` and in `sweep` alike (fields of ImportOptions, plus the
    polling and log intervals that go to Settings)."""
    for option in reversed((
        click.option("--type", "import_type", type=click.Choice(["vulnerabilities", "tickets"]), default="vulnerabilities", show_default=True),
        click.option("--vendor", metavar="V", help="Vendor (default: derived from the file name)."),
        click.option("--format", "format_name", metavar="NAME",
                     help="Read the file as this format (tenable, tenable-workbench, nessus, nessus-xml, tenable-sc, qualys,"
                          " qualys-vmdr, qualys-pci, openvas, generic, tickets); default: detected from the header."),
        click.option("--min-severity", type=click.Choice(["critical", "high", "medium", "low", "info"], case_sensitive=False),
                     default="info", show_default=True, help="Skip (and count) findings below this severity."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Stop watching after this long (exit 5)."),
        click.option("--transport", type=click.Choice(["auto", "websocket", "polling"]), default="auto", show_default=True),
        click.option("--poll-interval", type=click.FloatRange(min=0.05), default=None, metavar="SECONDS", help="HTTP polling interval. [default: 1]"),
        click.option("--log-interval", type=click.FloatRange(min=0), default=None, metavar="SECONDS", help="Plain output: at most one line per this many seconds between stages. [default: 10]"),
        click.option("--no-lock", is_flag=True, help="HexTrackr 1.1.x: do not wait for another import into the same server from this machine (two at once lose data there)."),
    )):
        f = option(f)
    return f


def lock_options(f: Any) -> Any:
    """--lock [PATH] and --lock-wait SECONDS (import, sweep)."""
    f = click.option("--lock-wait", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
                     help="With --lock: wait this long for the lock before giving up (exit 75). [default: 0]")(f)
    return click.option("--lock", is_flag=False, flag_value="", default=None, metavar="[PATH]",
                        help="One run at a time: hold an exclusive lock (auto-named per server and profile, or "
                             "--lock=PATH); held by another run: exit 75 naming its PID.")(f)


def lock_and_files(lock: str | None, files: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """``--lock scan.csv``: click gives the file to --lock as its PATH; a name with a scan's extension is a FILE
    (and the lock auto-named). FILE... is checked here for that reason, not by click."""
    if lock:
        from hextrackr_cli.sweeping import matches

        if matches(os.path.basename(lock)):
            lock, files = "", (lock, *files)
    if not files:
        raise click.UsageError("Missing argument 'FILE...'.")
    return lock, files


def lock_request(lock: str | None, lock_wait: float | None) -> Any:
    """What --lock/--lock-wait ask for (None: no lock); --lock-wait alone implies --lock."""
    if lock is None and lock_wait is None:
        return None
    from hextrackr_cli.locking import LockRequest

    return LockRequest(path=lock or None, wait=lock_wait or 0.0)


@cli.command("import", epilog=EXIT_STATUS_HELP)
@click.argument("files", nargs=-1, metavar="FILE...")
@file_import_options
@click.option("--scan-date", metavar="YYYY-MM-DD", help="Scan date (default: from the file name, else today).")
@click.option("--session-id", metavar="UUID", help="Session id to use (default: a new UUID).")
@click.option("--detach", is_flag=True, help="Start the import, print the session id and exit 0.")
@click.option("--open", "open_browser", is_flag=True, help="Open the browser progress view.")
@click.option("--if-changed", is_flag=True, default=None, help="Skip a file whose content already completed an import on this server (exit 0). [profile: if_changed]")
@click.option("--force", is_flag=True, help="Import even when --if-changed (or the profile) would skip.")
@lock_options
@gate_options
@pass_obj
def import_cmd(obj: Obj, files: tuple[str, ...], poll_interval: float | None, log_interval: float | None,
               if_changed: bool | None, force: bool, lock: str | None, lock_wait: float | None, **opts: Any) -> int:
    """Upload FILE(s) and follow each import until it ends. FILE may be '-' for stdin."""
    from hextrackr_cli.commands.importing import ImportOptions, run_import

    lock, files = lock_and_files(lock, files)
    gate, reports = _gate_flags(opts)
    settings = obj.settings(poll_interval=poll_interval, log_interval=log_interval, if_changed=if_changed, **gate)
    options = ImportOptions(if_changed=settings.if_changed and not force, reports=reports, **opts)
    return run_import(settings, files, options, lock=lock_request(lock, lock_wait))


# --------------------------------------------------------------------------- sweep
@cli.command(epilog=EXIT_STATUS_HELP)
@click.argument("folder", required=False, metavar="DIR")
@click.option("--pattern", "patterns", multiple=True, metavar="GLOB", help="Take only names matching GLOB (repeatable). [default: every supported extension]")
@click.option("--settle", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="SECONDS", help="Take a file only once its size and times have not changed for this long.")
@click.option("--done", type=click.Path(file_okay=False), metavar="DIR", help="Move each imported (or already imported) file here.")
@click.option("--failed", type=click.Path(file_okay=False), metavar="DIR", help="Move each failed or refused file here.")
@click.option("--once/--watch", "once", default=True, help="One pass, exit status = the worst outcome (default); or keep watching until SIGTERM/Ctrl-C.")
@file_import_options
@lock_options
@gate_options
@pass_obj
def sweep(obj: Obj, folder: str | None, patterns: tuple[str, ...], settle: float, done: str | None, failed: str | None,
          once: bool, poll_interval: float | None, log_interval: float | None, lock: str | None,
          lock_wait: float | None, **opts: Any) -> int:
    """Import every export in DIR once: settled files only, each as `import --if-changed` would, then moved to
    --done/--failed. The lock is implied (one sweep per server and profile)."""
    from pathlib import Path

    from hextrackr_cli.commands.importing import ImportOptions
    from hextrackr_cli.commands.sweep import SweepOptions, run_sweep

    if folder is None and lock and os.path.isdir(lock):  # `sweep --lock DIR`: click gave DIR to --lock
        folder, lock = lock, ""
    if folder is None:
        raise click.UsageError("Missing argument 'DIR'.")
    gate, reports = _gate_flags(opts)
    settings = obj.settings(poll_interval=poll_interval, log_interval=log_interval, **gate)
    options = SweepOptions(Path(folder), patterns, settle, Path(done) if done else None,
                           Path(failed) if failed else None, watch=not once)
    return run_sweep(settings, options, ImportOptions(if_changed=True, reports=reports, **opts),
                     lock=lock_request(lock, lock_wait))


# --------------------------------------------------------------------------- watch / cancel / status / imports
@cli.command(epilog=EXIT_STATUS_HELP)
@click.argument("session_id", metavar="SESSION_ID")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Stop watching after this long (exit 5).")
@click.option("--transport", type=click.Choice(["auto", "websocket", "polling"]), default="auto", show_default=True)
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=None, metavar="SECONDS")
@click.option("--log-interval", type=click.FloatRange(min=0), default=None, metavar="SECONDS")
@gate_options
@pass_obj
def watch(obj: Obj, poll_interval: float | None, log_interval: float | None, **opts: Any) -> int:
    """Re-attach to a running or finished import; exit status = its outcome."""
    from hextrackr_cli.commands.importing import run_watch

    gate, reports = _gate_flags(opts)
    settings = obj.settings(poll_interval=poll_interval, log_interval=log_interval, **gate)
    return run_watch(settings, **opts, reports=reports)


@cli.command()
@click.argument("session_id", metavar="SESSION_ID")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True, metavar="SECONDS", help="How long to wait for the confirmation.")
@pass_obj
def cancel(obj: Obj, **opts: Any) -> int:
    """Cancel an import and wait for the server's confirmation."""
    from hextrackr_cli.commands.importing import run_cancel

    return run_cancel(obj.settings(), **opts)


@cli.command()
@click.argument("session_id", metavar="SESSION_ID")
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON on stdout.")
@pass_obj
def status(obj: Obj, **opts: Any) -> int:
    """Show an import's state with one HTTP request (no socket)."""
    from hextrackr_cli.commands.history import run_status

    return run_status(obj.settings(), **opts)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the history as JSON on stdout.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@pass_obj
def imports(obj: Obj, **opts: Any) -> int:
    """List the server's import history, newest first."""
    from hextrackr_cli.commands.history import run_imports

    return run_imports(obj.settings(), **opts)


# --------------------------------------------------------------------------- serve
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8989, show_default=True)
@click.option("--database", metavar="URL", envvar="HEXTRACKR_DATABASE", help="sqlite:///PATH or postgresql://… [default: sqlite in the user data dir]")
@click.option("--token", "tokens", multiple=True, metavar="TOKEN", help="Accepted token (repeatable; the first is admin). [env: HEXTRACKR_TOKEN]")
@click.option("--max-upload", metavar="BYTES", default="1GiB", show_default=True, help="Upload size limit (e.g. 500MiB).")
@click.option("--retention", type=click.FloatRange(min=0), default=300.0, show_default=True, metavar="SECONDS", help="How long finished sessions stay in memory.")
@click.option("--transports", type=click.Choice(["websocket,polling", "websocket", "polling"]), default="websocket,polling", show_default=True, help="Socket.io transports offered.")
@click.option("--message-queue", metavar="URL", envvar="HEXTRACKR_MESSAGE_QUEUE", help="redis://HOST:PORT/DB[?prefix=NAME]: share Socket.io rooms, session state and cancels across workers.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, envvar="HEXTRACKR_WORKERS", help="Worker processes on ports PORT…PORT+N-1 (needs postgresql:// and --message-queue).")
@pass_obj
def serve(obj: Obj, **opts: Any) -> int:
    """Run the embedded HexTrackr import server (Socket.io + HTTP API + SQLite or PostgreSQL)."""
    from hextrackr_cli.commands.serving import run_serve

    return run_serve(obj.flags, **opts)


# --------------------------------------------------------------------------- login / config / completion
@cli.command()
@click.option("--save-cookie", is_flag=True, help="HexTrackr 1.1.x: keep the session cookie in the profile (mode 0600).")
@pass_obj
def login(obj: Obj, **opts: Any) -> int:
    """Store a server URL and credentials in the config profile (mode 0600)."""
    from hextrackr_cli.commands.config import run_login

    return run_login(obj.flags, env=obj.env, **opts)


@cli.group()
def config() -> None:
    """Read and write the config file (secrets are masked)."""


@config.command("set")
@click.argument("key")
@click.argument("value")
@pass_obj
def config_set(obj: Obj, key: str, value: str) -> int:
    """Set KEY to VALUE in the current profile."""
    from hextrackr_cli.commands.config import run_config_set

    return run_config_set(obj.flags, key, value, env=obj.env)


@config.command("get")
@click.argument("key")
@pass_obj
def config_get(obj: Obj, key: str) -> int:
    """Print KEY of the current profile (secrets masked)."""
    from hextrackr_cli.commands.config import run_config_get

    return run_config_get(obj.flags, key, env=obj.env)


@config.command("list")
@pass_obj
def config_list(obj: Obj) -> int:
    """List every profile and its keys (secrets masked)."""
    from hextrackr_cli.commands.config import run_config_list

    return run_config_list(obj.flags, env=obj.env)


@cli.command(cls=click.Command)  # no settings: no global options
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the shell completion script for SHELL."""
    from hextrackr_cli.commands.config import completion_script

    click.echo(completion_script(shell, cli), nl=False)
    return 0


# --------------------------------------------------------------------------- the error boundary
def _fail(env: Environment | None, message: str, status: int) -> int:
    stream = env.stderr if env is not None else sys.stderr
    try:
        stream.write(f"hextrackr: {message}\n")
        stream.flush()
    except Exception:  # stderr closed: the exit status still tells the truth
        pass
    return status


@contextlib.contextmanager
def _click_streams(env: Environment | None) -> Iterator[None]:
    """click writes --help, usage errors and prompts to sys.std*: point them at env's streams for the call."""
    if env is None or (env.stdin, env.stdout, env.stderr) == (sys.stdin, sys.stdout, sys.stderr):
        yield
        return
    saved_stdin, sys.stdin = sys.stdin, env.stdin
    try:
        with contextlib.redirect_stdout(env.stdout), contextlib.redirect_stderr(env.stderr):
            yield
    finally:
        sys.stdin = saved_stdin


def run(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line in ``env`` (the process's streams and variables by default) and return the exit
    status. Never raises, never prints a traceback."""
    with _click_streams(env):
        return _run(argv, env)


def _run(argv: Sequence[str] | None, env: Environment | None) -> int:
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="hextrackr", standalone_mode=False,
                      obj=env)
    except click.exceptions.Abort:
        return _fail(env, "interrupted", ExitStatus.INTERRUPTED)
    except click.ClickException as exc:
        exc.show(file=env.stderr if env is not None else None)
        return ExitStatus.USAGE
    except HextrackrError as exc:
        return _fail(env, f"error: {exc}", exc.exit_status)
    except KeyboardInterrupt:
        return _fail(env, "interrupted", ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return ExitStatus.IMPORT_FAILED
    except ImportError as exc:
        missing = (exc.name or str(exc)).split(".")[0].split()[0]
        if missing in SERVER_EXTRA_MODULES:
            return _fail(
                env,
                f"error: the embedded server needs the 'server' extra ({missing} is not installed): "
                "pip install 'hextrackr[server]'",
                ExitStatus.USAGE,
            )
        return _fail(env, f"internal error: {type(exc).__name__}: {exc}", ExitStatus.IMPORT_FAILED)
    except Exception as exc:  # a bug: say what, not where
        return _fail(env, f"internal error: {type(exc).__name__}: {exc}", ExitStatus.IMPORT_FAILED)
    if isinstance(rv, int):
        return rv
    return ExitStatus.OK


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run(argv))
