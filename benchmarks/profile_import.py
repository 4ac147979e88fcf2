#!/usr/bin/env python3
"""Where the time of an import goes: py-spy samples of a whole ``hextrackr --server local import`` (or of a
running ``hextrackr serve`` PID), summarised as top functions by own time and by inclusive time, per thread.

    pip install py-spy            # into the venv; not a project dependency
    python benchmarks/profile_import.py [--rows 100000] [--top 25]
    python benchmarks/profile_import.py --pid PID --duration 30     # attach to a running server

py-spy samples native-free Python stacks (``--native`` is not used: SQLite's C time shows up on the Python
line that called it, e.g. ``executemany``/``execute``).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from common import PY, TempHome, data_file, hextrackr


def py_spy() -> str:
    found = Path(PY).with_name("py-spy")
    if found.exists():
        return str(found)
    which = shutil.which("py-spy")
    if not which:
        sys.exit("py-spy is not installed: pip install py-spy")
    return which


def summarise(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0]] += n
        funcs = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
                 if " (" in f else f for f in frames[1:]]
        last = frames[-1]
        own[(last.split(" (")[0] + " (" + last.split(" (")[-1].split("/")[-1]) if " (" in last else last] += n
        for f in set(funcs):
            incl[f] += n
    out = [f"{total} samples"]
    out.append("threads: " + ", ".join(f"{t} {100 * n / total:.0f}%" for t, n in threads.most_common(8)))
    out.append(f"top {top} by own time (file:line):")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out.append(f"top {top} by inclusive time:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--out", default="/tmp/hextrackr-profile.txt")
    ap.add_argument("--idle", action="store_true", help="also sample waiting threads (wall time, not CPU)")
    a = ap.parse_args()
    raw = Path(a.out)
    base = [py_spy(), "record", "--threads", *(["--idle"] if a.idle else []), "--rate", "200", "--format", "raw", "-o", str(raw)]
    if a.pid:
        subprocess.run(base + ["--pid", str(a.pid), "--duration", str(a.duration)], check=True)
    else:
        home = TempHome()
        try:
            subprocess.run(base + ["--", *hextrackr(), "--output", "json", "--server", "local", "import",
                                   str(data_file(a.rows))], env=home.env(), stdout=subprocess.DEVNULL, check=True)
        finally:
            home.cleanup()
    print(summarise(raw, a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
