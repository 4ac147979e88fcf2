"""The seed dialect (``hextrackr serve``): its HTTP API and its Watcher strategy."""
