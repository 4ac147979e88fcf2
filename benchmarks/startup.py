#!/usr/bin/env python3
"""Start-up benchmark: ``hextrackr --help`` and ``--version`` against ``python -c "import click"``.

    python benchmarks/startup.py [--runs 20] [--json]

The commands run interleaved (one of each per round) so that a busy machine slows them alike; each is timed as
a whole process (fork/exec to exit). Prints median, min and runs per command and the ratio of medians to the
click baseline. Target (issue 4): ``hextrackr --help`` <= 1.3 x ``import click``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.3


def hextrackr_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m hextrackr_cli``."""
    script = Path(sys.executable).with_name("hextrackr")
    if script.exists():
        return [str(script)]
    found = shutil.which("hextrackr")
    return [found] if found else [sys.executable, "-m", "hextrackr_cli"]


def time_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hextrackr start-up benchmark")
    parser.add_argument("--runs", type=int, default=20, help="runs per command (at least 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    runs = max(10, args.runs)

    # PYTHONDONTWRITEBYTECODE would make every run recompile whatever changed since the last .pyc was written;
    # an installed hextrackr has its .pyc files, so let the warm-up runs write them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_") and k != "PYTHONDONTWRITEBYTECODE"}
    hx = hextrackr_command()
    commands = {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "hextrackr --help": hx + ["--help"],
        "hextrackr --version": hx + ["--version"],
    }
    for argv_ in commands.values():  # warm the page cache and .pyc files
        time_once(argv_, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv_ in commands.items():
            times[name].append(time_once(argv_, env))

    base = statistics.median(times['python -c "import click"'])
    rows: list[dict[str, Any]] = []
    for name, values in times.items():
        med = statistics.median(values)
        rows.append({"command": name, "median_ms": med * 1000, "min_ms": min(values) * 1000, "runs": len(values), "ratio": med / base})
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "target_ratio": TARGET_RATIO, "results": rows}, indent=2))
    else:
        print(f"{'command':<28} {'median':>9} {'min':>9} {'runs':>5} {'ratio':>6}")
        for r in rows:
            print(f"{r['command']:<28} {r['median_ms']:>7.1f}ms {r['min_ms']:>7.1f}ms {r['runs']:>5} {r['ratio']:>5.2f}x")
        help_ratio = float(next(r["ratio"] for r in rows if r["command"] == "hextrackr --help"))
        verdict = "meets" if help_ratio <= TARGET_RATIO else "misses"
        print(f"hextrackr --help is {help_ratio:.2f}x import click ({verdict} the {TARGET_RATIO}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
