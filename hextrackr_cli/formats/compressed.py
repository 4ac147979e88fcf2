"""Compressed exports: ``.csv.gz``, ``.nessus.gz`` and a ``.zip`` holding one export, read as a stream.

``expanded(stream)`` returns the stream itself for a plain file, or a reader of the expanded bytes: nothing is
decompressed ahead of the reader and nothing is written anywhere. The expanded size is capped while it is read
(the upload limit applies to what the file expands to), so a gzip or zip bomb is refused after ``limit`` bytes
whatever its headers claim; a damaged archive is one line. Detected by the first bytes, never by the file name.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from typing import IO, Any

from hextrackr_cli.formats.records import FormatError, RowError

GZIP = "gzip"
ZIP = "zip"
_MAGIC = ((b"\x1f\x8b", GZIP), (b"PK\x03\x04", ZIP), (b"PK\x05\x06", ZIP), (b"PK\x07\x08", ZIP))  # PK 5 6: an empty zip
DEFAULT_LIMIT = 1 << 30  # the server's default upload limit


def compression_of(head: bytes) -> str | None:
    """``gzip``, ``zip`` or None (not compressed) from a file's first bytes."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


class _Expanding(io.RawIOBase):
    """The expanded bytes of ``inner`` (a gzip or zip member reader): counted, capped, errors made one line.

    A refusal raised while the records are being read is a RowError (the import fails, nothing stored); raised
    while the head is read for detection, the caller gets it as it is (a RowError is a ValueError too).
    """

    def __init__(self, inner: Any, what: str, limit: int, closing: tuple[Any, ...] = ()) -> None:
        self._inner = inner
        self.what = what
        self.limit = limit
        self.expanded = 0
        self._closing = closing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inner.read(len(buffer))
        except (EOFError, gzip.BadGzipFile, zipfile.BadZipFile, zlib.error, OSError, ValueError,
                NotImplementedError) as exc:
            raise RowError(damaged(self.what, exc)) from None
        n = len(data)
        self.expanded += n
        if self.expanded > self.limit:
            raise RowError(f"the {self.what} expands to more than {_size(self.limit)} (the upload limit applies to"
                           " the expanded size); a zip bomb? nothing was imported")
        buffer[:n] = data
        return n

    def close(self) -> None:
        for c in (self._inner, *self._closing):
            try:
                c.close()
            except Exception:
                pass
        super().close()


def damaged(what: str, exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "end-of-stream" in text:
        text = "it ends before its data does (truncated?)"
    elif "CRC" in text:
        text = "a checksum does not match (corrupted)"
    elif isinstance(exc, zlib.error) or "decompressing" in text:
        text = "its compressed data is corrupted"
    else:
        text = " ".join(text.split())[:80]
    return f"the {what} is damaged: {text}"


def expanded(stream: IO[bytes], *, limit: int = DEFAULT_LIMIT) -> tuple[IO[bytes], str | None, str | None]:
    """(a reader of the export's bytes, the compression or None, the zip member's name or None).

    ``stream`` must be seekable for a zip (its directory is at the end). FormatError (one line) for an archive
    that is not one export: several files, only folders, encrypted, damaged directory.
    """
    head = stream.read(4)
    stream.seek(0)
    kind = compression_of(head)
    if kind is None:
        return stream, None, None
    if kind == GZIP:
        inner: Any = gzip.GzipFile(fileobj=stream, mode="rb")
        return io.BufferedReader(_Expanding(inner, "gzip file", limit), 1 << 16), GZIP, None
    try:
        archive = zipfile.ZipFile(stream)
        members = [i for i in archive.infolist()
                   if not i.is_dir() and not i.filename.startswith("__MACOSX/")
                   and not i.filename.rsplit("/", 1)[-1].startswith("._")]
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise FormatError(damaged("zip archive", exc)) from None  # NotImplementedError: "zip file version 8.4"
    if any(m.filename == "[Content_Types].xml" or m.filename.startswith("xl/") for m in members):
        raise FormatError("this is a zip archive holding an Excel workbook (.xlsx), not an export; save it as CSV")
    if len(members) != 1:
        names = ", ".join(m.filename[:40] for m in members[:3]) + (", ..." if len(members) > 3 else "")
        raise FormatError(f"the zip archive holds {len(members)} files ({names or 'none'}); a zip must hold exactly"
                          " one export")
    member = members[0]
    if member.flag_bits & 0x1:
        raise FormatError(f"the zip archive's {member.filename[:60]} is encrypted; zip it without a password")
    try:
        inner = archive.open(member)
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise FormatError(damaged("zip archive", exc)) from None
    return (io.BufferedReader(_Expanding(inner, "zip archive", limit, (archive,)), 1 << 16), ZIP,
            member.filename)


def expanded_head(stream: IO[bytes], size: int, *, limit: int = DEFAULT_LIMIT) -> tuple[bytes, bool]:
    """The first ``size`` expanded bytes and whether that is the whole export (for detection)."""
    reader, _, _ = expanded(stream, limit=limit)
    try:
        head = reader.read(size + 1)
    except RowError as exc:
        raise FormatError(str(exc)) from None
    finally:
        if reader is not stream:
            reader.close()
    return head[:size], len(head) <= size
