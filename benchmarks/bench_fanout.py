"""Figure 6: one import session watched by many Socket.io clients (benchmarks/fanout.py, a separate process).

For every room event, "time until all have it" = the last client's arrival time minus the moment the server
emitted it (``benchEmitMs``, added by the benchmark's server wrapper, see common.STAMPED_SERVE).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from typing import Any

from common import HERE, PY, TOKEN, Server, TempHome, data_file, figure, log, pct, raise_nofile


def upload(url: str, path: Any, session_id: str) -> dict:
    import requests
    from requests_toolbelt import MultipartEncoder

    with open(path, "rb") as fh:
        enc = MultipartEncoder(fields=[("sessionId", session_id), ("csvFile", (path.name, fh, "text/csv"))])
        r = requests.post(url + "/api/vulnerabilities/import", data=enc,
                          headers={"Content-Type": enc.content_type, "Authorization": f"Bearer {TOKEN}"}, timeout=300)
    if r.status_code not in (200, 202):
        raise RuntimeError(f"upload refused: {r.status_code} {r.text[:200]}")
    return r.json()


def fanout(rows: int, clients: int, runs: int = 1, spy: str | None = None, workers: int = 1,
           serve_args: tuple[str, ...] = ()) -> tuple[list[dict], dict[str, Any]]:
    """``spy``: also record py-spy samples of the server (raw format) into this file while events fan out.

    ``workers`` > 1: that many servers started with ``serve_args`` (a shared database and message queue); the
    clients are spread over them round-robin and the import is posted to the first.
    """
    limit = raise_nofile(max(4096, clients * 2 + 256))
    path = data_file(rows)
    spreads: list[float] = []
    spans: list[float] = []
    raw: dict[str, Any] = {"runs": []}
    for r in range(runs):
        home = TempHome()
        servers: list[Server] = []
        for _ in range(workers):
            servers.append(Server(home, stamped=True, args=serve_args))
        server = servers[0]
        out = home.dir / "fanout.json"
        sid = str(uuid.uuid4())
        try:
            t0 = time.perf_counter()
            urls = ",".join(s.url for s in servers)
            proc = subprocess.Popen([PY, str(HERE / "fanout.py"), urls, TOKEN, sid, str(clients), str(out)],
                                    stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                proc.kill()
                raise RuntimeError(f"fan-out clients did not join: {line!r}")
            joined = int(line.split()[1])
            log(f"fan-out: {joined}/{clients} clients joined in {time.perf_counter() - t0:.1f}s "
                f"(open-files limit {limit}); uploading {rows:,} rows")
            sampler = None
            if spy:
                from profile_import import py_spy

                sampler = subprocess.Popen([py_spy(), "record", "--threads", "--rate", "200", "--format", "raw",
                                            "-o", spy, "--pid", str(server.pid)], stdout=subprocess.DEVNULL)
            upload(server.url, path, sid)
            proc.wait(300)
            if sampler is not None:
                sampler.send_signal(signal.SIGINT)
                sampler.wait(60)
            data = json.loads(out.read_text())
        finally:
            for s in servers:
                s.stop()
            home.cleanup()
        per_event = []
        for frame, times in data["events"].items():
            body = json.loads(frame[2:])
            if body[0] != "importProgress" or "benchEmitMs" not in body[1]:
                continue
            emitted = body[1]["benchEmitMs"] / 1000
            per_event.append({"type": body[1]["type"], "progress": body[1]["progress"], "received": len(times),
                              "all_ms": (max(times) - emitted) * 1000, "first_ms": (min(times) - emitted) * 1000,
                              "span_ms": (max(times) - min(times)) * 1000})
        complete = [e for e in per_event if e["received"] == data["joined"]]
        spreads += [e["all_ms"] for e in complete]
        spans += [e["span_ms"] for e in complete]
        log(f"fan-out run {r + 1}: {len(per_event)} events, {len(complete)} reached all {data['joined']} clients, "
            f"{data['failed']} client failures; all-have-it p50 {pct([e['all_ms'] for e in complete], 50):.0f} ms "
            f"p99 {pct([e['all_ms'] for e in complete], 99):.0f} ms")
        raw["runs"].append({"joined": data["joined"], "finished": data["finished"], "failed": data["failed"],
                            "failures": data["failures"], "events": per_event})
        if len(complete) < len(per_event):
            log(f"fan-out: {len(per_event) - len(complete)} events did not reach every client")
    missed = sum(1 for run in raw["runs"] for e in run["events"] if e["received"] != run["joined"])
    note = f"{clients} clients, {sum(len(x['events']) for x in raw['runs'])} events; {missed} events missed by some client"
    label = f"{clients} clients" + (f" over {workers} workers" if workers > 1 else "")
    if workers > 1:
        note += f"; clients spread round-robin over {workers} workers sharing Redis + PostgreSQL, import on the first"
    table = [
        figure(f"fan-out to {label}: emit -> all have it, p50", spreads, "ms", stat="p50",
               value=pct(spreads, 50), note=note),
        figure(f"fan-out to {label}: emit -> all have it, p99", spreads, "ms", stat="p99",
               value=pct(spreads, 99), target="<= 250 ms", ok=bool(spreads) and pct(spreads, 99) <= 250 and missed == 0),
        figure(f"fan-out to {label}: first -> last client, p99", spans, "ms", stat="p99",
               value=pct(spans, 99)),
    ]
    return table, raw


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description="fan-out figure alone; --py-spy also profiles the server")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--py-spy", dest="spy", metavar="RAW_OUT")
    a = ap.parse_args()
    t, raw = fanout(a.rows, a.clients, spy=a.spy)
    for row in t:
        print(row["name"], round(row["value"], 1), row["unit"], row["ok"], row["note"])
    if a.spy:
        from profile_import import summarise

        print(summarise(Path(a.spy), 25))
