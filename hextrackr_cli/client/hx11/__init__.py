"""The HexTrackr 1.1.x dialect: its HTTP API (cookie + CSRF), login, upload conversion, event translation, ETA,
history/status mapping, the one-import-at-a-time guard and its Watcher strategy."""
