"""The local import ledger: completed imports by content, atomic appends from concurrent runs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from hextrackr_cli.ledger import Entry, Ledger, file_sha256


def entry(sha: str = "a" * 64, **kw: str) -> Entry:
    base = dict(sha256=sha, server="https://HX.example.org/", type="vulnerabilities", vendor="tenable",
                session="s-1", time="2026-11-30T02:00:00Z", import_id="17", name="scan.csv")
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def test_find_matches_content_server_type_and_vendor_latest_wins(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state" / "ledger.jsonl")
    assert ledger.find("a" * 64, "https://hx.example.org", "vulnerabilities", "tenable") is None  # no file yet
    ledger.record(entry())
    ledger.record(entry(session="s-2", import_id="18"))
    found = ledger.find("a" * 64, "https://hx.example.org", "vulnerabilities", "tenable")
    assert found is not None and found.session == "s-2" and found.import_id == "18"
    assert ledger.find("b" * 64, "https://hx.example.org", "vulnerabilities", "tenable") is None
    assert ledger.find("a" * 64, "https://other.example.org", "vulnerabilities", "tenable") is None
    assert ledger.find("a" * 64, "https://hx.example.org", "tickets", "tenable") is None
    assert ledger.find("a" * 64, "https://hx.example.org", "vulnerabilities", "qualys") is None
    assert oct(ledger.path.stat().st_mode & 0o777) == oct(0o600)


def test_default_location_is_the_xdg_state_dir(tmp_path: Path) -> None:
    ledger = Ledger(env={"XDG_STATE_HOME": str(tmp_path / "st")})
    assert ledger.path == tmp_path / "st" / "hextrackr" / "ledger.jsonl"


def test_torn_and_garbage_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record(entry(session="good-1"))
    with open(ledger.path, "ab") as f:
        f.write(b"not json\n{\"sha256\": 5}\n")
    ledger.record(entry(session="good-2", sha="c" * 64))
    with open(ledger.path, "ab") as f:
        f.write(b'{"sha256": "' + b"a" * 64 + b'", "server": "https://hx.ex')  # a crash mid-line
    assert [e.session for e in ledger.entries()] == ["good-1", "good-2"]


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = b"x,y\n" * 400_000  # more than one read chunk
    (tmp_path / "f.csv").write_bytes(data)
    assert file_sha256(tmp_path / "f.csv") == hashlib.sha256(data).hexdigest()


WRITER = """
import sys
from hextrackr_cli.ledger import Entry, Ledger
ledger = Ledger(sys.argv[1])
for i in range(int(sys.argv[3])):
    ledger.record(Entry(sha256=f"{sys.argv[2]}-{i:04d}" + "f" * 50, server="http://127.0.0.1:1", type="vulnerabilities",
                        vendor="tenable", session=sys.argv[2] * 40, time="2026-11-30T02:00:00Z", name="x" * 300))
"""


def test_two_concurrent_writers_lose_and_tear_no_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    n = 400
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, str(n)]) for tag in ("A", "B")]
    assert [p.wait(60) for p in procs] == [0, 0]
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2 * n + 1
    rows = [json.loads(line) for line in lines[:-1]]  # every line whole JSON: no interleaved bytes
    for tag in ("A", "B"):
        assert sorted(r["sha256"][:6] for r in rows if r["session"] == tag * 40) == [f"{tag}-{i:04d}" for i in range(n)]
    assert len(list(Ledger(path).entries())) == 2 * n
