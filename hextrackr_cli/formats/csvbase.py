"""The CSV reader every CSV family is an instance of: header matching, streaming rows, and the row-to-finding map.

Real-file quirks handled here once: UTF-8 BOM, CRLF, blank column names (ignored), a sniffed ``;``/tab delimiter,
a preamble before the header (families that allow one), rows of empty fields (skipped and counted). Every error
names the record number, the line and the file's own column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import IO, Callable, Iterator, Mapping, Sequence

from hextrackr_cli.formats.records import VULNERABILITIES, Finding, FormatError, Record, RowError
from hextrackr_cli.formats.registry import Format
from hextrackr_cli.formats.sniff import Head
from hextrackr_cli.formats.values import (
    SEVERITIES,
    date_checker,
    ip_ok,
    looks_like_ip,
    printable,
    quoted,
    score_checker,
    severity_checker,
    split_cves,
)

FIELD_LIMIT = 1024 * 1024  # one CSV field; Plugin Output can be long, never this long
csv.field_size_limit(FIELD_LIMIT)

RowMapper = Callable[[list, int, int], list]  # (row, record number, line) -> records


def locate(header: Sequence[str], columns: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """field -> column index: exact spelling first, then case-insensitive with spaces trimmed; blank names never."""
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for i, name in enumerate(header):
        if name:
            exact.setdefault(name, i)
            folded.setdefault(name.strip().lower(), i)
    index: dict[str, int] = {}
    for fld, aliases in columns.items():
        for alias in aliases:
            if alias in exact:
                index[fld] = exact[alias]
                break
        else:
            for alias in aliases:
                if alias.lower() in folded:
                    index[fld] = folded[alias.lower()]
                    break
    return index


def clean_header(cells: Sequence[str]) -> tuple[str, ...]:
    return tuple(c.lstrip("\ufeff").strip() for c in cells)


@dataclass
class CsvReader:
    """A CSV family: its columns (field -> names), what must be there, and how its values read."""

    name: str
    title: str
    columns: Mapping[str, tuple[str, ...]]
    required: tuple[tuple[str, ...], ...]  # each tuple: at least one of these fields must be located
    kind: str = VULNERABILITIES
    vendor: str = "generic"
    expected: str = ""  # the columns a message names when nothing matched
    # groups of names (any case) only this family writes: a header with every name of a group is this family's,
    # so a file with the signature but without a column the reader needs is refused naming it (never generic)
    signature: tuple[tuple[str, ...], ...] = ()
    refuse: tuple[tuple[tuple[str, ...], str], ...] = ()  # (names all present, message): a known export we refuse
    preamble: bool = False  # report lines may come before the header
    severity_scale: Mapping[str, str] = field(default_factory=lambda: SEVERITIES)  # raw (lower-case) -> level
    severity_names: str = "Critical, High, Medium, Low, Info"  # what a message says the column may hold
    date_layouts: tuple[str, ...] = ()  # besides ISO 8601
    cve_from_name: bool = True  # a CVE in the plugin name when the CVE cell is empty
    info_types: frozenset[str] = frozenset()  # values of the "type" column that make a finding informational

    # ------------------------------------------------------------------ detection
    def match(self, head: Head) -> Format | None:
        for delimiter, rows in head.records.items():
            for number, (line, cells) in enumerate(rows):
                if number and not self.preamble:
                    break
                if len(cells) < 2 and delimiter != ",":
                    continue
                fmt = self.match_header(cells)
                if fmt is not None:
                    fmt.delimiter, fmt.header_record, fmt.header_line = delimiter, number, line
                    return fmt
        return None

    def match_header(self, cells: Sequence[str]) -> Format | None:
        header = clean_header(cells)
        folded = {h.lower() for h in header if h}
        for names, message in self.refuse:
            if all(n.lower() in folded for n in names):
                raise FormatError(message)
        index = locate(header, self.columns)
        missing = [alternative for alternative in self.required if not any(f in index for f in alternative)]
        if missing:
            if self.has_signature(folded):
                wanted = " or ".join(quoted(self.columns[f][0]) for f in missing[0] if f in self.columns)
                raise FormatError(f"this looks like a {self.title} (it has the columns"
                                  f" {', '.join(self.signature_of(folded))}) but it has no column {wanted}")
            return None
        self.check_header(header)
        return Format(self, header, index)

    def signature_of(self, folded: set[str]) -> tuple[str, ...]:
        for group in self.signature:
            if all(s.lower() in folded for s in group):
                return group
        return ()

    def has_signature(self, folded: set[str]) -> bool:
        return bool(self.signature_of(folded))

    @staticmethod
    def check_header(header: Sequence[str]) -> None:
        seen: set[str] = set()
        for h in header:
            key = h.lower()
            if key and key in seen:
                raise FormatError(f"duplicate column {quoted(h)} in the header")
            seen.add(key)

    # ------------------------------------------------------------------ reading
    def mapper(self, fmt: Format) -> RowMapper:
        """A function mapping one row (of the header's width) to its records; RowError names the column."""
        return vuln_mapper(self, fmt)

    def read(self, stream: IO[bytes], fmt: Format) -> Iterator[Record]:
        text = stream if isinstance(stream, io.TextIOBase) else io.TextIOWrapper(
            stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=fmt.delimiter, strict=True)
        stats = fmt.stats
        width = len(fmt.header)
        map_row = self.mapper(fmt)
        record = 0
        try:
            for _ in range(fmt.header_record + 1):
                next(reader)
            line = reader.line_num + 1
            for row in reader:
                if len(row) != width:
                    if not any(c.strip() for c in row):
                        if row:
                            stats.empty_rows += 1
                        line = reader.line_num + 1
                        continue
                    if len(row) > width and not any(c.strip() for c in row[width:]):
                        del row[width:]
                    else:
                        raise RowError(f"record {record + 1} (line {line}) has {len(row)} fields but the header"
                                       f" has {width}")
                elif not row[0] and not any(c.strip() for c in row):
                    stats.empty_rows += 1
                    line = reader.line_num + 1
                    continue
                record += 1
                try:
                    out = map_row(row, record, line)
                except RowError as exc:
                    raise RowError(f"record {record} (line {line}): {exc}") from None
                stats.records = record
                yield from out
                line = reader.line_num + 1
        except UnicodeDecodeError:
            raise RowError(f"line {reader.line_num + 1} is not valid UTF-8; re-export the file as UTF-8") from None
        except csv.Error as exc:
            message = str(exc)
            if "field larger than field limit" in message:
                message = f"a field is larger than {FIELD_LIMIT // (1024 * 1024)} MiB"
            elif "EOF" in message or "end of data" in message or "quote" in message.lower():
                message = "a quoted field is never closed (unterminated quote)"
            raise RowError(f"CSV error at line {reader.line_num}: {printable(message, 80)}") from None
        finally:
            stats.lines = reader.line_num


def vuln_mapper(spec: CsvReader, fmt: Format) -> RowMapper:
    """The hot path (one call per row): plain indexing with precomputed positions. A missing column reads index -1,
    which is the "" appended to each row. Values that repeat (scores, dates, severities, addresses) are checked once."""
    ix = {f: fmt.index.get(f, -1) for f in (
        "asset_id", "host", "dns", "ip", "ips", "plugin_id", "plugin_name", "cve", "severity", "vpr_score",
        "cvss_score", "state", "port", "protocol", "first_seen", "last_seen", "solution", "description", "output",
        "type")}
    col = fmt.column
    i_aid, i_host, i_dns, i_ip, i_ips = ix["asset_id"], ix["host"], ix["dns"], ix["ip"], ix["ips"]
    i_pid, i_name, i_cve, i_sev = ix["plugin_id"], ix["plugin_name"], ix["cve"], ix["severity"]
    i_vpr, i_cvss, i_state, i_port, i_proto = ix["vpr_score"], ix["cvss_score"], ix["state"], ix["port"], ix["protocol"]
    i_first, i_last, i_sol, i_desc, i_out = ix["first_seen"], ix["last_seen"], ix["solution"], ix["description"], \
        ix["output"]
    pad = -1 in ix.values()
    ip_column = col("ip") if i_ip >= 0 else col("ips") if i_ips >= 0 else col("host")
    host_column = col("host") if i_host >= 0 else col("dns")
    sev_of = severity_checker(col("severity"), spec.severity_scale, spec.severity_names)
    vpr_of, cvss_of = score_checker(col("vpr_score")), score_checker(col("cvss_score"))
    first_of = date_checker(col("first_seen"), spec.date_layouts)
    last_of = date_checker(col("last_seen"), spec.date_layouts)
    cve_from_name = spec.cve_from_name
    i_type = ix["type"]
    info_types = spec.info_types if i_type >= 0 else frozenset()
    known_ips: set[str] = set()
    severities: dict[str, tuple[str, str]] = {}  # raw cell -> (level, the file's value stripped)
    scores: dict[str, float | None] = {"": None}
    dates: dict[str, str] = {}  # raw cell -> checked value (a date column's and the other's texts never clash)
    new = tuple.__new__  # Finding(...) without its Python-level __new__ (one call a finding saved)
    states: dict[str, str] = {}  # raw cell -> upper-case
    protocols: dict[str, str] = {}  # raw cell -> lower-case

    def map_row(row: list, record: int = 0, line: int = 0) -> list:
        if pad:
            row.append("")
        host = row[i_host].strip()
        ip = row[i_ip].strip()
        if not ip:
            if i_ips >= 0:
                ip = row[i_ips].split(",", 1)[0].strip()
            if not ip and looks_like_ip(host):  # Nessus "Host" holds the address when it has no name
                ip, host = host, row[i_dns].strip()
        if not host:
            host = row[i_dns].strip()
        host = host.lower()
        aid = row[i_aid].strip()
        if ip and ip not in known_ips:
            if not ip_ok(ip):
                raise RowError(f"column {quoted(ip_column)} is not an IPv4 address: {quoted(ip)}")
            if len(known_ips) < 100_000:
                known_ips.add(ip)
        if not (host or ip or aid):
            raise RowError(f"no host: column {quoted(host_column)} and column {quoted(ip_column)} are both empty")
        raw_sev = row[i_sev]
        known = severities.get(raw_sev)
        if known is None:
            known = (sev_of(raw_sev), raw_sev.strip())
            if len(severities) < 1000:
                severities[raw_sev] = known
        sev, raw_sev = known
        if info_types and row[i_type].strip().lower() in info_types:
            sev = "Info"
        text = row[i_vpr]
        vpr = scores[text] if text in scores else vpr_of(text)
        text2 = row[i_cvss]
        cvss = scores[text2] if text2 in scores else cvss_of(text2)
        if len(scores) < 10_000:
            scores[text] = vpr
            scores[text2] = cvss
        pid = row[i_pid].strip()
        pname = row[i_name]
        raw = row[i_first]
        first = dates.get(raw)
        if first is None:
            first = first_of(raw)
            if len(dates) < 10_000:
                dates[raw] = first
        raw = row[i_last]
        last = dates.get(raw)
        if last is None:
            last = last_of(raw)
            if len(dates) < 10_000:
                dates[raw] = last
        raw = row[i_state]
        state = states.get(raw)
        if state is None:
            state = raw.strip().upper()
            if len(states) < 1000:
                states[raw] = state
        raw = row[i_proto]
        proto = protocols.get(raw)
        if proto is None:
            proto = raw.strip().lower()
            if len(protocols) < 1000:
                protocols[raw] = proto
        port = row[i_port]
        if port and (port[0] == " " or port[-1] == " "):
            port = port.strip()
        cell = row[i_cve]
        if cell and cell[:4] == "CVE-" and "," not in cell and " " not in cell or not cell and not cve_from_name:
            return [new(Finding, (record, line, host, ip, aid, pid, pname, cell, sev, raw_sev, vpr, cvss, state, port,
                                  proto, first, last, row[i_sol], row[i_desc], row[i_out]))]
        sol, desc, out = row[i_sol], row[i_desc], row[i_out]
        return [new(Finding, (record, line, host, ip, aid, pid, pname, cve, sev, raw_sev, vpr, cvss, state, port, proto,
                              first, last, sol, desc, out)) for cve in split_cves(cell, pname if cve_from_name else "")]

    return map_row
