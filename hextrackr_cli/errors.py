"""Exit statuses and the exception hierarchy.

Exceptions carry the fix-it text, built where the facts are known. They become exit
codes in exactly one place: ``hextrackr_cli.cli.main``.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Process exit codes (SPEC.md, "Exit status")."""

    OK = 0  # import completed
    IMPORT_FAILED = 1  # the server reported an error event
    USAGE = 2  # usage error or bad local input; nothing was sent
    CONNECTION = 3  # server unreachable / watch broke and could not be recovered
    AUTH = 4  # authentication or authorization refused
    TIMEOUT = 5  # --timeout reached; the import keeps running on the server
    GATE = 6  # the import completed, but its findings cross the gate (--fail-on, --max)
    OUTCOME_UNKNOWN = 7  # the import ended, but the server (HexTrackr 1.1.x) no longer tells how
    TEMPFAIL = 75  # EX_TEMPFAIL (sysexits.h): another run holds the lock (--lock); nothing was done
    INTERRUPTED = 130  # Ctrl-C


def more_serious(a: int, b: int) -> int:
    """The status that wins when one command ends several imports: any failure (1-5, 75, 130) outranks a
    tripped gate (6), which outranks success (0); among failures the higher code."""

    def rank(code: int) -> int:
        return 0 if code == ExitStatus.OK else 1 if code == ExitStatus.GATE else 2 + code

    return a if rank(a) >= rank(b) else b


class HextrackrError(Exception):
    """Base class: ``str(exc)`` is the one-line message shown to the user."""

    exit_status: ExitStatus = ExitStatus.IMPORT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(HextrackrError):
    """Bad option or bad local input; nothing was sent to the server."""

    exit_status = ExitStatus.USAGE


class BadInputError(UsageError):
    """A local file that cannot be imported (missing, empty, not CSV, unknown columns...)."""


class ServerUnreachable(HextrackrError):
    """Cannot reach the server, or the watch broke and could not be recovered."""

    exit_status = ExitStatus.CONNECTION


class AuthError(HextrackrError):
    """The server refused our credentials (401/403, socket connect refused)."""

    exit_status = ExitStatus.AUTH


class ServerError(HextrackrError):
    """The server refused or failed a request (4xx/5xx other than auth), or reported an import error."""

    exit_status = ExitStatus.IMPORT_FAILED


class ImportFailed(ServerError):
    """The import ended with an ``error`` event."""


class WatchTimeout(HextrackrError):
    """``--timeout`` was reached; the import keeps running."""

    exit_status = ExitStatus.TIMEOUT


class Interrupted(HextrackrError):
    """Ctrl-C; the message says whether the server confirmed the cancel."""

    exit_status = ExitStatus.INTERRUPTED


class LockHeld(HextrackrError):
    """Another process holds the lock (``--lock``); nothing was done. ``holder_pid`` names it when known."""

    exit_status = ExitStatus.TEMPFAIL

    def __init__(self, message: str, *, holder_pid: int | None = None, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder_pid = holder_pid
        self.path = path
