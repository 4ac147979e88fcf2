"""Command bodies: parse -> Settings -> a function that does the work. Imported lazily by ``cli.py``."""
