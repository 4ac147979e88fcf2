#!/usr/bin/env python3
"""Generate the shell completions and the man page from the click command tree.

    python scripts/gen_artifacts.py           # (re)write completions/hextrackr.{bash,zsh,fish} and man/hextrackr.1
    python scripts/gen_artifacts.py --check   # exit 1 and name the files that differ from what the code generates

The output is deterministic (no dates, sorted where click is not already ordered), so the committed files can
be compared byte for byte; tests/test_artifacts.py fails when they drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path
from typing import Iterator

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hextrackr_cli import __version__  # noqa: E402
from hextrackr_cli.cli import EXIT_STATUS_HELP, ENV_HELP, cli  # noqa: E402
from hextrackr_cli.commands.config import SHELLS, completion_script  # noqa: E402
from hextrackr_cli.globalopts import GlobalOption  # noqa: E402
from hextrackr_cli.profile_keys import KEYS  # noqa: E402

PROG = "hextrackr"

# What each environment variable does. The generator refuses to run when the command tree mentions a
# variable that is missing here, so the man page cannot silently fall behind the code.
ENVIRONMENT: dict[str, str] = {
    "HEXTRACKR_SERVER": "Server URL (http:// or https://), or \"local\" for the embedded server. Same as --server.",
    "HEXTRACKR_TOKEN": "API token sent as \"Authorization: Bearer\". Preferred over --token, which ends up in "
    "shell history. For serve: the accepted token.",
    "HEXTRACKR_PROFILE": "Config profile to use. Same as --profile.",
    "HEXTRACKR_CONFIG": "Config file to use. Same as --config.",
    "HEXTRACKR_OUTPUT": "Output mode: auto, rich, plain or json. Same as --output.",
    "HEXTRACKR_DIALECT": "Server protocol: auto, seed or hextrackr-1.1. Same as --dialect.",
    "HEXTRACKR_USERNAME": "User name for HexTrackr 1.1.x servers. Same as --username.",
    "HEXTRACKR_PASSWORD": "Password for HexTrackr 1.1.x servers (else --password-stdin or a prompt). Never stored.",
    "HEXTRACKR_COOKIE": "HexTrackr 1.1.x session cookie value (as kept by hextrackr login --save-cookie).",
    "HEXTRACKR_CA_BUNDLE": "CA bundle for TLS verification. Same as --ca-bundle.",
    "HEXTRACKR_INSECURE": "Set to 1 to skip TLS verification (a warning is printed). Same as --insecure.",
    "HEXTRACKR_POLL_INTERVAL": "HTTP polling interval in seconds. Same as --poll-interval.",
    "HEXTRACKR_LOG_INTERVAL": "Plain output: at most one line per this many seconds between stages.",
    "HEXTRACKR_LOG_FILE": "Also append the plain output lines, timestamped, to this file. Same as --log-file.",
    "HEXTRACKR_IF_CHANGED": "Set to 1: import skips a file whose content already completed an import (as --if-changed).",
    "HEXTRACKR_FAIL_ON": "import/watch: exit 6 when a completed import has findings at this level or above in "
    "scope (critical, high, medium, low, info, none). Same as --fail-on.",
    "HEXTRACKR_FAIL_SCOPE": "import/watch: what the gate counts, new (new and reopened) or open. Same as --fail-scope.",
    "HEXTRACKR_MAX": "import/watch: LEVEL=N[,LEVEL=N...], exit 6 above N findings at LEVEL in scope. Same as --max.",
    "HEXTRACKR_WARN_ON": "import/watch: warn on findings at this level or above in scope; never fails. Same as --warn-on.",
    "HEXTRACKR_DATABASE": "serve: database URL (sqlite:///PATH or postgresql://...). Same as --database.",
    "HEXTRACKR_MESSAGE_QUEUE": "serve: redis:// URL to share Socket.io rooms, session state and cancels across workers.",
    "HEXTRACKR_WORKERS": "serve: number of worker processes (ports PORT to PORT+N-1; needs PostgreSQL and a message queue).",
    "NO_COLOR": "When set (to anything), no colour is used.",
    "TERM": "TERM=dumb selects plain output and no colour.",
    "XDG_CONFIG_HOME": "Base directory of the config file (default ~/.config).",
    "XDG_DATA_HOME": "Base directory of the embedded server's database (default ~/.local/share).",
    "XDG_STATE_HOME": "Base directory of the import ledger and of lock files without a runtime dir (default ~/.local/state).",
    "XDG_RUNTIME_DIR": "Directory of the auto-named --lock files, when set.",
    "HTTPS_PROXY, HTTP_PROXY, NO_PROXY": "Proxies, honoured by the HTTP requests and the Socket.io connection alike.",
}

FILES: list[tuple[str, str]] = [
    (
        "$XDG_CONFIG_HOME/hextrackr/config.toml",
        "The config file (default ~/.config/hextrackr/config.toml): named profiles with server, token and "
        "other settings. Written with mode 0600 in a 0700 directory by hextrackr login and hextrackr config set.",
    ),
    (
        "$XDG_DATA_HOME/hextrackr/hextrackr.db",
        "The embedded server's default SQLite database (default ~/.local/share/hextrackr/hextrackr.db).",
    ),
    (
        "$XDG_STATE_HOME/hextrackr/ledger.jsonl",
        "The import ledger (default ~/.local/state/hextrackr/ledger.jsonl): one JSON line per import completed on a "
        "server that cannot answer --if-changed itself (HexTrackr 1.1.x).",
    ),
    (
        "$XDG_RUNTIME_DIR/hextrackr/*.lock",
        "Auto-named --lock files, one per server and profile (else in $XDG_STATE_HOME/hextrackr/locks); each holds "
        "its holder's PID.",
    ),
]

EXAMPLES: list[tuple[str, str]] = [
    ("Import a scan into a server, following its progress:", "hextrackr --server https://hextrackr.example.org import tenable_vulns_2025-11-20.csv"),
    ("Do the whole job locally with the embedded server:", "hextrackr --server local import scan.csv"),
    (
        "In CI: token from the environment, NDJSON on stdout, fail the job on a failed import:",
        "HEXTRACKR_SERVER=https://hextrackr.example.org HEXTRACKR_TOKEN=$TOKEN hextrackr --output json import scan.csv > import.ndjson",
    ),
    ("Start an import and re-attach later:", "hextrackr import --detach scan.csv\nhextrackr watch SESSION_ID"),
    ("In cron: skip an unchanged export, one run at a time, silent unless something failed, with a log "
     "(docs/automation.md):",
     "hextrackr --profile prod -qq --log-file ~/hextrackr.log import --if-changed --lock tenable_vulns.csv"),
    ("Import whatever is dropped into a folder, moving each file after its import:",
     "hextrackr sweep /srv/drop --done /srv/drop/done --failed /srv/drop/failed"),
    ("Store the server and token in the profile prod:", "hextrackr --profile prod login"),
    ("Install bash completion for the current user:", "hextrackr completion bash > ~/.local/share/bash-completion/completions/hextrackr"),
    ("Run the embedded server for a team:", "hextrackr serve --host 0.0.0.0 --port 8989"),
]


# --------------------------------------------------------------------------- roff helpers
def roff(text: str) -> str:
    """Escape text for roff: backslashes, minus signs, non-ASCII, and control characters at line start."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\e")
        elif ch == "-":
            out.append("\\-")
        elif ord(ch) > 126:
            out.append(f"\\[u{ord(ch):04X}]")
        else:
            out.append(ch)
    escaped = "".join(out)
    lines = [("\\&" + ln if ln.startswith((".", "'")) else ln) for ln in escaped.split("\n")]
    return "\n".join(lines)


def paragraphs(help_text: str) -> Iterator[tuple[bool, str]]:
    """Split click help into (verbatim, text) paragraphs; a paragraph starting with \\b is kept verbatim."""
    text = inspect.cleandoc(help_text or "")
    for para in re.split(r"\n\s*\n", text):
        if not para.strip():
            continue
        if para.startswith("\b"):
            yield True, para[1:].lstrip("\n")
        else:
            yield False, " ".join(line.strip() for line in para.splitlines())


def emit_help(lines: list[str], help_text: str) -> None:
    first = True
    for verbatim, para in paragraphs(help_text):
        if not first:
            lines.append(".PP")
        first = False
        if verbatim:
            lines += [".nf", roff(para), ".fi"]
        else:
            lines.append(roff(para))


def option_lines(ctx: click.Context, with_help: bool = True) -> list[str]:
    out: list[str] = []
    help_option = ctx.command.get_help_option(ctx)
    for param in ctx.command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden or isinstance(param, GlobalOption):
            continue  # the global options are listed once, under GLOBAL OPTIONS
        if param is help_option and not with_help:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", option_term(names)]
        if help_text:
            out.append(roff(help_text))
    return out


def option_term(names: str) -> str:
    """'-o, --output [a|b]' -> bold flags, italic metavar."""
    tokens = names.split(" ")
    flags: list[str] = []
    while tokens and (tokens[0].startswith("-") or tokens[0] == "/"):
        flags.append(tokens.pop(0))
    term = "\\fB" + roff(" ".join(flags)) + "\\fR"
    if tokens:
        term += " \\fI" + roff(" ".join(tokens)) + "\\fR"
    return term


def walk(ctx: click.Context) -> Iterator[click.Context]:
    """Every command below ``ctx`` in definition order, groups before their subcommands."""
    cmd = ctx.command
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
            yield sub_ctx
            yield from walk(sub_ctx)


def environment_names() -> set[str]:
    """Every environment variable the command tree mentions (help texts, epilogs, envvar settings)."""
    names: set[str] = set()
    texts = [ENV_HELP, EXIT_STATUS_HELP, cli.help or ""]
    root = click.Context(cli, info_name=PROG, **cli.context_settings)
    for ctx in [root, *walk(root)]:
        texts.append(ctx.command.help or "")
        for param in ctx.command.params:
            texts.append(getattr(param, "help", None) or "")
            env = getattr(param, "envvar", None)
            if isinstance(env, str):
                names.add(env)
            elif env:
                names.update(env)
    for text in texts:
        names.update(re.findall(r"\b(HEXTRACKR_[A-Z_]+|NO_COLOR)\b", text))
    return names


def exit_statuses() -> list[tuple[str, str]]:
    rows = []
    for line in EXIT_STATUS_HELP.splitlines():
        m = re.match(r"^\s+(\d+)\s+(.*)$", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


# --------------------------------------------------------------------------- the man page
def man_page() -> str:
    missing = sorted(n for n in environment_names() if n not in ENVIRONMENT and not any(n in k for k in ENVIRONMENT))
    if missing:
        raise SystemExit(f"gen_artifacts: describe these environment variables in ENVIRONMENT: {', '.join(missing)}")
    root = click.Context(cli, info_name=PROG, **cli.context_settings)
    short = (cli.help or "").strip().splitlines()[0].rstrip(".")
    lines = [
        f'.TH HEXTRACKR 1 "" "hextrackr {__version__}" "User Commands"',
        ".nh",
        ".SH NAME",
        f"hextrackr \\- {roff(short[0].lower() + short[1:])}",
        ".SH SYNOPSIS",
        ".B hextrackr",
        "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]",
        ".SH DESCRIPTION",
    ]
    emit_help(lines, cli.help or "")
    lines += [
        ".PP",
        "Every command accepts \\fB\\-h\\fR, \\fB\\-\\-help\\fR. "
        "Human output goes to standard error, machine output (\\-\\-output json) to standard output. "
        "Settings are resolved once, in this order: command\\-line flag, environment variable, config profile, default.",
        ".SH GLOBAL OPTIONS",
        "These options may come before or after the command name "
        "(\\fBhextrackr import scan.csv \\-\\-output json\\fR is \\fBhextrackr \\-\\-output json import scan.csv\\fR); "
        "given twice, the later one wins.",
    ]
    lines += option_lines(root)
    lines.append(".SH COMMANDS")
    for ctx in walk(root):
        cmd = ctx.command
        path = ctx.command_path
        usage = " ".join(cmd.collect_usage_pieces(ctx))
        lines.append(f'.SS "{roff(path)} {roff(usage)}"'.rstrip())
        emit_help(lines, cmd.help or "")
        if isinstance(cmd, click.Group):
            subs = ", ".join(cmd.list_commands(ctx))
            lines += [".PP", f"Subcommands: {roff(subs)}."]
        opts = option_lines(ctx, with_help=False)
        if opts:
            lines += [".PP", "Options:", ".RS 4"] + opts + [".RE"]
    lines.append(".SH ENVIRONMENT")
    for name, text in ENVIRONMENT.items():
        lines += [".TP", f"\\fB{roff(name)}\\fR", roff(text)]
    lines.append(".SH EXIT STATUS")
    for code, text in exit_statuses():
        lines += [".TP", f"\\fB{code}\\fR", roff(text[0].upper() + text[1:] + ".")]
    lines.append(".SH FILES")
    for path, text in FILES:
        lines += [".TP", f"\\fI{roff(path)}\\fR", roff(text)]
    lines += [
        ".SH CONFIG FILE",
        roff("A profile ([profiles.NAME], chosen with --profile, HEXTRACKR_PROFILE or default_profile) holds these "
             "keys. hextrackr config set and hextrackr login refuse a value outside the allowed ones; a bad value "
             "found in the file stops every command with one line naming the file, the profile and the key."),
    ]
    for spec in KEYS.values():
        secret = " Secret: never taken from a command-line value, shown masked." if spec.secret else ""
        lines += [".TP", f"\\fB{roff(spec.name)}\\fR", roff(f"{spec.help} Allowed: {spec.allowed}. Environment: {spec.env}.{secret}")]
    lines.append(".SH EXAMPLES")
    for text, command in EXAMPLES:
        lines += [".PP", roff(text), ".PP", ".RS 4", ".nf", roff(command), ".fi", ".RE"]
    lines += [
        ".SH SEE ALSO",
        "The README.md of the hextrackr sources; \\fBhextrackr completion\\fR \\fIbash|zsh|fish\\fR for shell completion.",
        "",
    ]
    return "\n".join(lines)


def artifacts() -> dict[Path, str]:
    out = {ROOT / "completions" / f"{PROG}.{shell}": completion_script(shell, cli) for shell in SHELLS}
    out[ROOT / "man" / f"{PROG}.1"] = man_page()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the code")
    args = parser.parse_args(argv)
    drift = []
    for path, text in artifacts().items():
        rel = path.relative_to(ROOT)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            drift.append(str(rel))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    if drift:
        print(
            "out of date (run `python scripts/gen_artifacts.py` and commit): " + ", ".join(drift),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
