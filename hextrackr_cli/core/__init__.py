"""What the commands and the Python API share, above the transport and the embedded server.

``connection`` (server resolution, embedded start, dialect detection, the 1.1.x login), ``follower`` (the
follow state machine: events → one outcome), ``sigint`` (Ctrl-C counted, not raised) and ``browser`` (the
``--open`` launch). Nothing here decides an exit code's wording on the terminal: events go to a renderer.
"""
