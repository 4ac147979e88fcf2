"""One import at a time into a HexTrackr 1.1.x server from this machine (``--no-lock`` opts out).

HexTrackr 1.1.12 loses data when two imports run at once (measured: 190 and 529 records missing, the second
import "resolving" 13,611 of the first's; both said they completed). The server cannot be fixed from here,
but one machine can keep itself from doing it: an import holds ``hextrackr_cli.locking``'s lock for its
server URL from before the upload until it ends; a second one waits, saying why, within ``--timeout``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from hextrackr_cli import locking
from hextrackr_cli.errors import Interrupted, LockHeld

PURPOSE = "hx11-import"
RETRY = 0.2  # seconds between two tries while waiting


def lock_path(server_url: str) -> Any:
    """The lock file of ``server_url`` (one per server, whatever the profile)."""
    return locking.default_lock_path(server_url.rstrip("/"), purpose=PURPOSE)


def one_import_at_a_time(
    server_url: str,
    *,
    deadline: float | None,
    interrupted: Callable[[], bool],
    say: Callable[[str], None],
) -> locking.FileLock:
    """The held lock for ``server_url``; waits (said once through ``say``) while another import holds it.

    Raises LockHeld (exit 75) when ``deadline`` (``time.monotonic()``) passes first, Interrupted on Ctrl-C;
    nothing has been sent to the server then."""
    path = lock_path(server_url)
    what = f"another hextrackr import into {server_url}"
    lock = locking.FileLock(path, what=what)
    try:
        return lock.acquire()
    except LockHeld as exc:
        holder = exc.holder_pid
    who = f" (PID {holder})" if holder is not None else ""
    say(f"waiting for {what}{who} to end: HexTrackr 1.1.x loses data when two imports run at once "
        "(--no-lock runs anyway)")
    while True:
        if interrupted():
            raise Interrupted("interrupted while waiting for the other import to end; nothing was sent")
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise LockHeld(f"{what}{who} was still running at --timeout; nothing was sent", holder_pid=holder,
                           path=str(path), hint="retry when it has ended, or pass --no-lock to run anyway")
        try:
            return locking.FileLock(path, wait=min(RETRY, left) if left is not None else RETRY, what=what).acquire()
        except LockHeld:
            continue
