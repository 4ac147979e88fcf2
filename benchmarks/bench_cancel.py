"""Figure 7: Ctrl-C (SIGINT to the CLI) at 10/50/90 % of an import -> CLI exit 130 with the server's
confirmation, and the database's data tables byte-for-byte what they were before.

One ``hextrackr serve`` with a database that already holds a completed 10k-row import (so "unchanged" is
checked against real data). For each point the CLI imports the big file with ``--output json``; when the first
progress event at or above the point is rendered, the benchmark sends SIGINT and times until the process has
exited. The data tables are checksummed before and after every cancel (benchmarks/common.db_checksum).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from typing import Any

from bench_e2e import check_completed
from common import TOKEN, Server, TempHome, data_file, db_checksum, figure, log, pct, run_cli


def cancel(rows: int, points: tuple[int, ...] = (10, 50, 90), repeat: int = 1) -> tuple[list[dict], dict[str, Any]]:
    big = data_file(rows)
    seed = data_file(10_000)
    home = TempHome()
    server = Server(home)
    times: list[float] = []
    raw: list[dict] = []
    unchanged_all = True
    confirmed_all = True
    try:
        env = home.env()
        base = ["--server", server.url, "--token", TOKEN]
        check_completed(run_cli(base + ["import", str(seed)], env), "seed import")
        before = db_checksum(server.db)
        for _ in range(repeat):
            for point in points:
                state: dict[str, Any] = {}

                def on_line(now: float, obj: dict, proc: subprocess.Popen, point: int = point,
                            state: dict = state) -> None:
                    if ("sent" not in state and "progress" in obj and "event" not in obj
                            and obj.get("type") not in ("complete", "error") and obj["progress"] >= point):
                        proc.send_signal(signal.SIGINT)
                        state.update(sent=now, at=obj["progress"], stage=obj.get("type"))

                run = run_cli(base + ["import", str(big)], env, on_line=on_line)
                after = db_checksum(server.db)
                summary = run.summary()
                seconds = run.ended - state["sent"] if "sent" in state else float("nan")
                unchanged = after == before
                confirmed = run.rc == 130 and summary.get("outcome") == "cancelled" and bool(summary.get("confirmed"))
                unchanged_all &= unchanged
                confirmed_all &= confirmed
                record = _last_import(server.db)
                sent = state.get("sent", float("nan"))
                marks = {o.get("event") or o.get("type"): round((t - sent) * 1000) for t, o in run.lines if t >= sent}
                log(f"  ms after SIGINT: {marks}, exit {round(seconds * 1000)}")
                log(f"cancel at {point}% (sent at {state.get('at')}% {state.get('stage')}): exit {run.rc} after "
                    f"{seconds * 1000:.0f} ms, confirmed={summary.get('confirmed')}, data unchanged={unchanged}, "
                    f"import record status={record}")
                if "sent" in state:
                    times.append(seconds)
                raw.append({"point": point, "sent_at_progress": state.get("at"), "stage": state.get("stage"),
                            "rc": run.rc, "seconds": seconds, "confirmed": summary.get("confirmed"),
                            "outcome": summary.get("outcome"), "unchanged": unchanged, "record_status": record, "ms_after_sigint": marks})
    finally:
        server.stop()
        home.cleanup()
    to_summary = [r["ms_after_sigint"].get("summary") for r in raw if r["ms_after_sigint"].get("summary") is not None]
    after_summary = [r["seconds"] * 1000 - r["ms_after_sigint"]["summary"] for r in raw
                     if r["ms_after_sigint"].get("summary") is not None]
    ok = bool(times) and pct(times, 95) <= 1.0 and unchanged_all and confirmed_all and len(times) == len(raw)
    note = (f"{rows:,}-row import; points {','.join(map(str, points))} %; exit 130 + confirmed: "
            f"{'all' if confirmed_all else 'NOT all'}; data tables unchanged: {'all' if unchanged_all else 'NOT all'}; "
            f"SIGINT -> summary line median {pct(to_summary, 50):.0f} ms (the CLI waits CANCEL_GRACE {_grace()} s before "
            f"it sends the cancel), summary -> process exit median {pct(after_summary, 50):.0f} ms")
    return [figure("Ctrl-C -> CLI exit (cancel confirmed), p95", times, "s", stat="p95", value=pct(times, 95),
                   target="<= 1.0 s, exit 130, DB unchanged", ok=ok, note=note)], {"runs": raw}


def _grace() -> str:
    try:
        from hextrackr_cli.core.follower import CANCEL_GRACE
    except ImportError:
        return "?"
    return f"{CANCEL_GRACE:g}"


def _last_import(db: Any) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT status FROM imports ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row else "none"
    finally:
        conn.close()


if __name__ == "__main__":
    import sys

    t, raw = cancel(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    for row in t:
        print(row["name"], row["value"], row["ok"], row["note"])
