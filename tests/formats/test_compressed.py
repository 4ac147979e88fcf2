"""Compressed exports (.csv.gz, .nessus.gz, a .zip of one export) import like the export itself; several files, a
bomb past the upload limit and damaged archives are refused with one line and nothing stored."""

from __future__ import annotations

import gzip
import io
import sqlite3
import zipfile
from pathlib import Path

import pytest

from support.cli import run_cli
from support.cli_suite import cli_env
from support.fixtures import TOKEN, server  # noqa: F401
from support.http import post_import, wait_for_outcome

REAL = Path(__file__).parent.parent / "data" / "real"
NESSUS = REAL / "nessus_v_unknown.xml"
CSV = (b"hostname,ip_address,cve,severity,plugin_id,plugin_name\r\n"
       b"web01,10.0.0.1,CVE-2024-0001,High,1001,OpenSSL bug\r\nweb02,10.0.0.2,CVE-2024-0003,Low,1002,Banner\r\n")


def zipped(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return out.getvalue()


def stored(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT vendor, dedup_key, hostname, ip_address, cve, plugin_id, severity FROM"
                            " vulnerabilities ORDER BY vendor, dedup_key").fetchall()
    finally:
        conn.close()


def imports(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM imports").fetchone()[0])
    finally:
        conn.close()


def import_file(tmp_path: Path, url: str, path: Path) -> tuple[int, str]:
    done = run_cli(["import", "--vendor", "nessus", str(path)], cli_env(tmp_path, url), timeout=120)
    return done.returncode, done.stderr.decode()


@pytest.mark.parametrize("kind", ["gz", "zip"])
def test_a_compressed_nessus_file_stores_what_the_file_itself_stores(tmp_path, kind):
    from hextrackr_cli.server.app import start_background

    data = NESSUS.read_bytes()
    packed = tmp_path / ("scan.nessus.gz" if kind == "gz" else "scan.zip")
    packed.write_bytes(gzip.compress(data) if kind == "gz" else zipped(("export/scan.nessus", data)))
    results = []
    for name, path in (("plain", NESSUS), ("packed", packed)):
        db = tmp_path / f"{name}.db"
        srv = start_background(database=f"sqlite:///{db}", tokens=[TOKEN])
        try:
            code, err = import_file(tmp_path, srv.url, path)
            assert code == 0, err
        finally:
            srv.stop()
        results.append(stored(db))
    assert results[0] == results[1] and len(results[0]) > 200


def test_a_csv_gz_imports_and_the_upload_stays_compressed(tmp_path, server):  # noqa: F811
    packed = tmp_path / "generic_2025-11-20.csv.gz"
    packed.write_bytes(gzip.compress(CSV))
    done = run_cli(["-v", "--output", "plain", "import", str(packed)], cli_env(tmp_path, server.url), timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert f"({packed.stat().st_size:,} bytes)" in err  # what was sent: the .gz as it is
    rows = stored(tmp_path / "server.db")
    assert [(r[2], r[4], r[6]) for r in rows] == [("web01", "CVE-2024-0001", "High"), ("web02", "CVE-2024-0003", "Low")]


@pytest.mark.parametrize("data, expected", [
    (zipped(("a.csv", CSV), ("b.csv", CSV)), "the zip archive holds 2 files (a.csv, b.csv); a zip must hold exactly"
                                             " one export"),
    (zipped(), "the zip archive holds 0 files (none)"),
    (gzip.compress(CSV)[:-12], "the gzip file is damaged: it ends before its data does (truncated?)"),
    (gzip.compress(CSV)[:-8] + b"\0\0\0\0" + gzip.compress(CSV)[-4:], "the gzip file is damaged"),
], ids=["two-files", "empty-zip", "truncated-gz", "bad-crc-gz"])
def test_an_archive_that_is_not_one_good_export_is_refused_locally_in_one_line(tmp_path, server, data, expected):  # noqa: F811
    bad = tmp_path / "scan.zip"
    bad.write_bytes(data)
    code, err = import_file(tmp_path, server.url, bad)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert line.startswith("hextrackr: error: ") and str(bad) in line
    assert imports(tmp_path / "server.db") == 0


def test_a_bomb_past_the_servers_upload_limit_fails_and_stores_nothing(tmp_path):
    from hextrackr_cli.server.app import start_background

    db = tmp_path / "bomb.db"
    srv = start_background(database=f"sqlite:///{db}", tokens=[TOKEN], max_upload=1 << 20)
    try:
        bomb = gzip.compress(CSV.splitlines(keepends=True)[0] + CSV.splitlines(keepends=True)[1] * 100_000)
        assert len(bomb) < 1 << 20
        resp = post_import(srv.url, TOKEN, bomb, filename="scan.csv.gz", sessionId="1b3c1ee2-3c1e-4e7a-9f00-0123456789ab")
        assert resp.status_code == 202, resp.text
        final = wait_for_outcome(srv.url, TOKEN, "1b3c1ee2-3c1e-4e7a-9f00-0123456789ab")
        assert final["outcome"] == "failed"
        assert "expands to more than 1 MiB (the upload limit applies to the expanded size)" in final["error"]
    finally:
        srv.stop()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM vulnerabilities").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_damaged_zip_upload_is_answered_422_naming_the_file(tmp_path, server):  # noqa: F811
    resp = post_import(server.url, TOKEN, zipped(("a.csv", CSV), ("b.csv", CSV)), filename="two.zip")
    assert resp.status_code == 422
    assert resp.json()["error"].startswith("two.zip: the zip archive holds 2 files")
    assert imports(tmp_path / "server.db") == 0


def test_a_zip_needing_a_newer_zip_version_is_one_line_not_a_traceback():
    """Found by the fuzz run: zipfile raises NotImplementedError ("zip file version 8.4") for such a directory."""
    from hextrackr_cli.formats import FormatError
    from hextrackr_cli.formats.compressed import expanded

    data = bytearray(zipped(("a.csv", CSV)))
    directory = data.index(b"PK\x01\x02")
    data[directory + 6] = 84  # "version needed to extract": 8.4
    with pytest.raises(FormatError) as err:
        expanded(io.BytesIO(bytes(data)))
    assert str(err.value).startswith("the zip archive is damaged: zip file version 8.4")
