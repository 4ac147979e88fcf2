"""hextrackr: import vulnerability scans into HexTrackr with live progress.

The Python API (docs/api.md): ``Client``, ``ImportResult`` and the exceptions, all ``HextrackrError``
subclasses carrying ``exit_status``. They are imported on first use, so ``import hextrackr_cli`` (and
``hextrackr --help``) stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BadInputError",
    "Client",
    "ExitStatus",
    "HextrackrError",
    "ImportFailed",
    "ImportResult",
    "ServerError",
    "ServerUnreachable",
    "UsageError",
    "__version__",
]

_LAZY = {
    "Client": "hextrackr_cli.core.client",
    "ImportResult": "hextrackr_cli.core.client",
    "AuthError": "hextrackr_cli.errors",
    "BadInputError": "hextrackr_cli.errors",
    "ExitStatus": "hextrackr_cli.errors",
    "HextrackrError": "hextrackr_cli.errors",
    "ImportFailed": "hextrackr_cli.errors",
    "ServerError": "hextrackr_cli.errors",
    "ServerUnreachable": "hextrackr_cli.errors",
    "UsageError": "hextrackr_cli.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hextrackr_cli' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
