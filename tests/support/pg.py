"""A fresh PostgreSQL database per test on 127.0.0.1 (skipped without one, failed under CI_STRICT): the
``pg_url`` fixture; ``pg_admin`` is psycopg once the server answers."""

from __future__ import annotations

import os
import secrets
from typing import Any, Iterator

import pytest

PG_ADMIN = os.environ.get("HEXTRACKR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def pg_admin() -> Any:
    try:
        import psycopg
    except ImportError:
        psycopg = None
    if psycopg is None:
        reason = "psycopg is not installed (pip install '.[postgres]')"
    else:
        try:
            psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3).close()
            return psycopg
        except psycopg.OperationalError as exc:
            reason = f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}"
    if os.environ.get("CI_STRICT"):
        pytest.fail(f"{reason} (CI_STRICT is set: these tests must run)")
    pytest.skip(reason)


@pytest.fixture
def pg_url(pg_admin: Any) -> Iterator[str]:
    name = f"hextrackr_test_{secrets.token_hex(4)}"
    with pg_admin.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with pg_admin.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
