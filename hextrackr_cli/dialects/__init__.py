"""Server dialects other than the seed: pure translations of their wire messages onto the seed's events.

Nothing in this package does I/O; transports feed it what they received and render what it returns.
"""
