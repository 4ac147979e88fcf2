"""The file a HexTrackr 1.1.x server is sent: any supported export converted, streaming, to the columns 1.1.12 reads.

The conversion itself is pure (``hextrackr_cli.formats.hx11``); this module gives it a file: the export is read
once, record by record, into a private temporary CSV (memory stays flat whatever the size), which is then uploaded
like any file and removed. A record the reader refuses is refused here, before anything is sent (exit 2).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from hextrackr_cli.client.http import NothingToSend as _NothingToSend
from hextrackr_cli.errors import BadInputError
from hextrackr_cli.formats import HEAD_BYTES, VULNERABILITIES, FormatError, Record, RowError, detect
from hextrackr_cli.formats.compressed import compression_of, expanded, expanded_head
from hextrackr_cli.formats.hx11 import needs_conversion, write_hx11_csv

_EXTENSIONS = (".csv.gz", ".nessus.gz", ".xml.gz", ".gz", ".zip", ".csv", ".nessus", ".xml")


@dataclass
class Prepared:
    """What to upload: ``path`` under ``name``; ``note`` says what was converted (None: sent as it is)."""

    path: Path
    name: str
    note: str | None = None
    _tempdir: str | None = None

    def cleanup(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None


class ConversionAborted(Exception):
    """Ctrl-C while converting: nothing was sent."""


class NothingToSend(_NothingToSend):
    """A clean scan (no findings): not sent, since 1.1.12 resolves whatever an import does not contain."""

    def __init__(self, name: str, rows: int) -> None:
        super().__init__(f"{name}: no findings to send; HexTrackr 1.1.x would mark every open vulnerability "
                         "resolved on an empty import", rows=rows,
                         note="clean scan: no findings, so nothing was sent (HexTrackr 1.1.x resolves every open"
                              " vulnerability an import does not contain)")
        self.name = name


def _upload_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "upload"
    low = base.lower()
    for ext in _EXTENSIONS:
        if low.endswith(ext):
            return base[: -len(ext)] + ".csv"
    return base + ".csv"


def _watched(records: Iterator[Record], abort: threading.Event | None) -> Iterator[Record]:
    for n, r in enumerate(records):
        if abort is not None and n & 1023 == 0 and abort.is_set():
            raise ConversionAborted()
        yield r


def prepare_for_hx11(path: str | os.PathLike[str], name: str, abort: threading.Event | None = None,
                     force: str | None = None) -> Prepared:
    """The file to send a 1.1.x server for the export at ``path`` (shown to the user as ``name``); ``force``: the
    format to read it as (--format)."""
    src = Path(path)
    with open(src, "rb") as fh:
        compression = compression_of(fh.read(4))  # 1.1.x reads no .gz or .zip: expanded here
        fh.seek(0)
        try:
            head, complete = expanded_head(fh, HEAD_BYTES)
            fmt = detect(head, VULNERABILITIES, complete=complete, force=force)
        except FormatError as exc:
            raise BadInputError(f"{name}: {exc}") from None
    if compression is None and not needs_conversion(fmt) and not force:
        return Prepared(src, name)
    tempdir = tempfile.mkdtemp(prefix="hextrackr-hx11-")
    out = Path(tempdir) / _upload_name(name)
    try:
        with open(src, "rb") as fh, open(out, "w", encoding="utf-8", newline="") as dst:
            export, _, _ = expanded(fh)
            counts = write_hx11_csv(_watched(fmt.read(export), abort), dst)
    except (RowError, FormatError) as exc:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise BadInputError(f"{name}: {exc}; nothing was sent") from None
    except BaseException:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise
    if not counts["rows"]:
        shutil.rmtree(tempdir, ignore_errors=True)
        raise NothingToSend(name, fmt.stats.records)
    levels = ", ".join(f"{k.lower() or 'no severity'} {v:,}" for k, v in counts.items() if k != "rows")
    note = (f"converted {name} ({fmt.title}) to the CSV columns HexTrackr 1.1.x reads: {counts['rows']:,} findings"
            + (f" ({levels})" if levels else ""))
    return Prepared(out, out.name, note, tempdir)
