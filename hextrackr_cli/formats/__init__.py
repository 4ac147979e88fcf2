"""Scanner export formats: detection, readers, the normalised record. Pure: no I/O beyond the stream given.

The client's local checks and the server's import use the same detection::

    fmt = detect(first_bytes, kind)          # FormatError: one line naming what was expected
    for finding in fmt.read(binary_stream):  # RowError: "record 12 (line 40): column "IP Address" ..."
        ...

Readers are tried in registry order: vendor formats first, the generic columns last. Facts: FORMATS.md.
"""

from __future__ import annotations

from hextrackr_cli.formats.csvbase import FIELD_LIMIT, CsvReader, locate
from hextrackr_cli.formats.generic import GENERIC_CSV
from hextrackr_cli.formats.metadata import metadata_from_filename, parse_scan_date
from hextrackr_cli.formats.nessus import NESSUS_CSV
from hextrackr_cli.formats.nessus_xml import NESSUS_XML, NESSUS_XML_READER
from hextrackr_cli.formats.records import (
    GENERIC,
    KINDS,
    NESSUS,
    SEVERITY_LEVELS,
    SEVERITY_SHORT,
    TENABLE,
    TICKET_FIELDS,
    TICKETS,
    VULN_FIELDS,
    VULNERABILITIES,
    Finding,
    FormatError,
    Record,
    RowError,
    Ticket,
    findings_line,
    severity_rank,
)
from hextrackr_cli.formats.registry import (
    Format,
    Reader,
    ReadStats,
    detect,
    detect_format,
    expected,
    names,
    reader_named,
    readers,
    register,
)
from hextrackr_cli.formats.sniff import HEAD_BYTES, Head, Utf8Check, check_bytes, parse_head
from hextrackr_cli.formats.staging import Mapper, Stager, dedup_key, make_mapper
from hextrackr_cli.formats.openvas import OPENVAS_CSV
from hextrackr_cli.formats.qualys import QUALYS_PCI, QUALYS_SCAN, QUALYS_VMDR
from hextrackr_cli.formats.tenable import TENABLE_VM, TENABLE_WORKBENCH
from hextrackr_cli.formats.tenablesc import TENABLE_SC
from hextrackr_cli.formats.tickets import HEXTRACKR_TICKETS
from hextrackr_cli.formats.values import (
    normalize_host,
    normalize_severity,
    normalize_xt_number,
    printable,
    split_cves,
)

# Order matters: the first reader whose columns fit wins (tickets and vendors before the generic columns; the
# workbench before Nessus, whose columns it extends). A format of another module registers with before="generic".
for _reader in (HEXTRACKR_TICKETS, TENABLE_VM, TENABLE_WORKBENCH, NESSUS_CSV, TENABLE_SC, QUALYS_PCI, QUALYS_VMDR,
                QUALYS_SCAN, OPENVAS_CSV, GENERIC_CSV):
    register(_reader)

register(NESSUS_XML_READER)  # XML: matched by its root element, never by a CSV header

EXPECTED_COLUMNS = expected()

__all__ = [
    "CsvReader", "EXPECTED_COLUMNS", "FIELD_LIMIT", "Finding", "Format", "FormatError", "GENERIC", "HEAD_BYTES",
    "Head", "KINDS", "Mapper", "NESSUS", "NESSUS_XML", "Reader", "ReadStats", "Record", "RowError", "SEVERITY_LEVELS",
    "SEVERITY_SHORT", "Stager", "TENABLE", "TICKETS", "TICKET_FIELDS", "Ticket", "Utf8Check", "VULNERABILITIES",
    "VULN_FIELDS", "check_bytes", "dedup_key", "detect", "detect_format", "expected", "findings_line", "locate", "make_mapper",
    "metadata_from_filename", "names", "normalize_host", "normalize_severity", "normalize_xt_number",
    "parse_head", "parse_scan_date", "printable", "reader_named", "readers", "register", "severity_rank", "split_cves",
]
