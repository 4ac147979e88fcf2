"""The test suites' one set of helpers (import them from here in new tests):

- ``support.data``: deterministic CSV generators (generic and Tenable scans, any header), the sample CSV text
- ``support.db``: reading a server's SQLite file (rows, counts, fingerprints), holding its write lock
- ``support.http``: the HTTP API by hand (uploads, progress, history), ``wait_outcome`` until an import ends
- ``support.cli``: the CLI as a user runs it (environment, subprocess, NDJSON reader, Ctrl-C) and in-process
- ``support.server``: real servers (``hextrackr serve`` and a killable process), real Socket.io clients
- ``support.fixtures``: the generated-CSV and embedded-server fixtures of the CLI tests; ``support.pg``: a fresh
  PostgreSQL database (``pg_url``)

``tests/helpers.py``, ``tests/cli_support.py`` and ``tests/faults/support.py`` re-export these under their old
names (with their suites' default tokens), so tests written against them keep working.
"""
