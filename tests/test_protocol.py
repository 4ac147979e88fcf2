"""The shared protocol module: the seed's algorithms and schemas."""

from __future__ import annotations

import uuid

import pytest

from hextrackr_cli import protocol as p


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
