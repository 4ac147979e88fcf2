"""ProgressTracker unit tests: throttle, trailing flush, ETA, completion and cleanup, with a fake clock."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from hextrackr_cli import protocol
from hextrackr_cli.server.tracker import ProgressTracker

SID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"


class FakeTime:
    """A manual clock with a timer queue: advancing it fires due timers in order."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[list[Any]] = []  # [due, fn, cancelled]

    def clock(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return int(self.now * 1000)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Any:
        entry = [self.now + delay, fn, False]
        self.timers.append(entry)

        class Handle:
            def cancel(self_inner) -> None:
                entry[2] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if not t[2] and t[0] <= end]
            if not due:
                break
            first = min(due, key=lambda t: t[0])
            self.timers.remove(first)
            self.now = max(self.now, first[0])
            first[1]()
        self.now = end


@pytest.fixture
def setup() -> tuple[ProgressTracker, FakeTime, list]:
    ft = FakeTime()
    sent: list[tuple[float, str, dict, str]] = []
    tracker = ProgressTracker(
        lambda ev, data, room: sent.append((ft.now, ev, data, room)),
        ft.call_later,
        retention=300.0,
        clock=ft.clock,
        wall_ms=ft.wall_ms,
    )
    return tracker, ft, sent


def progress_sent(sent: list) -> list[dict]:
    return [d for _, ev, d, _ in sent if ev == protocol.IMPORT_PROGRESS]


def test_create_session_has_the_seed_session_fields(setup) -> None:
    tracker, ft, _ = setup
    s = tracker.create_session(SID)
    assert (s.id, s.startTime, s.progress, s.status, s.totalRows, s.processedRows) == (SID, ft.wall_ms(), 0, "active", 0, 0)
    assert s.cancelled is False and s.endTime is None
    assert tracker.sessions[SID] is s


def test_first_event_goes_to_the_room_at_once_with_the_seed_payload(setup) -> None:
    tracker, ft, sent = setup
    tracker.create_session(SID)
    ft.advance(2)
    tracker.emit_progress(SID, "loading", 45, "Processing batch 2 of 4...", batchNumber=2, totalBatches=4)
    (_, ev, data, room), = sent
    assert ev == "importProgress" and room == SID
    assert data["sessionId"] == SID and data["type"] == "loading" and data["progress"] == 45
    assert data["message"] == "Processing batch 2 of 4..." and data["timestamp"] == ft.wall_ms()
    assert data["batchNumber"] == 2 and data["totalBatches"] == 4
    # seed ETA: elapsed 2 s for 45 % -> total 4.44 s -> 2.44 s left -> 2
    assert data["eta"] == 2


def test_at_most_two_events_per_second_however_fast_progress_is_reported(setup) -> None:
    tracker, ft, sent = setup
    tracker.create_session(SID)
    for i in range(1, 100):
        tracker.emit_progress(SID, "loading", i, f"step {i}")
        ft.advance(0.02)  # 50 reports per second
    ft.advance(1)
    times = [t for t, ev, _, _ in sent if ev == "importProgress"]
    for t in times:
        in_window = [u for u in times if t <= u < t + 1.0]
        assert len(in_window) <= 2
    assert len(times) >= 3  # it still moves along


def test_progress_changes_under_one_percent_are_not_sent_immediately(setup) -> None:
    tracker, ft, sent = setup
    tracker.create_session(SID)
    tracker.emit_progress(SID, "loading", 10, "same message")
    ft.advance(1)
    tracker.emit_progress(SID, "loading", 10.5, "same message")
    assert len(progress_sent(sent)) == 1
    ft.advance(1)
    # the held-back state says nothing new (same integer percent, type and message): never sent
    assert len(progress_sent(sent)) == 1


def test_trailing_flush_sends_the_latest_suppressed_state_at_the_end_of_the_window(setup) -> None:
    tracker, ft, sent = setup
    tracker.create_session(SID)
    tracker.emit_progress(SID, "loading", 10, "batch 1")
    ft.advance(0.1)
    tracker.emit_progress(SID, "loading", 20, "batch 2")
    ft.advance(0.1)
    tracker.emit_progress(SID, "loading", 30, "batch 3")
    assert [d["progress"] for d in progress_sent(sent)] == [10]
    ft.advance(0.3)  # window of 0.5 s since the first event ends
    got = progress_sent(sent)
    assert [d["progress"] for d in got] == [10, 30]
    assert sent[-1][0] == pytest.approx(1000.5)


def test_complete_and_error_are_never_throttled_and_drop_older_held_back_state(setup) -> None:
    tracker, ft, sent = setup
    tracker.create_session(SID)
    tracker.emit_progress(SID, "loading", 50, "batch")
    tracker.emit_progress(SID, "loading", 60, "batch 2")  # held back
    tracker.emit_progress(SID, "complete", 100, "done")
    ft.advance(2)
    assert [(d["type"], d["progress"]) for d in progress_sent(sent)] == [("loading", 50), ("complete", 100)]
    tracker.create_session(SID)
    sent.clear()
    tracker.emit_progress(SID, "loading", 5, "x")
    tracker.emit_progress(SID, "error", 5, "Database connection failed")
    assert [d["type"] for d in progress_sent(sent)] == ["loading", "error"]
    assert progress_sent(sent)[-1]["eta"] is None


def test_cancel_confirmation_is_never_throttled(setup) -> None:
    tracker, ft, sent = setup
    tracker.create_session(SID)
    tracker.emit_progress(SID, "loading", 50, "batch")
    assert tracker.request_cancel(SID) is True
    tracker.emit_cancelled(SID)
    assert sent[-1][1:] == ("importCancelled", {"sessionId": SID}, SID)
    assert tracker.sessions[SID].cancelled is True


def test_eta_follows_the_seed_algorithm(setup) -> None:
    tracker, ft, _ = setup
    s = tracker.create_session(SID)
    assert tracker.calculate_eta(s, 0) is None
    ft.advance(30)
    assert tracker.calculate_eta(s, 25) == 90  # 30 s for 25 % -> 120 s total
    assert tracker.calculate_eta(s, 100) == 0


def test_complete_session_marks_status_and_end_time_then_cleans_up_after_retention(setup) -> None:
    tracker, ft, _ = setup
    tracker.create_session(SID)
    tracker.emit_progress(SID, "loading", 40, "x")
    ft.advance(1)
    tracker.complete_session(SID, success=True)
    s = tracker.sessions[SID]
    assert s.status == "completed" and s.endTime == ft.wall_ms()
    ft.advance(299)
    assert SID in tracker.sessions and SID in tracker.timing
    ft.advance(2)
    assert SID not in tracker.sessions and SID not in tracker.timing


def test_failed_session_state_reports_failed_or_cancelled_outcome(setup) -> None:
    tracker, ft, _ = setup
    tracker.create_session(SID)
    tracker.complete_session(SID, success=False)
    assert tracker.state(SID)["status"] == "failed" and tracker.state(SID)["outcome"] == "failed"
    tracker.create_session(SID)
    tracker.request_cancel(SID)
    tracker.complete_session(SID, success=False)
    state = tracker.state(SID)
    assert state["outcome"] == "cancelled" and state["cancelled"] is True


def test_a_reservation_expires_unless_the_upload_arrives(setup) -> None:
    tracker, ft, _ = setup
    tracker.reserve(SID, owner="abc", ttl=60)
    assert tracker.sessions[SID].status == protocol.PENDING
    ft.advance(61)
    assert SID not in tracker.sessions
    tracker.reserve(SID, owner="abc", ttl=60)
    tracker.create_session(SID, owner="abc")
    ft.advance(120)
    assert tracker.sessions[SID].status == "active"


def test_events_for_unknown_sessions_are_ignored(setup) -> None:
    tracker, _, sent = setup
    assert tracker.emit_progress(SID, "loading", 10, "x") is None
    assert sent == []


def test_after_the_point_of_no_return_cancel_is_refused(setup) -> None:
    tracker, _, _ = setup
    tracker.create_session(SID)
    assert tracker.try_commit(SID) is True
    assert tracker.request_cancel(SID) is False and tracker.sessions[SID].cancelled is False
    tracker.create_session(SID)
    assert tracker.request_cancel(SID) is True
    assert tracker.try_commit(SID) is False
