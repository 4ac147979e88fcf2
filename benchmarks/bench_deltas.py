"""What the per-import deltas (new / reopened / unchanged / resolved per severity) cost an import.

    .venv/bin/python benchmarks/bench_deltas.py [--rows 100000] [--runs 3] [--base REV]

1. The statements themselves, on the database of a real import sequence (scan 1, scan 2 dropping ~5 %, scan 3
   bringing some back): the merge's old counts (count(*) of the import's open records, count of ids above the
   old maximum; the resolve UPDATE) against the new ones (one GROUP BY severity; the UPDATE … RETURNING severity),
   each timed inside a transaction that is rolled back, median of --runs.
2. End to end on the server: the same three imports through an embedded server, ``durationMs`` per import,
   with this tree and with ``--base`` (default: the commit before the deltas, taken with git archive), interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from support.http import post_import, wait_for_outcome
import hextrackr_cli
from hextrackr_cli.server.app import start_background
db = Path(sys.argv[2])
srv = start_background(database=f"sqlite:///{db}", tokens=["bench-token-0123456789"])
out = []
try:
    for i, csv in enumerate(sys.argv[3:], 1):
        r = post_import(srv.url, "bench-token-0123456789", Path(csv), filename="tenable_scan.csv",
                        scanDate=f"2025-11-{i:02d}", timeout=600)
        state = wait_for_outcome(srv.url, "bench-token-0123456789", r.json()["sessionId"], timeout=600)
        s = state["summary"]
        out.append({"durationMs": s["durationMs"], "records": s["records"], "deltas": "deltas" in s})
finally:
    srv.stop()
print(json.dumps({"imports": out, "package": hextrackr_cli.__file__}))
"""


def run_imports(python: str, pythonpath: str | None, files: list[Path], db: Path) -> list[dict]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # cwd: not the repository (python -c puts the working directory first on sys.path, before PYTHONPATH's tree)
    out = subprocess.run([python, "-c", CHILD, str(ROOT / "tests"), str(db), *map(str, files)], env=env,
                         capture_output=True, text=True, check=True, cwd=str(db.parent))
    return json.loads(out.stdout.strip().splitlines()[-1])["imports"]


def timed(conn: sqlite3.Connection, fn, setup: tuple | None = None) -> float:
    """Seconds of ``fn()`` inside a transaction rolled back afterwards (``setup`` SQL first, not timed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if setup is not None:
            conn.execute(*setup)
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        conn.execute("ROLLBACK")


def statements(db: Path, runs: int) -> dict:
    """Old vs new statements on the last import's records (its id_before: the smallest id it created - 1)."""
    sys.path.insert(0, str(ROOT))
    from hextrackr_cli.server.storage.deltas import open_split, resolved_row

    conn = sqlite3.connect(db, isolation_level=None)
    import_id, vendor = conn.execute("SELECT id, vendor FROM imports ORDER BY id DESC LIMIT 1").fetchone()
    id_before = conn.execute("SELECT coalesce(min(id), 1) - 1 FROM vulnerabilities WHERE created_import_id = ?",
                             (import_id,)).fetchone()[0]
    args = (vendor, import_id)
    # the resolve as the last import ran it: the records it closed are opened again (in the timed transaction)
    closed = conn.execute("SELECT resolved FROM imports WHERE id = ?", (import_id,)).fetchone()[0]
    stamp = conn.execute("SELECT max(resolved_at) FROM vulnerabilities").fetchone()[0]
    reopen = "UPDATE vulnerabilities SET status = 'open' WHERE status = 'resolved' AND resolved_at = ?"

    def old_counts() -> None:
        conn.execute("SELECT count(*) FROM vulnerabilities WHERE vendor = ? AND status = 'open' AND import_id = ?",
                     args).fetchone()
        conn.execute("SELECT count(*) FROM vulnerabilities WHERE id > ?", (id_before,)).fetchone()

    def new_counts() -> None:
        open_split(conn, vendor=vendor, import_id=import_id, id_before=id_before)

    resolve = ("UPDATE vulnerabilities SET status = 'resolved', resolved_at = 'x', updated_at = 'x'"
               " WHERE vendor = ? AND status = 'open' AND import_id != ?")

    def old_resolve() -> None:
        conn.execute(resolve, args)

    def new_resolve() -> None:
        resolved_row(conn.execute(resolve + " RETURNING severity", args).fetchall())

    res: dict = {"open_records": conn.execute("SELECT count(*) FROM vulnerabilities WHERE status = 'open' AND "
                                              "import_id = ?", (import_id,)).fetchone()[0],
                 "resolved_by_last_import": closed}
    for name, fn in (("counts_old", old_counts), ("counts_new", new_counts), ("resolve_old", old_resolve),
                     ("resolve_new", new_resolve)):
        setup = (reopen, (stamp,)) if name.startswith("resolve") else None  # puts back what the resolve closes
        res[name] = statistics.median(timed(conn, fn, setup) for _ in range(runs))
    conn.close()
    res["cost_s"] = (res["counts_new"] - res["counts_old"]) + (res["resolve_new"] - res["resolve_old"])
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", default=None, help="git revision without the deltas (default: none, statements only)")
    a = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="hextrackr-deltas-") as tmp:
        t = Path(tmp)
        files = []
        for scan in (1, 2, 3):
            f = t / f"scan{scan}.csv"
            subprocess.run([py, str(HERE / "generate.py"), "--rows", str(a.rows), "--scan", str(scan), "-o", str(f)],
                           check=True)
            files.append(f)
        base_path = None
        if a.base:
            base_path = t / "base"
            base_path.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", a.base, "hextrackr_cli"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base_path)], input=archive, check=True)
        e2e: dict[str, list] = {"this": [], "base": []}
        last_db = None
        for run in range(a.runs):
            for label, path in (("this", None), ("base", base_path)):
                if label == "base" and path is None:
                    continue
                db = t / f"{label}{run}" / "hextrackr.db"
                db.parent.mkdir()
                e2e[label].append(run_imports(py, str(path) if path else None, files, db))
                if label == "this":
                    last_db = db
        assert last_db is not None
        result = {"rows": a.rows, "runs": a.runs, "base": a.base, "statements": statements(last_db, max(3, a.runs)),
                  "e2e": {}}
        for label, runs in e2e.items():
            if runs:
                result["e2e"][label] = [statistics.median(r[i]["durationMs"] for r in runs) for i in range(3)]
                result["e2e"][label + "_has_deltas"] = runs[0][0]["deltas"]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
