"""The global options, declared once, accepted before or after the command name.

``hextrackr --output json import scan.csv`` and ``hextrackr import scan.csv --output json`` are the same
command: the group takes the options as its parameters, and every command built with ``Command`` (the
group's ``command_class``) takes them too and merges what it was given into the group's flags (a later
value wins; ``-v`` counts add up). Precedence stays flag > environment > config profile > default, since the
merged flags go to ``settings.resolve`` exactly as before. Imports only click.
"""

from __future__ import annotations

from typing import Any, Callable

import click

# (declarations, click.Option keywords): the one definition of each global option and its help.
GLOBAL_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--server",), {"metavar": "URL", "help": "Server URL, or 'local' for the embedded server. [env: HEXTRACKR_SERVER]"}),
    (("--token",), {"metavar": "TOKEN", "help": "API token. Prefer HEXTRACKR_TOKEN: flags end up in shell history."}),
    (("--profile",), {"metavar": "NAME", "help": "Config profile to use. [env: HEXTRACKR_PROFILE]"}),
    (("--config", "config"), {"metavar": "PATH", "type": click.Path(dir_okay=False), "help": "Config file. [env: HEXTRACKR_CONFIG]"}),
    (("--output",), {"type": click.Choice(["auto", "rich", "plain", "json"]), "default": None,
                     "help": "Output mode: rich (TTY), plain lines, or NDJSON on stdout. [default: auto]"}),
    (("--no-color",), {"is_flag": True, "default": None, "help": "No colour (also NO_COLOR, TERM=dumb)."}),
    (("-v", "--verbose"), {"count": True, "help": "More detail (repeat for more)."}),
    (("-q", "--quiet"), {"count": True, "help": "Only the summary and errors; -qq: nothing at all unless something failed."}),
    (("--silent",), {"is_flag": True, "default": None,
                     "help": "Same as -qq: no output at all when every file completed or was skipped."}),
    (("--log-file",), {"metavar": "PATH", "type": click.Path(dir_okay=False),
                       "help": "Also append the plain lines, timestamped, to PATH (any output mode). [env: HEXTRACKR_LOG_FILE]"}),
    (("--ca-bundle",), {"metavar": "PATH", "type": click.Path(dir_okay=False), "help": "CA bundle for TLS."}),
    (("--insecure",), {"is_flag": True, "default": None, "help": "Do not verify TLS certificates (warns)."}),
    (("--dialect",), {"type": click.Choice(["auto", "seed", "hextrackr-1.1"]), "default": None,
                      "help": "Server protocol: the seed protocol or deployed HexTrackr 1.1.x. [default: auto]"}),
    (("--username",), {"metavar": "USER", "help": "User for HexTrackr 1.1.x login. [env: HEXTRACKR_USERNAME]"}),
    (("--password-stdin",), {"is_flag": True, "default": None,
                             "help": "Read the 1.1.x password from stdin (else HEXTRACKR_PASSWORD or a prompt)."}),
]
GLOBAL_SECTION = "Global options (also accepted before the command name)"

F = Callable[..., Any]


def global_options(f: F) -> F:
    """Decorate the group's callback with every global option (its ``**flags``)."""
    for decls, kw in reversed(GLOBAL_OPTIONS):
        f = click.option(*decls, **kw)(f)
    return f


class GlobalOption(click.Option):
    """A global option given after the command name."""


def _merge(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is None or (getattr(param, "count", False) and not value):
        return
    flags = getattr(ctx.obj, "flags", None)  # the group's Obj, which every sub-context shares
    if flags is None:  # a command run without the group (a test calling it alone): nothing to merge into
        return
    assert param.name is not None
    flags[param.name] = (flags.get(param.name) or 0) + value if getattr(param, "count", False) else value


class Command(click.Command):
    """A command that also takes the global options (except one it defines itself, e.g. serve's --token).

    They are added when the command is first parsed or shown, not when the tree is built: ``hextrackr --help``
    does not pay for a dozen options on every command."""

    _with_globals = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._with_globals:
            self._with_globals = True
            taken = {opt for p in self.params for opt in getattr(p, "opts", ())}
            for decls, kw in GLOBAL_OPTIONS:
                if not any(d in taken for d in decls if d.startswith("-")):
                    self.params.append(GlobalOption(decls, expose_value=False, callback=_merge, **kw))
        return super().get_params(ctx)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                (shared if isinstance(param, GlobalOption) else own).append(record)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if shared:
            with formatter.section(GLOBAL_SECTION):
                formatter.write_dl(shared)


class Group(click.Group):
    """The command tree's groups: their commands take the global options."""

    command_class = Command
    group_class = type  # subgroups (``config``) are Groups too
