"""Fault toolkit for the fault, bad-input and security suite (issue 6): a controllable loopback TCP proxy,
canned HTTP failures, counters for the final summary line."""
