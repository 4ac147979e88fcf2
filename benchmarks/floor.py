#!/usr/bin/env python3
"""The floor: the least work an import of a Tenable VM export can do, in one process.

csv.reader -> the same fields mapped inline (one record per CVE, the server's dedup key) -> executemany into the
server's own schema (``hextrackr_cli.server.storage.sqlite.SCHEMA``, same UNIQUE (vendor, dedup_key)) with the same
upsert, plugin text once per plugin as the server stores it, in one transaction. No progress, no HTTP, no staging,
no resolve/snapshot. The end-to-end import is compared with this.

    python benchmarks/floor.py FILE.csv DB.sqlite        # prints JSON {"rows", "records", "seconds"}
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import time

csv.field_size_limit(8 * 1024 * 1024)


def floor_import(csv_path: str, db_path: str, vendor: str = "tenable", scan_date: str = "2025-11-20") -> dict:
    from hextrackr_cli.server.storage.sqlite import SCHEMA

    start = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-32768")  # as the server (storage.sqlite.SqliteDatabase.connect)
    conn.executescript(SCHEMA)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    conn.execute("BEGIN IMMEDIATE")
    import_id = conn.execute(
        "INSERT INTO imports (session_id, type, filename, vendor, scan_date, started_at) VALUES (?, ?, ?, ?, ?, ?)",
        (f"floor-{time.time_ns()}", "vulnerabilities", csv_path, vendor, scan_date, now),
    ).lastrowid
    plugins: dict[str, tuple[str, str, str]] = {}
    rows = 0

    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        ix = {name: i for i, name in enumerate(header)}
        i_aid, i_host, i_ip = ix["asset.id"], ix["asset.name"], ix["asset.display_ipv4_address"]
        i_pid, i_name, i_cve, i_vpr = ix["definition.id"], ix["definition.name"], ix["definition.cve"], ix["definition.vpr.score"]
        i_desc, i_sol, i_sev, i_state = ix["definition.description"], ix["definition.solution"], ix["severity"], ix["state"]
        i_first, i_last = ix["first_seen"], ix["last_seen"]

        def records():
            nonlocal rows
            for row in reader:
                rows += 1
                aid, pid = row[i_aid], row[i_pid]
                if pid not in plugins:
                    plugins[pid] = (row[i_name], row[i_desc], row[i_sol])
                vpr = row[i_vpr]
                for cve in row[i_cve].split(","):
                    yield (f"a:{aid}|{pid}|{cve}", row[i_host].lower(), row[i_ip], aid, cve, pid, row[i_name],
                           row[i_sev], float(vpr) if vpr else None, row[i_state].upper(), row[i_first], row[i_last])

        conn.executemany(
            "INSERT INTO vulnerabilities (dedup_key, hostname, ip_address, asset_id, cve, plugin_id, plugin_name,"
            " severity, vpr_score, state, first_seen, last_seen, description, solution, vendor, scan_date,"
            " import_id, created_import_id, created_at, updated_at)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '{vendor}', '{scan_date}', {import_id}, {import_id},"
            f" '{now}', '{now}')"
            " ON CONFLICT (vendor, dedup_key) DO UPDATE SET severity = excluded.severity, state = excluded.state,"
            " last_seen = excluded.last_seen, import_id = excluded.import_id, updated_at = excluded.updated_at",
            records(),
        )
    conn.executemany(
        "INSERT INTO plugins (vendor, plugin_id, name, description, solution, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (vendor, plugin_id) DO UPDATE SET name = excluded.name",
        ((vendor, pid, n, d, s, now) for pid, (n, d, s) in plugins.items()),
    )
    records_n = conn.execute("SELECT count(*) FROM vulnerabilities WHERE import_id = ?", (import_id,)).fetchone()[0]
    conn.execute("UPDATE imports SET status = 'completed', rows = ?, records = ? WHERE id = ?", (rows, records_n, import_id))
    conn.execute("COMMIT")
    conn.close()
    return {"rows": rows, "records": records_n, "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(floor_import(sys.argv[1], sys.argv[2])))
