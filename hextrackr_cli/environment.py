"""The world a command runs in: its streams, whether they are terminals, its environment variables, and
where its config and data live. ``cli.run(argv, env=…)`` takes one (httpie's ``context.Environment`` is the
model), so a test runs a command in-process with its own streams and variables; the settings and the
renderers read from it, never from ``sys``/``os.environ`` behind its back.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or not a real file
        return False


@dataclass
class Environment:
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # None: ask the stream (a test sets them to pretend to be on a terminal)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)

    @property
    def config_path(self) -> Path:
        """The config file when no --config is given: HEXTRACKR_CONFIG, else the XDG location."""
        from hextrackr_cli.settings import default_config_path

        return Path(self.environ.get("HEXTRACKR_CONFIG") or default_config_path(self.environ))

    @property
    def data_dir(self) -> Path:
        """Where the embedded server keeps its database and log."""
        from hextrackr_cli.settings import default_data_dir

        return default_data_dir(self.environ)

    def say(self, text: str) -> None:
        """One line of human output on stderr (a closed stderr is not an error: the exit status tells)."""
        try:
            self.stderr.write(text + "\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def print(self, text: str) -> None:
        """One line of machine output on stdout."""
        self.stdout.write(text + "\n")
        self.stdout.flush()
