"""The import job: streaming CSV parse and transactional load, in a worker thread.

Stages (docs/wire.md): parsing 0-10 % (byte check: NUL, UTF-8, line count), loading 10-80 % (parse, map, batches into a
TEMP staging table), processing 80-95 % (upsert, resolve, snapshot), finalizing 95-99 % (commit), complete.
Imports on one database are serialized; a waiting import says so and can be cancelled while it waits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hextrackr_cli import protocol
from hextrackr_cli.formats.compressed import DEFAULT_LIMIT
from hextrackr_cli.formats.nessus_xml import NESSUS_XML
from hextrackr_cli.formats import (
    SEVERITY_LEVELS,
    RowError,
    Stager,
    findings_line,
    severity_rank,
)
from hextrackr_cli.server.reading import ImportProblem, open_upload, read_format, scan
from hextrackr_cli.server.storage import Connection, Database, Interrupted, LoadCounts, StorageError
from hextrackr_cli.server.tracker import ProgressTracker

log = logging.getLogger("hextrackr.server")

BATCH_ROWS = 5000
HEARTBEAT = 0.25  # seconds: report at least this often while work goes on (the tracker throttles to 2/s)
IMPORT_CACHE_KIB = 32 * 1024  # page cache of the import's connection (the server's RSS budget is 150 MiB)
PROGRESS_STEPS = 20000  # SQLite calls the import's progress handler (cancel check) every this many VM steps
# VM steps per staged record of the vulnerability upsert (benchmarks: 115 for a new record, 161 for an update):
# moves the bar through the one long statement; in between, so it neither stalls long nor jumps far
UPSERT_STEPS = 130
# seconds between an import's 'complete' and its WAL checkpoint (copying ~1.5 KB per record into the database
# file): the room's last events fan out first (fan-out benchmark, 1,000 clients: the final events' p50 141 -> 93 ms,
# 6 runs each). A stopping server checkpoints at once.
CHECKPOINT_DELAY = 1.0
SERVER_STOPPED = "the server stopped during the import; nothing was changed, so it is safe to run the import again"


class Cancelled(Exception):
    """The session's cancel flag was seen at a batch boundary."""


@dataclass
class Job:
    session_id: str
    import_id: int
    kind: str  # vulnerabilities | tickets
    path: Path  # the stored upload
    filename: str
    vendor: str | None
    scan_date: str
    size: int
    format_name: str | None = None  # --format: the one reader to use
    min_severity: str | None = None  # --min-severity: findings below this level are skipped (counted)
    limit: int = DEFAULT_LIMIT  # a compressed upload may expand to this many bytes (the upload limit)


class Importer:
    """Runs jobs in worker threads, one at a time per database."""

    def __init__(self, db: Database, tracker: ProgressTracker, *, batch_rows: int = BATCH_ROWS) -> None:
        self.db = db
        self.tracker = tracker
        self.batch_rows = batch_rows
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self.stopping = threading.Event()  # set by shutdown(): finish what is left without waiting
        self.on_finished: Callable[[Job, dict[str, Any]], None] | None = None

    def submit(self, job: Job) -> None:
        thread = threading.Thread(target=self._run, args=(job,), name=f"import-{job.import_id}", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every running import and wait (bounded) for the workers to roll back."""
        self.stopping.set()
        with self._threads_lock:
            threads = list(self._threads)
        for sid in list(self.tracker.sessions):
            self.tracker.request_cancel(sid, reason=SERVER_STOPPED)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ the job
    def _run(self, job: Job) -> None:
        try:
            _Run(self, job).run()
        finally:
            with self._threads_lock:
                self._threads.discard(threading.current_thread())
            try:
                os.unlink(job.path)
            except OSError:
                pass


class _Run:
    def __init__(self, importer: Importer, job: Job) -> None:
        self.importer = importer
        self.job = job
        self.tracker = importer.tracker
        self.sid = job.session_id
        self.started = time.monotonic()
        self.last_report = 0.0
        self._last: tuple[str, float, str, dict[str, Any]] | None = None
        self._watchdog_stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name=f"import-{job.import_id}-heartbeat", daemon=True)
        # what the file held: findings read and per severity (all of them), below --min-severity, empty rows skipped
        self.findings = 0
        self.severities: dict[str, int] = dict.fromkeys(SEVERITY_LEVELS, 0)
        self.skipped = 0
        self.empty_rows = 0
        self.clean = False

    # progress helpers
    def report(self, type_: str, progress: float, message: str, **extra: Any) -> None:
        self.last_report = time.monotonic()
        self._last = (type_, progress, message, extra)
        self.tracker.emit_progress(self.sid, type_, progress, message, **extra)

    def _watch(self) -> None:
        """Whatever blocks the worker (a big COMMIT, a lock wait, a slow disk), the room hears every ~0.5 s."""
        while not self._watchdog_stop.wait(HEARTBEAT):
            last = self._last
            if last is None or time.monotonic() - self.last_report < 2 * HEARTBEAT:
                continue
            type_, progress, message, extra = last
            self.last_report = time.monotonic()
            # tenths: each beat says something new, so the tracker's trailing flush (which drops a state identical
            # to the last one sent) never holds the room silent for a whole second
            secs = self.last_report - self.started
            self.tracker.emit_progress(self.sid, type_, progress, f"{message} ({secs:.1f}s)", **extra)

    def _stop_watchdog(self) -> None:
        self._watchdog_stop.set()
        if self._watchdog.is_alive() and self._watchdog is not threading.current_thread():
            self._watchdog.join()

    def check_cancel(self) -> None:
        session = self.tracker.get(self.sid)
        if session is not None and session.cancelled:
            raise Cancelled()

    def run(self) -> None:
        job = self.job
        lock = self.importer._lock
        conn: Connection | None = None
        rows = 0
        self._watchdog.start()
        try:
            self.report(protocol.PARSING, 0, f"Queued {job.filename}")
            if not lock.acquire(blocking=False):
                # the heartbeat repeats this with the seconds waited
                self.report(protocol.PARSING, 0, "Waiting for another import to finish", waiting=True)
                while not lock.acquire(timeout=0.25):
                    self.check_cancel()
            try:
                self.check_cancel()
                conn = self.importer.db.connect(cache_kib=IMPORT_CACHE_KIB)
                counts, rows, fmt, vendor = self._work(conn)
            finally:
                lock.release()
        except Cancelled:
            session = self.tracker.get(self.sid)
            if session is not None and session.stop_reason:
                # the server is stopping: a failure the user can simply re-run, not a cancel anyone asked for
                session.cancelled = False
                self._fail(conn, f"{job.filename}: {session.stop_reason}", rows)
                self._close(conn)
                return
            self._stop_watchdog()
            self._rollback(conn)
            if session is not None:
                session.error = "Import cancelled"
            if conn is not None:  # it had started: record the outcome, then confirm (the room may poll at once)
                self._finish(conn, "cancelled", rows=rows, error="cancelled by request")
            self.tracker.complete_session(self.sid, success=False)
            self.tracker.emit_cancelled(self.sid)
            if conn is None:  # it was still waiting: confirm first (recording may wait for the running import)
                self._finish(conn, "cancelled", rows=rows, error="cancelled by request")
            self._close(conn)
            return
        except ImportProblem as exc:
            self._fail(conn, f"{job.filename}: {exc}", rows)
            self._close(conn)
            return
        except StorageError as exc:  # locked, disk full, corrupt: the transaction is rolled back
            log.error("import %s: database error: %s", job.import_id, exc)
            self._fail(conn, f"{job.filename}: database error: {exc}; nothing was changed", rows)
            self._close(conn)
            return
        except OSError as exc:
            log.error("import %s: I/O error: %s", job.import_id, exc)
            self._fail(conn, f"{job.filename}: cannot read the upload: {exc.strerror or exc}; nothing was changed", rows)
            self._close(conn)
            return
        except Exception as exc:  # a bug: say what, log the details (no secrets here)
            log.exception("import %s failed", job.import_id)
            self._fail(conn, f"internal error: {type(exc).__name__}", rows)
            self._close(conn)
            return
        self._stop_watchdog()
        duration = int((time.monotonic() - self.started) * 1000)
        summary = {
            "importId": job.import_id,
            "rows": rows,
            "records": counts.records,
            "inserted": counts.inserted,
            "updated": counts.updated,
            "resolved": counts.resolved,
            "durationMs": duration,
            "format": fmt,
            "vendor": vendor,
        }
        if job.kind == "vulnerabilities":
            summary.update(findings=self.findings, severities=dict(self.severities), skipped=self.skipped,
                           emptyRows=self.empty_rows, cleanScan=self.clean)
            if job.min_severity:
                summary["minSeverity"] = job.min_severity
        if counts.deltas is not None:  # per severity: new, reopened, unchanged, resolved (docs/wire.md)
            summary["deltas"] = counts.deltas
        session = self.tracker.get(self.sid)
        if session is not None:
            session.summary = summary
        if self.clean:
            message = f"Clean scan: {fmt} export with no findings; nothing was changed"
        else:
            message = (f"Imported {rows} rows: {counts.inserted} new, {counts.updated} updated, {counts.resolved}"
                       " resolved")
            if job.kind == "vulnerabilities":
                message += f"; {findings_line(self.findings, self.severities)}"
                if self.skipped:
                    message += f", {self.skipped:,} below {job.min_severity} skipped"
        event = self.tracker.emit_progress(self.sid, protocol.COMPLETE, 100, message, **summary)
        self.tracker.complete_session(self.sid, success=True)
        try:
            if event is not None:
                self.importer.db.store_last_event(conn, job.import_id, event)
        except StorageError:
            log.warning("could not store the final event of import %s", job.import_id)
        try:  # the upload is not needed any more: not on the disk for the delay
            os.unlink(job.path)
        except OSError:
            pass
        self.importer.stopping.wait(CHECKPOINT_DELAY)  # closing the last connection checkpoints too
        self._close(conn)
        try:  # copy the WAL into the database now, off everyone's critical path
            self.importer.db.checkpoint()
        except StorageError:
            pass

    def _fail(self, conn: Connection | None, message: str, rows: int) -> None:
        """Roll back, record the failure, then tell the room (so whoever reacts to the event finds it recorded)."""
        self._stop_watchdog()
        self._rollback(conn)
        session = self.tracker.get(self.sid)
        pct = session.progress if session is not None else 0
        if session is not None:
            session.error = message
        stored = protocol.progress_event(self.sid, protocol.ERROR, pct, message, importId=self.job.import_id)
        self._finish(conn, "failed", rows=rows, error=message, last_event=stored)
        self.tracker.emit_progress(self.sid, protocol.ERROR, pct, message)
        self.tracker.complete_session(self.sid, success=False)

    def _finish(self, conn: Connection | None, status: str, **kw: Any) -> None:
        duration = int((time.monotonic() - self.started) * 1000)
        try:
            c = self.importer.db.connect() if conn is None else conn
            try:
                # an outcome other than completed needs no sync of its own (the room waits for it after a
                # rollback; lost to a power cut, it is recorded failed at the next start)
                self.importer.db.finish_import(c, self.job.import_id, status=status, duration_ms=duration,
                                               durable=status == "completed", **kw)
            finally:
                if c is not conn:
                    c.close()
        except StorageError:
            log.exception("could not record the outcome of import %s", self.job.import_id)

    @staticmethod
    def _rollback(conn: Connection | None) -> None:
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except StorageError:
                pass

    @staticmethod
    def _close(conn: Connection | None) -> None:
        if conn is not None:
            try:
                conn.close()
            except StorageError:
                pass

    # ------------------------------------------------------------------ stages
    def _scan(self, marker: bytes | None = None) -> int:
        """Parsing stage: one fast pass over the bytes (reading.scan), reporting as it goes."""
        job = self.job

        def tick(done: float) -> None:
            if time.monotonic() - self.last_report >= HEARTBEAT:
                self.check_cancel()
                self.report(protocol.PARSING, 10 * done, f"Checking {job.filename}")

        return scan(job.path, job.size, job.limit, marker, tick)

    def _tally(self) -> dict[str, Any]:
        if self.job.kind != "vulnerabilities":
            return {}
        return {"findings": self.findings, "severities": dict(self.severities), "skipped": self.skipped}

    def _work(self, conn: Connection) -> tuple[Any, int, str, str]:
        job = self.job
        size = max(1, job.size)
        # ---- parsing: check the bytes and estimate the row count (nothing touches the database yet)
        self.report(protocol.PARSING, 0, f"Checking {job.filename}")
        fmt = read_format(job.path, job.kind, job.format_name, job.limit)
        estimate = self._scan(b"<ReportItem" if fmt.name == NESSUS_XML else None)
        source, stream = open_upload(job.path, job.limit)
        try:
            vendor = job.vendor or fmt.default_vendor
            self.check_cancel()
            batch_rows = self.importer.batch_rows
            batches = max(1, (estimate + batch_rows - 1) // batch_rows)
            self.report(protocol.PARSING, 10, f"{fmt.title}: about {estimate} rows", totalRows=estimate,
                        processedRows=0)

            # ---- loading: read, map and stage records in batches (each batch = progress + cancel point)
            mapper = Stager(vendor)
            stats = fmt.stats
            severities = self.severities
            cutoff = severity_rank(job.min_severity) if job.min_severity else len(SEVERITY_LEVELS)
            rank = {lvl: severity_rank(lvl) for lvl in SEVERITY_LEVELS}
            vulns = job.kind == "vulnerabilities"
            skipped = 0
            staging = self.importer.db.staging(conn, job.kind)
            staging.begin()
            batch: list[Any] = []
            found = 0
            staged = 0
            number = 0
            next_flush = batch_rows
            try:
                for record in fmt.read(stream):
                    if vulns:
                        sev = record.severity  # type: ignore[union-attr]
                        if sev in severities:
                            severities[sev] += 1
                            if rank[sev] > cutoff:
                                skipped += 1
                                continue
                    batch.append(mapper(record))
                    found += 1
                    done = stats.records
                    if done >= next_flush or (found & 255 == 0 and time.monotonic() - self.last_report >= HEARTBEAT):
                        self.check_cancel()
                        staging.add(batch)
                        staged += len(batch)
                        batch = []
                        if done >= next_flush:
                            number += 1
                            next_flush += batch_rows
                        total = max(estimate, done)
                        self.report(
                            protocol.LOADING, 10 + 70 * min(1.0, source.pos / size),
                            f"Loading batch {number} of {batches}", processedRows=done, totalRows=total,
                            batchNumber=number, totalBatches=max(batches, number),
                        )
            except RowError as exc:
                raise ImportProblem(str(exc)) from None
            done = stats.records
            self.findings, self.skipped, self.empty_rows = found + skipped, skipped, stats.empty_rows
            if batch:
                staging.add(batch)
                staged += len(batch)
            staging.end()
            self.check_cancel()
        finally:
            stream.close()
            source.close()
        rows = done
        if found == 0:
            if job.kind != "vulnerabilities":
                raise ImportProblem("has a header but no data rows")
            # a clean scan (or nothing at or above --min-severity): complete, change nothing, resolve nothing
            # (a scan without findings cannot say which hosts were clean)
            self.clean = rows == 0
            conn.execute("BEGIN IMMEDIATE")
            self.importer.db.finish_import(
                conn, job.import_id, status="completed", rows=rows, records=0,
                duration_ms=int((time.monotonic() - self.started) * 1000), fmt=fmt.name, vendor=vendor,
                **self._tally())
            if not self.tracker.try_commit(self.sid):
                raise Cancelled()
            conn.execute("COMMIT")
            return LoadCounts(), rows, fmt.name, vendor
        batches = (rows + batch_rows - 1) // batch_rows
        self.report(
            protocol.LOADING, 80, f"Loaded {rows} rows", processedRows=rows, totalRows=rows,
            batchNumber=batches, totalBatches=batches,
        )

        # ---- processing: one transaction for every change to the real tables
        conn.execute("BEGIN IMMEDIATE")
        # the upsert is nearly all of processing (seconds at 1M rows, against tenths for resolve and snapshot): it
        # spans 80-93 %, moved inside its one statement by SQLite's count of steps done (vulnerabilities on SQLite)
        stage_pct = {"upsert": 80, "resolve": 93, "snapshot": 94, "wait": 80}
        names = {"upsert": "Merging records", "resolve": "Resolving records absent from this scan",
                 "snapshot": "Saving the scan snapshot",
                 "wait": "Waiting for another import to finish"}  # another worker's (PostgreSQL import lock)
        steps = 0  # progress handler calls so far
        upsert_from, upsert_calls = 0, 0.0  # where the upsert began, and the calls it is expected to take
        measurable = job.kind == "vulnerabilities" and self.importer.db.counts_steps

        def check(stage: str) -> None:
            nonlocal upsert_from, upsert_calls
            self.check_cancel()
            upsert_from = steps
            upsert_calls = staged * UPSERT_STEPS / PROGRESS_STEPS if stage == "upsert" and measurable else 0.0
            self.report(protocol.PROCESSING, stage_pct[stage], names[stage], processedRows=rows, totalRows=rows)

        def heartbeat() -> int:
            # called by SQLite during long statements: a cancel interrupts the statement (then rolls back)
            nonlocal steps
            steps += 1
            session = self.tracker.get(self.sid)
            if session is not None and session.cancelled:
                return 1
            if upsert_calls and time.monotonic() - self.last_report >= HEARTBEAT:
                part = min(1.0, (steps - upsert_from) / upsert_calls)
                pct = stage_pct["upsert"] + (stage_pct["resolve"] - stage_pct["upsert"]) * part
                # only a new whole percent: the tracker drops an unchanged state, and a report that says nothing
                # new would also keep the heartbeat thread (whose message changes every beat) quiet
                if self._last is None or int(pct) != int(self._last[1]):
                    self.report(protocol.PROCESSING, pct, names["upsert"], processedRows=rows, totalRows=rows)
            return 0

        conn.set_progress_handler(heartbeat, PROGRESS_STEPS)
        try:
            self.report(protocol.PROCESSING, 80, "Merging records", processedRows=rows, totalRows=rows)
            if job.kind == "vulnerabilities":
                counts = self.importer.db.merge_vulnerabilities(conn, staging, import_id=job.import_id, vendor=vendor,
                                               scan_date=job.scan_date, plugins=mapper.plugins, check=check,
                                               levels=SEVERITY_LEVELS[:cutoff + 1] if job.min_severity else None)
            else:
                counts = self.importer.db.merge_tickets(conn, staging, import_id=job.import_id, check=check)
            self.check_cancel()
            # ---- finalizing: the import record commits with the data
            self.report(protocol.FINALIZING, 95, "Committing", processedRows=rows, totalRows=rows)
            self.importer.db.finish_import(
                conn, job.import_id, status="completed", rows=rows, records=counts.records,
                inserted=counts.inserted, updated=counts.updated, resolved=counts.resolved, deltas=counts.deltas,
                duration_ms=int((time.monotonic() - self.started) * 1000), fmt=fmt.name, vendor=vendor,
                **self._tally())
            if not self.tracker.try_commit(self.sid):  # from here on a cancel is refused, not half-done
                raise Cancelled()
            conn.execute("COMMIT")
        except Interrupted:
            raise Cancelled() from None
        finally:
            conn.set_progress_handler(None, 0)
        # the staging table is not dropped: it goes with the connection, closed right after; dropping a million
        # rows first would hold 'complete' back by half a second
        self.report(protocol.FINALIZING, 99, "Committed", processedRows=rows, totalRows=rows)
        return counts, rows, fmt.name, vendor

