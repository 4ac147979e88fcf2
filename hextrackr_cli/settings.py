"""Settings, resolved once: flag > environment > config profile > default.

The config file is TOML at ``$XDG_CONFIG_HOME/hextrackr/config.toml`` (override with ``--config`` or
``HEXTRACKR_CONFIG``)::

    default_profile = "prod"

    [profiles.prod]
    server = "https://hextrackr.example.org"
    token = "..."

Reading it is lazy: ``--help`` and ``--version`` never touch it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from hextrackr_cli.errors import UsageError
from hextrackr_cli.profile_keys import (  # noqa: F401  (re-exported: the names commands import from here)
    DIALECT_NAMES,
    KEYS,
    LOCAL,
    OUTPUT_MODES,
    SECRET_KEYS,
    BadValue,
)

if TYPE_CHECKING:
    from hextrackr_cli.environment import Environment

ENV_PREFIX = "HEXTRACKR_"


def _process_environment() -> "Environment":
    from hextrackr_cli.environment import Environment

    return Environment()


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "hextrackr" / "config.toml"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "hextrackr"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/hextrackr`` (``~/.local/state/hextrackr``): the import ledger, fallback lock files."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "hextrackr"


def default_runtime_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_RUNTIME_DIR/hextrackr`` when the session has a runtime dir (systemd sets it), else None."""
    env = os.environ if env is None else env
    base = env.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base) or not os.access(base, os.W_OK | os.X_OK):
        return None
    return Path(base) / "hextrackr"


def load_config(path: Path) -> dict[str, Any]:
    """Parse the TOML config; a missing file is an empty config, a broken one a usage error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def config_location(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The config file and profile name the global flags select (same rules as ``resolve``), without
    requiring the profile to exist yet (``hextrackr login`` / ``config set`` create it)."""
    env = os.environ if env is None else env
    config_path = Path(flags.get("config") or env.get("HEXTRACKR_CONFIG") or default_config_path(env))
    name = flags.get("profile") or env.get("HEXTRACKR_PROFILE")
    if not name:
        name = load_config(config_path).get("default_profile") or "default"
    if not isinstance(name, str):
        raise UsageError(f"default_profile in {config_path} must be a string")
    return config_path, name


def profile_table(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    profiles = config.get("profiles", {})
    table = profiles.get(name, {}) if isinstance(profiles, Mapping) else {}
    return dict(table) if isinstance(table, Mapping) else {}


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where and how to talk, resolved once."""

    server: str | None
    token: str | None
    profile: str
    config_path: Path
    output: str  # rich | plain | json (auto resolved)
    color: bool
    verbose: int = 0
    quiet: bool = False
    silent: bool = False  # -qq / --silent: nothing at all unless something failed
    log_file: str | None = None  # --log-file: the plain lines appended here too, whatever the output mode
    if_changed: bool = False  # import --if-changed (or the profile key): skip content that already completed
    ca_bundle: str | None = None
    insecure: bool = False
    dialect: str = "auto"
    username: str | None = None
    poll_interval: float = 1.0
    log_interval: float = 10.0
    stderr_isatty: bool = False
    stdin_isatty: bool = False
    # HexTrackr 1.1.x session cookie kept by `hextrackr login --save-cookie` (profile) or HEXTRACKR_COOKIE.
    cookie: str | None = None
    # HexTrackr 1.1.x: read the password from stdin (--password-stdin); never a flag value.
    password_stdin: bool = False
    # Where each value came from ("flag", "env", "profile", "default"), for -v and the error hints.
    sources: Mapping[str, str] = field(default_factory=dict)
    # The streams and variables the command runs with (cli.run(argv, env=…)); the process's by default.
    environment: "Environment" = field(default_factory=_process_environment, compare=False, repr=False)
    # import/watch: --fail-on, --fail-scope, --max, --warn-on (HEXTRACKR_FAIL_ON…, profile keys); gate.Rules
    gate: Any = None

    @property
    def verify(self) -> bool | str:
        """The ``verify`` argument for requests / the socket client."""
        if self.insecure:
            return False
        return self.ca_bundle or True

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")

    def token_hint(self) -> str:
        """Where the token came from, phrased so the user knows what to check."""
        src = self.source_of("token")
        if src == "flag":
            return "check the --token value"
        if src == "env":
            return "check HEXTRACKR_TOKEN"
        if src == "profile":
            return f"check the token of profile '{self.profile}' in {self.config_path} or run `hextrackr login`"
        return "set HEXTRACKR_TOKEN or run `hextrackr login`"


def _pick(
    key: str,
    flag: Any,
    env: Mapping[str, str],
    profile: Mapping[str, Any],
    default: Any,
    sources: dict[str, str],
    env_name: str | None = None,
) -> Any:
    env_name = env_name or ENV_PREFIX + key.upper()
    if flag is not None:
        sources[key] = "flag"
        return flag
    if env.get(env_name):
        sources[key] = "env"
        return env[env_name]
    if key in profile and profile[key] not in (None, ""):
        sources[key] = "profile"
        return profile[key]
    sources[key] = "default"
    return default


def _to_bool(value: Any, name: str) -> bool:
    """``value`` as a boolean ("" is false); a UsageError naming ``name`` otherwise."""
    if value == "":
        return False
    try:
        return bool(KEYS["insecure"].parse(value))
    except BadValue as exc:
        raise UsageError(f"{name} {exc}") from None


def _checked(key: str, value: Any, sources: Mapping[str, str]) -> Any:
    """A flag or environment value through the key's check (profile values were checked on reading)."""
    if value is None or sources.get(key) not in ("flag", "env"):
        return value
    try:
        return KEYS[key].parse(value)
    except BadValue as exc:
        where = ENV_PREFIX + key.upper() if sources[key] == "env" else "--" + key.replace("_", "-")
        raise UsageError(f"{where}: {key.replace('_', ' ')} {exc}") from None


def checked_profile(config_path: Path, name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """Every known key of a profile through its check; a bad one names the file, the profile and the key."""
    out = dict(table)
    for key, value in table.items():
        spec = KEYS.get(key)
        if spec is None or value in (None, ""):
            continue
        try:
            out[key] = spec.parse(value)
        except BadValue as exc:
            how = f"config set {key} -" if spec.secret else f"config set {key} VALUE"
            raise UsageError(
                f"config file {config_path}, profile '{name}': {key} {exc}",
                hint=f"fix it with `hextrackr --profile {name} {how}` or edit the file",
            ) from None
    return out


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    stderr_isatty: bool | None = None,
    stdin_isatty: bool | None = None,
    environment: "Environment | None" = None,
) -> Settings:
    """Resolve settings from the global flags (``None`` = not given), the environment and the config file.

    ``environment`` (streams, isatty, variables) is what ``cli.run`` was given; ``env`` and the isatty
    arguments, when given, override its parts."""
    environment = environment or _process_environment()
    env = environment.environ if env is None else env
    sources: dict[str, str] = {}
    config_path = Path(flags.get("config") or env.get("HEXTRACKR_CONFIG") or default_config_path(env))
    config = load_config(config_path)
    profile_name = flags.get("profile") or env.get("HEXTRACKR_PROFILE") or config.get("default_profile") or "default"
    if not isinstance(profile_name, str):
        raise UsageError(f"default_profile in {config_path} must be a string")
    profile = checked_profile(config_path, profile_name, profile_table(config, profile_name))
    if flags.get("profile") and not profile and profile_name != "default":
        raise UsageError(
            f"profile '{profile_name}' is not in {config_path}",
            hint="see `hextrackr config list`",
        )

    if stderr_isatty is None:
        stderr_isatty = bool(environment.stderr_isatty)
    if stdin_isatty is None:
        stdin_isatty = bool(environment.stdin_isatty)
    dumb = env.get("TERM", "") == "dumb"

    def pick(key: str, flag: Any, default: Any) -> Any:
        return _checked(key, _pick(key, flag, env, profile, default, sources), sources)

    output = pick("output", flags.get("output"), "auto")
    if output == "auto":
        output = "rich" if stderr_isatty and not dumb else "plain"

    no_color = bool(flags.get("no_color")) or "NO_COLOR" in env or dumb or output == "plain"

    dialect = pick("dialect", flags.get("dialect"), "auto")
    server = _pick("server", flags.get("server"), env, profile, None, sources)
    server = _checked("server", server, sources) if str(server or "").strip() else None

    return Settings(
        server=server,
        token=pick("token", flags.get("token"), None),
        profile=profile_name,
        config_path=config_path,
        output=output,
        color=not no_color,
        verbose=int(flags.get("verbose") or 0),
        quiet=bool(flags.get("quiet")) or bool(flags.get("silent")),
        silent=int(flags.get("quiet") or 0) >= 2 or bool(flags.get("silent")),
        log_file=pick("log_file", flags.get("log_file"), None),
        if_changed=bool(pick("if_changed", flags.get("if_changed") or None, False)),
        ca_bundle=pick("ca_bundle", flags.get("ca_bundle"), None),
        insecure=bool(pick("insecure", flags.get("insecure") or None, False)),
        dialect=dialect,
        username=pick("username", flags.get("username"), None),
        poll_interval=float(pick("poll_interval", flags.get("poll_interval"), 1.0)),
        log_interval=float(pick("log_interval", flags.get("log_interval"), 10.0)),
        stderr_isatty=stderr_isatty,
        stdin_isatty=stdin_isatty,
        cookie=pick("cookie", None, None),
        password_stdin=bool(flags.get("password_stdin")),
        sources=sources,
        environment=environment,
        gate=_gate(flags, pick) if "fail_on" in flags else None,  # import and watch only
    )


def _gate(flags: Mapping[str, Any], pick: Any) -> Any:
    """The gate's rules, each key resolved like any setting (flag > HEXTRACKR_FAIL_ON… > profile > none)."""
    from hextrackr_cli.gate import make_rules

    maxima = pick("max", ",".join(flags.get("max") or ()) or None, "")
    return make_rules(
        fail_on=pick("fail_on", flags.get("fail_on"), None),
        scope=pick("fail_scope", flags.get("fail_scope"), None),
        maxima=[m.strip() for m in maxima.split(",") if m.strip()],  # "medium=10,low=50" from env or profile
        warn_on=pick("warn_on", flags.get("warn_on"), None),
    )
