"""What a CI system shows natively: GitHub Actions annotations and step summary, GitLab collapsible sections.

Detected from the environment (``GITHUB_ACTIONS=true``, ``GITLAB_CI=true``); ``--no-ci-annotations`` turns
it off. Annotations go to stderr with the rest of the human output (the runner reads both streams; stdout
stays pure NDJSON under ``--output json``).
"""

from __future__ import annotations

import os
import re
import time
from typing import IO, Any, Callable, Mapping, Sequence

from hextrackr_cli import events as ev
from hextrackr_cli.render.reports import FileReport

GITHUB, GITLAB = "github", "gitlab"
STEP_SUMMARY_LIMIT = 1024 * 1024  # GitHub refuses a step summary over 1 MiB
_CUT_NOTE = "\n\n(summary cut here: GitHub keeps at most 1 MiB of step summary)\n"


def ci_system(env: Mapping[str, str] | None = None) -> str | None:
    """``github`` / ``gitlab`` when running inside that CI, else None."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return GITHUB
    if env.get("GITLAB_CI") == "true":
        return GITLAB
    return None


# --------------------------------------------------------------------------- GitHub Actions
def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(reports: Sequence[FileReport]) -> list[str]:
    """``::error title=…::`` for a failed import or a tripped gate, ``::warning`` for ``--warn-on``."""
    lines = []
    for r in reports:
        if r.import_failed:
            level, title, text = "error", f"hextrackr: import {r.outcome}", r.message or f"import {r.outcome}"
        elif r.verdict.failed:
            level, title, text = "error", "hextrackr: severity gate failed", r.verdict.text()
        elif r.verdict.verdict == "warned":
            level, title, text = "warning", "hextrackr: severity warning", r.verdict.text()
        else:
            continue
        lines.append(f"::{level} title={_escape_property(title)}::{_escape_data(f'{r.file}: {text}')}")
    return lines


def append_step_summary(path: str, markdown: str, limit: int = STEP_SUMMARY_LIMIT) -> bool:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``, cut so that the file stays under ``limit`` bytes;
    False when nothing fitted."""
    try:
        used = os.path.getsize(path)
    except OSError:
        used = 0
    data = ("\n" + markdown if used else markdown).encode("utf-8")
    room = limit - used - 1
    if len(data) > room:
        note = _CUT_NOTE.encode("utf-8")
        if room <= len(note):
            return False
        data = data[: room - len(note)].decode("utf-8", "ignore").encode("utf-8") + note
    with open(path, "ab") as f:
        f.write(data)
    return True


# --------------------------------------------------------------------------- GitLab CI
_SECTION_RE = re.compile(r"[^A-Za-z0-9_.-]+")
_CSI_CLEAR = "\x1b[0K"


def section_name(index: int, label: str | None) -> str:
    """A GitLab section name (letters, digits, ``_ . -`` only), unique per file of the command."""
    base = _SECTION_RE.sub("_", label or "import").strip("_")[:40] or "import"
    return f"hextrackr_{index}_{base}"


def section_start(name: str, header: str, now: float | None = None) -> str:
    t = int(now if now is not None else time.time())
    header = "".join(ch if ch.isprintable() else " " for ch in header)
    return f"{_CSI_CLEAR}section_start:{t}:{name}[collapsed=true]\r{_CSI_CLEAR}{header}"


def section_end(name: str, now: float | None = None) -> str:
    t = int(now if now is not None else time.time())
    return f"{_CSI_CLEAR}section_end:{t}:{name}\r{_CSI_CLEAR}"


class GitLabSections:
    """Wraps the plain renderer: each file's lines sit in a collapsible section, its summary line after the
    section so that a collapsed log still shows how each file ended."""

    def __init__(self, inner: Any, stream: IO[str], clock: Callable[[], float] = time.time) -> None:
        self.inner = inner
        self.stream = stream
        self.clock = clock
        self.count = 0
        self.open: str | None = None

    def _raw(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self._close()
            self.count += 1
            self.open = section_name(self.count, event.filename or event.session_id)
            what = f"{event.title} {event.filename}" if event.filename else f"{event.title} {event.session_id}"
            self._raw(section_start(self.open, what, self.clock()))
        elif isinstance(event, ev.Outcome):
            self._close()
        self.inner.handle(event)

    def _close(self) -> None:
        if self.open is not None:
            self._raw(section_end(self.open, self.clock()))
            self.open = None

    def close(self) -> None:
        self._close()
        self.inner.close()
