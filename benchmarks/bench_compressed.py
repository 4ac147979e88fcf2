#!/usr/bin/env python3
"""Where a compressed export is expanded: in the CLI or in the server. Prints the figures; not a unit test.

    .venv/bin/python benchmarks/bench_compressed.py [--rows 100000] [--runs 3]

For the 100k-row Tenable CSV (benchmarks/generate.py) gzip-compressed, interleaved runs, each with a fresh
``hextrackr serve``:
- server: the CLI uploads the .csv.gz as it is; the server expands it while checking and reading it;
- client: the CLI expands it first (hextrackr_cli.formats.compressed, into a temporary file) and uploads the CSV;
- plain: the CSV itself (the reference).
Seconds are CLI start to exit (the client case adds the expansion process); RSS is the CLI's (wait4; for the
client case the larger of the expanding process and the CLI) and the server's VmHWM.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, TOKEN, Server, TempHome, data_file, log, mib, run_cli  # noqa: E402

EXPAND = (
    "import sys, shutil\n"
    "from hextrackr_cli.formats.compressed import expanded\n"
    "with open(sys.argv[1], 'rb') as src, open(sys.argv[2], 'wb') as dst:\n"
    "    shutil.copyfileobj(expanded(src)[0], dst, 1 << 20)\n"
)


def gz_of(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    if not out.exists():
        with open(path, "rb") as src, open(out.with_suffix(".tmp"), "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        out.with_suffix(".tmp").rename(out)
    return out


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(mode: str, plain: Path, packed: Path) -> dict[str, float]:
    home = TempHome()
    server = Server(home)
    try:
        extra_s, extra_rss, extra_cpu = 0.0, 0, 0.0
        target = packed if mode == "server" else plain
        if mode == "client":
            target = home.dir / plain.name
            start = time.perf_counter()
            proc = subprocess.Popen([PY, "-c", EXPAND, str(packed), str(target)], env=home.env())
            _, status, usage = os.wait4(proc.pid, 0)
            extra_s = time.perf_counter() - start
            extra_rss = usage.ru_maxrss * 1024
            extra_cpu = usage.ru_utime + usage.ru_stime
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError("expanding failed")
        idle_cpu = cpu_of(server.pid)
        run = run_cli(["--server", server.url, "--token", TOKEN, "import", str(target)], home.env())
        server_cpu = cpu_of(server.pid) - idle_cpu
        if run.rc != 0 or run.summary().get("outcome") != "completed":
            raise RuntimeError(f"{mode}: import failed (exit {run.rc}): {run.stderr[-300:]}")
        return {"seconds": run.seconds + extra_s, "cli_rss": mib(max(run.maxrss, extra_rss)),
                "server_rss": mib(server.peak_rss()), "uploaded": (packed if mode == "server" else plain).stat().st_size,
                "server_ms": float(run.summary().get("durationMs") or 0), "cli_cpu": run.cpu + extra_cpu,
                "server_cpu": server_cpu}
    finally:
        server.stop()
        home.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args(argv)
    plain = data_file(a.rows)
    packed = gz_of(plain)
    log(f"{plain.name}: {plain.stat().st_size:,} bytes, gzip {packed.stat().st_size:,} bytes")
    results: dict[str, list[dict[str, float]]] = {"plain": [], "server": [], "client": []}
    for i in range(a.runs):
        for mode in results:
            r = one(mode, plain, packed)
            results[mode].append(r)
            log(f"run {i + 1} {mode}: {r['seconds']:.2f}s, CPU CLI {r['cli_cpu']:.2f}s server {r['server_cpu']:.2f}s,"
                f" RSS CLI {r['cli_rss']:.0f} MiB server {r['server_rss']:.0f} MiB")
    print(f"{a.rows:,}-row Tenable CSV ({plain.stat().st_size / 1e6:.1f} MB, .gz {packed.stat().st_size / 1e6:.1f} MB),"
          f" {a.runs} interleaved runs, medians:")
    for mode, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"  {mode:<7} {med['seconds']:.2f} s (server import {med['server_ms'] / 1000:.2f} s), CPU CLI"
              f" {med['cli_cpu']:.2f} s + server {med['server_cpu']:.2f} s, CLI peak RSS"
              f" {med['cli_rss']:.0f} MiB, server peak RSS {med['server_rss']:.0f} MiB, uploaded"
              f" {med['uploaded'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
