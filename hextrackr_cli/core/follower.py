"""The follow state machine: a watcher's events, Ctrl-C presses and the clock in; one Outcome out.

The watcher (``client.watcher``) yields typed events and reports a refused or aborted upload; the renderer
shows every event; the Follower decides when following ends and with which exit status: the server's outcome
(held until our upload is accepted), ``--timeout`` (during or after the upload), Ctrl-C once (cancel, after a
short grace so a second press can detach instead) or twice (detach), or a cancel the server never confirmed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Callable, Protocol

from hextrackr_cli import protocol
from hextrackr_cli.core.sigint import Sigint
from hextrackr_cli.errors import ExitStatus

CANCEL_WAIT = 15.0  # seconds to wait for importCancelled after the first Ctrl-C
# A double Ctrl-C (two presses within this window) detaches without cancelling: the cancel is only sent
# once the window has passed, so "Ctrl-C again to detach" can be honoured even by a quick double press.
# Short, because every moment here is a moment the import goes on (near its end: past the point of no return).
CANCEL_GRACE = 0.2
UPLOAD_ABORT_GRACE = 3.0  # an upload blocked on a silent server cannot see the abort: stop waiting
NEXT = object()  # a step's answer: nothing more to do in this pass of the loop


class Followed(Protocol):
    """What the Follower needs of a watcher (``client.watcher.Watcher``; tests use a scripted fake)."""

    dialect: Any  # protocol.Dialect: its cancel_event is None on a server without a cancel

    def get(self, timeout: float) -> Any: ...  # the next event or None; raises the upload's error

    def put(self, event: Any) -> None: ...

    def request_cancel(self) -> None: ...


class Shown(Protocol):
    """Where the events go (a renderer, or Client's callback)."""

    def handle(self, event: Any) -> None: ...


class Follower:
    """Follows one session until it ends; ``run()`` returns the (final) Outcome it showed.

    ``uploading`` is set while our upload is in flight (None when only watching): an outcome seen before the
    server accepted our POST is held, and Ctrl-C or the deadline then abort the upload (``abort``) instead
    of cancelling. ``watch_hint`` says what happens to the import when we stop following it.
    """

    def __init__(
        self,
        watcher: Followed,
        renderer: Shown,
        sid: str,
        sigint: Sigint,
        *,
        watch_hint: str,
        timeout: float | None,
        started: float,
        uploading: threading.Event | None = None,
        abort: threading.Event | None = None,
        cancel_wait: float = CANCEL_WAIT,
        cancel_grace: float = CANCEL_GRACE,
        upload_abort_grace: float = UPLOAD_ABORT_GRACE,
        decide: Callable[[Any], Any] | None = None,
    ) -> None:
        self.watcher = watcher
        self.renderer = renderer
        self.sid = sid
        self.sigint = sigint
        self.watch_hint = watch_hint
        self.timeout = timeout
        self.deadline = started + timeout if timeout else None
        self.uploading = uploading
        self.abort = abort
        self.cancel_wait = cancel_wait
        self.cancel_grace = cancel_grace
        self.upload_abort_grace = upload_abort_grace
        self.decide = decide  # the final Outcome -> the Outcome shown (the gate: core.reporting.Reporter.decider)
        self.cancel_at: float | None = None  # when the cancel is due (set by the first Ctrl-C)
        self.cancel_sent: float | None = None
        self.seen_presses = 0
        self.held: Any = None  # an outcome seen before our upload was accepted (a re-used session id)
        self.timed_out_uploading = False
        self.wait = 0.0  # first pass: check the deadline and Ctrl-C before blocking
        sigint.wake = lambda: watcher.put(None)  # a press is handled at once, not at the next 0.1 s poll

    # ------------------------------------------------------------------ the loop
    def run(self) -> Any:
        """Follow to the end; the final Outcome (also shown)."""
        while True:
            done = self.step()
            if done is not None:
                return done

    def step(self) -> Any:
        """One pass: wait for the next event (at most 0.1 s), show it, react to Ctrl-C and the clock; the final
        Outcome when the follow has ended, else None (``Client.watch`` yields the events shown in between)."""
        from hextrackr_cli.client.http import UploadAborted

        try:
            event = self.watcher.get(self.wait)
            self.wait = 0.1
        except UploadAborted:
            return self._finish(self._upload_aborted())
        # each step: None = go on with this pass, NEXT = next pass, else the final Outcome
        result = self._on_event(event)
        if result is None:
            result = self._on_presses()
        if result is None:
            result = self._on_clock()
        if result is not None and result is not NEXT:
            return self._finish(result)
        return None

    def _finish(self, outcome: Any) -> Any:
        if self.decide is not None:
            outcome = self.decide(outcome)
        self.renderer.handle(outcome)
        return outcome

    @property
    def _upload_in_flight(self) -> bool:
        return self.uploading is not None and self.uploading.is_set()

    def _outcome(self, outcome: str, status: ExitStatus, message: str) -> Any:
        from hextrackr_cli import events as ev

        return ev.Outcome(outcome, self.sid, status, message=message)

    # ------------------------------------------------------------------ one step each
    def _upload_aborted(self) -> Any:
        from hextrackr_cli import events as ev

        if self.timed_out_uploading:
            return self._outcome(ev.OUTCOME_TIMEOUT, ExitStatus.TIMEOUT,
                                 f"--timeout {self.timeout:g}s reached during the upload; "
                                 "the upload was stopped and nothing was imported")
        return self._outcome(ev.OUTCOME_INTERRUPTED, ExitStatus.INTERRUPTED,
                             "upload aborted on Ctrl-C; nothing was imported")

    def _on_event(self, event: Any) -> Any:
        """Show an event; return the final Outcome when it ends the follow."""
        from hextrackr_cli import events as ev

        if isinstance(event, ev.Uploaded) and self.uploading is not None:
            self.uploading.clear()
            self.renderer.handle(event)
            if self.timed_out_uploading:  # the upload finished before it could be stopped: the import runs
                return self._stopped_watching()
            if self.held is not None:
                return adjust(self.held, self.cancel_at is not None)
            return None
        if isinstance(event, ev.Outcome):
            if self._upload_in_flight:
                self.held = event  # decided only once the server has answered our POST (it may refuse it)
                return NEXT
            return adjust(event, self.cancel_at is not None)
        if event is not None:
            self.renderer.handle(event)
        return None

    def _on_presses(self) -> Any:
        """React to new Ctrl-C presses: abort the upload, detach, or schedule the cancel."""
        from hextrackr_cli import events as ev

        presses = self.sigint.count
        if presses <= self.seen_presses:
            return None
        self.seen_presses = presses
        if self._upload_in_flight:
            if self.abort is not None:
                self.abort.set()  # the upload thread stops at its next chunk and reports UploadAborted
            return NEXT
        if presses >= 2 or self.watcher.dialect.cancel_event is None:
            why = "" if presses >= 2 else "HexTrackr 1.1.x has no cancel, so nothing was cancelled; "
            return self._outcome(ev.OUTCOME_DETACHED, ExitStatus.INTERRUPTED,
                                 f"{why}detached from session {self.sid}; {self.watch_hint}")
        if self.cancel_at is None:
            self.cancel_at = time.monotonic() + self.cancel_grace
            self.renderer.handle(ev.Cancelling(self.sid))
        return None

    def _on_clock(self) -> Any:
        """The cancel grace, the cancel wait and --timeout; return the final Outcome when one ends the follow."""
        from hextrackr_cli import events as ev

        now = time.monotonic()
        if self.cancel_at is not None and self.cancel_sent is None:
            if now >= self.cancel_at:
                self.cancel_sent = now
                self.watcher.request_cancel()
            else:
                self.wait = min(self.wait, self.cancel_at - now)  # send it when the window ends, not up to 0.1 s later
        if self.cancel_sent is not None and now - self.cancel_sent > self.cancel_wait:
            return self._outcome(ev.OUTCOME_INTERRUPTED, ExitStatus.INTERRUPTED,
                                 f"the server did not confirm the cancel within {self.cancel_wait:g}s; {self.watch_hint}")
        deadline = self.deadline
        if self.timed_out_uploading and deadline is not None and now >= deadline + self.upload_abort_grace:
            return self._outcome(ev.OUTCOME_TIMEOUT, ExitStatus.TIMEOUT,
                                 f"--timeout {self.timeout:g}s reached during the upload and the server did not "
                                 f"answer; check it with: hextrackr status {self.sid}")
        if deadline is not None and now >= deadline and self.cancel_at is None and not self.timed_out_uploading:
            if self._upload_in_flight and self.abort is not None:
                self.timed_out_uploading = True
                self.abort.set()
                return NEXT
            return self._stopped_watching()
        return None

    def _stopped_watching(self) -> Any:
        from hextrackr_cli import events as ev

        return self._outcome(ev.OUTCOME_TIMEOUT, ExitStatus.TIMEOUT,
                             f"stopped watching after {self.timeout:g}s (--timeout); {self.watch_hint}")


def adjust(outcome: Any, cancel_requested: bool) -> Any:
    """Exit status and wording of a server outcome, given whether we asked for a cancel."""
    if outcome.outcome == protocol.OUTCOME_CANCELLED:
        if cancel_requested:
            return replace(
                outcome,
                exit_code=ExitStatus.INTERRUPTED,
                message="cancelled on Ctrl-C; the server confirmed the cancel and rolled the import back",
            )
        return replace(outcome, exit_code=ExitStatus.IMPORT_FAILED, message="cancelled (by another client)")
    if outcome.outcome == protocol.OUTCOME_COMPLETED and cancel_requested:
        return replace(outcome, message="the import completed before the cancel took effect")
    return outcome
