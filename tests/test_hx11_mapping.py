"""HexTrackr 1.1 messages become the seed's typed ProgressEvents (pure mapping, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hextrackr_cli import protocol
from hextrackr_cli.dialects import hx11

SID = "0b7d3f4e-5a1c-4c1e-9d1e-2f3a4b5c6d7e"
T0 = 1_764_000_000_000


def update(progress, message, step, **md):
    return {"sessionId": SID, "progress": progress, "message": message, "status": "initialized",
            "timestamp": T0, "metadata": {"operation": "csv-import", "totalSteps": 3, "currentStep": step,
                                          "message": message, "filename": "scan.csv", "vendor": "tenable",
                                          "scanDate": "2025-11-20", **md}}


COMPLETE = {
    "sessionId": SID, "progress": 100, "message": "Import completed successfully", "status": "completed",
    "timestamp": T0, "duration": 8123,
    "metadata": {"operation": "csv-import", "currentStep": 3, "importId": 42, "processedRows": 1000,
                 "insertedToCurrent": 600, "updatedInCurrent": 400, "resolvedCount": 25,
                 "insertedToSnapshots": 1000, "totalProcessingTime": 8000, "rowsPerSecond": 125,
                 "importSummary": {"cveBreakdown": {f"CVE-2025-{i}": i for i in range(3000)}}},
}


@pytest.mark.parametrize("progress,message,step,stage", [
    (5, "Parsing CSV file...", 1, protocol.PARSING),
    (15, "Parsed 1000 rows", 1, protocol.PARSING),
    (41.7, "Inserted 500/1000 records to staging table...", 2, protocol.LOADING),
    (60, "Staging complete: 1000 records loaded", 2, protocol.LOADING),
    (65, "Processing staging data to final tables...", 3, protocol.PROCESSING),
    (83.3, "Processing batch 2/3...", 3, protocol.PROCESSING),
    (95, "Finalizing import and cleaning up...", 3, protocol.FINALIZING),
])
def test_observed_stage_messages_map_to_seed_stages(progress, message, step, stage):
    assert hx11.stage_of(message, step, progress) == stage


def test_unknown_message_falls_back_to_current_step_then_progress_range():
    assert hx11.stage_of("Working...", 1, 50) == protocol.PARSING
    assert hx11.stage_of("Working...", 2, 80) == protocol.LOADING
    assert hx11.stage_of("Working...", None, 10) == protocol.PARSING
    assert hx11.stage_of("Working...", None, 30) == protocol.LOADING
    assert hx11.stage_of("Working...", "x", 70) == protocol.PROCESSING
    assert hx11.stage_of("Working...", None, 97) == protocol.FINALIZING


def test_update_becomes_seed_progress_event_with_int_progress_rows_and_stage():
    t = hx11.Translator(SID)
    ev = t.event("progress-update", update(41.7, "Inserted 500/1000 records to staging table...", 2,
                                           insertedCount=500, totalRows=1000, importId=42), received_ms=T0)
    assert ev["sessionId"] == SID and ev["type"] == protocol.LOADING and ev["stage"] == protocol.LOADING
    assert ev["progress"] == 41 and isinstance(ev["progress"], int)
    assert (ev["processedRows"], ev["totalRows"], ev["importId"]) == (500, 1000, 42)
    assert ev["message"] == "Inserted 500/1000 records to staging table..."
    assert protocol.validate_progress_event(ev)["type"] == protocol.LOADING


def test_eta_is_computed_client_side_from_the_start_with_the_seed_algorithm():
    t = hx11.Translator(SID, start_ms=T0)
    first = t.event("progress-update", update(5, "Parsing CSV file...", 1), received_ms=T0)
    assert first["eta"] is None  # nothing elapsed yet: no estimate rather than "0s"
    ev = t.event("progress-update", update(25, "Inserted 250/1000 records to staging table...", 2),
                 received_ms=T0 + 10_000)
    assert ev["eta"] == protocol.calculate_eta(T0, 25, now=T0 + 10_000) == 30


def test_eta_start_defaults_to_the_first_event_received():
    t = hx11.Translator(SID)
    t.event("progress-update", update(5, "Parsing CSV file...", 1), received_ms=T0 + 1000)
    ev = t.event("progress-update", update(50, "Processing batch 1/2...", 3), received_ms=T0 + 6000)
    assert t.start_ms == T0 + 1000 and ev["eta"] == 5


def test_eta_of_a_watch_attaching_mid_import_counts_from_the_servers_start_whatever_its_clock():
    """progress-status (sent to a late joiner) carries startTime and lastUpdate: the elapsed time is taken on
    the server's clock, so a server clock 1 h off changes nothing."""
    t = hx11.Translator(SID)
    skew = 3_600_000
    status = {**update(50, "Processing batch 1/2...", 3), "startTime": T0 + skew, "lastUpdate": T0 + skew + 20_000,
              "status": "initialized"}
    ev = t.event("progress-status", status, received_ms=T0 + 20_500)
    assert t.start_ms == T0 + 500 and ev["eta"] == protocol.calculate_eta(T0 + 500, 50, now=T0 + 20_500) == 20


def test_complete_carries_the_server_summary_as_seed_fields():
    t = hx11.Translator(SID)
    ev = t.event("progress-complete", COMPLETE, received_ms=T0)
    assert ev["type"] == protocol.COMPLETE and ev["progress"] == 100 and ev["eta"] == 0
    assert {k: ev[k] for k in ("rows", "records", "inserted", "updated", "resolved", "durationMs", "importId")} == {
        "rows": 1000, "records": 1000, "inserted": 600, "updated": 400, "resolved": 25, "durationMs": 8123,
        "importId": 42}
    assert "importSummary" not in ev  # ~70 KB stays out of the event stream
    assert hx11.import_summary(COMPLETE)["cveBreakdown"]["CVE-2025-7"] == 7
    assert t.finished


def test_summary_uses_total_processing_time_without_duration():
    data = {**COMPLETE}
    del data["duration"]
    assert hx11.summary_of(data)["durationMs"] == 8000


def test_error_event_carries_the_server_message_and_last_progress():
    t = hx11.Translator(SID)
    t.event("progress-update", update(62, "Processing staging data to final tables...", 3), received_ms=T0)
    ev = t.event("progress-error", {"sessionId": SID, "message": "Import failed: disk full", "status": "error",
                                    "timestamp": T0, "metadata": {}, "error": "Import failed: disk full"},
                 received_ms=T0 + 5)
    assert ev["type"] == protocol.ERROR and ev["message"] == "Import failed: disk full"
    assert ev["progress"] == 62 and ev["error"] == "Import failed: disk full" and t.finished


def test_progress_status_of_a_finished_session_is_terminal():
    t = hx11.Translator(SID)
    status = {"id": SID, "status": "completed", "progress": 100, "metadata": COMPLETE["metadata"]}
    assert t.event("progress-status", status, received_ms=T0)["type"] == protocol.COMPLETE
    t2 = hx11.Translator(SID)
    err = {"id": SID, "status": "error", "progress": 40, "metadata": {"message": "Import failed: x"}}
    ev = t2.event("progress-status", err, received_ms=T0)
    assert ev["type"] == protocol.ERROR and ev["message"] == "Import failed: x"


def test_events_of_other_sessions_and_other_names_are_ignored():
    t = hx11.Translator(SID)
    other = update(50, "Processing batch 1/2...", 3)
    other["sessionId"] = "11111111-2222-3333-4444-555555555555"
    assert t.event("progress-update", other) is None
    assert t.event("importProgress", update(50, "x", 3)) is None
    assert t.event("progress-update", "not a dict") is None
    assert not t.seen_progress


def test_polling_body_maps_like_a_status_event():
    t = hx11.Translator(SID)
    body = {"success": True, "sessionId": SID, "progress": 72.5, "status": "initialized",
            "message": "Processing batch 1/5...", "metadata": {"currentStep": 3, "totalRows": 9}}
    ev = t.poll(body, received_ms=T0)
    assert (ev["type"], ev["progress"], ev["totalRows"]) == (protocol.PROCESSING, 72, 9)
    assert t.poll({"success": False, "error": "Session not found"}) is None


def test_404_means_not_started_before_progress_and_gone_after():
    t = hx11.Translator(SID)
    assert t.not_found() == hx11.NOT_STARTED
    t.event("progress-update", update(5, "Parsing CSV file...", 1), received_ms=T0)
    assert t.not_found() == hx11.GONE


HISTORY = {"success": True, "data": [
    {"id": 43, "filename": "scan.csv", "vendor": "tenable", "scan_date": "2025-11-21",
     "import_date": "2025-11-24T16:00:05.000Z", "row_count": 10, "processing_time": None},
    {"id": 42, "filename": "scan.csv", "vendor": "tenable", "scan_date": "2025-11-20",
     "import_date": "2025-11-24T16:00:00.000Z", "row_count": 1000, "processing_time": 8000},
    {"id": 7, "filename": "scan.csv", "vendor": "tenable", "scan_date": "2025-11-20",
     "import_date": "2025-01-01 10:00:00", "row_count": 5, "processing_time": 100},
]}
STARTED = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def test_history_decides_completed_by_import_id():
    v = hx11.decide_from_history(HISTORY, import_id=42)
    assert v.outcome == hx11.HISTORY_COMPLETED
    assert v.summary == {"rows": 1000, "durationMs": 8000, "importId": 42}


def test_history_row_without_processing_time_is_unknown_not_a_guess():
    assert hx11.decide_from_history(HISTORY, import_id=43).outcome == hx11.HISTORY_UNKNOWN


def test_history_without_our_import_is_unknown():
    v = hx11.decide_from_history(HISTORY, import_id=99)
    assert v.outcome == hx11.HISTORY_UNKNOWN and v.record is None and "no entry" in v.reason
    assert hx11.decide_from_history({"success": True, "data": []}, filename="scan.csv").outcome == "unknown"


def test_history_matches_by_file_vendor_date_and_ignores_old_rows():
    v = hx11.decide_from_history(HISTORY, filename="scan.csv", vendor="tenable", scan_date="2025-11-20",
                                 not_before_ms=STARTED - 1000)
    assert v.outcome == hx11.HISTORY_COMPLETED and v.record["id"] == 42


def test_history_ambiguous_match_without_start_time_is_unknown():
    v = hx11.decide_from_history(HISTORY, filename="scan.csv", scan_date="2025-11-20")
    assert v.outcome == hx11.HISTORY_UNKNOWN and "several" in v.reason


def test_history_explicit_failed_status_is_failed():
    body = [{"id": 5, "filename": "a.csv", "status": "failed", "processing_time": None}]
    assert hx11.decide_from_history(body, import_id=5).outcome == protocol.OUTCOME_FAILED


def test_room_name_is_progress_prefix_and_session():
    assert hx11.room(SID) == f"progress-{SID}"


@given(progress=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                          st.none(), st.text(max_size=5)),
       step=st.one_of(st.none(), st.integers(-3, 6), st.text(max_size=3)),
       message=st.text(max_size=40))
def test_any_update_maps_to_a_valid_seed_event(progress, step, message):
    ev = hx11.Translator(SID).event("progress-update", {"sessionId": SID, "progress": progress,
                                                       "message": message, "metadata": {"currentStep": step}},
                                    received_ms=T0)
    assert 0 <= ev["progress"] <= 100 and isinstance(ev["progress"], int)
    assert ev["type"] in protocol.STAGES
    assert protocol.validate_progress_event(ev)["sessionId"] == SID
