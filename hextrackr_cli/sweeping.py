"""Drop-folder helpers for ``hextrackr sweep``: which files to take, when a file has settled, where it goes after.

No importing and no printing here: the sweep command decides, these functions look at the file system.

A file is taken only when it has *settled*: its size, mtime and ctime have not changed for ``settle`` seconds.
The ctime counts too because a copy that preserves timestamps (``cp -p``, ``rsync -t``, SFTP ``-p``) sets an
old mtime, but every write and every ``utime`` moves the ctime. The age comes from the file's own clock when it
is already old, else from our observations (a network share's clock may be off).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from hextrackr_cli.errors import UsageError

# What `sweep` takes by default: every file name ending the package's readers accept (formats/: CSV exports,
# Nessus v2 XML, and either compressed as formats/compressed.py reads them: gzip, or a zip of one export).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".nessus", ".csv.gz", ".nessus.gz", ".zip")


def default_patterns() -> tuple[str, ...]:
    return tuple(f"*{suffix}" for suffix in SUPPORTED_SUFFIXES)


def matches(name: str, patterns: Sequence[str] | None = None) -> bool:
    """Does a file name match one of the glob ``patterns`` (default: every supported extension)?

    Case-insensitive (``SCAN.CSV`` is a CSV); hidden files (``.scan.csv.part``, rsync's ``.scan.csv.XXXXXX``)
    never match: a writer that hides its file until it is whole must not be raced.
    """
    if name.startswith("."):
        return False
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in (patterns or default_patterns()))


def candidates(folder: Path, patterns: Sequence[str] | None = None, exclude: Iterable[Path] = ()) -> list[Path]:
    """The regular files directly in ``folder`` whose names match, oldest first (then by name)."""
    skip = {p.resolve() for p in exclude}
    found: list[tuple[float, str, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise UsageError(f"cannot read the sweep folder {folder}: {exc.strerror or exc}") from None
    for e in entries:
        if not matches(e.name, patterns):
            continue
        try:
            if not e.is_file(follow_symlinks=True):
                continue
            st = e.stat()
        except OSError:  # gone between listing and stat
            continue
        path = Path(e.path)
        if path.resolve() in skip:
            continue
        found.append((st.st_mtime, e.name, path))
    return [p for _, _, p in sorted(found)]


Signature = tuple[int, int, int]  # size, mtime_ns, ctime_ns


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class Settler:
    """Remembers each file's last signature and since when (our monotonic clock) it has not changed."""

    settle: float
    _seen: dict[Path, tuple[Signature, float]] = field(default_factory=dict)

    def observe(self, path: Path, *, now: float | None = None, wall: float | None = None) -> bool:
        """Stat ``path`` now; True once it has settled. A file that vanished is forgotten (False)."""
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        try:
            st = os.stat(path)
        except OSError:
            self._seen.pop(path, None)
            return False
        sig = signature(st)
        prev = self._seen.get(path)
        if prev is None or prev[0] != sig:
            self._seen[path] = (sig, now)
            prev = (sig, now)
        unchanged_for = now - prev[1]
        file_age = wall - max(st.st_mtime, st.st_ctime)
        return unchanged_for >= self.settle or (file_age >= self.settle and prev[1] < now)

    def wait_left(self, path: Path, *, now: float | None = None) -> float:
        """How many more seconds ``path`` must stay unchanged (by our observations) to settle."""
        now = time.monotonic() if now is None else now
        prev = self._seen.get(path)
        return self.settle if prev is None else max(0.0, self.settle - (now - prev[1]))

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)


def move_into(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` (created if missing) and return where it went.

    A name already taken there gets ``.1``, ``.2``… before its extension, so nothing is overwritten. Same file
    system: one atomic rename; else copied, then the original removed.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {folder}: {exc.strerror or exc}") from None
    target = folder / path.name
    stem, suffix = _split_name(path.name)
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{stem}.{n}{suffix}"
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # another file system
            raise UsageError(f"cannot move {path} to {folder}: {exc.strerror or exc}") from None
        try:
            shutil.copy2(path, target)
            os.unlink(path)
        except OSError as exc2:
            raise UsageError(f"cannot move {path} to {folder}: {exc2.strerror or exc2}") from None
    return target


def _split_name(name: str) -> tuple[str, str]:
    """``scan.csv.gz`` -> (``scan``, ``.csv.gz``): a numbered copy keeps the whole extension."""
    stem, dot, rest = name.partition(".")
    return (stem, dot + rest) if stem else (name, "")
