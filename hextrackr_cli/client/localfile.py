"""Local checks on a file before anything is sent: a bad file is refused with exit 2 and nothing uploaded.

Streams the file once (never loads it into memory): exists, regular, readable, non-empty, not binary or
compressed, UTF-8 throughout, a comma-separated header of a known format, at least one data row.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hextrackr_cli.errors import BadInputError
from hextrackr_cli.formats.compressed import expanded
from hextrackr_cli.formats import (
    HEAD_BYTES,
    VULNERABILITIES,
    Format,
    FormatError,
    RowError,
    Utf8Check,
    check_bytes,
    detect,
)

CHUNK = 1 << 20


@dataclass
class LocalFile:
    """A checked file ready to upload."""

    path: Path  # what to open for the upload
    name: str  # what to call it (the original base name, or "stdin.csv")
    size: int
    format_title: str | None = None
    format_name: str | None = None
    temporary: bool = False

    def cleanup(self) -> None:
        if self.temporary:
            try:
                os.unlink(self.path)
                os.rmdir(self.path.parent)
            except OSError:
                pass


def spool_stdin(stream: IO[bytes] | None = None) -> LocalFile:
    """``-``: copy stdin to a private temporary file (so it can be checked and streamed like any file)."""
    src = stream or sys.stdin.buffer
    d = tempfile.mkdtemp(prefix="hextrackr-")
    path = Path(d) / "stdin.csv"
    try:
        with open(path, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    except BaseException:
        try:
            os.unlink(path)
            os.rmdir(d)
        except OSError:
            pass
        raise
    return LocalFile(path=path, name="stdin.csv", size=path.stat().st_size, temporary=True)


def check_file(arg: str, *, import_type: str = "vulnerabilities", stdin: IO[bytes] | None = None,
               format_name: str | None = None) -> LocalFile:
    """Check ``arg`` (a path or ``-``); raise BadInputError naming the file and the problem."""
    if arg == "-":
        lf = spool_stdin(stdin)
        label = "stdin"
    else:
        p = Path(arg)
        label = arg
        try:
            st = p.stat()
        except FileNotFoundError:
            raise BadInputError(f"{label}: no such file") from None
        except PermissionError:
            raise BadInputError(f"{label}: permission denied") from None
        except OSError as exc:
            raise BadInputError(f"{label}: cannot read ({exc.strerror})") from None
        if p.is_dir():
            raise BadInputError(f"{label}: is a directory, not a CSV file")
        if not p.is_file():
            raise BadInputError(f"{label}: not a regular file")
        if not os.access(p, os.R_OK):
            raise BadInputError(f"{label}: permission denied (not readable)")
        lf = LocalFile(path=p, name=p.name, size=st.st_size)
    try:
        fmt = _check_content(lf.path, label, import_type, format_name)
        lf.format_title, lf.format_name = fmt.title, fmt.name
    except BaseException:
        lf.cleanup()
        raise
    return lf


def _check_content(path: Path, label: str, import_type: str, format_name: str | None = None) -> Format:
    """The same checks and detection as the server's import (hextrackr_cli.formats), before anything is sent."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise BadInputError(f"{label}: cannot read ({exc.strerror})") from None
    with fh:
        try:
            export, compression, _ = expanded(fh)  # a .gz or .zip: its export is checked, as the server will
            head = export.read(CHUNK)
            check_bytes(head)
            fmt = detect(head[:HEAD_BYTES], import_type, complete=len(head) < HEAD_BYTES, force=format_name)
            check = Utf8Check()
            chunk = head
            while chunk:
                check.feed(chunk)
                chunk = export.read(CHUNK)
            check.finish()
        except (FormatError, RowError) as exc:
            raise BadInputError(f"{label}: {_printable(str(exc))}") from None
    _check_rows(path, label, fmt)
    return fmt


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)  # header cells: no ESC/CR in a message


def _check_rows(path: Path, label: str, fmt: Format) -> None:
    """At least one data row after the header; a scan export without one is a clean scan (the server says so)."""
    if fmt.kind == VULNERABILITIES:
        return
    with open(path, "rb") as fh:
        try:
            export, _, _ = expanded(fh)
            for _ in fmt.read(export):
                return
        except (RowError, FormatError):
            return  # a row the server will refuse, naming it: it is a data row
    raise BadInputError(f"{label}: header only, no data rows")
