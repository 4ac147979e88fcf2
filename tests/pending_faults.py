"""Checks of the fault suite that FAIL against the current code: each is a defect (see the issue 6 report).

Not collected by default (no ``test_`` prefix). Run them with
``.venv/bin/python -m pytest tests/pending_faults.py -q -p no:cacheprovider``; when one passes, move it into
the matching ``tests/test_*.py`` module (and drop the name from that module's PENDING sets).
"""

from __future__ import annotations

import pytest

from test_bad_input import (  # noqa: F401  (fixtures)
    PENDING_CLI, PENDING_HTTP, REFUSE, baseline_server, check_cli_refusal, check_http_refusal, corpus,
)

pytest_plugins = ["faults.plugin"]


@pytest.mark.parametrize("name", sorted(PENDING_CLI))
def test_pending_cli_refuses_bad_file(name, corpus, baseline_server, tmp_path):
    """Defect: these files are imported (exit 0) or refused without naming the problem."""
    check_cli_refusal(name, corpus, baseline_server, tmp_path)


@pytest.mark.parametrize("name", sorted(n for n in PENDING_HTTP if n in REFUSE))
def test_pending_server_refuses_bad_file(name, corpus, baseline_server):
    """Defect: posted without the CLI's local checks, the server imports these files or does not say why."""
    check_http_refusal(name, corpus, baseline_server)
