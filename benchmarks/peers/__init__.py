"""Peers of the real service for `benchmarks.serving`: same API, other ways of serving it."""
