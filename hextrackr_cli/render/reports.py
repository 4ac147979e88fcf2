"""CI reports of a command's imports: JUnit XML (``--junit``) and a Markdown summary (``--summary-md``).

Pure text builders over :class:`FileReport`; writing the files is the command's business (``write_report``
is the one atomic write they share). Never talks to the server.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from xml.etree import ElementTree as ET

from hextrackr_cli.gate import OFF, SEVERITIES, Counts, Verdict


@dataclass(frozen=True)
class FileReport:
    """How one file (or one watched session) ended, as the reports tell it."""

    file: str
    outcome: str  # completed | failed | cancelled | timeout | interrupted | broken | detached | skipped
    exit_code: int
    message: str = ""  # the one-line summary the terminal showed
    counts: Counts | None = None
    verdict: Verdict = field(default_factory=lambda: Verdict(OFF))
    seconds: float | None = None
    browser_url: str | None = None
    session_id: str | None = None
    import_id: Any = None

    @property
    def import_failed(self) -> bool:
        return self.outcome not in ("completed", "detached", "skipped")

    @property
    def passed(self) -> bool:
        return not self.import_failed and not self.verdict.failed


# --------------------------------------------------------------------------- JUnit XML
def _time(seconds: float | None) -> str:
    return f"{max(0.0, seconds or 0.0):.3f}"


def _failure_of(r: FileReport) -> tuple[str, str] | None:
    """(type, message) of the testcase's <failure>, or None when it passed."""
    if r.import_failed:
        return r.outcome, f"import {r.outcome} (exit {r.exit_code}): {r.message}".rstrip(": ")
    if r.verdict.failed:
        return "gate", f"{r.verdict.text()} (exit {r.exit_code})"
    return None


def counts_text(counts: Counts | None) -> str:
    """The counts as lines ``new: Critical 0, High 2, …, total 2`` for a failure body or system-out."""
    if counts is None:
        return "no per-severity counts reported"
    lines = []
    for name, row in counts.to_json().items():
        cells = ", ".join(f"{s} {row[s]}" for s in SEVERITIES)
        lines.append(f"{name}: {cells}, total {row['total']}")
    return "\n".join(lines)


def junit_xml(command: str, reports: Sequence[FileReport], *, timestamp: float | None = None) -> str:
    """One ``testsuite`` for the command, one ``testcase`` per file; a ``failure`` when the import failed or
    the gate tripped, with the counts in its message and body and as the suite's ``properties``
    (``FILE:KIND.SEVERITY``; JUnit allows properties on a suite, not on a case)."""
    failures = sum(1 for r in reports if not r.passed)
    total = sum(r.seconds or 0.0 for r in reports)
    root = ET.Element("testsuites", name="hextrackr", tests=str(len(reports)), failures=str(failures),
                      errors="0", time=_time(total))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp if timestamp is not None else time.time()))
    suite = ET.SubElement(root, "testsuite", name=command, tests=str(len(reports)), failures=str(failures),
                          errors="0", skipped="0", time=_time(total), timestamp=stamp)
    props = ET.SubElement(suite, "properties")
    for r in reports:
        ET.SubElement(props, "property", name=f"{r.file}:outcome", value=r.outcome)
        ET.SubElement(props, "property", name=f"{r.file}:gate", value=r.verdict.verdict)
        if r.counts is not None:
            for kind, row in r.counts.to_json().items():
                for sev in (*SEVERITIES, "total"):
                    ET.SubElement(props, "property", name=f"{r.file}:{kind}.{sev}", value=str(row[sev]))
    classname = command.replace(" ", ".")
    for r in reports:
        case = ET.SubElement(suite, "testcase", name=r.file, classname=classname, time=_time(r.seconds))
        failure = _failure_of(r)
        body = counts_text(r.counts)
        if failure is not None:
            kind, message = failure
            el = ET.SubElement(case, "failure", type=kind, message=f"{message}; {_one_line(r.counts)}")
            el.text = body
        out = ET.SubElement(case, "system-out")
        ids = " ".join(x for x in (f"session {r.session_id}" if r.session_id else "",
                                   f"import {r.import_id}" if r.import_id is not None else "") if x)
        out.text = "\n".join(x for x in (r.message, r.verdict.text(), body, ids, r.browser_url or "") if x)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _one_line(counts: Counts | None) -> str:
    if counts is None:
        return "no per-severity counts reported"
    parts = []
    for name, row in counts.to_json().items():
        if name in ("new", "reopened", "resolved", "open"):
            parts.append(f"{name} " + "/".join(str(row[s]) for s in SEVERITIES))
    return ", ".join(parts) + " (Critical/High/Medium/Low/Info)"


# --------------------------------------------------------------------------- Markdown
def _md(text: str) -> str:
    """A table cell: pipes and line breaks would break the row."""
    return " ".join(str(text).replace("\\", "\\\\").replace("|", "\\|").split())


def duration(seconds: float | None) -> str:
    from hextrackr_cli.render import duration_text

    return duration_text(seconds * 1000) if seconds is not None else ""


_VERDICT_MARK = {"passed": "passed", "failed": "**failed**", "warned": "warned", "off": "off"}


def markdown_summary(command: str, reports: Sequence[FileReport]) -> str:
    """The Markdown summary (``--summary-md``, and GitHub's step summary): one row per file, then per file a
    severity table of new / reopened / resolved / open, the gate's verdict and the browser view."""
    lines = [f"### `{command}`", "", "| file | outcome | gate | duration |", "|---|---|---|---|"]
    for r in reports:
        verdict = _VERDICT_MARK.get(r.verdict.verdict, r.verdict.verdict)
        if r.verdict.rule and r.verdict.verdict != "passed":
            verdict += f": {r.verdict.rule}"
        lines.append(f"| {_md(r.file)} | {_md(r.outcome)} | {_md(verdict)} | {duration(r.seconds)} |")
    for r in reports:
        lines += ["", f"#### {_md(r.file)}", ""]
        if r.message:
            lines += [_md(r.message), ""]
        rows = r.counts.to_json() if r.counts is not None else {}
        cols = [c for c in ("new", "reopened", "resolved", "open") if c in rows]
        if cols:
            lines.append("| severity | " + " | ".join(cols) + " |")
            lines.append("|---|" + "---:|" * len(cols))
            for sev in (*SEVERITIES, "total"):
                name = "**total**" if sev == "total" else sev
                lines.append(f"| {name} | " + " | ".join(f"{rows[c][sev]:,}" for c in cols) + " |")
            if "new" not in rows:
                lines += ["", "(open: counted from the file sent; the server reports no new/reopened/resolved)"]
        else:
            lines.append("no per-severity counts reported")
        lines += ["", f"gate: {_md(r.verdict.text())}"]
        if r.browser_url:
            lines += ["", f"[browser view]({r.browser_url})"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- writing
def write_report(path: str | os.PathLike[str], text: str) -> None:
    """Write a report atomically (temporary file + rename): a reader never sees half a report."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent or Path(".")))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # a CI artefact, read by the CI's uploader (mkstemp makes it 0600)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
