"""Reading a stored upload: its bytes (a .gz or .zip expanded as it is read, capped), the format its first bytes
tell, and the parsing stage's one fast pass (NUL, UTF-8, line count). The position read is the import's progress.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, Callable

from hextrackr_cli.formats import HEAD_BYTES, Format, FormatError, RowError, Utf8Check, detect
from hextrackr_cli.formats.compressed import expanded

SNIFF_LIMIT = HEAD_BYTES  # bytes the server reads synchronously to refuse obvious non-CSV
SCAN_CHUNK = 1 << 20


class ImportProblem(Exception):
    """The file cannot be imported; ``str()`` is the one-line message for the user."""


class Source(io.RawIOBase):
    """Raw reader whose position is the progress (seekable: a zip's directory is at its end)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb", buffering=0)

    @property
    def pos(self) -> int:
        return self._f.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buffer: Any) -> int:
        return self._f.readinto(buffer) or 0

    def close(self) -> None:
        self._f.close()
        super().close()


def sniff(head: bytes, kind: str | None = None, force: str | None = None) -> Format:
    """Refuse what can be told from the first bytes (empty, binary, compressed, not UTF-8, unknown header).

    The same detection as the client's local checks (hextrackr_cli.formats). Returns the detected format.
    Raises ImportProblem with a one-line reason.
    """
    try:
        return detect(head[:SNIFF_LIMIT], kind, complete=len(head) < SNIFF_LIMIT, force=force)
    except FormatError as exc:
        raise ImportProblem(str(exc)) from None


def open_upload(path: Path, limit: int) -> tuple[Source, IO[bytes]]:
    """The upload (for its position) and its export's bytes: a .gz or .zip expanded as it is read, capped."""
    source = Source(path)
    try:
        stream, _, _ = expanded(io.BufferedReader(source, 1 << 16), limit=limit)
    except FormatError as exc:
        source.close()
        raise ImportProblem(str(exc)) from None
    return source, stream


def read_format(path: Path, kind: str | None, force: str | None, limit: int) -> Format:
    """The format of a stored upload, told by its first (expanded) bytes; ImportProblem when none fits."""
    source, f = open_upload(path, limit)
    with source, f:
        try:
            head = f.read(SNIFF_LIMIT)
        except RowError as exc:
            raise ImportProblem(str(exc)) from None
    return sniff(head, kind, force)


def scan(path: Path, size: int, limit: int, marker: bytes | None, tick: Callable[[float], None]) -> int:
    """One fast pass over the bytes (NUL, UTF-8, line count); ``tick(fraction of the upload read)`` after each
    chunk. Returns the estimated row count: lines but the header, or the occurrences of ``marker`` (an XML
    export's record element)."""
    size = max(1, size)
    check = Utf8Check()
    marked = 0
    tail = b""
    source, f = open_upload(path, limit)
    with source, f:
        while True:
            try:
                chunk = f.read(SCAN_CHUNK)
                if not chunk:
                    break
                check.feed(chunk)
            except (FormatError, RowError) as exc:
                raise ImportProblem(str(exc)) from None
            if marker:
                marked += (tail + chunk).count(marker)  # the tail is shorter than the marker: counted once
                tail = chunk[1 - len(marker):]
            tick(source.pos / size)
    try:
        lines = check.finish()
    except FormatError as exc:
        raise ImportProblem(str(exc)) from None
    return marked if marker else max(0, lines - 1)


__all__ = ["SNIFF_LIMIT", "ImportProblem", "Source", "open_upload", "read_format", "scan", "sniff"]
