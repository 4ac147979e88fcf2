"""Benchmark: a 100k-row Tenable-style CSV through a real `hextrackr serve` process.

    .venv/bin/python benchmarks/bench_server.py [--rows 100000] [--runs 3]

Reports per run: upload time, import time (202 -> complete event), rows/s, the longest gap between progress
events, and the server process's peak RSS (VmHWM). Targets: import <= 2.5 s, peak RSS <= 150 MiB, gap <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.data import write_tenable_csv  # noqa: E402
from support.http import post_import  # noqa: E402
from support.server import EventLog, close_client, socket_client, spawn_server  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import os

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        csv_path = write_tenable_csv(tmp_path / "tenable_vulns_2025-11-20.csv", args.rows)
        print(f"file: {args.rows} rows, {csv_path.stat().st_size / 2**20:.1f} MiB")
        srv = spawn_server(tmp_path)
        log = EventLog()
        sio = socket_client(srv.url, srv.token, "websocket", log)
        times = []
        try:
            for run in range(args.runs):
                sid = str(uuid.uuid4())
                assert sio.call("joinSession", {"sessionId": sid, "reserve": True}, timeout=10)["ok"]
                cpu0 = cpu_seconds(srv.proc.pid)
                t0 = time.monotonic()
                r = post_import(srv.url, srv.token, csv_path, filename=csv_path.name, session_id=sid)
                t1 = time.monotonic()
                assert r.status_code == 202, r.text
                ok = log.wait(lambda l: any(d["sessionId"] == sid and d["type"] in ("complete", "error")
                                            for d in l.progress()), 300)
                t2 = time.monotonic()
                cpu = cpu_seconds(srv.proc.pid) - cpu0
                events = [(t, d) for t, n, d in log.events if n == "importProgress" and d["sessionId"] == sid]
                last = events[-1][1]
                assert ok and last["type"] == "complete", last
                stamps = [t1] + [t for t, _ in events]
                gap = max(b - a for a, b in zip(stamps, stamps[1:]))
                times.append(t2 - t1)
                kind = "insert" if run == 0 else "update"
                print(f"run {run + 1} ({kind}): upload {t1 - t0:.2f}s, import {t2 - t1:.2f}s, "
                      f"{args.rows / (t2 - t1):,.0f} rows/s, {len(events)} events, max gap {gap:.2f}s, "
                      f"records {last['records']}, server CPU {cpu:.2f}s (upload+import), server peak RSS {peak_rss_mib(srv.proc.pid):.0f} MiB")
        finally:
            close_client(sio)
            srv.stop()
        print(f"median import {statistics.median(times):.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
