"""Figure 5: server emit -> client render latency, Socket.io over websocket and over engine.io long-polling.

The server runs as its own process (``hextrackr serve``) with one benchmark-only wrapper around its emit that
adds ``benchEmitMs`` (wall clock when the tracker hands the event to Socket.io) to room events. The client is
the real CLI with ``--output json``; "render" is the moment its NDJSON line reaches the benchmark through the
pipe (it is written and flushed by the renderer). Same machine, same clock.

Why not the event's own ``timestamp``: the tracker sets it when progress is *reported*; a throttled event sent
later on the trailing edge keeps that earlier time (hextrackr_cli/server/tracker.py ``emit_progress`` builds
the event with ``timestamp=self._wall_ms()``, ``_flush`` sends it unchanged), so ``render - timestamp``
includes up to one throttle window (0.5 s) of deliberate holding. Both are reported; the target uses the
emit stamp.
"""

from __future__ import annotations

from typing import Any

from bench_e2e import run_served
from common import data_file, figure, log, pct


def measure(rows: int, runs: int, mode: str) -> dict[str, list[float]]:
    path = data_file(rows)
    emit: list[float] = []
    stamp: list[float] = []
    for i in range(runs):
        if mode == "websocket":
            run, _ = run_served(path, stamped=True, transport="websocket")
        else:  # the server offers long-polling only: the CLI's Socket.io client falls back to it
            run, _ = run_served(path, stamped=True, serve_args=("--transports", "polling"))
        transports = [o.get("transport") for _, o in run.lines if o.get("event") == "transport"]
        for t, o in run.progress():
            if "benchEmitMs" in o:
                emit.append(t * 1000 - o["benchEmitMs"])
                stamp.append(t * 1000 - o["timestamp"])
        log(f"latency {mode} run {i + 1}/{runs}: {len(emit)} events so far, transports seen {transports}")
        if mode == "polling" and "polling" not in str(transports):
            raise RuntimeError(f"expected the CLI to use Socket.io long-polling, saw {transports}")
    return {"emit": emit, "timestamp": stamp}


def latency(rows: int, runs: int) -> tuple[list[dict], dict[str, Any]]:
    table: list[dict] = []
    raw: dict[str, Any] = {}
    for mode, target in (("websocket", 50.0), ("polling", None)):
        m = measure(rows, runs, mode)
        raw[mode] = m
        e, s = m["emit"], m["timestamp"]
        table.append(figure(f"emit -> render p50, {mode}", e, "ms", stat="p50", value=pct(e, 50),
                            note=f"{len(e)} events, {runs} imports of {rows:,} rows"))
        table.append(figure(f"emit -> render p99, {mode}", e, "ms", stat="p99", value=pct(e, 99),
                            target=f"<= {target:.0f} ms" if target else "",
                            ok=(pct(e, 99) <= target) if target else None))
        table.append(figure(f"event timestamp -> render p50/p99, {mode} (p99 shown)", s, "ms", stat="p99",
                            value=pct(s, 99), note=f"p50 {pct(s, 50):.1f} ms; includes throttle holding (see notes)"))
    return table, raw


if __name__ == "__main__":
    import json
    import sys

    t, _ = latency(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, 1)
    print(json.dumps([{k: r[k] for k in ("name", "value", "min", "max", "runs", "target", "ok", "note")} for r in t],
                     indent=1))
