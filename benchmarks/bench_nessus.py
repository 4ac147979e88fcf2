#!/usr/bin/env python3
""".nessus (Nessus v2 XML) figures: the 100k-finding export end to end beside the 100k-row Nessus CSV holding the
same findings, and the peak memory of server and CLI on a 1 GiB export. Prints the figures; not a unit test.

    .venv/bin/python benchmarks/bench_nessus.py e2e [--findings 100000] [--runs 3]
    .venv/bin/python benchmarks/bench_nessus.py big [--size 1GiB]

e2e: interleaved runs, each through a fresh ``hextrackr serve`` (CLI start to exit 0), of the .nessus from
benchmarks/generate_nessus.py and the Nessus CSV from benchmarks/generate.py with the same records; medians of
seconds and of CPU seconds (CLI + server: on a shared machine the CPU figures are the steadier ones), and the ratio.
big: a generated export of at least --size bytes imported through ``hextrackr serve`` (server VmHWM, CLI wait4
ru_maxrss), then converted for a HexTrackr 1.1.x server as the CLI does before uploading (that process's
ru_maxrss).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import DATA, PY, TOKEN, Server, TempHome, data_file, figure, log, mib, run_cli  # noqa: E402

CONVERT = (
    "import sys\n"
    "from hextrackr_cli.client.hx11.convert import prepare_for_hx11\n"
    "p = prepare_for_hx11(sys.argv[1], 'big.nessus')\n"
    "print(p.note)\n"
    "p.cleanup()\n"
)


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nessus_file(findings: int = 0, size: int = 0) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / (f"scan_{findings // 1000}k.nessus" if findings else f"scan_{size >> 20}MiB.nessus")
    if not path.exists():
        log(f"generating {path.name}")
        tmp = path.with_suffix(".tmp")
        args = ["--findings", str(findings)] if findings else ["--size", str(size)]
        subprocess.run([PY, str(HERE / "generate_nessus.py"), *args, "-o", str(tmp)], check=True)
        tmp.rename(path)
    return path


def served(path: Path) -> dict[str, float]:
    home = TempHome()
    server = Server(home)
    try:
        idle = cpu_of(server.pid)
        run = run_cli(["--server", server.url, "--token", TOKEN, "import", str(path)], home.env(), timeout=3600)
        summary = run.summary()
        if run.rc != 0 or summary.get("outcome") != "completed":
            raise RuntimeError(f"{path.name}: import failed (exit {run.rc}): {run.stderr[-300:]}")
        return {"seconds": run.seconds, "cpu": run.cpu + cpu_of(server.pid) - idle, "cli_rss": mib(run.maxrss),
                "server_rss": mib(server.peak_rss()), "records": float(summary.get("records") or 0),
                "server_s": float(summary.get("durationMs") or 0) / 1000}
    finally:
        server.stop()
        home.cleanup()


def e2e(findings: int, runs: int) -> None:
    xml, csv = nessus_file(findings), data_file(findings, "nessus")
    got: dict[str, list[dict[str, float]]] = {"nessus-xml": [], "nessus-csv": []}
    for i in range(runs):
        for label, path in (("nessus-xml", xml), ("nessus-csv", csv)):
            r = served(path)
            got[label].append(r)
            log(f"run {i + 1} {label}: {r['seconds']:.2f}s (server {r['server_s']:.2f}s), CPU {r['cpu']:.2f}s, "
                f"{r['records']:.0f} records")
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in got.items()}
    print(f"{findings:,} findings, {runs} interleaved runs via hextrackr serve, medians "
          f"(.nessus {xml.stat().st_size / 1e6:.1f} MB, Nessus CSV {csv.stat().st_size / 1e6:.1f} MB):")
    for k, m in med.items():
        print(f"  {k:<10} {m['seconds']:.2f} s (server import {m['server_s']:.2f} s), CPU CLI + server {m['cpu']:.2f} s,"
              f" {m['records']:,.0f} records, server peak RSS {m['server_rss']:.0f} MiB")
    x, c = med["nessus-xml"], med["nessus-csv"]
    print(f"  ratio .nessus / CSV: {x['seconds'] / c['seconds']:.2f}x wall, {x['cpu'] / c['cpu']:.2f}x CPU")


def big_figures(size: int) -> tuple[list[dict], dict]:
    """The 1 GiB figures as suite table rows (and raw data): server and CLI peak RSS, the 1.1.x conversion's."""
    path = nessus_file(size=size)
    r = served(path)
    log(f"{path.name}: {r['seconds']:.1f}s, {r['records']:,.0f} records, server peak RSS {r['server_rss']:.0f} MiB, "
        f"CLI peak RSS {r['cli_rss']:.0f} MiB")
    start = time.perf_counter()
    proc = subprocess.Popen([PY, "-c", CONVERT, str(path)], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("conversion failed")
    conv_s, conv_rss = time.perf_counter() - start, usage.ru_maxrss / 1024
    what = f"{path.stat().st_size / (1 << 20):.0f} MiB .nessus ({r['records']:,.0f} records, {r['seconds']:.0f} s)"
    table = [
        figure(f"server peak RSS importing a {what}", [r["server_rss"]], "MiB", target="<= 150 MiB",
               ok=r["server_rss"] <= 150),
        figure(f"CLI peak RSS importing the {path.stat().st_size / (1 << 20):.0f} MiB .nessus", [r["cli_rss"]], "MiB",
               target="<= 80 MiB", ok=r["cli_rss"] <= 80),
        figure("CLI peak RSS converting it for a HexTrackr 1.1.x server", [conv_rss], "MiB", target="<= 80 MiB",
               ok=conv_rss <= 80, note=f"{conv_s:.0f} s; {out.strip()[:120]}"),
    ]
    return table, {**r, "convert_s": conv_s, "convert_rss_mib": conv_rss}


def big(size: int) -> None:
    table, _ = big_figures(size)
    for row in table:
        print(f"{row['name']}: {row['value']:.0f} {row['unit']} (target {row['target']})"
              + (f"; {row['note']}" if row["note"] else ""))


def _size(text: str) -> int:
    t = text.strip().upper()
    for unit, shift in (("GIB", 30), ("MIB", 20), ("KIB", 10)):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * (1 << shift))
    return int(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="part", required=True)
    a1 = sub.add_parser("e2e")
    a1.add_argument("--findings", type=int, default=100_000)
    a1.add_argument("--runs", type=int, default=3)
    a2 = sub.add_parser("big")
    a2.add_argument("--size", type=_size, default=1 << 30)
    a = ap.parse_args(argv)
    if a.part == "e2e":
        e2e(a.findings, a.runs)
    else:
        big(a.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
