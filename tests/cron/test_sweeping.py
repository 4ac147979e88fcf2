"""Drop-folder helpers: which names a sweep takes, when a file has settled, moving without overwriting."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hextrackr_cli.errors import UsageError
from hextrackr_cli.sweeping import Settler, candidates, matches, move_into


def test_default_pattern_is_every_supported_extension_case_insensitive_no_hidden_files() -> None:
    assert matches("scan.csv") and matches("SCAN.CSV") and matches("scan.nessus")
    assert matches("scan.csv.gz") and matches("scan.nessus.gz") and matches("export.zip") and not matches("x.tar.gz")
    assert not matches("scan.csv.part") and not matches(".scan.csv") and not matches("notes.txt")
    assert matches("nightly-1.csv", ["nightly-*.csv"]) and not matches("other.csv", ["nightly-*.csv"])


def test_candidates_are_matching_regular_files_oldest_first(tmp_path: Path) -> None:
    (tmp_path / "sub.csv").mkdir()
    for i, name in enumerate(["b.csv", "a.csv", "skip.txt", ".hidden.csv"]):
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (1_000_000 + i, 1_000_000 + i))
    os.utime(tmp_path / "a.csv", (999_000, 999_000))
    assert [p.name for p in candidates(tmp_path)] == ["a.csv", "b.csv"]
    assert [p.name for p in candidates(tmp_path, exclude=[tmp_path / "a.csv"])] == ["b.csv"]
    with pytest.raises(UsageError, match="cannot read the sweep folder"):
        candidates(tmp_path / "missing")


def test_a_file_settles_only_after_its_signature_stays_unchanged(tmp_path: Path) -> None:
    f = tmp_path / "scan.csv"
    f.write_text("a")
    settler = Settler(settle=5)
    t0 = time.monotonic()
    wall = time.time()
    assert not settler.observe(f, now=t0, wall=wall)  # just written: young by its own clock, first sight
    assert not settler.observe(f, now=t0 + 3, wall=wall + 3)
    with open(f, "a") as out:  # it grows: the wait starts again
        out.write("b")
    assert not settler.observe(f, now=t0 + 4, wall=time.time())
    assert settler.wait_left(f, now=t0 + 4) == pytest.approx(5)
    assert not settler.observe(f, now=t0 + 8, wall=time.time())
    assert settler.observe(f, now=t0 + 9.1, wall=time.time())


def test_an_old_file_settles_on_the_second_look_by_its_own_clock(tmp_path: Path) -> None:
    f = tmp_path / "scan.csv"
    f.write_text("a")
    settler = Settler(settle=5)
    later = time.time() + 60  # the file is a minute old by the wall clock
    t0 = time.monotonic()
    assert not settler.observe(f, now=t0, wall=later)  # first look never takes it
    assert settler.observe(f, now=t0 + 0.01, wall=later)


def test_preserved_old_mtime_still_waits_because_ctime_moved(tmp_path: Path) -> None:
    f = tmp_path / "scan.csv"
    f.write_text("a")
    os.utime(f, (1_000_000, 1_000_000))  # like cp -p: an mtime from 1970, but the ctime is now
    settler = Settler(settle=5)
    t0 = time.monotonic()
    assert not settler.observe(f, now=t0)
    assert not settler.observe(f, now=t0 + 0.01)


def test_vanished_file_is_not_settled(tmp_path: Path) -> None:
    settler = Settler(settle=0)
    assert not settler.observe(tmp_path / "gone.csv")


def test_move_into_never_overwrites_and_keeps_the_whole_extension(tmp_path: Path) -> None:
    done = tmp_path / "done"
    for content in ("one", "two", "three"):
        src = tmp_path / "scan.csv.gz"
        src.write_text(content)
        moved = move_into(src, done)
        assert not src.exists() and moved.read_text() == content
    assert sorted(p.name for p in done.iterdir()) == ["scan.1.csv.gz", "scan.2.csv.gz", "scan.csv.gz"]
    assert (done / "scan.csv.gz").read_text() == "one"
