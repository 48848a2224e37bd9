"""scripts/bench: the load client, scenarios and report behind `scripts/bench` (see docs/benchmarks.md)."""
