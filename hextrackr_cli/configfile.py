"""Read and write the TOML config file (see ``hextrackr_cli.settings`` for its layout).

Writes are atomic and private: the directory is created with mode 0700, the file is written to a temporary
file that is 0600 from its first byte (``mkstemp``) and moved over the old one with ``os.replace``, so no
reader ever sees a half-written file and the secrets are never readable by others, not even for a moment.
Concurrent writers (``hextrackr serve`` storing its token while ``hextrackr login`` runs) are serialised with
an advisory lock on the directory.

The writer is a minimal, correct TOML serialiser for what we store (top-level keys and flat tables of
strings, booleans, numbers); reading goes through ``tomllib``. Comments in a hand-edited file are not kept.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

from hextrackr_cli import profile_keys
from hextrackr_cli.errors import UsageError
from hextrackr_cli.profile_keys import KEYS, SECRET_KEYS, BadValue
from hextrackr_cli.settings import load_config

FILE_MODE = 0o600
DIR_MODE = 0o700
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# --------------------------------------------------------------------------- TOML writing
def _quote(text: str) -> str:
    """A TOML basic string: every character that needs it is escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _quote(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # always has a '.' or an exponent, as TOML wants
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot store {type(value).__name__} in the config file")


def dumps(config: Mapping[str, Any]) -> str:
    """Serialise a config mapping to TOML: scalars first, then one ``[table]`` per nested mapping."""
    lines: list[str] = []

    def emit(table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if prefix and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for k, v in scalars:
            if v is None:
                continue
            lines.append(f"{_key(str(k))} = {_value(v)}")
        for k, v in tables:
            emit(v, prefix + (str(k),))

    emit(config, ())
    return "\n".join(lines) + "\n" if lines else ""


# --------------------------------------------------------------------------- atomic, private file I/O
def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` (and missing parents) with mode 0700; existing directories are left alone."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)  # the umask can only make it stricter
        except FileExistsError:
            pass


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise read-modify-write cycles between processes (advisory lock on the directory)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_config(path: Path | str, config: Mapping[str, Any]) -> None:
    """Write ``config`` to ``path`` atomically with mode 0600."""
    path = Path(path)
    _make_private_dirs(path.parent)
    _write_atomic(path, dumps(config))


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp already uses 0600; be explicit
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- values
def check_profile_name(name: str) -> str:
    if not isinstance(name, str) or not _PROFILE_NAME.match(name):
        raise UsageError(f"invalid profile name {name!r}", hint="use letters, digits, '.', '_' or '-'")
    return name


def coerce_value(key: str, value: Any) -> Any:
    """Check ``key`` is a profile key and convert ``value`` (often a string from the command line) with the
    key's check (``hextrackr_cli.profile_keys``, the same the reader applies); a UsageError names why."""
    try:
        spec = profile_keys.key(key)
    except BadValue as exc:
        raise UsageError(str(exc), hint="known keys: " + ", ".join(sorted(KEYS))) from None
    if value is None:
        return None
    try:
        return spec.parse(value)
    except BadValue as exc:
        raise UsageError(f"{key} {exc}") from None


def mask(key: str, value: Any) -> str:
    """How a value is shown to a person: secrets never in full (only the last 4 characters of a long one)."""
    if key in SECRET_KEYS and value not in (None, ""):
        text = str(value)
        return "****" + text[-4:] if len(text) >= 20 else "****"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- the API other modules use
def set_profile_values(path: Path | str, profile: str, **values: Any) -> None:
    """Set keys of ``profile`` (creating it); a value of ``None`` removes the key. File mode 0600, atomic."""
    path = Path(path)
    check_profile_name(profile)
    coerced = {k: coerce_value(k, v) for k, v in values.items()}
    _make_private_dirs(path.parent)
    with _locked(path.parent):
        config = load_config(path)
        profiles = config.get("profiles")
        if not isinstance(profiles, dict):
            profiles = config["profiles"] = {}
        table = profiles.get(profile)
        if not isinstance(table, dict):
            table = profiles[profile] = {}
        for k, v in coerced.items():
            if v is None:
                table.pop(k, None)
            else:
                table[k] = v
        _write_atomic(path, dumps(config))


def set_default_profile(path: Path | str, profile: str | None) -> None:
    """Make ``profile`` the one used when neither ``--profile`` nor ``HEXTRACKR_PROFILE`` is given."""
    path = Path(path)
    if profile is not None:
        check_profile_name(profile)
    _make_private_dirs(path.parent)
    with _locked(path.parent):
        config = load_config(path)
        if profile is None:
            config.pop("default_profile", None)
        else:
            config["default_profile"] = profile
        # keep default_profile first: dumps writes scalars before tables anyway
        _write_atomic(path, dumps(config))


def get_profile_value(path: Path | str, profile: str, key: str, default: Any = None) -> Any:
    """The raw (unmasked) value of ``key`` in ``profile``, or ``default``."""
    config = load_config(Path(path))
    profiles = config.get("profiles", {})
    table = profiles.get(profile, {}) if isinstance(profiles, dict) else {}
    if not isinstance(table, dict):
        return default
    return table.get(key, default)


def list_profiles(path: Path | str) -> dict[str, dict[str, Any]]:
    """Every profile and its raw values, in file order."""
    config = load_config(Path(path))
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict):
        return {}
    return {name: dict(table) for name, table in profiles.items() if isinstance(table, dict)}


def default_profile(path: Path | str) -> str | None:
    value = load_config(Path(path)).get("default_profile")
    return value if isinstance(value, str) else None
