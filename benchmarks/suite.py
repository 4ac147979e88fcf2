"""The whole benchmark suite: runs every figure, prints one table, writes JSON + Markdown results.

    benchmarks/run [--quick | --full] [--only NAME[,NAME…]]

``--quick`` (the default) uses smaller sizes and fewer runs and skips the 1M-row imports and the 1 GiB upload;
it writes results/quick.{json,md}. ``--full`` writes results/latest.{json,md} (the figures the README quotes).
Figure names for ``--only``: e2e, scaling, upload, nessus (--full: 1 GiB .nessus memory), latency, fanout, cancel,
startup, scaleout (needs PostgreSQL and Redis on loopback, see bench_scaleout.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from common import HERE, PY, RESULTS, figure, log, machine_info, write_json

ALL = ("e2e", "scaling", "upload", "nessus", "latency", "fanout", "cancel", "startup", "scaleout")

QUICK: dict[str, Any] = dict(e2e_rows=10_000, e2e_runs=3, serve_runs=1, scale=(1_000, 10_000, 100_000), scale_runs=(3, 1),
             upload=None, lat_rows=100_000, lat_runs=1, fan_rows=100_000, fan_clients=200, cancel_rows=100_000,
             startup_runs=10, so_rows=10_000, so_runs=3, so_fan_rows=100_000, so_fan_clients=200)
FULL: dict[str, Any] = dict(e2e_rows=100_000, e2e_runs=5, serve_runs=2, scale=(10_000, 100_000, 1_000_000), scale_runs=(3, 1),
            upload=1 << 30, lat_rows=100_000, lat_runs=3, fan_rows=100_000, fan_clients=1000, cancel_rows=1_000_000,
            startup_runs=20, so_rows=100_000, so_runs=3, so_fan_rows=100_000, so_fan_clients=1000)


def startup(runs: int) -> tuple[list[dict], dict]:
    out = subprocess.run([PY, str(HERE / "startup.py"), "--runs", str(runs), "--json"], capture_output=True, text=True,
                         check=True)
    data = json.loads(out.stdout)
    rows = {r["command"]: r for r in data["results"]}
    base = rows['python -c "import click"']
    table = []
    for name, r in rows.items():
        ref = name != 'python -c "import click"'
        table.append({
            "name": f"start-up: {name}", "stat": "median", "value": r["median_ms"], "median": r["median_ms"],
            "min": r["min_ms"], "max": None, "runs": r["runs"], "unit": "ms", "values": [],
            "reference": "import click" if ref else "", "ref_value": base["median_ms"] if ref else None,
            "ratio": r["ratio"] if ref else None, "target": f"<= {data['target_ratio']}x" if name == "hextrackr --help" else "",
            "ok": (r["ratio"] <= data["target_ratio"]) if name == "hextrackr --help" else None,
            "note": "benchmarks/startup.py (interleaved whole processes)"})
    return table, data


def fmt_num(v: Any, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "ms":
        return f"{v:.1f} ms"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    if unit == "/s":
        return f"{v:.0f} /s"
    return f"{v:.3g}"


def markdown(sections: list[tuple[str, list[dict]]], info: dict, mode: str, elapsed: float) -> str:
    lines = [f"# hextrackr benchmarks ({mode})", "",
             f"git {info.get('git', '?')[:12]}{' (dirty)' if info.get('git_dirty') else ''}, "
             f"{info.get('cpu', '?')}, {info.get('cpus')} CPUs (shared), Python {info.get('python')}, "
             f"SQLite {info.get('sqlite')}, load average at start {', '.join(f'{x:.1f}' for x in info['loadavg_start'])}; "
             f"suite took {elapsed / 60:.1f} min. Reproduce: `benchmarks/run{' --full' if mode == 'full' else ''}`.", "",
             "| # | figure | value | min | runs | ratio | target | met |", "|---|---|---|---|---|---|---|---|"]
    for title, rows in sections:
        for r in rows:
            met = {True: "yes", False: "**NO**", None: ""}[r.get("ok")]
            ratio = f"{r['ratio']:.2f}x {r['reference']}" if r.get("ratio") else ""
            value = fmt_num(r["value"], r["unit"]) + ("" if r["stat"] == "median" else f" ({r['stat']})")
            lines.append(f"| {title} | {r['name']} | {value} | {fmt_num(r['min'], r['unit'])} | {r['runs']} | "
                         f"{ratio} | {r.get('target', '')} | {met} |")
    notes = [f"- {r['name']}: {r['note']}" for _, rows in sections for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="hextrackr benchmark suite")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs (default)")
    g.add_argument("--full", action="store_true", help="the full sizes (100k/1M rows, 1 GiB upload, 1,000 clients)")
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated subset of " + ",".join(ALL))
    args = ap.parse_args(argv)
    mode = "full" if args.full else "quick"
    cfg = FULL if args.full else QUICK
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        ap.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    info = machine_info()
    started = time.time()
    sections: list[tuple[str, list[dict]]] = []
    raw: dict[str, Any] = {}
    mid_local: list[float] = []
    mid_rss: list[float] = []

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "latest" if mode == "full" else "quick"

    def save(final: bool) -> str:
        """Write the results so far (after every figure, so an interrupted run keeps what it measured)."""
        elapsed = time.time() - started
        info["loadavg_end"] = os.getloadavg()
        ordered = sorted(sections, key=lambda s: s[0])
        md = markdown(ordered, info, mode if final else f"{mode}, partial", elapsed)
        write_json(RESULTS / f"{stem}.json", {"mode": mode, "complete": final, "machine": info, "config": cfg,
                                               "elapsed_s": elapsed,
                                               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                                               "figures": {t: rows for t, rows in ordered}, "raw": raw})
        (RESULTS / f"{stem}.md").write_text(md)
        return md

    def section(key: str, title: str, fn: Callable[[], tuple[list[dict], Any]]) -> None:
        if key not in only:
            return
        log(f"--- {title}")
        try:
            table, data = fn()
        except Exception as exc:  # one broken figure must not lose the others
            log(f"{title} FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            table, data = [figure(f"{title}: FAILED ({type(exc).__name__}: {str(exc)[:120]})", [], "", ok=False)], None
        sections.append((title, table))
        raw[key] = data
        save(final=False)

    from bench_e2e import end_to_end, liveness_rows

    def e2e() -> tuple[list[dict], Any]:
        table, data = end_to_end(cfg["e2e_rows"], cfg["e2e_runs"], cfg["serve_runs"])
        mid_local.extend(data["local_s"])
        mid_rss.extend(data["serve_rss_mib"])
        return table + liveness_rows(f"{cfg['e2e_rows'] // 1000}k rows", data["liveness"]), data

    def scale() -> tuple[list[dict], Any]:
        from bench_e2e import scaling

        small, mid, big = cfg["scale"]
        if not mid_local or cfg["e2e_rows"] != mid:
            _, d = end_to_end(mid, 2, 1, nessus=False)
            mid_local[:] = d["local_s"]
            mid_rss[:] = d["serve_rss_mib"]
        table, data = scaling(small, mid, big, cfg["scale_runs"][0], cfg["scale_runs"][1], mid_local, mid_rss)
        big_live = data["liveness"][-(cfg["scale_runs"][1] + 1):]
        return table + liveness_rows(f"{big:,} rows", big_live), data

    def upload() -> tuple[list[dict], Any]:
        from bench_e2e import cli_upload_memory

        return cli_upload_memory(cfg["upload"])

    def lat() -> tuple[list[dict], Any]:
        from latency import latency

        return latency(cfg["lat_rows"], cfg["lat_runs"])

    def fan() -> tuple[list[dict], Any]:
        from bench_fanout import fanout

        return fanout(cfg["fan_rows"], cfg["fan_clients"])

    def cxl() -> tuple[list[dict], Any]:
        from bench_cancel import cancel

        return cancel(cfg["cancel_rows"])

    def scl() -> tuple[list[dict], Any]:
        from bench_scaleout import scaleout

        return scaleout(cfg["so_rows"], cfg["so_runs"], cfg["so_fan_rows"], cfg["so_fan_clients"])

    # shorter figures first, so a run cut short still has most of the table
    section("e2e", "1,3,4 end to end", e2e)
    section("startup", "8 start-up", lambda: startup(cfg["startup_runs"]))
    section("latency", "5 latency", lat)
    section("fanout", "6 fan-out", fan)
    if cfg["upload"]:
        section("upload", "3 CLI memory", upload)
        section("nessus", "10 1 GiB .nessus memory", lambda: __import__("bench_nessus").big_figures(cfg["upload"]))
    section("scaling", "2,4 scaling", scale)
    section("cancel", "7 cancel", cxl)
    section("scaleout", "9 scale-out", scl)

    md = save(final=True)
    print(md)
    log(f"wrote {RESULTS / (stem + '.json')} and {RESULTS / (stem + '.md')}")
    missed = [r["name"] for _, rows in sections for r in rows if r.get("ok") is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
