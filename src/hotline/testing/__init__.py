"""Tools for tests, benchmarks and the campaign (the fault proxy, waiting, seeded randomness); nothing
in the product imports them."""
