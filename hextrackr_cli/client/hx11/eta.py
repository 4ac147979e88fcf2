"""The ETA of a HexTrackr 1.1.x import, from the rate of the stage in progress. Pure: no I/O.

1.1.12 sends no ETA, and its percentages are not linear in time (the seed's linear formula said "81 % … ETA
17s" with 87 s left), so ``StageEta`` reads the stage from each message and estimates what is left of it and
of the stages after it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# ETA (from the rate of the stage in progress; 1.1's percentages are not linear in time). Staging shares
# 25-60 %, the batches 70-95 %. Before staging, 1.1.12 maps every row in one synchronous step (the gap between
# "Parsed N rows" and the first "Inserted x/y"); its batches then take ~13x that gap and the end (95-100 %)
# ~0.6x (measured on 1.1.12, five 100k-row imports: 11.6-14.2x in four, on quiet and loaded machines; 6.8x in one
# where the machine's load fell by half mid-import) — much steadier than the staging rate (10-24x), which does
# not predict the batches. The batches' own rate is taken over the last RATE_WINDOW_MS (they slow down when the
# machine gets busier), blended with that model (the model's share shrinks as the batches go on).
STAGING = (25.0, 60.0)
BATCHES = (70.0, 95.0)
PROCESSING_PER_MAPPING = 13.0
TAIL_PER_MAPPING = 0.6
PROCESSING_PER_STAGING = 10.0  # without a mapping gap (e.g. a poll missed it): from the staging rate
TAIL_SECONDS = 1.5
RATE_WINDOW_MS = 15000.0
_BATCH_RE = re.compile(r"\bbatch (\d+)/(\d+)", re.I)
_RECORDS_RE = re.compile(r"\b(\d+)/(\d+) records\b", re.I)


@dataclass
class StageEta:
    """Feed it every progress message of one session (``update``); it answers seconds left, or None."""

    _phase: str = ""
    _points: list[tuple[float, float]] = field(default_factory=list)  # (ms, %) of this phase, last window
    _staging_rate: float | None = None  # % per ms
    _staging_end_ms: float | None = None
    _parsed_ms: float | None = None  # first "Parsed N rows" seen
    _mapping_ms: float | None = None  # "Parsed" -> first "Inserted"

    def update(self, p: float, message: str, now: float) -> int | None:
        """Seconds left, from the rate of the stage in progress (None until something tells)."""
        m = _BATCH_RE.search(message)
        batch = bool(m)
        if m and int(m.group(2)) > 0:  # the exact share of the batches (the percentage may be rounded)
            p = BATCHES[0] + (BATCHES[1] - BATCHES[0]) * min(1.0, int(m.group(1)) / int(m.group(2)))
        r = _RECORDS_RE.search(message)
        if r and r.group(2) and int(r.group(2)) > 0 and STAGING[0] <= p < STAGING[1]:
            p = STAGING[0] + (STAGING[1] - STAGING[0]) * min(1.0, int(r.group(1)) / int(r.group(2)))
            p = min(p, STAGING[1] - 1e-6)
        if self._parsed_ms is None and message.lower().startswith("parsed"):
            self._parsed_ms = now
        phase = "staging" if STAGING[0] <= p < STAGING[1] and not batch else (
            "batches" if batch and BATCHES[0] < p <= BATCHES[1] else "")
        if phase == "staging" and self._mapping_ms is None and self._parsed_ms is not None:
            self._mapping_ms = now - self._parsed_ms
        if phase != self._phase:
            self._phase, self._points = phase, []
        if phase:
            self._points = [pt for pt in self._points if now - pt[0] <= RATE_WINDOW_MS] + [(now, p)]
        rate: float | None = None
        if len(self._points) >= 2:
            (t0, p0), (t1, p1) = self._points[0], self._points[-1]
            if t1 - t0 >= 200 and p1 > p0:
                rate = (p1 - p0) / (t1 - t0)
        gap = self._mapping_ms
        tail_ms = TAIL_PER_MAPPING * gap if gap else TAIL_SECONDS * 1000
        staging_span = STAGING[1] - STAGING[0]
        processing_ms: float | None = None
        if gap:
            processing_ms = PROCESSING_PER_MAPPING * gap
        elif self._staging_rate:
            processing_ms = PROCESSING_PER_STAGING * staging_span / self._staging_rate
        ms: float | None = None
        if phase == "staging" and rate:
            self._staging_rate = rate
            if processing_ms is None:
                processing_ms = PROCESSING_PER_STAGING * staging_span / rate
            ms = (STAGING[1] - p) / rate + processing_ms + tail_ms
        elif phase == "batches" and rate:
            ms = (BATCHES[1] - p) / rate + tail_ms
            if processing_ms is not None:  # early batches lean on the mapping model, later ones on their rate
                w = (p - BATCHES[0]) / (BATCHES[1] - BATCHES[0])
                model = processing_ms * (BATCHES[1] - p) / (BATCHES[1] - BATCHES[0]) + tail_ms
                ms = w * ms + (1 - w) * model
        elif processing_ms is not None:  # between the stages, or the first look at the batches
            if p >= STAGING[1] and self._staging_end_ms is None:
                self._staging_end_ms = now
            if phase == "batches":
                ms = processing_ms * (BATCHES[1] - p) / (BATCHES[1] - BATCHES[0]) + tail_ms
            elif STAGING[1] <= p <= BATCHES[0]:  # "Processing N rows in B batches..." is 70 %
                ms = max(0.0, processing_ms - (now - (self._staging_end_ms or now))) + tail_ms
        if ms is None and p >= BATCHES[1]:
            ms = tail_ms
        return None if ms is None else max(0, int(math.floor(ms / 1000 + 0.5)))
