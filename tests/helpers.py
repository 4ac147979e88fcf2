"""Old name of the shared test helpers, kept for the tests that import it: everything here lives in
``tests/support/`` (see its ``__init__``); new tests import from there."""

from __future__ import annotations

from support.data import (GENERIC_CSV, GENERIC_HEADER, TENABLE_HEADER, tenable_rows, write_csv,  # noqa: F401
                          write_tenable_csv)
from support.db import db_count, db_rows, db_snapshot, hold_write_lock, wait_import_recorded  # noqa: F401
from support.http import get_json, post_import  # noqa: F401
from support.http import wait_outcome as _wait_outcome
from support.server import (LISTEN_RE, EventLog, SpawnedServer, close_client, socket_client,  # noqa: F401
                            spawn_server)


def wait_for_outcome(url: str, token: str, session_id: str, timeout: float = 60.0) -> dict:
    """Poll the progress endpoint until the import has ended (bounded); returns the final SessionState."""
    return _wait_outcome(url, session_id, token=token, timeout=timeout, interval=0.05)

