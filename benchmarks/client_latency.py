"""Latency from server emit to client render over Socket.io (websocket), p50/p99.

Starts the embedded server in its own process (so the client does not share its GIL), runs N imports of a
generated CSV through the real client (Watcher -> renderer), and for every ``importProgress`` measures
``render time - event.timestamp`` (the server stamps each event when it emits it). Both run on this machine,
so the clocks agree.

    .venv/bin/python benchmarks/client_latency.py [--rows 100000] [--runs 5] [--transport websocket]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SERVER = """
import signal, sys
from hextrackr_cli.server.app import start_background
srv = start_background(database=sys.argv[1], tokens=["bench"], port=int(sys.argv[2]))
print("ready", flush=True)
signal.sigwait([signal.SIGTERM])
srv.stop()
"""


def gen(path: Path, rows: int) -> None:
    with open(path, "w") as f:
        f.write("hostname,ip_address,cve,severity,plugin_id,plugin_name,description,solution,state,first_seen,last_seen\n")
        for i in range(rows):
            h = i % 5000
            f.write(f"host{h}.example.com,10.{h // 250}.{h % 250}.{i % 200 + 1},CVE-2024-{10000 + i},High,"
                    f"{20000 + i},Plugin {i},Description {i},Patch,ACTIVE,2025-10-01,2025-11-20\n")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--transport", default="websocket", choices=["websocket", "auto", "polling"])
    args = ap.parse_args()

    from hextrackr_cli import events as ev
    from hextrackr_cli.client.seed.api import SeedApi
    from hextrackr_cli.client.watcher import Watcher
    from hextrackr_cli.render.plain import PlainRenderer

    tmp = Path(tempfile.mkdtemp(prefix="hextrackr-bench-"))
    csv_path = tmp / "scan.csv"
    gen(csv_path, args.rows)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen([sys.executable, "-c", SERVER, f"sqlite:///{tmp / 'b.db'}", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert srv.stdout is not None and srv.stdout.readline().startswith(b"ready")
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    sink = open(os.devnull, "w")
    try:
        for _ in range(args.runs):
            api = SeedApi(url, "bench")
            w = Watcher(api, server_url=url, token="bench", transport=args.transport)
            renderer = PlainRenderer(sink, log_interval=0)
            sid = str(uuid.uuid4())
            w.start(sid, reserve=True)
            w.mark_posted(api.upload(csv_path, session_id=sid))
            while True:
                e = w.get(0.5)
                if e is None:
                    continue
                renderer.handle(e)
                rendered = time.time() * 1000
                if isinstance(e, ev.Progress) and e.source in (ev.WEBSOCKET, ev.SOCKET_POLLING, ev.POLLING):
                    latencies.append(rendered - e.event["timestamp"])
                    if os.environ.get("BENCH_VERBOSE"):
                        print(f"{e.type:11} {e.progress:3d} {rendered - e.event['timestamp']:8.1f}")
                if isinstance(e, ev.Outcome):
                    break
            w.close()
            api.close()
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(20)
    print(f"transport={args.transport} rows={args.rows} runs={args.runs} events={len(latencies)}")
    print(f"emit->render latency ms: p50={statistics.median(latencies):.2f} p99={pct(latencies, 99):.2f} "
          f"max={max(latencies):.2f} min={min(latencies):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
