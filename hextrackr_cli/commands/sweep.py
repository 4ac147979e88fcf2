"""``hextrackr sweep DIR``: import every export dropped into a folder, once each.

Each settled file (``sweeping.Settler``) goes through ``import`` exactly as ``hextrackr import --if-changed``
would take it (same output modes, NDJSON per file, the same exit statuses), then moves to ``--done`` or
``--failed`` when given. The lock is implied (one sweep per server and profile), so two sweeps never take the
same file. A restart imports nothing twice: a completed file not yet moved is skipped by ``--if-changed`` (the
server or the ledger knows it), an identical import still running is followed, not sent again; a failed file
stays where it is (or in ``--failed``) and is never counted done.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hextrackr_cli import events as ev
from hextrackr_cli.core.importer import ImportOptions, held, import_or_skip, json_error, notice_fn, renderer_for
from hextrackr_cli.core.connection import connect
from hextrackr_cli.core.reporting import Reporter
from hextrackr_cli.core.unchanged import ContentCheck
from hextrackr_cli.errors import ExitStatus, HextrackrError, UsageError, more_serious
from hextrackr_cli.ledger import Ledger
from hextrackr_cli.locking import LockRequest
from hextrackr_cli.render.unattended import logged_errors
from hextrackr_cli.settings import Settings
from hextrackr_cli.sweeping import Settler, Signature, candidates, move_into, signature

# After these the next file would fail the same way (or the user asked to stop): end the pass, touch no file.
_STOP_AFTER = (ExitStatus.INTERRUPTED, ExitStatus.CONNECTION, ExitStatus.AUTH)
# Not the file's fault: it stays where it is for the next pass or run.
_LEAVE = (ExitStatus.CONNECTION, ExitStatus.AUTH, ExitStatus.TIMEOUT, ExitStatus.INTERRUPTED, ExitStatus.TEMPFAIL)
RETRY_AFTER_BROKEN = 30.0  # --watch: seconds before the next pass after a lost server or refused credentials
WATCH_WAKE_MS = 1000  # --watch: a pass at least this often, so a file settles on time without a new event


@dataclass(frozen=True)
class SweepOptions:
    """What ``hextrackr sweep`` was asked (fields = its click parameters)."""

    folder: Path
    patterns: tuple[str, ...] = ()  # empty: every supported extension
    settle: float = 10.0
    done: Path | None = None
    failed: Path | None = None
    watch: bool = False

    def check(self) -> None:
        if not self.folder.is_dir():
            raise UsageError(f"sweep folder {self.folder} is not a directory")
        for name, target in (("--done", self.done), ("--failed", self.failed)):
            if target is not None and target.resolve() == self.folder.resolve():
                raise UsageError(f"{name} {target} is the swept folder itself: its files would be taken again")
            if target is not None and target.exists() and not target.is_dir():
                raise UsageError(f"{name} {target} is not a directory")


class Sweep:
    """One sweep: the connection, the settle memory, what each pass did."""

    def __init__(self, settings: Settings, sweep: SweepOptions, options: ImportOptions, renderer: Any, conn: Any,
                 reporter: Reporter | None = None) -> None:
        self.settings = settings
        self.sweep = sweep
        self.options = replace(options, if_changed=True)  # a restart must never import a completed file twice
        self.renderer = renderer
        self.conn = conn
        self.check = ContentCheck(conn, Ledger(env=settings.environment.environ))
        self.reporter = reporter
        self.settler = Settler(sweep.settle)
        self.counts: Counter[str] = Counter()
        self.worst = 0
        self.handled: dict[Path, Signature] = {}  # --watch: a file already taken, as it was then
        self.stop = threading.Event()
        self.broken = False  # the last pass ended on a lost server or refused credentials
        self.left: set[Path] = set()  # --once: files this run could not finish (not their fault); not retried

    def one_pass(self) -> list[Path]:
        """Look at every matching file once; take the settled ones. Returns the files still settling."""
        waiting = []
        for path in candidates(self.sweep.folder, self.sweep.patterns or None):
            if self.stop.is_set():
                break
            if self._already_handled(path) or (path in self.left and not self.sweep.watch):
                continue
            if not self.settler.observe(path):
                waiting.append(path)
                continue
            code = self.take(path)
            if code in _STOP_AFTER:
                self.broken = code != ExitStatus.INTERRUPTED
                if code == ExitStatus.INTERRUPTED:
                    self.stop.set()
                break
        return waiting

    def take(self, path: Path) -> int:
        """Import one settled file (or skip it), then move it as its outcome says; its exit status."""
        from hextrackr_cli.client.localfile import check_file

        try:
            st_before = path.stat()
        except OSError:
            return 0  # gone meanwhile (someone else moved it)
        lf = None
        try:
            try:
                lf = check_file(str(path), import_type=self.options.import_type)
            except HextrackrError as exc:  # a bad file: its own failure, the sweep goes on
                self._failure(path, exc, "refused", json_done=False)
                code = int(exc.exit_status)
            else:
                try:
                    code = int(import_or_skip(self.conn, self.settings, self.renderer, lf, self.options, self.check,
                                              self.reporter))
                except HextrackrError as exc:  # this file's import broke (the NDJSON summary is already out)
                    self._failure(path, exc, "error", json_done=True)
                    code = int(exc.exit_status)
        finally:
            if lf is not None:
                lf.cleanup()
        self.worst = more_serious(self.worst, code)
        self.counts[self._word(code)] += 1
        self.settler.forget(path)
        if code in _LEAVE:  # not the file's fault: taken again by the next run (--watch: the next pass)
            self.left.add(path)
            return code
        self.handled[path] = signature(st_before)
        self._move(path, self.sweep.failed if code in (ExitStatus.IMPORT_FAILED, ExitStatus.USAGE) else self.sweep.done)
        return code

    def _word(self, code: int) -> str:
        if code == ExitStatus.OK:
            return "skipped" if self.renderer.last_outcome == ev.OUTCOME_SKIPPED else "completed"
        if code == ExitStatus.IMPORT_FAILED:
            return "failed"
        if code == ExitStatus.USAGE:
            return "refused"
        return "left" if code in _LEAVE else "completed"  # e.g. a gate's verdict: imported, then judged

    def _already_handled(self, path: Path) -> bool:
        seen = self.handled.get(path)
        if seen is None:
            return False
        try:
            if signature(path.stat()) == seen:
                return True
        except OSError:
            return True
        del self.handled[path]  # changed since: a new export under the same name
        return False

    def _failure(self, path: Path, exc: HextrackrError, word: str, *, json_done: bool) -> None:
        """One file's error, shown as its outcome line (NDJSON: its error summary) and logged; the sweep goes on."""
        outcome = ev.Outcome(word, "", int(exc.exit_status), message=str(exc), filename=path.name)
        if self.reporter is not None:  # a testcase of its own in --junit
            self.reporter.record(path.name, outcome, None)
        if getattr(self.renderer, "emit", None) is None:
            self.renderer.handle(outcome)
            return
        if not json_done:
            json_error(self.renderer, exc, None, path.name)
        log = getattr(self.renderer, "error", None)
        if log is not None:
            log(exc)

    def _move(self, path: Path, target: Path | None) -> None:
        if target is None or not path.exists():
            return
        try:
            moved = move_into(path, target)
        except UsageError as exc:
            self.renderer.handle(ev.Notice(str(exc), "warning"))
            self.worst = more_serious(self.worst, int(ExitStatus.USAGE))
            return
        self.handled.pop(path, None)
        if self.settings.verbose:
            self.renderer.handle(ev.Notice(f"moved {path.name} to {moved}"))

    def summary(self, waiting: list[Path]) -> None:
        """The counts of the sweep: one line (NDJSON: one object); nothing under -qq when all went well."""
        if self.settings.silent and self.worst == 0:
            return
        counts = {k: self.counts.get(k, 0) for k in ("completed", "skipped", "failed", "refused", "left")}
        emit = getattr(self.renderer, "emit", None)
        if emit is not None:
            emit({"event": "sweep", "folder": str(self.sweep.folder), **counts, "waiting": len(waiting),
                  "exitCode": self.worst})
            return
        parts = [f"{n} {k}" for k, n in counts.items() if n] or ["nothing to import"]
        if waiting:
            names = ", ".join(p.name for p in waiting[:3]) + (", …" if len(waiting) > 3 else "")
            parts.append(f"{len(waiting)} still being written ({names}; left for the next pass)")
        self.renderer.handle(ev.Notice(f"sweep {self.sweep.folder}: " + ", ".join(parts),
                                       "warning" if self.worst else "info"))


def run_sweep(settings: Settings, sweep: SweepOptions, options: ImportOptions = ImportOptions(),
              lock: LockRequest | None = None) -> int:
    """``--once``: one pass, exit status = the worst outcome. ``--watch``: until SIGTERM/Ctrl-C, exit 0 then.
    The gate and the reports are the import's: decided per file, the reports written when the sweep ends."""
    reporter = Reporter("hextrackr sweep", settings, options.reports)
    renderer = _LastOutcome(reporter.renderer(renderer_for(settings)))
    try:
        with logged_errors(renderer):
            sweep.check()
            options.check(settings, [str(sweep.folder)])
            reporter.check(import_type=options.import_type)
            with held(settings, lock or LockRequest(required=False)):  # implied: one sweep per server and profile
                conn = connect(settings, notice_fn(renderer), options.timeout)
                try:
                    reporter.check_server(conn)
                    s = Sweep(settings, sweep, options, renderer, conn, reporter)
                    if not sweep.watch:
                        for path in candidates(sweep.folder, sweep.patterns or None):
                            s.settler.observe(path)  # the first look; one_pass takes what is unchanged since
                        waiting = s.one_pass()
                        # a file still settling is waited for, up to --settle more seconds: one written just
                        # before the run is taken by it; one still being written after that is left
                        give_up = time.monotonic() + sweep.settle
                        while waiting and not s.broken and time.monotonic() < give_up:
                            time.sleep(min(0.25, max(0.01, give_up - time.monotonic())))
                            waiting = s.one_pass()
                        s.summary(waiting)
                        return s.worst
                    _watch(s)
                    s.summary([])
                    # stopped on request: every file's outcome was shown as it happened
                    return ExitStatus.INTERRUPTED if s.renderer.last_outcome == ev.OUTCOME_INTERRUPTED else 0
                finally:
                    conn.close()
    finally:
        renderer.close()
        reporter.finish()


def _watch(s: Sweep) -> None:
    """Passes on every change in the folder and at least every WATCH_WAKE_MS, until SIGTERM or Ctrl-C.

    watchfiles uses inotify (or the platform's equivalent) where it can and polls otherwise; network shares,
    whose remote writes inotify never sees, are covered by the timed pass anyway."""
    import watchfiles

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def stop(signum: int, frame: Any) -> None:
        s.stop.set()

    for sig in previous:
        signal.signal(sig, stop)
    try:
        s.renderer.handle(ev.Notice(f"watching {s.sweep.folder} (settle {s.sweep.settle:g}s); stop with SIGTERM or Ctrl-C"))
        s.one_pass()
        for _ in watchfiles.watch(s.sweep.folder, stop_event=s.stop, rust_timeout=WATCH_WAKE_MS, yield_on_timeout=True,
                                  debounce=300, recursive=False, raise_interrupt=False, watch_filter=None):
            if s.stop.is_set() or (s.broken and s.stop.wait(RETRY_AFTER_BROKEN)):
                break
            s.broken = False
            s.one_pass()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _LastOutcome:
    """Passes every event on; remembers the last outcome word (how the sweep counts a file)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last_outcome: str | None = None

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Outcome):
            self.last_outcome = event.outcome
        self.inner.handle(event)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # emit, error: the inner renderer's
        return getattr(self.inner, name)
