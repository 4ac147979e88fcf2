"""The shared protocol module: the seed's algorithms and schemas."""

from __future__ import annotations

import uuid

import pytest

from hextrackr_cli import protocol as p

SID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize("seconds, text", [(45, "45s"), (90, "1m 30s"), (3665, "61m 5s"), (0, "0s"), (60, "1m 0s")])
def test_format_eta_matches_the_seed_examples(seconds, text):
    assert p.format_eta(seconds) == text


def test_format_eta_of_unknown_is_empty():
    assert p.format_eta(None) == ""


def test_eta_is_none_before_any_progress():
    assert p.calculate_eta(1_000, 0, now=5_000) is None


def test_eta_follows_the_seed_algorithm():
    # 10 s elapsed at 25 % -> 40 s total -> 30 s remaining
    assert p.calculate_eta(0, 25, now=10_000) == 30
    # rounding like JavaScript's Math.round (half up), not banker's rounding
    assert p.calculate_eta(0, 80, now=2_000) == 1  # 0.5 s remaining -> 1
    assert p.calculate_eta(0, 100, now=2_000) == 0


def test_session_ids_must_be_canonical_uuids():
    assert p.is_session_id(str(uuid.uuid4()))
    for bad in ("", "abc", None, 12, str(uuid.uuid4()) + "x", "../" + str(uuid.uuid4())[3:], {"id": 1}):
        assert not p.is_session_id(bad)


def test_progress_event_has_the_seed_schema_and_merges_additional_data():
    e = p.progress_event("s", p.LOADING, 45.7, "Loading batch 2 of 4...", eta=120, timestamp=1694876543210,
                         batchNumber=2, totalBatches=4)
    assert e == {
        "sessionId": "s", "type": "loading", "progress": 45, "message": "Loading batch 2 of 4...",
        "timestamp": 1694876543210, "eta": 120, "batchNumber": 2, "totalBatches": 4,
    }


@pytest.mark.parametrize("value, expected", [(-5, 0), (150, 100), ("x", 0), (float("nan"), 0), (99.9, 99), (float("inf"), 100), (float("-inf"), 0)])
def test_progress_is_clamped_to_an_integer_percentage(value, expected):
    assert p.clamp_progress(value) == expected


def test_validate_rejects_what_is_not_a_progress_event():
    for bad in (None, [], "x", {"type": "loading"}, {"sessionId": "s", "type": "dancing"}):
        with pytest.raises(p.ProtocolError):
            p.validate_progress_event(bad)


def test_validate_normalizes_loose_fields():
    e = p.validate_progress_event({"sessionId": "s", "type": "complete", "progress": "100", "eta": -3, "message": None})
    assert e["progress"] == 100 and e["eta"] is None and e["message"] == "" and isinstance(e["timestamp"], int)


def test_outcome_reflects_status_and_cancel_flag():
    assert p.outcome_of("active") == "running"
    assert p.outcome_of("completed") == "completed"
    assert p.outcome_of("failed") == "failed"
    assert p.outcome_of("failed", cancelled=True) == "cancelled"
    assert p.outcome_of("completed", cancelled=True) == "completed"


def test_dialects_name_their_wire_events():
    assert p.SEED.join_event == "joinSession" and p.SEED.cancel_event == "cancelImport"
    assert p.HEXTRACKR_11.join_event == "join-progress" and p.HEXTRACKR_11.cancel_event is None
    assert set(p.DIALECTS) == {"seed", "hextrackr-1.1"}


# --------------------------------------------------------------------------- SessionState: one builder, one reader
def test_a_reserved_session_waits_for_its_upload_and_is_running():
    state = p.session_state(SID, status=p.PENDING, start_time=1)
    assert (state["outcome"], state["type"], state["message"]) == (p.OUTCOME_RUNNING, None, "Waiting for the upload")
    assert p.state_event(state, SID) is None  # no stage yet: nothing to show


def test_a_completed_session_is_never_reported_cancelled():
    state = p.session_state(SID, status=p.COMPLETED, cancelled=True, progress=100)
    assert state["cancelled"] is False and state["outcome"] == p.OUTCOME_COMPLETED
    failed = p.session_state(SID, status=p.FAILED, cancelled=True)
    assert failed["cancelled"] is True and failed["outcome"] == p.OUTCOME_CANCELLED


@pytest.mark.parametrize("body, outcome", [
    ({"status": p.FAILED, "cancelled": True}, p.OUTCOME_CANCELLED),  # an older server: no outcome field
    ({"status": p.COMPLETED, "outcome": "done!"}, p.OUTCOME_COMPLETED),  # an unknown word: derived again
    ({"status": p.PENDING}, p.OUTCOME_RUNNING),
    ({"status": p.ACTIVE, "outcome": p.OUTCOME_FAILED}, p.OUTCOME_FAILED),  # the server's own word wins
])
def test_the_outcome_a_state_reports(body, outcome):
    assert p.state_outcome(body) == outcome
    assert p.validate_session_state(body)["outcome"] == outcome


def test_a_state_that_is_not_an_object_is_a_protocol_error():
    with pytest.raises(p.ProtocolError, match="not an object"):
        p.validate_session_state(["active"])


def test_the_event_a_running_state_shows_is_its_last_event_with_the_rows_filled_in():
    last = p.progress_event("other", p.LOADING, 40, "Loading batch 2 of 5", timestamp=7)
    state = p.session_state(SID, status=p.ACTIVE, progress=40, latest=last, last_event=last, total_rows=10_000,
                            processed_rows=4_000)
    event = p.state_event(state, SID)
    assert event is not None
    assert (event["sessionId"], event["type"], event["progress"], event["timestamp"]) == (SID, p.LOADING, 40, 7)
    assert (event["totalRows"], event["processedRows"]) == (10_000, 4_000)
    made = p.state_event({**state, "lastEvent": None}, SID)  # no last event: made of type/progress/message
    assert made is not None and (made["type"], made["message"]) == (p.LOADING, "Loading batch 2 of 5")


def test_the_final_event_of_a_finished_state_carries_its_summary_or_its_error():
    done = p.session_state(SID, status=p.COMPLETED, progress=100, import_id=3, summary={"rows": 50, "inserted": 50})
    final = p.final_event(done, SID)
    assert (final["type"], final["progress"], final["rows"], final["importId"]) == (p.COMPLETE, 100, 50, 3)
    assert p.final_event({"status": p.COMPLETED, "endTime": 99}, SID)["timestamp"] == 99  # when it ended
    failed = p.session_state(SID, status=p.FAILED, error="scan.csv: row 7 has 3 fields but the header has 4")
    assert p.final_event(failed, SID)["message"] == "scan.csv: row 7 has 3 fields but the header has 4"
    assert p.final_event({"status": p.FAILED, "error": {"message": "disk full"}}, SID)["message"] == "disk full"
    assert p.final_event({"status": p.FAILED}, SID)["message"] == "the import failed on the server"
