"""How many /api/ requests one `hextrackr import` spends against a HexTrackr 1.1.x server (the production
limit is 60 per 15 minutes per client), measured against the protocol double (tests/support/hx11_double.py).

Each row: a real CLI subprocess imports a 3,000-row scan with ``--transport T`` from a double whose import
steps take ``step_delay`` seconds; the double's request log is counted. One run per row (counts, not timings).

    .venv/bin/python benchmarks/hx11_requests.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.hx11_double import HX11Double, csv_text  # noqa: E402

ROWS = 3000
CASES = (("auto", 0.02), ("auto", 1.0), ("polling", 1.0), ("polling", 3.0))


def run(transport: str, step_delay: float) -> str:
    with HX11Double(users={"u": "p"}, rate_limit=None, step_delay=step_delay) as hx, \
            tempfile.TemporaryDirectory() as home:
        path = os.path.join(home, "tenable_scan.csv")
        Path(path).write_text(csv_text(ROWS))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
        env.update(HEXTRACKR_SERVER=hx.url, HEXTRACKR_USERNAME="u", HEXTRACKR_PASSWORD="p",
                   XDG_CONFIG_HOME=home, XDG_DATA_HOME=home)
        started = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "hextrackr_cli", "import", "--transport", transport, path],
                           env=env, capture_output=True)
        took = time.monotonic() - started
        api = [p for _, p, _ in hx.request_log if p.startswith("/api/")]
        polls = sum(1 for p in api if p.startswith("/api/import/progress/"))
        history = sum(1 for p in api if p == "/api/imports")
        return (f"| {transport} | {took:.1f} s | {r.returncode} | {len(api)} | {polls} | {history} |")


def main() -> int:
    print("| transport | import took | exit | /api/ requests | progress polls | history |")
    print("|---|---|---|---|---|---|")
    for transport, delay in CASES:
        print(run(transport, delay), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
