"""Local checks on a file before anything is sent: a bad file is refused with exit 2 and nothing uploaded.

Streams the file once (never loads it into memory): exists, regular, readable, non-empty, not binary or
compressed, UTF-8 throughout, a comma-separated header of a known format, at least one data row.
"""

from __future__ import annotations

import codecs
import csv
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hextrackr_cli.errors import BadInputError

CHUNK = 1 << 20
MAX_HEADER_BYTES = 1 << 20  # a header line longer than this is not a CSV header

_MAGIC = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0", "an Excel/OLE binary workbook"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xfe", "UTF-16 text (export it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (export it as UTF-8)"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ", "an xz archive"),
)


@dataclass
class LocalFile:
    """A checked file ready to upload."""

    path: Path  # what to open for the upload
    name: str  # what to call it (the original base name, or "stdin.csv")
    size: int
    format_title: str | None = None
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


def check_file(arg: str, *, import_type: str = "vulnerabilities", stdin: IO[bytes] | None = None) -> LocalFile:
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
        lf.format_title = _check_content(lf.path, label, import_type)
    except BaseException:
        lf.cleanup()
        raise
    return lf


def _check_content(path: Path, label: str, import_type: str) -> str | None:
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise BadInputError(f"{label}: cannot read ({exc.strerror})") from None
    with fh:
        head = fh.read(CHUNK)
        if not head.strip():
            raise BadInputError(f"{label}: the file is empty" + (" (only whitespace)" if head else ""))
        for magic, what in _MAGIC:
            if head.startswith(magic):
                raise BadInputError(f"{label}: this is {what}, not a CSV file")
        if b"\x00" in head:
            raise BadInputError(f"{label}: contains NUL bytes; this is binary data, not a CSV file")
        stripped = head.lstrip()
        low = stripped[:200].lower()
        if low.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
            kind = "an HTML page" if b"html" in low else "XML/HTML markup"
            raise BadInputError(f"{label}: this is {kind}, not a CSV file (a saved login or error page?)")
        if stripped[:1] in (b"{", b"["):
            raise BadInputError(f"{label}: this looks like JSON, not a CSV file")
        _check_utf8(fh, head, label)
        return _check_header(path, label, import_type)


def _check_utf8(fh: IO[bytes], head: bytes, label: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    chunk = head
    controls = 0
    while chunk:
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            bad_line = line + chunk.count(b"\n", 0, exc.start)
            raise BadInputError(
                f"{label}: line {bad_line} is not valid UTF-8 (byte 0x{chunk[exc.start]:02x}); "
                "re-export the file as UTF-8"
            ) from None
        if b"\x00" in chunk:
            raise BadInputError(f"{label}: contains NUL bytes near line {line}; this is binary data, not a CSV file")
        if controls <= 8:
            controls += sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t\f\v")
            if controls > 8:
                raise BadInputError(f"{label}: contains control characters; this looks like binary data, not a CSV")
        line += chunk.count(b"\n")
        chunk = fh.read(CHUNK)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BadInputError(f"{label}: line {line} ends with a truncated UTF-8 sequence") from None


def _check_header(path: Path, label: str, import_type: str) -> str | None:
    with open(path, "r", encoding="utf-8-sig", newline="") as fh:
        first = fh.readline(MAX_HEADER_BYTES + 1)
        if len(first) > MAX_HEADER_BYTES:
            raise BadInputError(f"{label}: the first line is longer than 1 MiB; this is not a CSV header line")
        try:
            header = next(csv.reader([first]))
        except (csv.Error, StopIteration):
            raise BadInputError(f"{label}: the header line is not valid CSV") from None
        header = [h.strip() for h in header]
        if not any(header):
            raise BadInputError(f"{label}: the header row is empty")
        if len(header) == 1:
            for sep, name in ((";", "semicolons (;)"), ("\t", "tabs"), ("|", "pipes (|)")):
                if sep in header[0]:
                    raise BadInputError(
                        f"{label}: wrong delimiter: the header is separated by {name}, not commas; "
                        "export it as comma-separated CSV"
                    )
        seen: set[str] = set()
        for i, h in enumerate(header, 1):
            if not h:
                raise BadInputError(f"{label}: column {i} of the header has no name")
            key = h.lower()
            if key in seen:
                raise BadInputError(f"{label}: duplicate column {h!r} in the header")
            seen.add(key)
        title = _detect(header, label, import_type)
        has_row = False
        for rest in fh:
            if rest.strip():
                has_row = True
                break
        if not has_row:
            raise BadInputError(f"{label}: header only, no data rows")
        return title


def _detect(header: list[str], label: str, import_type: str) -> str | None:
    try:
        from hextrackr_cli import formats
    except ImportError:  # the format module is optional for the client
        return None
    try:
        fmt = formats.detect_format(header, import_type)
    except formats.FormatError as exc:
        if import_type == "vulnerabilities":
            try:
                other = formats.detect_format(header, "tickets")
            except formats.FormatError:
                other = None
            if other is not None:
                raise BadInputError(
                    f"{label}: this is a ticket CSV ({other.title}); import it with --type tickets"
                ) from None
        elif import_type == "tickets":
            try:
                other = formats.detect_format(header, "vulnerabilities")
            except formats.FormatError:
                other = None
            if other is not None:
                raise BadInputError(
                    f"{label}: this is a vulnerability scan ({other.title}), not a ticket CSV; drop --type tickets"
                ) from None
        text = "".join(ch if ch.isprintable() else "?" for ch in str(exc))  # header cells: no ESC/CR in a message
        raise BadInputError(f"{label}: {text}") from None
    return getattr(fmt, "title", None)
