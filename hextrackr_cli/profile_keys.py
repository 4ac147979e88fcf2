"""The keys a config profile may hold: type, check, allowed values, secret or not. One table, one owner.

``config set`` and ``login`` check a value with it before writing, the config reader (``settings.resolve``)
checks every key of the selected profile with it, environment values go through the same checks, and the
man page lists it. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OUTPUT_MODES = ("auto", "rich", "plain", "json")
DIALECT_NAMES = ("auto", "seed", "hextrackr-1.1")
LOCAL = "local"  # --server local: the embedded in-process server
GATE_LEVELS = ("critical", "high", "medium", "low", "info", "none")  # --fail-on / --warn-on (hextrackr_cli.gate)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class BadValue(ValueError):
    """A value a key does not accept; the message reads after the key's name ("must be …, not 'x'")."""


@dataclass(frozen=True)
class ProfileKey:
    name: str
    kind: type  # str, bool or float: what the value is converted to
    help: str
    choices: tuple[str, ...] = ()  # the allowed values, when there is a fixed set
    minimum: float | None = None  # floats: the smallest allowed value
    secret: bool = False  # never taken from a command-line value, never shown in full

    @property
    def env(self) -> str:
        return "HEXTRACKR_" + self.name.upper()

    @property
    def allowed(self) -> str:
        """The allowed values, as the man page and the errors say them."""
        if self.choices:
            return ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is float:
            return f"a number of seconds >= {self.minimum:g}"
        if self.name == "server":
            return f"an http:// or https:// URL, or '{LOCAL}'"
        return "text"

    def parse(self, value: Any) -> Any:
        """The value converted to the key's type; BadValue says why not."""
        if self.kind is bool:
            return _to_bool(value)
        if self.kind is float:
            return _to_float(value, self.minimum or 0.0)
        if not isinstance(value, str):
            raise BadValue(f"must be text, not {value!r}")
        if self.name == "server":
            text = value.strip().rstrip("/")
            if text != LOCAL and not text.startswith(("http://", "https://")):
                raise BadValue(f"must be an http:// or https:// URL or '{LOCAL}', not {value!r}")
            return text
        if self.choices and value not in self.choices:
            raise BadValue(f"must be one of {', '.join(self.choices)}, not {value!r}")
        return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"must be true or false, not {value!r}")


def _to_float(value: Any, minimum: float) -> float:
    if isinstance(value, bool):
        raise BadValue(f"must be a number, not {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise BadValue(f"must be a number, not {value!r}") from None
    if not math.isfinite(out) or not out >= minimum:
        raise BadValue(f"must be at least {minimum:g}, not {value!r}")
    return out


KEYS: dict[str, ProfileKey] = {
    k.name: k
    for k in (
        ProfileKey("server", str, "Server URL, or 'local' for the embedded server."),
        ProfileKey("token", str, "API token (set it with `config set token -` or `login`).", secret=True),
        ProfileKey("dialect", str, "Server protocol.", choices=DIALECT_NAMES),
        ProfileKey("username", str, "User for HexTrackr 1.1.x login."),
        ProfileKey("ca_bundle", str, "CA bundle for TLS."),
        ProfileKey("insecure", bool, "Do not verify TLS certificates."),
        ProfileKey("output", str, "Output mode.", choices=OUTPUT_MODES),
        ProfileKey("poll_interval", float, "HTTP polling interval.", minimum=0.05),
        ProfileKey("log_interval", float, "Plain output: at most one line per this many seconds.", minimum=0.0),
        ProfileKey("database", str, "serve: database URL."),
        ProfileKey("cookie", str, "HexTrackr 1.1.x session cookie (`login --save-cookie`).", secret=True),
        ProfileKey("if_changed", bool, "import: skip a file whose content already completed an import."),
        ProfileKey("log_file", str, "Append the plain output lines, timestamped, to this file."),
        ProfileKey("fail_on", str, "import/watch: exit 6 on findings at this level or above in scope.",
                   choices=GATE_LEVELS),
        ProfileKey("fail_scope", str, "import/watch: what the gate counts (new and reopened, or open).",
                   choices=("new", "open")),
        ProfileKey("max", str, "import/watch: LEVEL=N[,LEVEL=N…], exit 6 above N findings at LEVEL in scope."),
        ProfileKey("warn_on", str, "import/watch: warn on findings at this level or above in scope.",
                   choices=GATE_LEVELS),
    )
}
# Masked wherever shown; "password" is never stored but masked if a hand-edited file holds one.
SECRET_KEYS = frozenset({k.name for k in KEYS.values() if k.secret} | {"password"})


def key(name: str) -> ProfileKey:
    """The key called ``name``; BadValue (naming the known keys) for any other name."""
    try:
        return KEYS[name]
    except KeyError:
        raise BadValue(f"unknown config key {name!r}") from None
