"""Nessus v2 XML exports (``.nessus``): streamed, DTDs and entities refused.

Root ``NessusClientData_v2`` → ``Report`` → ``ReportHost name=…`` (``HostProperties/tag name="host-ip"`` …) →
``ReportItem port svc_name protocol severity pluginID pluginName pluginFamily`` with children ``cve`` (0..n),
``description``, ``solution``, ``plugin_output``, ``cvss3_base_score``, ``vpr_score`` … (FORMATS.md).

The file is fed to expat in chunks and never becomes a tree: only the fields of the ReportItem being read are kept,
so memory does not grow with the file (a 1 GiB export reads in a few MiB). What an attacker can put in XML is
refused before it can cost anything: a document type declaration (where every entity, external or "billion
laughs", would have to be declared), entity declarations, external entity references, nesting deeper than a Nessus
export ever goes, and one tag, comment or text longer than the field limit. These are the handlers defusedxml sets
on expat, without building the ElementTree it then builds (1.5 s instead of 2.1 s for 100k findings).
"""

from __future__ import annotations

import datetime as _dt
import pyexpat
from typing import IO, Any, Callable, Iterator, NoReturn
from urllib.parse import urlsplit

from hextrackr_cli.formats.records import VULNERABILITIES, Finding, FormatError, Record, RowError
from hextrackr_cli.formats.registry import Format
from hextrackr_cli.formats.sniff import Head
from hextrackr_cli.formats.values import ip_ok, looks_like_ip, quoted, score_checker

NESSUS_XML = "nessus-xml"
ROOT = "NessusClientData_v2"
FIELD_LIMIT = 1024 * 1024  # one element's text or one tag (as a CSV field)
MAX_DEPTH = 32  # a Nessus export nests 6 deep (Policy/Preferences/…/preference/value)
CHUNK = 1 << 16
# ReportItem severity attribute -> level (0 = informational: host discovery, service detection)
SEVERITY = {"0": "Info", "1": "Low", "2": "Medium", "3": "High", "4": "Critical"}
RISK = {"none": "Info", "info": "Info", "low": "Low", "medium": "Medium", "high": "High", "critical": "Critical"}
# ReportItem children kept (everything else is skipped without keeping its text)
_ITEM_FIELDS = frozenset({"cve", "description", "synopsis", "solution", "plugin_output", "cvss3_base_score",
                          "cvss_base_score", "vpr_score", "risk_factor", "plugin_name"})
_HOST_TAGS = frozenset({"host-ip", "host-fqdn", "netbios-name", "HOST_END", "HOST_END_TIMESTAMP", "HOST_START",
                        "HOST_START_TIMESTAMP"})


class XmlRefused(FormatError):
    """The XML carries something never read (a DTD, an entity): refused before anything is expanded."""


class _RootFound(Exception):
    pass


def _refuse_dtd(*_: Any) -> NoReturn:
    raise XmlRefused("the XML has a document type declaration (DTD); Nessus exports have none, and DTDs and "
                     "entities are never read (XXE, entity expansion)")


def _refuse_entity(*_: Any) -> NoReturn:
    raise XmlRefused("the XML declares or references an external entity; entities are never read (XXE)")


def _parser() -> Any:
    p = pyexpat.ParserCreate()
    p.buffer_text = True
    p.buffer_size = CHUNK
    p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.StartDoctypeDeclHandler = _refuse_dtd
    p.EntityDeclHandler = _refuse_entity
    p.UnparsedEntityDeclHandler = _refuse_entity
    p.ExternalEntityRefHandler = _refuse_entity
    return p


def root_of(head: bytes) -> str | None:
    """The root element's name of an XML document starting with ``head`` (None: not XML, or cut before the root).

    XmlRefused when the prolog has a DTD; FormatError when the start is not well-formed XML.
    """
    p = _parser()
    found: list[str] = []

    def start(name: str, attrs: Any) -> None:
        found.append(name)
        raise _RootFound

    p.StartElementHandler = start
    try:
        p.Parse(head, False)
    except _RootFound:
        return found[0]
    except pyexpat.ExpatError as exc:
        raise FormatError(f"not well-formed XML at line {exc.lineno}, column {exc.offset + 1}: "
                          f"{pyexpat.ErrorString(exc.code)}") from None
    return None


def _iso_date(epoch: str, text: str) -> str:
    """HOST_END_TIMESTAMP (seconds) or HOST_END ("Wed Mar 23 15:07:52 2022", WAS: ISO 8601) as YYYY-MM-DD."""
    if epoch.strip().isdigit():
        try:
            return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).date().isoformat()
        except (OverflowError, OSError, ValueError):
            pass
    text = text.strip()
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        try:
            return _dt.date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            return ""
    try:
        return _dt.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").date().isoformat()
    except ValueError:
        return ""


def _host_name(text: str) -> str:
    """A host as the finding names it: lower-case; a WAS target URL ("http://example.com/") becomes its host."""
    text = text.strip()
    if "://" in text:
        try:
            text = urlsplit(text).hostname or text
        except ValueError:
            pass
    return text.lower()


class _State:
    """What the handlers collect while the parser runs (one ReportHost, one ReportItem at a time)."""

    def __init__(self) -> None:
        self.depth = 0
        self.host_name = ""
        self.tags: dict[str, str] = {}
        self.in_props = False
        self.props_done = False  # this host's HostProperties have been read
        self.tag_name: str | None = None  # the HostProperties <tag name=…> being read
        self.item: dict[str, Any] | None = None
        self.item_line = 0
        self.field: str | None = None  # the item child (or host tag) whose text is kept
        self.text: list[str] = []
        self.size = 0
        self.done: list[tuple[dict[str, Any], int, dict[str, str], str]] = []  # ReportItems read, not yet yielded
        self.pending: list[tuple[dict[str, Any], int]] = []  # items before their host's HostProperties
        self.seen_root = False


class NessusXmlReader:
    """The ``.nessus`` family: detected by its root element; records streamed from the binary stream."""

    name = NESSUS_XML
    title = "Nessus v2 XML (.nessus)"
    kind = VULNERABILITIES
    vendor = "nessus"
    expected = ""  # not named among the CSV columns an unknown header is told to have

    def match(self, head: Head) -> Format | None:
        if head.xml_root is None:
            return None
        root = root_of(head.data)  # XmlRefused for a DTD, even before the root element
        if root is None and head.complete:
            raise FormatError("the XML ends before its root element (truncated file?)")
        if root is not None and root != ROOT:
            return None
        return Format(self, header=(ROOT,))

    def read(self, stream: IO[bytes], fmt: Format) -> Iterator[Record]:
        stats = fmt.stats
        st = _State()
        p = _parser()
        vpr_of, cvss3_of, cvss_of = (_memo(score_checker(f"element <{n}>"))
                                     for n in ("vpr_score", "cvss3_base_score", "cvss_base_score"))
        record = 0

        def start(name: str, attrs: dict[str, str]) -> None:
            st.depth += 1
            if st.depth > MAX_DEPTH:
                raise FormatError(f"line {p.CurrentLineNumber}: the XML nests deeper than {MAX_DEPTH} elements;"
                                  " a Nessus export never does")
            if st.depth == 1:
                if name != ROOT:
                    raise FormatError(f"the root element is <{name[:40]}>, not <{ROOT}>: not a Nessus v2 export")
                st.seen_root = True
            if st.item is not None:
                if name in _ITEM_FIELDS and st.depth == st.item["_depth"] + 1:
                    st.field, st.text, st.size = name, [], 0
                    p.CharacterDataHandler = data  # text is kept only inside a field (most text is whitespace)
                return
            if name == "ReportItem":
                st.item = {"_attrs": attrs, "_depth": st.depth, "cve": []}
                st.item_line = p.CurrentLineNumber
            elif name == "ReportHost":
                st.host_name, st.tags, st.pending, st.props_done = attrs.get("name", ""), {}, [], False
            elif name == "HostProperties":
                st.in_props = True
            elif st.in_props and name == "tag" and attrs.get("name") in _HOST_TAGS:
                st.field, st.text, st.size = attrs["name"], [], 0
                p.CharacterDataHandler = data

        def end(name: str) -> None:
            st.depth -= 1
            item = st.item
            if st.field is not None and (name == st.field or (item is None and name == "tag")):
                value = "".join(st.text)
                if item is None:
                    st.tags[st.field] = value
                elif st.field == "cve":
                    item["cve"].append(value.strip())
                else:
                    item[st.field] = value
                st.field = None
                p.CharacterDataHandler = None
                return
            if item is not None:
                if name == "ReportItem" and st.depth == item["_depth"] - 1:
                    if st.props_done:
                        st.done.append((item, st.item_line, st.tags, st.host_name))
                    else:  # Nessus writes HostProperties first; an item before them waits for the host's address
                        st.pending.append((item, st.item_line))
                    st.item = None
                return
            if name == "HostProperties" or name == "ReportHost":
                st.in_props = False
                st.props_done = name == "HostProperties"
                for pending_item, line in st.pending:
                    st.done.append((pending_item, line, st.tags, st.host_name))
                st.pending = []

        def data(text: str) -> None:
            st.size += len(text)
            if st.size > FIELD_LIMIT:
                raise FormatError(f"line {p.CurrentLineNumber}: element <{st.field}> is longer than "
                                  f"{FIELD_LIMIT // (1024 * 1024)} MiB")
            st.text.append(text)

        p.StartElementHandler = start
        p.EndElementHandler = end
        fed = 0

        def findings() -> Iterator[Finding]:
            nonlocal record
            for item, line, tags, host_name in st.done:
                record += 1
                try:
                    yield from _findings(item, line, record, tags, host_name, vpr_of, cvss3_of, cvss_of)
                except RowError as exc:
                    raise RowError(f"record {record} (line {line}): {exc}") from None
                stats.records = record
            st.done.clear()

        try:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                fed += len(chunk)
                p.Parse(chunk, False)
                # expat keeps an unfinished token (a tag, a comment) whole: bound it as a field is bound
                if fed - p.CurrentByteIndex > FIELD_LIMIT + 2 * CHUNK:
                    raise FormatError(f"line {p.CurrentLineNumber}: one XML tag or comment is longer than "
                                      f"{FIELD_LIMIT // (1024 * 1024)} MiB")
                yield from findings()
                stats.lines = p.CurrentLineNumber
            p.Parse(b"", True)
        except FormatError as exc:  # from a handler: refused while reading (a record error to the caller)
            raise RowError(str(exc)) from None
        except pyexpat.ExpatError as exc:
            code = pyexpat.ErrorString(exc.code)
            if exc.code == pyexpat.errors.codes[pyexpat.errors.XML_ERROR_NO_ELEMENTS]:
                raise RowError(f"the XML ends at line {exc.lineno} before its document does (truncated file?)"
                               if st.seen_root else "the file holds no XML element") from None
            if exc.code == pyexpat.errors.codes[pyexpat.errors.XML_ERROR_UNDEFINED_ENTITY]:
                raise RowError(f"line {exc.lineno}: reference to an undeclared entity; entities are never read"
                               ) from None
            raise RowError(f"not well-formed XML at line {exc.lineno}, column {exc.offset + 1}: {code}") from None
        yield from findings()
        stats.lines = p.CurrentLineNumber


def _memo(check: Callable[[str], float | None]) -> Callable[[str], float | None]:
    """``check`` once per distinct text (scores repeat: a plugin's score is the same on every host)."""
    seen: dict[str, float | None] = {"": None}

    def cached(text: str) -> float | None:
        if text in seen:
            return seen[text]
        value = check(text)
        if len(seen) < 10_000:
            seen[text] = value
        return value

    return cached


def _host(tags: dict[str, str], host_name: str) -> tuple[str, str, str]:
    """(host, ip, scan date) of a ReportHost, from its HostProperties (else its name)."""
    ip = tags.get("host-ip", "").strip()
    if not ip and looks_like_ip(host_name.strip()):
        ip = host_name.strip()
    if ip and not ip_ok(ip):
        if looks_like_ip(ip):
            raise RowError(f"tag \"host-ip\" is not an IPv4 address: {quoted(ip)}")
        ip = ""  # IPv6: the host name carries it
    host = _host_name(tags.get("host-fqdn", ""))
    if not host and not looks_like_ip(host_name.strip()):
        host = _host_name(host_name)
    if not host:
        host = tags.get("netbios-name", "").strip().lower()
    if not (host or ip):
        raise RowError("no host: ReportHost has no name and no host-ip or host-fqdn tag")
    # the scan of this host (a .nessus does not say when a finding was first seen)
    last = _iso_date(tags.get("HOST_END_TIMESTAMP", ""), tags.get("HOST_END", "")) or \
        _iso_date(tags.get("HOST_START_TIMESTAMP", ""), tags.get("HOST_START", ""))
    return host, ip, last


def _findings(item: dict[str, Any], line: int, record: int, tags: dict[str, Any], host_name: str,
              vpr_of: Any, cvss3_of: Any, cvss_of: Any) -> list[Finding]:
    attrs: dict[str, str] = item["_attrs"]
    known = tags.get(" host")  # computed once per ReportHost (the key cannot be a tag name: it has a space)
    if known is None:
        known = tags[" host"] = _host(tags, host_name)
    host, ip, last = known
    raw = attrs.get("severity", "").strip()
    if raw:
        severity = SEVERITY.get(raw)
        if severity is None:
            raise RowError(f"attribute \"severity\" is not a Nessus severity (0 to 4): {quoted(raw)}")
    else:
        raw = item.get("risk_factor", "").strip()
        severity = RISK.get(raw.lower(), "")
        if raw and not severity:
            raise RowError(f"element <risk_factor> is not a severity (None, Low, Medium, High, Critical): "
                           f"{quoted(raw)}")
    vpr = vpr_of(item.get("vpr_score", "").strip())
    cvss = cvss3_of(item.get("cvss3_base_score", "").strip())
    if cvss is None:
        cvss = cvss_of(item.get("cvss_base_score", "").strip())
    pid = attrs.get("pluginID", "").strip()
    pname = attrs.get("pluginName") or item.get("plugin_name", "")
    description = item.get("description") or item.get("synopsis", "")
    cves = [c for c in dict.fromkeys(item["cve"]) if c] or [""]
    port, proto = attrs.get("port", "").strip(), attrs.get("protocol", "").strip().lower()
    solution, output = item.get("solution", ""), item.get("plugin_output", "")
    return [Finding(record, line, host, ip, "", pid, pname, cve, severity, raw, vpr, cvss, "", port, proto, "",
                    last, solution, description, output) for cve in cves]


NESSUS_XML_READER = NessusXmlReader()
