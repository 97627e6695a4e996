"""Benchmarks: scripts that print figures. Run through `make bench-*`, never as timed tests."""
