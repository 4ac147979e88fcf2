"""Cell values: CVE lists, severities, hosts, scores, dates, addresses. Each checker raises RowError naming the column."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Callable, Mapping, Sequence

from hextrackr_cli.formats.records import SEVERITY_LEVELS, RowError

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}", re.IGNORECASE)
_SPLIT_RE = re.compile(r"[,\s;]+")
_IP_RE = re.compile(r"\A\d{1,3}(?:\.\d{1,3}){3}\Z")
_DIGITS_RE = re.compile(r"\d+")
_PLACEHOLDERS = frozenset({"n/a", "na", "-", "none", "null"})
# "8.1 (AV:N/AC:H/...)" (Qualys writes the vector after the score), "5,0" (a decimal comma, ';'-delimited exports)
_SCORE_RE = re.compile(r"\A\s*(\d{1,2}(?:[.,]\d+)?)\s*(?:\(.*\))?\s*\Z", re.S)

# The common scale: names (any case) and Tenable's 0-4. Vendors with another scale pass their own map.
SEVERITIES: dict[str, str] = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "moderate": "Medium",
    "low": "Low",
    "info": "Info",
    "informational": "Info",
    "none": "Info",
    "4": "Critical",
    "3": "High",
    "2": "Medium",
    "1": "Low",
    "0": "Info",
}
SEVERITY_NAMES = frozenset(SEVERITY_LEVELS)


def printable(cell: str, limit: int = 40) -> str:
    """A cell as it may appear in a one-line message: control characters shown as '?', cut to ``limit``."""
    text = _CONTROL_RE.sub("?", cell)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quoted(text: str, limit: int = 40) -> str:
    """``"text"`` for a message (printable, cut)."""
    return '"' + printable(text, limit) + '"'


def split_cves(text: str, fallback: str = "") -> list[str]:
    """The ids in a CVE cell (several separated by commas); else a CVE found in ``fallback``; else ``[""]``."""
    if text:
        ids = [p.upper() if p[:4].upper() == "CVE-" else p for p in _SPLIT_RE.split(text) if p]
        if ids:
            return list(dict.fromkeys(ids))
    if fallback:
        found = _CVE_RE.findall(fallback)
        if found:
            return list(dict.fromkeys(f.upper() for f in found))
    return [""]


def normalize_severity(text: str) -> str:
    s = text.strip()
    return SEVERITIES.get(s.lower(), s.title() if s else "")


def severity_table(scale: Mapping[str, str]) -> dict[str, str]:
    """Raw cell -> level for a vendor's ``scale`` (keys lower-case): each level's own name maps to itself too."""
    table = {k: v for k, v in scale.items()}
    for level in SEVERITY_LEVELS:
        table.setdefault(level, level)
        table.setdefault(level.lower(), level)
    return table


def severity_checker(column: str, scale: Mapping[str, str], known: str = ", ".join(SEVERITY_LEVELS)
                     ) -> Callable[[str], str]:
    """Maps a cell to a level by ``scale`` (exact, then stripped lower-case); RowError for a value not on it
    (``known`` says what the vendor writes)."""
    table = severity_table(scale)

    def check(text: str) -> str:
        level = table.get(text)
        if level is not None:
            return level
        level = table.get(text.strip().lower())
        if level is not None:
            return level
        if not text.strip():
            return ""
        raise RowError(f"column {quoted(column)} is not a severity ({known}): {quoted(text)}")

    return check


def normalize_host(text: str) -> str:
    return text.strip().lower()


def normalize_xt_number(text: str) -> str:
    """``"XT-12"`` -> ``"0012"``; text without digits is kept as it is (stripped)."""
    m = _DIGITS_RE.search(text)
    return m.group(0).zfill(4) if m else text.strip()


def ip_ok(ip: str) -> bool:
    return bool(_IP_RE.match(ip)) and all(int(part) <= 255 for part in ip.split("."))


def looks_like_ip(text: str) -> bool:
    return bool(_IP_RE.match(text))


def score_checker(column: str) -> Callable[[str], float | None]:
    """A 0-10 score or empty/placeholder (None); RowError otherwise."""

    def check(text: str) -> float | None:
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            if text.strip().lower() in _PLACEHOLDERS:
                return None
            m = _SCORE_RE.match(text)
            if m is None:
                raise RowError(f"column {quoted(column)} is not a number: {quoted(text)}") from None
            value = float(m.group(1).replace(",", "."))
        if not 0.0 <= value <= 10.0:  # also refuses nan and inf
            raise RowError(f"column {quoted(column)} is out of range (0 to 10): {quoted(text)}")
        return value

    return check


# Date layouts some vendors write besides ISO 8601 (Tenable.sc: "Jun 20, 2016 09:09:53 EDT"; Qualys: "09/14/2020 ...").
DATE_LAYOUTS: dict[str, tuple[str, ...]] = {
    "iso": (),
    "tenable.sc": ("%b %d, %Y %H:%M:%S", "%b %d, %Y"),
    "us": ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m/%d/%y %H:%M", "%m/%d/%y"),
}
_TZ_TAIL_RE = re.compile(r"\s+(?!AM\Z|PM\Z)(?:[A-Z]{2,5}|[+-]\d{2}:?\d{2}|(?:UTC|GMT)[+-]?\d*)\Z")


def date_checker(column: str, layouts: Sequence[str] = ()) -> Callable[[str], str]:
    """ISO dates (``YYYY-MM-DD`` and anything after it) as they are; a date in one of ``layouts`` becomes ISO
    (``YYYY-MM-DDTHH:MM:SS``, a zone abbreviation dropped); RowError otherwise. Each distinct text is parsed once."""
    seen: dict[str, str] = {"": ""}

    def check(text: str) -> str:
        done = seen.get(text)
        if done is not None:
            return done
        value = _parse_date(text.strip(), layouts)
        if value is None:
            expected = "YYYY-MM-DD" if not layouts else "YYYY-MM-DD or " + layouts[0].replace("%", "")
            raise RowError(f"column {quoted(column)} is not a date ({expected}): {quoted(text)}")
        if len(seen) < 100_000:
            seen[text] = value
        return value

    return check


def _parse_date(text: str, layouts: Sequence[str]) -> str | None:
    if not text:
        return ""
    head = text[:10]
    if len(head) == 10 and head[4] == "-" and head[7] == "-":
        try:
            _dt.date(int(head[:4]), int(head[5:7]), int(head[8:]))
            return text
        except ValueError:
            return None
    if not layouts:
        return None
    bare = _TZ_TAIL_RE.sub("", text)
    for layout in layouts:
        try:
            when = _dt.datetime.strptime(bare, layout)
        except ValueError:
            continue
        return when.isoformat(timespec="seconds") if ("%H" in layout or "%I" in layout) else when.date().isoformat()
    return None
