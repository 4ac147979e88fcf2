"""The local import ledger: which file contents already completed an import, for servers that cannot say.

HexTrackr 1.1.x has no "did this content complete?" question (our server answers it itself, see
``docs/wire.md``), so ``--if-changed`` against 1.1.x asks this file: ``$XDG_STATE_HOME/hextrackr/ledger.jsonl``,
one JSON object per line, one line per completed import (sha256 of the bytes sent, server, type, vendor,
session, import id, time, file name). Only completed imports are written: a failed or cancelled one never
counts.

Appends are atomic: each line goes out in one ``write(2)`` on an ``O_APPEND`` descriptor, so two runs writing
at once interleave whole lines, never bytes. A reader skips anything that is not a whole JSON line (a torn last
line after a power cut), so one bad line never hides the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Iterator, Mapping

from hextrackr_cli.errors import UsageError
from hextrackr_cli.settings import default_state_dir

CHUNK = 1 << 20
LEDGER_NAME = "ledger.jsonl"


def file_sha256(path: Path | str) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def server_key(server: str) -> str:
    """The server as the ledger compares it: no trailing slash, scheme and host in lower case."""
    server = server.strip().rstrip("/")
    scheme, sep, rest = server.partition("://")
    if not sep:
        return server
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    """One completed import."""

    sha256: str
    server: str
    type: str
    vendor: str
    session: str
    time: str  # ISO 8601 UTC, when it completed
    import_id: str | None = None
    name: str | None = None

    def matches(self, sha256: str, server: str, import_type: str, vendor: str) -> bool:
        return (self.sha256, self.server, self.type, self.vendor) == (sha256, server_key(server), import_type, vendor)


class Ledger:
    """The ledger file (default: in the XDG state dir)."""

    def __init__(self, path: Path | str | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_state_dir(env) / LEDGER_NAME

    def record(self, entry: Entry) -> None:
        """Append ``entry`` as one line, atomically (one write on an O_APPEND descriptor), and fsync it."""
        row = asdict(entry)
        row["server"] = server_key(entry.server)
        line = (json.dumps(row, separators=(",", ":"), sort_keys=True) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write the import ledger {self.path}: {exc.strerror or exc}") from None
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk mid-line: the torn line is skipped by readers; say so
                raise UsageError(f"the import ledger {self.path} is full (wrote {written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError as exc:
            raise UsageError(f"cannot write the import ledger {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    def entries(self) -> Iterator[Entry]:
        """Every whole, well-formed entry, oldest first; a missing ledger has none."""
        try:
            f: IO[bytes] = open(self.path, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UsageError(f"cannot read the import ledger {self.path}: {exc.strerror or exc}") from None
        with f:
            for raw in f:
                entry = _parse(raw)
                if entry is not None:
                    yield entry

    def find(self, sha256: str, server: str, import_type: str, vendor: str) -> Entry | None:
        """The latest completed import of these bytes (with this type and vendor) on this server, if any."""
        found = None
        for entry in self.entries():
            if entry.matches(sha256, server, import_type, vendor):
                found = entry
        return found


def _parse(raw: bytes) -> Entry | None:
    if not raw.endswith(b"\n"):
        return None  # torn by a crash mid-write
    try:
        row = json.loads(raw)
        entry = Entry(
            sha256=row["sha256"], server=row["server"], type=row["type"], vendor=row["vendor"],
            session=row["session"], time=row["time"], import_id=row.get("import_id"), name=row.get("name"),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(v, str) for v in (entry.sha256, entry.server, entry.type, entry.vendor, entry.session, entry.time)):
        return None
    return entry
