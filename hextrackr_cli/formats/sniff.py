"""What the first bytes of a file say: refusals of what is plainly not an export, and the parsed head for detection.

One implementation for the client's local checks and the server's import: ``check_bytes`` (empty, binary,
compressed, UTF-16, HTML, JSON), ``Utf8Check`` (fed the whole file in chunks: NUL and UTF-8, naming the line) and
``parse_head`` (the first CSV records with each candidate delimiter, or an XML root element).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

from hextrackr_cli.formats.records import FormatError

HEAD_BYTES = 64 * 1024  # what detection needs: a preamble, the header and a few rows
MAX_HEADER_LINES = 40  # a preamble (Qualys) is at most this many lines before the header
DELIMITERS = (",", ";", "\t")

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "a gzip archive; decompress it and import the CSV"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?); export it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an Excel/OLE binary workbook; export it as CSV"),
    (b"%PDF", "a PDF document, not a CSV file"),
    (b"\xff\xfe", "UTF-16 text; export it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; export it as UTF-8"),
    (b"BZh", "a bzip2 archive, not a CSV file"),
    (b"\xfd7zXZ", "an xz archive, not a CSV file"),
)
_XML_PROLOG_RE = re.compile(rb"\A(?:\s+|<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*", re.S | re.I)
_XML_ROOT_RE = re.compile(rb"<([A-Za-z_][\w.\-]*(?::[\w.\-]+)?)")


def check_bytes(head: bytes) -> None:
    """Refuse what the first bytes tell: FormatError with a one-line reason (no file name)."""
    if not head.strip():
        raise FormatError("the file is empty" + (" (only whitespace)" if head else ""))
    for magic, what in MAGIC:
        if head.startswith(magic):
            raise FormatError(f"this is {what}")
    if b"\x00" in head:
        raise FormatError("contains NUL bytes: this is binary data, not a CSV text file")
    low = head.lstrip()[:200].lower()
    if low.startswith((b"<!doctype html", b"<html")) or (low.startswith(b"<") and b"<html" in low):
        raise FormatError("this is an HTML page, not a CSV file (a saved login or error page?)")
    if low[:1] in (b"{", b"["):
        raise FormatError("this looks like JSON, not a CSV file")


class Utf8Check:
    """Fed a file's bytes in order: refuses NUL bytes, invalid UTF-8 and binary control characters, naming the line."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.lines = 0  # newlines seen
        self._controls = 0
        self.last = b""

    def feed(self, chunk: bytes) -> None:
        if b"\x00" in chunk:
            line = self.lines + chunk[: chunk.index(b"\x00")].count(b"\n") + 1
            raise FormatError(f"contains NUL bytes near line {line}: this is binary data, not a CSV text file")
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = self.lines + chunk[: max(0, exc.start)].count(b"\n") + 1
            raise FormatError(
                f"line {line} is not valid UTF-8 (byte 0x{chunk[exc.start]:02x}); re-export the file as UTF-8"
            ) from None
        if self._controls <= 8:
            self._controls += sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\r\n\t\f\v")
            if self._controls > 8:
                raise FormatError("contains control characters; this looks like binary data, not a CSV")
        self.lines += chunk.count(b"\n")
        if chunk:
            self.last = chunk[-1:]

    def finish(self) -> int:
        """Checks the end; returns the number of lines."""
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FormatError(f"line {self.lines + 1} ends with a truncated UTF-8 sequence") from None
        return self.lines + (1 if self.last and self.last != b"\n" else 0)


@dataclass
class Head:
    """The parsed start of a file: CSV records per candidate delimiter (with the line each starts on), or XML."""

    data: bytes
    text: str = ""
    xml_root: str | None = None  # the root element's local name when the file is XML
    records: dict[str, list[tuple[int, list[str]]]] = field(default_factory=dict)  # delimiter -> [(line, cells)]
    complete: bool = False  # the sample is the whole file


def parse_head(head: bytes, *, complete: bool = False) -> Head:
    """Parse ``head`` (the file's first bytes; ``complete`` when that is all of it). FormatError for bytes that are
    no text export at all (see check_bytes) or a first line too long to be a header."""
    check_bytes(head)
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if complete or exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            line = head[: exc.start].count(b"\n") + 1
            raise FormatError(
                f"line {line} is not valid UTF-8 (byte 0x{head[exc.start]:02x}); re-export the file as UTF-8"
            ) from None
        text = head[: exc.start].decode("utf-8-sig", "ignore")
    out = Head(data=head, text=text, complete=complete)
    start = head.lstrip()[:1]
    if start == b"<":
        prolog = _XML_PROLOG_RE.match(head)  # matches any text (every part of the prolog is optional)
        m = _XML_ROOT_RE.match(head, prolog.end() if prolog else 0)
        out.xml_root = m.group(1).decode("ascii", "replace").rsplit(":", 1)[-1] if m else ""
        return out
    if "\n" not in text and not complete and len(head) >= HEAD_BYTES:
        raise FormatError(f"the first line is longer than {HEAD_BYTES // 1024} KiB; this is not a CSV header line")
    if not complete:  # drop a last line the sample cut
        cut = max(text.rfind("\n"), 0)
        body = text[: cut + 1] if cut else text
    else:
        body = text
    for delimiter in DELIMITERS:
        out.records[delimiter] = _records(body, delimiter)
    return out


def _records(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    found: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for row in reader:
            found.append((line, row))
            line = reader.line_num + 1
            if len(found) > MAX_HEADER_LINES:
                break
    except csv.Error:
        pass  # a quote the sample cut: detection uses what came before
    return found
