"""HexTrackr 1.1 messages become the seed's typed ProgressEvents (pure mapping, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hextrackr_cli import protocol
from hextrackr_cli.client.hx11 import events as hx11, history as hx11_history

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
    "metadata": {"operation": "csv-import", "currentStep": 3, "importId": 42, "rowCount": 800, "processedRows": 1000,
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


def test_no_eta_while_parsing_or_before_a_stage_rate_is_known():
    t = hx11.Translator(SID, start_ms=T0)
    assert t.event("progress-update", update(5, "Parsing CSV file...", 1), received_ms=T0)["eta"] is None
    first = t.event("progress-update", update(25, "Inserted 100/1000 records to staging table...", 2),
                    received_ms=T0 + 3000)
    assert first["eta"] is None  # one point of the stage: no rate yet, rather than a made-up figure


# Two real 1.1.12 imports of 100k rows (ms after the first event; progress; message): a quiet machine (46.6 s)
# and a loaded one (108.2 s). Between "Parsed" and the first "Inserted", 1.1.12 maps every row at once.
REAL_100K = ([(490, 15.0, "Parsed 100000 rows from CSV"),
              (3381, 25.0, "Inserted 100/100000 records to staging table..."),
              (4000, 30.0, "Inserted 14300/100000 records to staging table..."),
              (5600, 43.0, "Inserted 52500/100000 records to staging table..."),
              (7206, 60.0, "Staging complete. Processing 100000 records to final tables..."),
              (7561, 70.5, "Processing batch 2/100..."),
              (18600, 77.5, "Processing batch 30/100..."),
              (33700, 87.5, "Processing batch 70/100..."),
              (44300, 94.5, "Processing batch 98/100...")], 46600)
REAL_100K_LOADED = ([(1320, 15.0, "Parsed 100000 rows from CSV"),
                     (9100, 25.0, "Inserted 100/100000 records to staging table..."),
                     (9430, 30.0, "Inserted 16900/100000 records to staging table..."),
                     (10900, 43.0, "Inserted 52100/100000 records to staging table..."),
                     (13700, 54.0, "Inserted 85600/100000 records to staging table..."),
                     (14700, 60.0, "Staging complete. Processing 100000 records to final tables..."),
                     (15100, 70.0, "Processing 100000 rows in 100 batches..."),
                     (16200, 70.5, "Processing batch 2/100..."),
                     (28800, 75.0, "Processing batch 20/100..."),
                     (37900, 77.5, "Processing batch 30/100..."),
                     (49700, 80.0, "Processing batch 40/100..."),
                     (58700, 82.5, "Processing batch 50/100..."),
                     (66900, 85.0, "Processing batch 60/100..."),
                     (74600, 87.0, "Processing batch 68/100...")], 108200)


@pytest.mark.parametrize("timeline", [REAL_100K, REAL_100K_LOADED], ids=["quiet", "loaded"])
def test_eta_from_the_rate_of_the_stage_in_progress_is_within_25_percent_from_30_percent_on(timeline):
    """The seed's linear ETA said "81 % … ETA 17s" with 87 s left: 1.1's percentages are not linear in time.
    From the staging on, the ETA comes from the stage in progress (while staging: the row mapping step before
    it, which predicts the batches), within 25 % of the real remaining time of two real 1.1.12 imports."""
    points, end = timeline
    t = hx11.Translator(SID, start_ms=T0)
    for at, p, message in points:
        ev = t.event("progress-update", update(p, message, 2 if p < 60 else 3), received_ms=T0 + at)
        if p >= 30:
            left = (end - at) / 1000
            assert ev["eta"] is not None and abs(ev["eta"] - left) <= max(0.25 * left, 1.5), (p, ev["eta"], left)


def test_the_records_counter_stays_in_records_through_loading_and_processing():
    t = hx11.Translator(SID)
    parsed = t.event("progress-update", update(15, "Parsed 1000 rows from CSV", 1, rowCount=1000), received_ms=T0)
    assert "totalRows" not in parsed  # CSV rows are not mixed into the records counter
    loading = t.event("progress-update", update(40, "Inserted 900/1520 records to staging table...", 2,
                                                insertedCount=900, totalRows=1000), received_ms=T0 + 1)
    assert (loading["processedRows"], loading["totalRows"]) == (900, 1520)
    batch = t.event("progress-update", update(80, "Processing batch 1/2...", 3, processedRows=1000),
                    received_ms=T0 + 2)
    assert (batch["processedRows"], batch["totalRows"]) == (1000, 1520)


def test_complete_carries_the_server_summary_as_seed_fields():
    t = hx11.Translator(SID)
    ev = t.event("progress-complete", COMPLETE, received_ms=T0)
    assert ev["type"] == protocol.COMPLETE and ev["progress"] == 100 and ev["eta"] == 0
    assert {k: ev[k] for k in ("rows", "records", "inserted", "updated", "resolved", "durationMs", "importId")} == {
        "rows": 800, "records": 1000, "inserted": 600, "updated": 400, "resolved": 25, "durationMs": 8123,
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
            "message": "Processing batch 1/5...", "metadata": {"currentStep": 3, "processedRows": 2}}
    t.records = 9
    ev = t.poll(body, received_ms=T0)
    assert (ev["type"], ev["progress"], ev["processedRows"], ev["totalRows"]) == (protocol.PROCESSING, 72, 2, 9)
    assert t.poll({"success": False, "error": "Session not found"}) is None


def test_404_means_not_started_before_progress_and_gone_after():
    t = hx11.Translator(SID)
    assert t.not_found() == hx11.NOT_STARTED
    t.event("progress-update", update(5, "Parsing CSV file...", 1), received_ms=T0)
    assert t.not_found() == hx11.GONE


LAST = {"lastImport": "2025-11-20", "rowCount": 1000, "vendor": "tenable", "filename": "scan.csv"}


def test_a_session_gone_within_10s_of_running_completed():
    """A failed session stays 10 s after its error: one gone sooner than that after it was seen running
    completed, whatever last-import says (it is not even asked)."""
    v = hx11_history.decide_vanished(running_seen_s=100.0, gone_seen_s=107.5, last_progress=80, filename="scan.csv",
                             import_id=42)
    assert v.outcome == hx11_history.HISTORY_COMPLETED and "within 7.5s" in v.reason and "import #42" in v.reason


def test_a_session_gone_later_is_decided_by_last_import_only_past_the_finalizing_step():
    args = dict(running_seen_s=100.0, gone_seen_s=130.0, filename="scan.csv", csv_rows=1000)
    assert hx11_history.decide_vanished(**args, last_progress=95, last_import=LAST).outcome == hx11_history.HISTORY_COMPLETED
    # before finalizing, an error was still possible: last-import (written at 15 %) cannot tell
    v = hx11_history.decide_vanished(**args, last_progress=80, last_import=LAST)
    assert v.outcome == hx11_history.HISTORY_UNKNOWN and "finalizing" in v.reason
    other = {**LAST, "filename": "other.csv"}
    v = hx11_history.decide_vanished(**args, last_progress=95, last_import=other)
    assert v.outcome == hx11_history.HISTORY_UNKNOWN and "not this import" in v.reason
    assert hx11_history.decide_vanished(**args, last_progress=95).outcome == hx11_history.HISTORY_UNKNOWN
    fewer = {**LAST, "rowCount": 999}
    assert hx11_history.decide_vanished(**args, last_progress=99, last_import=fewer).outcome == hx11_history.HISTORY_UNKNOWN


def test_last_import_becomes_one_record_marked_as_the_last_import_only():
    r = hx11_history.last_import_record(LAST)
    assert r is not None and r["lastImportOnly"] is True and r["status"] == hx11_history.HISTORY_UNKNOWN
    assert (r["filename"], r["rows"], r["vendor"], r["scanDate"]) == ("scan.csv", 1000, "tenable", "2025-11-20")
    assert hx11_history.last_import_record({"lastImport": None, "rowCount": 0}) is None


def test_health_of_a_1_1_server_is_recognised_and_ours_is_not():
    assert hx11.health_looks_hx11({"status": "ok", "db": True, "uptime": 66.1})
    assert not hx11.health_looks_hx11({"status": "ok", "dialect": "seed", "db": True, "uptime": 1})
    assert not hx11.health_looks_hx11({"status": "ok", "database": "ok"})
    assert not hx11.health_looks_hx11(None)


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
