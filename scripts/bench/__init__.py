"""Benchmarks: each measures a path a user takes and prints (or records) its figures."""
