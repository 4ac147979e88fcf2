"""Readers, their registry, and the one detection every caller uses (the client's local checks and the server).

A reader names its format, says whether a file's header (CSV) or root element (XML) is its signature, and reads a
binary stream into records. ``detect(head)`` tries every registered reader in order (vendor formats before the
generic columns, so a file with a vendor's signature columns is never generic) and returns a ``Format``: the reader
plus where everything sits in this file. ``fmt.read(stream)`` then yields the file's records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Iterator, Mapping, Protocol, Sequence

from hextrackr_cli.formats.records import TICKETS, VULNERABILITIES, FormatError, Record
from hextrackr_cli.formats.sniff import Head, parse_head
from hextrackr_cli.formats.values import printable


@dataclass
class ReadStats:
    """What ``read()`` counted besides the records it yielded."""

    records: int = 0  # data records read (a row with several CVEs is one record, several findings)
    empty_rows: int = 0  # rows of empty fields skipped (",,,,," after a spreadsheet save)
    lines: int = 0  # the last line read


@dataclass
class Format:
    """A detected format: the reader and what it found in this file's head."""

    reader: "Reader"
    header: tuple[str, ...] = ()  # the header's cells, cleaned (BOM, surrounding spaces)
    index: Mapping[str, int] = field(default_factory=dict)  # field -> column
    delimiter: str = ","
    header_record: int = 0  # CSV records before the header (a preamble)
    header_line: int = 1  # the line the header is on
    stats: ReadStats = field(default_factory=ReadStats)

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def kind(self) -> str:
        return self.reader.kind

    @property
    def title(self) -> str:
        return self.reader.title

    @property
    def default_vendor(self) -> str:
        return self.reader.vendor

    def column(self, fld: str) -> str:
        """The file's own name of the column holding ``fld`` (the field's name when the file has none)."""
        i = self.index.get(fld, -1)
        return self.header[i] if 0 <= i < len(self.header) else fld

    def read(self, stream: IO[bytes]) -> Iterator[Record]:
        """The file's records; RowError names record, line and column. ``stats`` counts as it goes."""
        return self.reader.read(stream, self)


class Reader(Protocol):
    """One file family. ``match`` looks at a parsed head and returns a Format or None."""

    name: str  # what --format and the summary call it: tenable, nessus, ...
    title: str  # for people: "Tenable VM export"
    kind: str  # vulnerabilities | tickets
    vendor: str  # the default vendor of its imports

    def match(self, head: Head) -> Format | None: ...

    def read(self, stream: IO[bytes], fmt: Format) -> Iterator[Record]: ...


_READERS: list[Reader] = []


def register(reader: Reader, *, before: str | None = None) -> Reader:
    """Add a reader; ``before`` puts it ahead of the named one (readers are tried in order)."""
    if any(r.name == reader.name for r in _READERS):
        raise ValueError(f"a reader named {reader.name!r} is already registered")
    names = [r.name for r in _READERS]
    _READERS.insert(names.index(before) if before in names else len(_READERS), reader)
    return reader


def readers(kind: str | None = None) -> list[Reader]:
    return [r for r in _READERS if kind is None or r.kind == kind]


def reader_named(name: str) -> Reader:
    for r in _READERS:
        if r.name == name:
            return r
    raise FormatError(f"no format named {name!r}; the formats are: {', '.join(names())}")


def names(kind: str | None = None) -> list[str]:
    return [r.name for r in readers(kind)]


def expected(kind: str | None = None) -> str:
    return ", ".join(e for e in (getattr(r, "expected", r.title) for r in readers(kind)) if e)


def detect(head: bytes | Head, kind: str | None = None, *, complete: bool = False, force: str | None = None
           ) -> Format:
    """The format of a file whose first bytes are ``head`` (``complete``: that is the whole file).

    ``kind`` limits it to vulnerabilities or tickets: a file of the other kind is refused naming it. ``force``
    names the one reader to use (``--format``); a file it cannot read is refused naming the detected format.
    Raises FormatError with a one-line message.
    """
    parsed = head if isinstance(head, Head) else parse_head(head, complete=complete)
    if force:
        reader = reader_named(force)
        if kind is not None and reader.kind != kind:
            raise FormatError(f"format {force} reads {reader.kind}, not {kind}")
        try:
            forced = reader.match(parsed)
        except FormatError:
            forced = None
        if forced is not None:
            return forced
        try:
            found = detect(parsed, kind)
        except FormatError as exc:
            raise FormatError(f"this is not a {reader.title} ({force}) file: {exc}") from None
        raise FormatError(f"this is not a {reader.title} ({force}) file: it looks like {found.title}"
                          f" (--format {found.name})")
    fmt = _match(parsed, kind)
    if fmt is not None:
        return fmt
    other = {VULNERABILITIES: TICKETS, TICKETS: VULNERABILITIES}.get(kind or "")
    if other is not None:
        guess = _match(parsed, other)
        if guess is not None:
            if other == TICKETS:
                raise FormatError(f"this is a ticket CSV ({guess.title}); import it with --type tickets")
            raise FormatError(f"this is a vulnerability scan ({guess.title}), not a ticket CSV; drop --type tickets")
    raise FormatError(_unknown(parsed, kind))


def _match(head: Head, kind: str | None) -> Format | None:
    for reader in readers(kind):
        fmt = reader.match(head)
        if fmt is not None:
            return fmt
    return None


def _unknown(head: Head, kind: str | None) -> str:
    if head.xml_root is not None:
        return (f"this is XML/HTML markup (root element <{printable(head.xml_root)}>), not an export this version"
                " reads (a saved login or error page?)")
    rows = head.records.get(",") or []
    header = [c.lstrip("\ufeff").strip() for c in rows[0][1]] if rows else []
    if not any(header):
        return "the header row is empty"
    if len(header) == 1:
        for sep, name, shown in ((";", "semicolons", "';'"), ("\t", "tabs", "tab"), ("|", "pipes", "'|'")):
            if sep in header[0]:
                return (f"the header is separated by {name} ({shown} delimiter) and matches no known format;"
                        f" expected {expected(kind)}")
    shown = ", ".join(printable(h) for h in header[:8]) + (", ..." if len(header) > 8 else "")
    return f"unknown columns ({shown}); expected {expected(kind)}"


def detect_format(header: Sequence[str], kind: str | None = None) -> Format:
    """The format of a CSV whose header row is ``header`` (comma-separated, no preamble)."""
    cells = ["" if not isinstance(h, str) else h for h in header]
    head = Head(data=b"", records={",": [(1, cells)]}, complete=True)
    return detect(head, kind)
