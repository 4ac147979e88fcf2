"""Figures 1-4: end to end vs the floor, scaling, server/CLI peak memory, liveness of the progress stream.

Each end-to-end run is a whole process (``hextrackr --output json import``) from start to exit 0 with a fresh
XDG data home (so a fresh database). The floor (benchmarks/floor.py) runs as a whole process too, interleaved
with the imports so that a busy machine slows both alike.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from common import (HERE, PY, TOKEN, CliRun, Server, TempHome, big_file, data_file, figure, log, mib, run_cli,
                    vm_status)

TERMINAL = ("complete", "error")


def run_floor(csv_path: Path) -> tuple[float, dict]:
    """Wall seconds of the whole floor process, and its output (+ "cpu": user + system seconds)."""
    home = TempHome()
    try:
        start = time.perf_counter()
        proc = subprocess.Popen([PY, str(HERE / "floor.py"), str(csv_path), str(home.dir / "floor.db")],
                                stdout=subprocess.PIPE, text=True, env=home.env())
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"floor.py failed (exit {proc.returncode})")
        info = json.loads(out)
        info["cpu"] = usage.ru_utime + usage.ru_stime
        return seconds, info
    finally:
        home.cleanup()


def run_local(csv_path: Path) -> CliRun:
    home = TempHome()
    try:
        run = run_cli(["--server", "local", "import", str(csv_path)], home.env())
        check_completed(run, "local import")
        return run
    finally:
        home.cleanup()


def run_served(csv_path: Path, *, stamped: bool = True, transport: str | None = None,
               serve_args: tuple[str, ...] = ()) -> tuple[CliRun, int]:
    """Import through a separately started ``hextrackr serve``; returns the run and the server's peak RSS."""
    home = TempHome()
    server = Server(home, stamped=stamped, args=serve_args)
    try:
        args = ["--server", server.url, "--token", TOKEN, "import", str(csv_path)]
        if transport:
            args[5:5] = ["--transport", transport]
        run = run_cli(args, home.env())
        check_completed(run, "import via hextrackr serve")
        return run, server.peak_rss()
    finally:
        server.stop()
        home.cleanup()


def check_completed(run: CliRun, what: str) -> None:
    if run.rc != 0 or run.summary().get("outcome") != "completed":
        raise RuntimeError(f"{what} did not complete (exit {run.rc}): {run.stderr.strip()[-500:]}")


def liveness(run: CliRun) -> dict[str, Any]:
    """Longest gap between progress events as they reached the client (the CLI's rendered NDJSON lines), and
    the most ordinary events (complete/error excluded) in any 1 s window [t, t+1). The window uses the server's
    emit stamps when the server is the benchmark's stamped one (network jitter cannot squeeze two events into
    one window there), else the arrival times; both are kept."""
    events = run.progress()
    times = [t for t, _ in events]
    gaps = [b - a for a, b in zip(times, times[1:])]
    stamped = bool(events) and all("benchEmitMs" in o for _, o in events)
    ordinary = [(o["benchEmitMs"] / 1000 if stamped else t) for t, o in events if o.get("type") not in TERMINAL]
    arrival = [t for t, o in events if o.get("type") not in TERMINAL]

    def most_in_a_second(ts: list[float]) -> int:
        best, j = 0, 0
        for i, t in enumerate(ts):  # window [ts[j], ts[j] + 1) ending at ts[i]
            while t - ts[j] >= 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best

    most = most_in_a_second(ordinary)
    duration = times[-1] - times[0] if len(times) > 1 else 0.0
    t0 = times[0] if times else 0.0
    timeline = [[round(t - t0, 3), o.get("type"), o.get("progress"),
                 round(t - o["benchEmitMs"] / 1000, 4) if "benchEmitMs" in o else None] for t, o in events]
    return {"events": len(events), "max_gap": max(gaps) if gaps else float("nan"), "max_per_second": most,
            "rate_clock": "server emit" if stamped else "arrival", "max_per_second_arrival": most_in_a_second(arrival),
            "mean_rate": (len(ordinary) / duration) if duration else 0.0, "timeline": timeline,
            "stages": stages(timeline)}


# --------------------------------------------------------------------------- figures
def end_to_end(rows: int, runs: int, serve_runs: int, nessus: bool = True) -> tuple[list[dict], dict]:
    """Figure 1 (+ the liveness and server memory seen on the way). Returns table rows and raw data.

    ``nessus``: each run also imports the same number of rows as a Nessus CSV (interleaved), reported in seconds
    and as a ratio to the Tenable VM import of the same runs; and a .nessus holding the CSV's records (ratio to it)."""
    from bench_nessus import nessus_file

    path = data_file(rows)
    nessus_path = data_file(rows, "nessus") if nessus else None
    xml_path = nessus_file(rows) if nessus else None
    nessus_t: list[float] = []
    xml_t: list[float] = []
    floor_t: list[float] = []
    floor_cpu: list[float] = []
    local_cpu: list[float] = []
    local_t: list[float] = []
    serve_t: list[float] = []
    serve_rss: list[float] = []
    live: list[dict] = []
    for i in range(runs):
        t, info = run_floor(path)
        floor_t.append(t)
        floor_cpu.append(info["cpu"])
        run = run_local(path)
        local_t.append(run.seconds)
        local_cpu.append(run.cpu)
        live.append(liveness(run))
        log(f"{rows} rows run {i + 1}/{runs}: floor {t:.2f}s ({info['cpu']:.2f}s CPU), local import {run.seconds:.2f}s "
            f"({run.cpu:.2f}s CPU) "
            f"(records {run.summary().get('records')} vs floor {info['records']})")
        if run.summary().get("records") != info["records"]:
            raise RuntimeError(f"floor and import disagree: {info['records']} vs {run.summary().get('records')} records")
        if nessus_path is not None:
            nrun = run_local(nessus_path)
            if nrun.summary().get("format") != "nessus":
                raise RuntimeError(f"the Nessus CSV was read as {nrun.summary().get('format')!r}")
            nessus_t.append(nrun.seconds)
            log(f"  Nessus CSV {rows} rows: {nrun.seconds:.2f}s ({nrun.cpu:.2f}s CPU), "
                f"{nrun.summary().get('records')} records")
        if xml_path is not None:
            xrun = run_local(xml_path)
            if xrun.summary().get("format") != "nessus-xml":
                raise RuntimeError(f"the .nessus was read as {xrun.summary().get('format')!r}")
            xml_t.append(xrun.seconds)
            log(f"  .nessus {rows} findings: {xrun.seconds:.2f}s ({xrun.cpu:.2f}s CPU), "
                f"{xrun.summary().get('records')} records")
        if i < serve_runs:
            srun, rss = run_served(path)
            serve_t.append(srun.seconds)
            serve_rss.append(mib(rss))
            live.append(liveness(srun))
            log(f"  via hextrackr serve {srun.seconds:.2f}s, server peak RSS {mib(rss):.0f} MiB")
    f_med = statistics.median(floor_t)
    label = f"{rows // 1000}k"
    table = [
        figure(f"floor.py, {label} rows (reference)", floor_t, "s", note="csv.reader + executemany, one process"),
        figure(f"hextrackr --server local import, {label} rows", local_t, "s", reference="floor", ref_value=f_med,
               target="<= 3.0 s and <= 2.0x floor" if rows == 100_000 else "",
               ok=(statistics.median(local_t) <= 3.0 and statistics.median(local_t) <= 2.0 * f_med)
               if rows == 100_000 else None),
    ]
    table.append(figure(f"CPU seconds (user+system): local import / floor, {label} rows", local_cpu, "s",
                        reference="floor CPU", ref_value=statistics.median(floor_cpu),
                        note=f"floor CPU median {statistics.median(floor_cpu):.2f} s; CPU time is less sensitive to "
                             "other load on the shared cores than wall time"))
    if nessus_t:
        table.append(figure(f"hextrackr --server local import, {label}-row Nessus CSV", nessus_t, "s",
                            reference="Tenable VM import", ref_value=statistics.median(local_t),
                            note=f"{statistics.median(nessus_t) / f_med:.2f}x the floor (a Tenable VM file of as many"
                                 " rows); same runs, interleaved"))
    if xml_t and nessus_t:
        table.append(figure(f"hextrackr --server local import, {label}-finding .nessus", xml_t, "s",
                            reference="Nessus CSV import", ref_value=statistics.median(nessus_t),
                            note="benchmarks/generate_nessus.py: the Nessus CSV's records as Nessus v2 XML; same runs,"
                                 " interleaved"))
    if serve_t:
        table.append(figure(f"import via separate hextrackr serve, {label} rows", serve_t, "s", reference="floor",
                            ref_value=f_med, target="<= 3.0 s and <= 2.0x floor" if rows == 100_000 else "",
                            ok=(statistics.median(serve_t) <= 3.0 and statistics.median(serve_t) <= 2.0 * f_med)
                            if rows == 100_000 else None))
        table.append(figure(f"server peak RSS (VmHWM) during the {label} import", serve_rss, "MiB",
                            target="<= 150 MiB", ok=max(serve_rss) <= 150))
    raw = {"rows": rows, "floor_s": floor_t, "local_s": local_t, "nessus_csv_s": nessus_t, "nessus_xml_s": xml_t, "floor_cpu_s": floor_cpu, "local_cpu_s": local_cpu, "serve_s": serve_t, "serve_rss_mib": serve_rss,
           "liveness": live}
    return table, raw


STAGE_NAMES = {"processing 82": "upsert", "processing 88": "resolve", "processing 92": "snapshot",
               "finalizing 95": "commit", "finalizing 99": "final"}


def stages(timeline: list[list]) -> dict[str, float]:
    """Seconds between the first events of successive stages (processing split by its sub-steps 82/88/92 %)."""
    firsts: list[tuple[str, float]] = []
    for t, type_, progress, _ in timeline:
        key = f"{type_} {progress}" if type_ in ("processing", "finalizing") else type_
        key = STAGE_NAMES.get(key, key)
        if key == "processing 80":
            key = "upsert"
        if not firsts or firsts[-1][0] != key and key not in dict(firsts):
            firsts.append((key, t))
    return {k: round(firsts[i + 1][1] - t, 2) for i, (k, t) in enumerate(firsts[:-1])}


def liveness_rows(label: str, live: list[dict]) -> list[dict]:
    gaps = [x["max_gap"] for x in live]
    stamped = [float(x["max_per_second"]) for x in live if x.get("rate_clock") == "server emit"]
    rates = stamped or [float(x["max_per_second"]) for x in live]
    arrival = max(x.get("max_per_second_arrival", 0) for x in live) if live else 0
    return [
        figure(f"longest gap between progress events, {label}", gaps, "s", stat="max", value=max(gaps),
               target="<= 1.0 s", ok=max(gaps) <= 1.0, note="arrival at the client, per import; worst import shown"),
        figure(f"most progress events in any 1 s, {label}", rates, "/s", stat="max", value=max(rates),
               target="<= 2 /s", ok=max(rates) <= 2,
               note="complete/error excluded; window [t, t+1) on the server's emit stamps (imports via hextrackr "
                    f"serve){'' if stamped else ' - none here, so on arrival times'}; on arrival times at the "
                    f"client the most was {arrival}/s"),
    ]


def scaling(small: int, mid: int, big: int, runs_small: int, runs_big: int, mid_local: list[float],
            mid_rss: list[float]) -> tuple[list[dict], dict]:
    """Figure 2: time and server RSS at three sizes; the time ratio big/mid against the size ratio."""
    out: dict[str, Any] = {}
    table: list[dict] = []
    rss_at: dict[int, float] = {}
    times_at: dict[int, list[float]] = {mid: mid_local}
    live: list[dict] = []
    stage_split: dict[int, dict] = {}
    for rows, runs in ((small, runs_small), (big, runs_big)):
        path = data_file(rows)
        times: list[float] = []
        for _ in range(runs):
            run = run_local(path)
            times.append(run.seconds)
            live.append(liveness(run))
            log(f"{rows} rows local import {run.seconds:.2f}s")
        srun, rss = run_served(path)
        live.append(liveness(srun))
        stage_split[rows] = live[-1]["stages"]
        rss_at[rows] = mib(rss)
        times_at[rows] = times
        log(f"{rows} rows via serve {srun.seconds:.2f}s, server peak RSS {mib(rss):.0f} MiB")
    rss_at[mid] = max(mid_rss) if mid_rss else float("nan")
    split = "; ".join(f"{rows:,}: " + ", ".join(f"{k} {v:.1f}s" for k, v in st.items()) for rows, st in stage_split.items())
    for rows in (small, mid, big):
        table.append(figure(f"local import, {rows:,} rows", times_at[rows], "s",
                            reference=f"{mid:,} rows", ref_value=statistics.median(times_at[mid]),
                            target=f"ratio <= {big / mid * 1.1:.0f}" if rows == big else "",
                            note=f"seconds per stage via hextrackr serve (first event of each stage): {split}"
                            if rows == big else "",
                            ok=(statistics.median(times_at[big]) / statistics.median(times_at[mid]) <= big / mid * 1.1)
                            if rows == big else None))
    for rows in (small, mid, big):
        table.append(figure(f"server peak RSS, {rows:,} rows", [rss_at[rows]], "MiB",
                            target="<= 150 MiB (flat)", ok=rss_at[rows] <= 150))
    out.update(stages={str(k): v for k, v in stage_split.items()}, times={str(k): v for k, v in times_at.items()}, rss_mib={str(k): v for k, v in rss_at.items()},
               liveness=live)
    return table, out


def cli_upload_memory(size: int) -> tuple[list[dict], dict]:
    """Figure 3b: the CLI's peak RSS (wait4 ru_maxrss) while uploading a ``size``-byte file with --detach."""
    path = big_file(size)
    real = path.stat().st_size
    home = TempHome()
    server = Server(home, args=("--max-upload", str(real + (1 << 20))))
    try:
        start = time.perf_counter()
        run = run_cli(["--server", server.url, "--token", TOKEN, "import", "--detach", str(path)], home.env())
        seconds = time.perf_counter() - start
        if run.rc != 0:
            raise RuntimeError(f"detached upload failed (exit {run.rc}): {run.stderr.strip()[-400:]}")
        server_rss = vm_status(server.pid).get("VmHWM", 0)
    finally:
        server.proc.send_signal(signal.SIGTERM)  # cancels and rolls back the import it started
        try:
            server.proc.wait(60)
        except subprocess.TimeoutExpired:
            server.proc.kill()
        home.cleanup()
    log(f"uploaded {mib(real):.0f} MiB in {seconds:.1f}s; CLI peak RSS {mib(run.maxrss):.1f} MiB")
    table = [figure(f"CLI peak RSS uploading {mib(real):.0f} MiB (--detach)", [mib(run.maxrss)], "MiB",
                    target="<= 80 MiB", ok=mib(run.maxrss) <= 80,
                    note=f"upload took {seconds:.1f}s ({mib(real) / seconds:.0f} MiB/s); server RSS then "
                         f"{mib(server_rss):.0f} MiB")]
    return table, {"bytes": real, "cli_maxrss": run.maxrss, "seconds": seconds, "server_rss": server_rss}


if __name__ == "__main__":  # a quick look by hand
    import sys

    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    t, raw = end_to_end(rows, 2, 1)
    print(json.dumps(t, indent=1, default=str))
    print(json.dumps(liveness_rows("x", raw["liveness"]), default=str))
    _ = os
