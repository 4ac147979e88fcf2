"""pytest plugin: the fault suite's summary line at the end of the run.

Loaded with ``pytest_plugins = ["support.figures_plugin"]`` from the suite's test modules; tests record
figures through ``support.figures.record``. Set HEXTRACKR_FAULTS_REPORT=path to also write them as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

from support.figures import FIGURES, summary_line


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not any(FIGURES.values()):
        return
    terminalreporter.write_sep("=", "hextrackr fault suite")
    terminalreporter.write_line(summary_line())
    out = os.environ.get("HEXTRACKR_FAULTS_REPORT")
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(FIGURES, fh, indent=1, sort_keys=True)
