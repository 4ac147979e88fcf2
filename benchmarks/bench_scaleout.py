"""Figure 9: scale-out (issue 9) — PostgreSQL vs SQLite for one import, COPY vs executemany for the staging,
and one session fanned out to many clients spread over 2 workers sharing Redis and PostgreSQL.

Needs PostgreSQL and Redis on loopback (``HEXTRACKR_BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``, used to create and drop a fresh database per run;
``HEXTRACKR_BENCH_REDIS``, default ``redis://127.0.0.1:6379/0``, with a fresh key prefix per run).

- import: ``hextrackr --output json import FILE`` against a separately started ``hextrackr serve`` on a fresh
  SQLite file / a fresh PostgreSQL database, interleaved; wall time of the whole CLI process and the server's
  ``durationMs``.
- staging: the same mapped records into a TEMP table, ``COPY`` (what the server does) vs ``executemany``.
- fan-out: benchmarks/bench_fanout.py with 2 workers (the emit time stamp is the owner worker's; the other
  worker's clients get the event through Redis).
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from contextlib import contextmanager
from typing import Any, Iterator

from common import data_file, figure, log

PG_ADMIN = os.environ.get("HEXTRACKR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("HEXTRACKR_BENCH_REDIS", "redis://127.0.0.1:6379/0")


@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg

    name = f"hextrackr_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def message_queue() -> str:
    return f"{REDIS}?prefix=hextrackr_bench_{secrets.token_hex(4)}"


def import_pg_vs_sqlite(rows: int, runs: int) -> tuple[list[dict], dict[str, Any]]:
    from bench_e2e import run_served

    path = data_file(rows)
    wall: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    server_ms: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    for r in range(runs):
        for backend in ("sqlite", "postgresql"):  # interleaved: a busy moment slows both alike
            if backend == "sqlite":
                run, _ = run_served(path, stamped=False)
            else:
                with fresh_database() as pg:
                    run, _ = run_served(path, stamped=False, serve_args=("--database", pg))
            wall[backend].append(run.seconds)
            server_ms[backend].append(run.summary().get("durationMs") or float("nan"))
            log(f"scale-out import run {r + 1} {backend}: {run.seconds:.2f} s (server {server_ms[backend][-1]} ms)")
    ref = statistics.median(wall["sqlite"])
    ref_ms = statistics.median(server_ms["sqlite"])
    label = f"{rows // 1000}k rows" if rows >= 1000 else f"{rows} rows"
    table = [
        figure(f"import {label} via serve, SQLite: CLI start -> exit", wall["sqlite"], "s"),
        figure(f"import {label} via serve, PostgreSQL: CLI start -> exit", wall["postgresql"], "s",
               reference="SQLite", ref_value=ref, note="fresh database per run, interleaved with SQLite"),
        figure(f"import {label}, SQLite: server durationMs", server_ms["sqlite"], "ms"),
        figure(f"import {label}, PostgreSQL: server durationMs", server_ms["postgresql"], "ms",
               reference="SQLite", ref_value=ref_ms),
    ]
    return table, {"wall_s": wall, "server_ms": server_ms}


def staging_copy_vs_executemany(rows: int, runs: int) -> tuple[list[dict], dict[str, Any]]:
    """The server's staging step alone on PostgreSQL: COPY (PgStaging.add) vs executemany of INSERTs."""
    import csv

    from hextrackr_cli.formats import VULN_FIELDS, detect_format, make_mapper
    from hextrackr_cli.server.storage.postgres import PgDatabase

    path = data_file(rows)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        fmt = detect_format(next(reader), "vulnerabilities")
        mapper = make_mapper(fmt, fmt.default_vendor)
        records = [rec for row in reader for rec in mapper(row)]
    times: dict[str, list[float]] = {"copy": [], "executemany": []}
    with fresh_database() as pg:
        db = PgDatabase(pg)
        db.initialize()
        insert = (f"INSERT INTO pg_temp.staging_v ({', '.join(VULN_FIELDS)})"
                  f" VALUES ({', '.join(['%s'] * len(VULN_FIELDS))})")
        for _ in range(runs):
            for how in ("copy", "executemany"):
                conn = db.connect()
                try:
                    staging = db.staging(conn, "vulnerabilities")
                    staging.begin()
                    start = time.perf_counter()
                    for lo in range(0, len(records), 5000):  # the pipeline's batches
                        batch = records[lo:lo + 5000]
                        if how == "copy":
                            staging.add(batch)
                        else:
                            with conn.raw.cursor() as cur:
                                cur.executemany(insert, batch)
                    times[how].append(time.perf_counter() - start)
                    staging.end()
                finally:
                    conn.close()
            log(f"staging {len(records):,} records: COPY {times['copy'][-1]:.2f} s, "
                f"executemany {times['executemany'][-1]:.2f} s")
    ref = statistics.median(times["executemany"])
    note = f"{len(records):,} mapped records in batches of 5,000 into the TEMP staging table"
    return [figure("PostgreSQL staging: executemany", times["executemany"], "s", note=note),
            figure("PostgreSQL staging: COPY (used)", times["copy"], "s", reference="executemany", ref_value=ref)], times


def fanout_two_workers(rows: int, clients: int, runs: int) -> tuple[list[dict], Any]:
    from bench_fanout import fanout

    with fresh_database() as pg:
        return fanout(rows, clients, runs=runs, workers=2,
                      serve_args=("--database", pg, "--message-queue", message_queue()))


def scaleout(rows: int, runs: int, fan_rows: int, fan_clients: int) -> tuple[list[dict], dict[str, Any]]:
    t1, d1 = import_pg_vs_sqlite(rows, runs)
    t2, d2 = staging_copy_vs_executemany(rows, runs)
    t3, d3 = fanout_two_workers(fan_rows, fan_clients, runs)
    return t1 + t2 + t3, {"import": d1, "staging": d2, "fanout": d3}


if __name__ == "__main__":
    import argparse

    from common import RESULTS, machine_info, write_json
    from suite import markdown

    ap = argparse.ArgumentParser(description="scale-out figures alone; writes results/scaleout.{json,md}")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fan-rows", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=1000)
    a = ap.parse_args()
    info = machine_info()
    started = time.time()
    table, raw = scaleout(a.rows, a.runs, a.fan_rows, a.clients)
    info["loadavg_end"] = os.getloadavg()
    md = markdown([("9 scale-out", table)], info, "scale-out", time.time() - started)
    md = md.replace("Reproduce: `benchmarks/run`.", f"Reproduce: `benchmarks/bench_scaleout.py --rows {a.rows} --runs "
                    f"{a.runs} --fan-rows {a.fan_rows} --clients {a.clients}` (or `benchmarks/run --full --only scaleout`).")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaleout.md").write_text(md)
    write_json(RESULTS / "scaleout.json", {"machine": info, "args": vars(a), "figures": table, "raw": raw})
    print(md)
