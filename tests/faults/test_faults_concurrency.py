"""Concurrency (issue 6): eight imports at once with overlapping hosts and findings, and session ids reused by
concurrent or later uploads. Every row must be accounted for; a reused session id is idempotent (same file) or
refused (another file), never mixed (docs/wire.md)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import requests

from support import faults as S
from support.figures import record

pytest_plugins = ["support.figures_plugin"]

FILES = 8
ROWS = 5000
STEP = 3000  # file k holds findings k*STEP .. k*STEP+ROWS: consecutive files share 2000 findings


def test_eight_concurrent_cli_imports_account_for_every_row(server_factory, tmp_path):
    """Eight `hextrackr import` processes at once, same vendor, hosts and findings overlapping: all exit 0, the
    table holds exactly the union of the findings, and inserted/updated add up (nothing lost, nothing doubled)."""
    srv = server_factory(tokens=[S.TOKEN])
    env = S.cli_env(tmp_path, srv.url)
    paths = [S.gen_csv(tmp_path / f"conc{k}_2025-11-{10 + k:02d}.csv", ROWS, offset=k * STEP, hosts=500)
             for k in range(FILES)]
    procs = [S.spawn_cli(["--output", "json", "import", "--vendor", "acme", str(p)], env) for p in paths]
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()
        summaries.append(json.loads(out.decode().splitlines()[-1]))
    union = (FILES - 1) * STEP + ROWS
    got = S.count(srv.db_path)
    record(rows_expected=union, rows_lost=max(0, union - got))
    assert got == union, f"{union - got} rows lost"
    records = S.db_rows_all(srv.db_path, "imports")
    assert len(records) == FILES and all(r["status"] == "completed" for r in records)
    assert sum(r["inserted"] for r in records) == union
    assert all(r["inserted"] + r["updated"] == ROWS for r in records), [(r["inserted"], r["updated"]) for r in records]
    assert sorted(s["sessionId"] for s in summaries) == sorted(r["session_id"] for r in records)
    assert S.count(srv.db_path, where="vendor = 'acme'") == union
    hosts = {r["hostname"] for r in S.db_rows_all(srv.db_path)}
    assert len(hosts) == 500


def concurrent_posts(url: str, jobs: list[tuple[Path, str]]) -> list[requests.Response]:
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def go(i: int, path: Path, sid: str) -> None:
        barrier.wait()
        results[i] = S.post_file(url, path, session_id=sid, filename=path.name)

    threads = [threading.Thread(target=go, args=(i, p, s)) for i, (p, s) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_same_session_id_same_file_posted_concurrently_is_imported_once(server_factory, tmp_path):
    """Four simultaneous uploads of the same file under one session id: one import, answered to all (202 once,
    then 200 with the same import id), rows imported once."""
    srv = server_factory(tokens=[S.TOKEN])
    path = S.gen_csv(tmp_path / "same_2025-11-20.csv", 3000)
    sid = S.new_sid()
    answers = concurrent_posts(srv.url, [(path, sid)] * 4)
    codes = sorted(r.status_code for r in answers)
    assert codes.count(202) == 1 and set(codes) <= {200, 202}, [(r.status_code, r.text[:120]) for r in answers]
    assert len({r.json()["importId"] for r in answers}) == 1
    assert S.wait_outcome(srv.url, sid)["outcome"] == "completed"
    assert S.count(srv.db_path, "imports") == 1
    assert S.count(srv.db_path) == 3000


def test_same_session_id_different_files_concurrently_is_never_mixed(server_factory, tmp_path):
    """Three different files posted at once under one session id: exactly one is imported (202), the others get
    409; the table holds exactly the winner's rows, none of the losers'."""
    srv = server_factory(tokens=[S.TOKEN])
    sid = S.new_sid()
    paths = [S.gen_csv(tmp_path / f"mix{k}_2025-11-20.csv", 1000 + k, offset=100_000 * (k + 1), tag=f"-f{k}")
             for k in range(3)]
    answers = concurrent_posts(srv.url, [(p, sid) for p in paths])
    codes = [r.status_code for r in answers]
    assert sorted(codes) == [202, 409, 409], [(r.status_code, r.text[:120]) for r in answers]
    winner = codes.index(202)
    assert S.wait_outcome(srv.url, sid)["outcome"] == "completed"
    names = {r["plugin_name"].rsplit("-", 1)[-1] for r in S.db_rows_all(srv.db_path)}
    assert names == {f"f{winner}"}, names
    assert S.count(srv.db_path) == 1000 + winner
    assert S.count(srv.db_path, "imports") == 1


def test_cli_reusing_a_finished_session_id_with_another_file_is_refused(server_factory, tmp_path):
    """`hextrackr import --session-id X` for a second, different file after X completed: refused with one line
    (exit 1), the first import's rows untouched; the same file again is idempotent (exit 0, nothing doubled)."""
    srv = server_factory(tokens=[S.TOKEN])
    env = S.cli_env(tmp_path, srv.url)
    sid = S.new_sid()
    first = S.gen_csv(tmp_path / "first_2025-11-20.csv", 200)
    second = S.gen_csv(tmp_path / "second_2025-11-20.csv", 300, offset=50_000)
    assert S.run_cli(["-q", "import", "--session-id", sid, str(first)], env).returncode == 0
    before = S.fingerprint(srv.db_path)
    r = S.run_cli(["-q", "import", "--session-id", sid, str(second)], env)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert len([line for line in err.splitlines() if line.strip()]) == 1 and sid in err, err
    assert S.fingerprint(srv.db_path) == before
    again = S.run_cli(["-q", "import", "--session-id", sid, str(first)], env)
    assert again.returncode == 0, again.stderr.decode()
    assert S.fingerprint(srv.db_path) == before and S.count(srv.db_path, "imports") == 1
