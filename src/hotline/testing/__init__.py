"""Tools for tests and benchmarks (the fault proxy)."""
