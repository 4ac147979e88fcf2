"""Output for cron jobs and scheduled tasks: silence on success (``-qq``) and a log file (``--log-file``).

``SilentRenderer`` lets nothing through while every file completes or is skipped; a failing outcome is shown as
``-q`` shows it (with the warnings that came before it). ``LogFileRenderer`` appends the plain lines, each with
a full timestamp, whatever the output mode; known secrets are masked before a line is written.
"""

from __future__ import annotations

import io
import os
import re
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from hextrackr_cli import events as ev
from hextrackr_cli.errors import HextrackrError, UsageError
from hextrackr_cli.render.plain import PlainRenderer, _clean as clean

_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def is_success(outcome: ev.Outcome) -> bool:
    return int(outcome.exit_code) == 0 and outcome.outcome in ("completed", ev.OUTCOME_SKIPPED, ev.OUTCOME_DETACHED)


class SilentRenderer:
    """``-qq`` / ``--silent``: forwards to a quiet renderer only what a failure needs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started: ev.Started | None = None
        self.warnings: list[ev.Notice] = []

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self.started, self.warnings = event, []
        elif isinstance(event, ev.Notice) and event.level == "warning":
            self.warnings.append(event)
        elif isinstance(event, ev.Outcome):
            if not is_success(event):
                if self.started is not None:
                    self.inner.handle(self.started)
                for warning in self.warnings:
                    self.inner.handle(warning)
                self.inner.handle(event)
            self.started, self.warnings = None, []

    def close(self) -> None:
        self.inner.close()

    @property
    def emit(self) -> Any:  # the NDJSON error summary (_json_error) is a failure: let it out
        return getattr(self.inner, "emit", None)


class LogFileRenderer(PlainRenderer):
    """The plain lines, every one timestamped with the date and UTC offset, appended to the file at ``path``.

    Each line is one append to a freshly opened file, so logrotate may move the file at any time, and an error
    raised after the renderer was closed still gets its line.
    """

    def __init__(self, path: str, *, secrets: Iterable[str | None] = (), **kw: Any) -> None:
        append_line(path, None)  # refuse an unwritable path before anything is done
        super().__init__(io.StringIO(), **kw)
        self.path = path
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def _line(self, text: str) -> None:
        self._write(text)

    def _write(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S%z')} {clean(self.mask(text))}"
        try:
            append_line(self.path, line)
        except UsageError:  # the disk filled up mid-run: the screen still tells the truth
            pass

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "****")
        return _URL_USERINFO.sub("****@", text)

    def error(self, exc: BaseException) -> None:
        """The one line the error boundary prints, so the log has it too."""
        self._write(f"error: {exc}")


def append_line(path: str, line: str | None) -> None:
    """Append ``line`` and a newline to ``path`` in one write (created with mode 0600); None only checks."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise UsageError(f"cannot open the log file {path}: {exc.strerror or exc}") from None
    try:
        if line is not None:
            os.write(fd, (line + "\n").encode("utf-8", "replace"))
    except OSError as exc:
        raise UsageError(f"cannot write the log file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


class TeeRenderer:
    """Every event to each renderer in turn (the screen's, then the log file's)."""

    def __init__(self, renderers: Sequence[Any]) -> None:
        self.renderers = list(renderers)

    def handle(self, event: ev.Event) -> None:
        for r in self.renderers:
            r.handle(event)

    def close(self) -> None:
        for r in self.renderers:
            r.close()

    @property
    def emit(self) -> Any:
        return getattr(self.renderers[0], "emit", None)

    def error(self, exc: BaseException) -> None:
        for r in self.renderers:
            if isinstance(r, LogFileRenderer):
                r.error(exc)


@contextmanager
def logged_errors(renderer: Any) -> Iterator[None]:
    """An error leaving the command is written to the log file as well (cli.run prints it on stderr)."""
    try:
        yield
    except HextrackrError as exc:
        error = getattr(renderer, "error", None)
        if error is not None:
            error(exc)
        raise


def unattended(screen: Any, settings: Any) -> Any:
    """The screen's renderer wrapped for ``-qq`` (silent) and ``--log-file`` (tee), as ``settings`` say."""
    renderer = SilentRenderer(screen) if settings.silent else screen
    if settings.log_file:
        log = LogFileRenderer(settings.log_file, log_interval=settings.log_interval, verbose=settings.verbose,
                              secrets=(settings.token, settings.cookie, settings.environment.environ.get("HEXTRACKR_PASSWORD")))
        renderer = TeeRenderer([renderer, log])
    return renderer
