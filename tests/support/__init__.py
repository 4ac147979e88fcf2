"""The test suites' one set of helpers (the suite folders import them as ``support.…``; ``tests/conftest.py``
puts ``tests/`` on ``sys.path``):

- ``support.data``: deterministic CSV generators (generic and Tenable scans, any header), the sample CSV text
- ``support.db``: reading a server's SQLite file (rows, counts, fingerprints), holding its write lock
- ``support.http``: the HTTP API by hand (uploads, progress, history), ``wait_outcome`` until an import ends
- ``support.cli``: the CLI as a user runs it (environment, subprocess, NDJSON reader, Ctrl-C) and in-process
- ``support.server``: real servers (``hextrackr serve`` and a killable process), real Socket.io clients
- ``support.fixtures``: the generated-CSV, embedded-server and tiny-disk fixtures; ``support.pg``: a fresh
  PostgreSQL database (``pg_url``)
- ``support.cli_suite`` and ``support.faults``: the CLI and fault suites' default tokens over the helpers above
  (``support.faults`` also builds the bad-input corpus of ``tests/data/bad``)
- ``support.proxy``: a loopback TCP proxy that injects network faults; ``support.figures`` (+ the
  ``support.figures_plugin`` pytest plugin): the fault suite's counters, printed at the end of the run
- ``support.hx11_double``, ``support.hx11_rows``: the HexTrackr 1.1.12 protocol double and its row mapping
"""
