"""Tools for tests and benchmarks (the fault proxy); nothing in the product imports them."""
