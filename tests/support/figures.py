"""Counters of the fault/bad-input/security suite (printed by support.figures_plugin at the end of the run)."""

from __future__ import annotations

import threading

FIGURES: dict[str, int] = {
    "faults_injected": 0,
    "faults_survived": 0,
    "bad_inputs_tried": 0,
    "bad_inputs_refused_cleanly": 0,
    "odd_inputs_accepted": 0,
    "fuzz_cases": 0,
    "unauthorized_attempts": 0,
    "unauthorized_refused": 0,
    "rows_expected": 0,
    "rows_lost": 0,
}
_lock = threading.Lock()


def record(**counts: int) -> None:
    """Add to the figures, e.g. ``record(faults_injected=1)``."""
    with _lock:
        for key, value in counts.items():
            if key not in FIGURES:
                raise KeyError(f"unknown figure {key!r}")
            FIGURES[key] += int(value)


def summary_line() -> str:
    f = FIGURES
    return (
        f"faults injected/survived {f['faults_injected']}/{f['faults_survived']}; "
        f"bad inputs tried/refused cleanly {f['bad_inputs_tried']}/{f['bad_inputs_refused_cleanly']} "
        f"(+{f['odd_inputs_accepted']} odd-but-valid accepted); "
        f"fuzz cases {f['fuzz_cases']}; "
        f"unauthorized attempts/refused {f['unauthorized_attempts']}/{f['unauthorized_refused']}; "
        f"rows lost {f['rows_lost']} of {f['rows_expected']}"
    )


