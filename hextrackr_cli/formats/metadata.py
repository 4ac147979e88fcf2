"""Vendor and scan date from a file's name (``tenable_vulns_2025-11-20.csv``), and the scan date's check."""

from __future__ import annotations

import datetime as _dt
import re

_DATE_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_VENDOR_RE = re.compile(r"\A([A-Za-z][A-Za-z0-9]*)[_\-]")


def parse_scan_date(text: str) -> str:
    """Validate ``YYYY-MM-DD``; raises ValueError otherwise."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text or ""):
        raise ValueError(f"scan date must be YYYY-MM-DD, not {text!r}")
    _dt.date.fromisoformat(text)
    return text


def metadata_from_filename(filename: str) -> tuple[str | None, str | None]:
    """``tenable_vulns_2025-11-20.csv`` -> ``("tenable", "2025-11-20")``; unknown parts are None."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    vendor = None
    m = _VENDOR_RE.match(stem)
    if m:
        vendor = m.group(1).lower()
    date = None
    for y, mo, d in _DATE_RE.findall(stem):
        try:
            date = _dt.date(int(y), int(mo), int(d)).isoformat()
            break
        except ValueError:
            continue
    return vendor, date
