"""The Follower (core/follower.py) against a fake watcher that feeds scripted events: every way a follow ends.

No server, no sockets, no threads of ours: each test runs in milliseconds (the whole file well under a second).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from types import SimpleNamespace
from typing import Any, Callable, Iterable

import pytest

from hextrackr_cli import events as ev
from hextrackr_cli.client.http import UploadAborted
from hextrackr_cli.core.follower import Follower
from hextrackr_cli.core.sigint import Sigint
from hextrackr_cli.errors import ExitStatus, ServerError

SID = "00000000-0000-4000-8000-000000000001"
HINT = "the import keeps running on the server; re-attach with: hextrackr watch " + SID


class FakeWatcher:
    """What the Follower needs of a Watcher. Each get() takes the next scripted step: an event (returned),
    None, an exception (raised) or a callable (called; its result returned). Events put() by the Follower's
    Ctrl-C wake-up or by ``on_cancel`` come first. With the script done, get() waits briefly on the queue."""

    def __init__(self, script: Iterable[Any], *, cancel: bool = True, on_cancel: Any = None,
                 idle: Callable[[], Any] | None = None) -> None:
        self.script = deque(script)
        self.idle = idle  # called on each get() once the script is done (e.g. an upload that sees the abort)
        self.queue: queue.Queue[Any] = queue.Queue()
        self.dialect = SimpleNamespace(cancel_event="cancelImport" if cancel else None)
        self.on_cancel = on_cancel
        self.cancel_requests: list[float] = []
        self.gets = 0

    def put(self, event: Any) -> None:
        self.queue.put(event)

    def get(self, timeout: float) -> Any:
        self.gets += 1
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            pass
        if self.script:
            step = self.script.popleft()
            if isinstance(step, BaseException):
                raise step
            return step() if callable(step) else step
        try:
            return self.queue.get(timeout=min(timeout, 0.005))
        except queue.Empty:
            return self.idle() if self.idle is not None else None

    def request_cancel(self) -> None:
        self.cancel_requests.append(time.monotonic())
        if self.on_cancel is not None:
            self.put(self.on_cancel)


class Renderer:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def handle(self, event: Any) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def outcome(name: str, code: int, **kw: Any) -> ev.Outcome:
    return ev.Outcome(name, SID, code, **kw)


def progress(pct: int) -> ev.Progress:
    return ev.Progress({"sessionId": SID, "progress": pct, "message": f"at {pct}%"})


def follow(script: Iterable[Any], *, upload: bool = False, timeout: float | None = None, cancel: bool = True,
           on_cancel: Any = None, sigint: Sigint | None = None, idle: Callable[[Any], Any] | None = None,
           **kw: Any) -> tuple[Any, Renderer, FakeWatcher, Any]:
    uploading = abort = None
    if upload:
        uploading, abort = threading.Event(), threading.Event()
        uploading.set()
    sigint = sigint or Sigint()  # not entered: presses come from the script
    state = SimpleNamespace(abort=abort, uploading=uploading, sigint=sigint)
    watcher = FakeWatcher(script, cancel=cancel, on_cancel=on_cancel,
                          idle=(lambda: idle(state)) if idle is not None else None)
    renderer = Renderer()
    kw.setdefault("cancel_grace", 0.01)
    kw.setdefault("cancel_wait", 0.05)
    kw.setdefault("upload_abort_grace", 0.03)
    f = Follower(watcher, renderer, SID, sigint, watch_hint=HINT, timeout=timeout, started=time.monotonic(),
                 uploading=uploading, abort=abort, **kw)
    return f.run(), renderer, watcher, state


def press(sigint: Sigint, times: int = 1) -> Callable[[], None]:
    def step() -> None:
        for _ in range(times):
            sigint.press()

    return step


# --------------------------------------------------------------------------- the server decides
def test_the_servers_outcome_ends_the_follow_with_its_exit_status() -> None:
    got, r, _, _ = follow([progress(10), None, progress(60), outcome("completed", 0, summary={"inserted": 3})])
    assert (got.outcome, got.exit_code, got.summary) == ("completed", 0, {"inserted": 3})
    assert r.kinds() == ["Progress", "Progress", "Outcome"] and r.events[-1] is got


def test_a_failed_import_exits_1_with_the_servers_message() -> None:
    got, r, _, _ = follow([outcome("failed", ExitStatus.IMPORT_FAILED, message="row 22: ragged")])
    assert (got.exit_code, got.message) == (1, "row 22: ragged")


def test_socket_to_polling_switch_and_reconnects_are_shown_and_the_follow_goes_on() -> None:
    script = [progress(5), ev.TransportChanged("polling", "websocket refused"), ev.Reconnecting(1, 0.5, "reset"),
              ev.Reconnected("polling"), progress(80), outcome("completed", 0, source="polling")]
    got, r, _, _ = follow(script)
    assert r.kinds() == ["Progress", "TransportChanged", "Reconnecting", "Reconnected", "Progress", "Outcome"]
    assert (got.exit_code, got.source) == (0, "polling")


def test_an_outcome_decided_by_the_status_endpoint_is_shown_as_the_watcher_decided_it() -> None:
    """The watcher's poll/history verdict (e.g. 'broken', exit 3: it cannot tell) is not second-guessed."""
    verdict = outcome(ev.OUTCOME_BROKEN, ExitStatus.CONNECTION, source="polling", message="the history cannot tell")
    got, _, _, _ = follow([progress(40), verdict])
    assert got is verdict and got.exit_code == 3


def test_a_cancel_by_another_client_exits_1() -> None:
    got, _, _, _ = follow([outcome("cancelled", 130)])
    assert (got.exit_code, got.message) == (ExitStatus.IMPORT_FAILED, "cancelled (by another client)")


def test_an_outcome_seen_during_our_upload_waits_for_the_servers_answer_to_the_post() -> None:
    """A re-used session id: its old outcome counts only once our POST was accepted."""
    old = outcome("completed", 0, message="the earlier import")
    got, r, _, s = follow([old, None, None, lambda: ev.Uploaded({"importId": 7})], upload=True)
    assert r.kinds() == ["Uploaded", "Outcome"] and got.message == "the earlier import"
    assert not s.uploading.is_set()


def test_a_held_outcome_is_dropped_when_the_server_refuses_our_upload() -> None:
    with pytest.raises(ServerError):
        follow([outcome("completed", 0), ServerError("upload refused: 413")], upload=True)


# --------------------------------------------------------------------------- --timeout
def test_timeout_after_the_upload_exits_5_and_says_the_import_goes_on() -> None:
    start = time.monotonic()
    got, _, w, _ = follow([progress(1)], timeout=0.03)
    assert (got.outcome, got.exit_code) == ("timeout", ExitStatus.TIMEOUT)
    assert "stopped watching after 0.03s" in got.message and HINT in got.message
    assert 0.03 <= time.monotonic() - start < 0.5 and not w.cancel_requests


def upload_sees_abort(state: Any) -> Any:
    """The upload thread: stops at its next chunk once the abort is set (the watcher then raises UploadAborted)."""
    if state.abort.is_set():
        raise UploadAborted("stopped")
    return None


def test_timeout_during_the_upload_stops_it_and_nothing_is_imported() -> None:
    got, _, _, s = follow([], upload=True, timeout=0.02, idle=upload_sees_abort)
    assert s.abort.is_set()
    assert (got.exit_code, got.message) == (
        ExitStatus.TIMEOUT, "--timeout 0.02s reached during the upload; the upload was stopped and nothing was imported")


def test_timeout_during_the_upload_that_finishes_anyway_reports_the_import_running() -> None:
    def accepted_once_aborted(state: Any) -> Any:
        return ev.Uploaded({"importId": 1}) if state.abort.is_set() else None

    got, r, _, _ = follow([], upload=True, timeout=0.02, idle=accepted_once_aborted)
    assert got.exit_code == ExitStatus.TIMEOUT and got.message == f"stopped watching after 0.02s (--timeout); {HINT}"
    assert r.kinds() == ["Uploaded", "Outcome"]


def test_timeout_during_an_upload_the_server_never_answers_gives_up_after_the_grace() -> None:
    got, _, _, s = follow([], upload=True, timeout=0.02, upload_abort_grace=0.03)
    assert s.abort.is_set() and got.exit_code == ExitStatus.TIMEOUT
    assert "server did not answer; check it with: hextrackr status " + SID in got.message


# --------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_once_cancels_after_the_grace_and_the_servers_confirmation_exits_130() -> None:
    sigint = Sigint()
    pressed: list[float] = []

    def press_once() -> None:
        pressed.append(time.monotonic())
        sigint.press()

    got, r, w, _ = follow([progress(30), press_once], sigint=sigint, cancel_grace=0.02,
                          on_cancel=outcome("cancelled", 130, confirmed=True))
    assert len(w.cancel_requests) == 1 and w.cancel_requests[0] - pressed[0] >= 0.02  # after the grace
    assert "Cancelling" in r.kinds() and r.kinds().index("Cancelling") < r.kinds().index("Outcome")
    assert (got.exit_code, got.message) == (
        ExitStatus.INTERRUPTED, "cancelled on Ctrl-C; the server confirmed the cancel and rolled the import back")


def test_ctrl_c_once_but_the_import_completes_first_exits_0_and_says_so() -> None:
    sigint = Sigint()
    got, _, _, _ = follow([press(sigint), outcome("completed", 0)], sigint=sigint, cancel_grace=1.0)
    assert (got.exit_code, got.message) == (0, "the import completed before the cancel took effect")


def test_ctrl_c_once_without_a_confirmation_gives_up_after_the_cancel_wait() -> None:
    sigint = Sigint()
    got, _, w, _ = follow([press(sigint)], sigint=sigint, cancel_wait=0.03)
    assert len(w.cancel_requests) == 1 and got.exit_code == ExitStatus.INTERRUPTED
    assert got.message == f"the server did not confirm the cancel within 0.03s; {HINT}"


def test_ctrl_c_twice_within_the_grace_detaches_without_cancelling() -> None:
    sigint = Sigint()
    got, r, w, _ = follow([press(sigint), None, press(sigint)], sigint=sigint, cancel_grace=1.0)
    assert w.cancel_requests == []
    assert (got.outcome, got.exit_code) == ("detached", ExitStatus.INTERRUPTED)
    assert got.message == f"detached from session {SID}; {HINT}"


def test_ctrl_c_on_a_server_without_cancel_detaches_at_once_and_says_nothing_was_cancelled() -> None:
    sigint = Sigint()
    got, r, w, _ = follow([press(sigint)], sigint=sigint, cancel=False)
    assert w.cancel_requests == [] and "Cancelling" not in r.kinds()
    assert got.outcome == "detached" and "HexTrackr 1.1.x has no cancel, so nothing was cancelled" in got.message


def test_ctrl_c_during_the_upload_aborts_it_instead_of_cancelling() -> None:
    sigint = Sigint()
    got, r, w, s = follow([press(sigint)], upload=True, sigint=sigint, idle=upload_sees_abort)
    assert s.abort.is_set() and w.cancel_requests == [] and "Cancelling" not in r.kinds()
    assert (got.exit_code, got.message) == (ExitStatus.INTERRUPTED, "upload aborted on Ctrl-C; nothing was imported")


def test_a_press_wakes_a_follow_blocked_on_the_watcher() -> None:
    """The Follower installs a wake-up: a press puts an event on the watcher's queue at once."""
    sigint = Sigint()
    w = FakeWatcher([outcome("completed", 0)])
    Follower(w, Renderer(), SID, sigint, watch_hint=HINT, timeout=None, started=time.monotonic()).run()
    sigint.press()
    assert w.queue.get(timeout=1.0) is None  # what the wake-up puts: "look again now"


# --------------------------------------------------------------------------- several files
def test_several_files_each_get_their_own_follow_and_outcome() -> None:
    """run_import follows each file with a new Follower: one file's Ctrl-C grace or held outcome does not leak."""
    renderer = Renderer()
    results = []
    for script in ([outcome("failed", 1, message="bad row")], [progress(50), outcome("completed", 0)]):
        watcher = FakeWatcher(script)
        results.append(Follower(watcher, renderer, SID, Sigint(), watch_hint=HINT, timeout=None,
                                started=time.monotonic()).run())
    assert [(o.outcome, o.exit_code) for o in results] == [("failed", 1), ("completed", 0)]
    assert renderer.kinds() == ["Outcome", "Progress", "Outcome"]
