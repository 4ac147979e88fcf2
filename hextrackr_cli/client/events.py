"""Moved to ``hextrackr_cli.events`` (the renderers may import it, not the client): kept so that older imports of
``hextrackr_cli.client.events`` go on working. New code imports ``hextrackr_cli.events``."""

from hextrackr_cli.events import *  # noqa: F401,F403
