"""The embedded HexTrackr import server (``hextrackr serve`` and ``--server local``).

Public API: ``hextrackr_cli.server.app.start_background`` and ``EmbeddedServer``.
"""
