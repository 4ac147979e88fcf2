"""hextrackr: import vulnerability scans into HexTrackr with live progress."""

__version__ = "0.1.0"
