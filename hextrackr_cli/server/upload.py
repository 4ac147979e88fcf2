"""An upload as the HTTP API receives it: multipart callbacks that keep the text fields (small) in memory and
stream the file to the upload directory with its sha256 and size; the HTTP errors the API answers with."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import TYPE_CHECKING, Any, Callable

from hextrackr_cli import protocol
from hextrackr_cli.formats import FormatError
from hextrackr_cli.formats.compressed import expanded_head
from hextrackr_cli.server.reading import SNIFF_LIMIT, ImportProblem

if TYPE_CHECKING:
    from hextrackr_cli.server.context import ServerContext

MAX_FIELD = 64 * 1024  # text form fields
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or []


def clean_filename(name: str) -> str:
    """Base name only, no control characters, at most 255 UTF-8 bytes."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _CONTROL_RE.sub("", base).strip()
    if base in ("", ".", ".."):
        base = "upload.csv"
    encoded = base.encode("utf-8")[:255]
    return encoded.decode("utf-8", "ignore")


class Upload:
    """Multipart callbacks: text fields kept in memory (small), the file streamed to disk with sha256 + size."""

    def __init__(self, ctx: ServerContext, kind: str) -> None:
        self.ctx = ctx
        self.kind = kind
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.path: Any = None
        self.size = 0
        self.sha = hashlib.sha256()
        self.error: HttpError | None = None
        self._file: Any = None
        self._kept = False
        self._headers: dict[str, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._part: str | None = None  # name of the current part
        self._is_file = False
        self._buf = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._part = None
        self._is_file = False
        self._buf = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._hname.decode("latin-1").lower()] = self._hvalue
        self._hname = b""
        self._hvalue = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._part = name
        if name == protocol.UPLOAD_FIELD:
            if self.path is not None:
                self.error = HttpError(400, "more than one csvFile field", "bad_request")
                return
            raw = params.get(b"filename", b"upload.csv")
            self.filename = raw.decode("utf-8", "replace")
            self._is_file = True
            self.ctx.upload_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, path = tempfile.mkstemp(prefix="upload-", suffix=".csv", dir=self.ctx.upload_dir)
            self._file = os.fdopen(fd, "wb")
            from pathlib import Path

            self.path = Path(path)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self._is_file:
            chunk = data[start:end]
            self.size += len(chunk)
            if self.size > self.ctx.max_upload:
                self.error = HttpError(413, f"upload larger than the limit of {self.ctx.max_upload} bytes",
                                       "too_large")
                return
            self.sha.update(chunk)
            self._file.write(chunk)
        elif self._part is not None:
            self._buf += data[start:end]
            if len(self._buf) > MAX_FIELD:
                self.error = HttpError(400, f"form field {self._part[:32]!r} is too long", "bad_request")

    def _part_end(self) -> None:
        if self._is_file:
            if self._file is not None:
                self._file.close()
                self._file = None
        elif self._part:
            self.fields[self._part] = self._buf.decode("utf-8", "replace")
        self._is_file = False

    def head(self) -> bytes:
        """The export's first bytes: a .gz or .zip upload's expanded ones (ImportProblem if it is damaged)."""
        with open(self.path, "rb") as f:
            try:
                head, _ = expanded_head(f, SNIFF_LIMIT, limit=self.ctx.max_upload)
            except FormatError as exc:
                raise ImportProblem(str(exc)) from None
            return head

    def keep(self) -> Any:
        self._kept = True
        return self.path

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self._kept:
            self.discard()

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None and not self._kept:
            try:
                os.unlink(self.path)
            except OSError:
                pass
