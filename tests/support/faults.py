"""The fault suite's own helpers (the bad-input corpus, its tokens) and the shared helpers of ``tests/support/``
under the names this suite uses (``S.run_cli``, ``S.wait_outcome``, …), with its token as the default."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import requests

from support.cli import cli_env as _cli_env
from support.cli import read_json_until as _read_json_until
from support.cli import run_cli as _run_cli
from support.cli import spawn_cli  # noqa: F401
from support.data import HEADER, gen_csv  # noqa: F401
from support.db import db_count, db_rows_all, fingerprint, hold_write_lock, wait_import_recorded  # noqa: F401
from support.http import auth as _auth
from support.http import imports_total as _imports_total
from support.http import post_file as _post_file
from support.http import progress
from support.http import wait_outcome as _wait_outcome

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
CORPUS_DIR = TESTS / "data" / "bad"
TOKEN = "fault-suite-admin-token-0123456789"
OTHER_TOKEN = "fault-suite-other-token-9876543210"
THIRD_TOKEN = "fault-suite-third-token-5555555555"


def manifest() -> dict[str, dict]:
    return json.loads((CORPUS_DIR / "manifest.json").read_text(encoding="utf-8"))


def build_corpus(dest: Path) -> dict[str, Path]:
    """Every corpus file written into ``dest`` by the generator (the two big files are not committed)."""
    spec = importlib.util.spec_from_file_location("make_bad_corpus", TESTS / "data" / "make_bad_corpus.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.CASES.clear()
    mod.build()
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (data, _meta) in mod.CASES.items():
        (dest / name).write_bytes(data)
        out[name] = dest / name
    return out


def cli_env(home: Path, server_url: str | None, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    """The CLI's environment for the fault suite: no colour unless a test says otherwise."""
    return _cli_env(home, server_url, token, **{"NO_COLOR": "1", **extra})


def run_cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 90,
            input: bytes | None = None) -> subprocess.CompletedProcess:
    return _run_cli(args, env, timeout, input, cwd=cwd)


def read_json_until(proc: subprocess.Popen, predicate: Any, timeout: float = 60) -> list[dict]:
    return _read_json_until(proc, predicate, timeout)


def auth(token: str = TOKEN) -> dict[str, str]:
    return _auth(token)


def post_file(url: str, path: Path | None = None, *, token: str | None = TOKEN, **kw: Any) -> requests.Response:
    """A raw multipart upload (text fields first), without any client-side check."""
    return _post_file(url, path, token=token, **kw)


def status(url: str, sid: str, token: str = TOKEN) -> requests.Response:
    return progress(url, sid, token)


def wait_outcome(url: str, sid: str, *, token: str = TOKEN, timeout: float = 90) -> dict:
    return _wait_outcome(url, sid, token=token, timeout=timeout)


def imports_total(url: str, token: str = TOKEN) -> int:
    return _imports_total(url, token)


def count(db_path: Path | str, table: str = "vulnerabilities", where: str = "", args: tuple = ()) -> int:
    return db_count(db_path, table, where, args)


def new_sid() -> str:
    return str(uuid.uuid4())


def last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def slow_enabled(config: Any) -> bool:
    """Long runs (marked ``slow``) only when asked for: ``-m slow`` or HEXTRACKR_FUZZ_SLOW=1."""
    return "slow" in (config.getoption("markexpr") or "") or os.environ.get("HEXTRACKR_FUZZ_SLOW") == "1"
